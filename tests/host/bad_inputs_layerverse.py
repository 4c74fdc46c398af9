"""Bad inputs of LayerVerse (issue 84, part LayerVerse), in ``tests/host/test_bad_inputs.py``'s shape:
``(id, run(kit), message)``. An authors' allocation on a model of another depth, a block the model does not have, a
list that does not parse, no blocks at all, an inversion that kept nothing, a mask of another shape, a model outside
Flux.1 and SD3, the edit sampled on another schedule."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

PROMPT = "a red circle on a blue background"


def _inverted(k, family: str = "flux-dev", keep: str = "every block", steps: int = 3):
    def make():
        model, clip, _ = k.tiny(family)
        source = call(k.host, "CLIPTextEncode", clip=clip, text=PROMPT)[0]
        raw = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
        return call(k.host, "InvertEditFlowInvert", model=model, latent={"samples": raw}, positive=source,
                    solver="fireflow", steps=steps, scheduler="simple", guidance=1.0, layerverse_keep=keep)
    return k.once(("layerverse", family, keep, steps), make)


def _inject(k, family: str = "flux-dev", keep: str = "every block", **kw):
    args = dict(preset="custom", masked_blocks="double 0; single 1", global_blocks="double 1")
    args.update(kw)
    return call(k.host, "InvertEditLayerVerse", model=k.tiny(family)[0], inversion=_inverted(k, family, keep)[0],
                **args)[0]


def _sampled_on_other_steps(k):
    model, clip, _ = k.tiny("flux-dev")
    patched = _inject(k)
    target = call(k.host, "CLIPTextEncode", clip=clip, text="a yellow circle")[0]
    sigmas = call(k.host, "BasicScheduler", model=model, scheduler="simple", steps=5, denoise=1.0)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "RandomNoise", noise_seed=0)[0],
                guider=call(k.host, "BasicGuider", model=patched, conditioning=target)[0],
                sampler=call(k.host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                latent_image={"samples": torch.zeros(1, 16, 16, 16)})


LAYERVERSE_CASES = [
    ("layerverse-preset-of-another-depth", lambda k: _inject(k, preset="LayerVerse (Flux.1 dev)"),
     r"LayerVerse KV Inject: input 'preset' is 'LayerVerse \(Flux.1 dev\)', whose single block 32 this model does not "
     r"have: it has 2 double blocks \(0 to 1\) and 2 single blocks \(0 to 1\); choose custom"),
    ("layerverse-block-beyond-the-model", lambda k: _inject(k, masked_blocks="double 0; single 40"),
     r"LayerVerse KV Inject: input 'masked_blocks' names single block 40, but the model has 2 double blocks \(0 to 1\) "
     r"and 2 single blocks \(0 to 1\); name blocks it has"),
    ("layerverse-sd3-single-block", lambda k: _inject(k, "sd3", masked_blocks="single 0", global_blocks=""),
     r"LayerVerse KV Inject: input 'masked_blocks' names single block 0, but the model has 2 joint blocks \(0 to 1\) "
     r"and no single blocks: SD3's joint blocks are written without a kind"),
    ("layerverse-list-does-not-parse", lambda k: _inject(k, global_blocks="double one"),
     r"LayerVerse KV Inject: input 'global_blocks' is 'double one': 'one' is not a block number or a range such as "
     r"32-37; write e.g."),
    ("layerverse-no-blocks", lambda k: _inject(k, masked_blocks="", global_blocks=" "),
     r"LayerVerse KV Inject: inputs 'masked_blocks' and 'global_blocks' are both empty; name the blocks"),
    ("layerverse-nothing-kept", lambda k: _inject(k, keep="off"),
     r"LayerVerse KV Inject: input 'inversion' kept no LayerVerse keys and values \(.*\); invert with Flow Invert's "
     r"layerverse_keep"),
    ("layerverse-mask-of-another-shape", lambda k: _inject(k, mask=torch.ones(1, 64, 128)),
     r"LayerVerse KV Inject: input 'mask' is 128x64 and the image 128x128: their shapes differ"),
    ("layerverse-inject-steps-zero", lambda k: _inject(k, inject_steps=0),
     r"LayerVerse KV Inject: input 'inject_steps' is 0; give 1 or more"),
    ("layerverse-keep-on-qwen-image", lambda k: _inverted(k, "qwen-image"),
     r"Flow Invert: input 'model' is QwenImage; LayerVerse is defined for Flux.1 and SD3/SD3.5"),
    ("layerverse-sampled-on-other-steps", _sampled_on_other_steps,
     r"LayerVerse KV Inject: the model is sampled on 5 steps that are not the inversion's schedule \(3 steps\)"),
]

"""Bad inputs of the Wan 2.x clip editors (issue 82), in ``tests/host/test_bad_inputs.py``'s shape: ``(id, run(kit),
message)``. An image latent where Wan needs a clip's (and a clip latent where an image model needs an image's), a Wan
inversion given to a Flux model, a clip sampled with other frames than were inverted, a Wan model the flow nodes were
not tested on (I2V).

Not here: FlowEdit on Wan given a 4-dimensional latent. SamplerCustomAdvanced adds the frame axis to it
(``comfy.sample.fix_empty_latent_channels``) before any guider sees it, so each row becomes a clip of one frame, as
the host samples it; Flow Invert, which reads the LATENT itself, refuses it by name."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

PROMPT = "a red circle on a blue background"


def _encode(k, clip, text: str = PROMPT) -> list:
    return call(k.host, "CLIPTextEncode", clip=clip, text=text)[0]


def _clip(frames: int = 3) -> torch.Tensor:
    return torch.randn(1, 16, frames, 8, 8, generator=torch.Generator().manual_seed(0))


def _invert(k, family: str = "wan21", latent=None, model=None):
    m, c, _ = k.tiny(family)
    return call(k.host, "InvertEditFlowInvert", model=model or m,
                latent={"samples": _clip() if latent is None else latent}, positive=_encode(k, c),
                solver="rf-solver", steps=4, scheduler="simple", guidance=1.0)


def _wan_inverted(k):
    return k.once("wan_inverted", lambda: _invert(k))


def _sample_wan_inversion(k, frames: int):
    _, noise, sigmas = _wan_inverted(k)
    m, c, _ = k.tiny("wan21")
    guider = call(k.host, "BasicGuider", model=m, conditioning=_encode(k, c))[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                sampler=call(k.host, "InvertEditFlowSampler", solver="rf-solver")[0], sigmas=sigmas,
                latent_image={"samples": _clip(frames)})


def _wan_i2v(k):
    """A tiny random Wan 2.1 I2V (the host's WAN21_I2V config: 36 input channels, an image-embedding MLP)."""
    import comfy.supported_models

    def make():
        loaders = k.host.pack.hostkit.loaders
        spec = k.host.pack.demo.tiny_flow_models.SPECS["wan21"]
        config = {**spec.unet_config, "model_type": "i2v", "in_dim": 36}
        built = loaders.empty_unet(comfy.supported_models.WAN21_I2V, config, {}, spec.model_type)
        for p in built.parameters():
            torch.nn.init.normal_(p, std=0.02)
        return loaders.frozen_patcher(built)

    return k.once("wan_i2v", make)


def _region_lock(k, cache: bool):
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:48, 16:48] = 1.0
    return call(k.host, "InvertEditRegionLock", model=k.tiny("wan21")[0], latent={"samples": _clip()}, mask=mask,
                region_cache=cache, warmup_steps=1, refresh_steps="")


WAN_CASES = [
    ("wan-flow-invert-image-latent", lambda k: _invert(k, latent=torch.randn(1, 16, 8, 8)),
     r"Flow Invert: input 'latent' has shape \(1, 16, 8, 8\), an image latent; this model \(WAN21_T2V, a video model\) "
     r"edits a clip's latent \[batch, channels, frames, height, width\]: encode the clip's frames"),
    ("flux-flow-invert-wan-clip-latent", lambda k: _invert(k, "flux-dev", latent=_clip()),
     r"Flow Invert: input 'latent' has shape \(1, 16, 3, 8, 8\); an image latent \[batch, channels, height, width\] "
     r"is needed"),
    ("flux-flowedit-wan-clip-latent", lambda k: call(
        k.host, "SamplerCustomAdvanced", noise=call(k.host, "RandomNoise", noise_seed=0)[0],
        guider=call(k.host, "InvertEditFlowEdit", model=k.tiny("flux-dev")[0], source=_encode(k, k.tiny("flux-dev")[1]),
                    target=_encode(k, k.tiny("flux-dev")[1], "a yellow circle"), source_guidance=1.5,
                    target_guidance=5.5, n_max=3, n_min=0, n_avg=1)[0],
        sampler=call(k.host, "KSamplerSelect", sampler_name="euler")[0],
        sigmas=call(k.host, "BasicScheduler", model=k.tiny("flux-dev")[0], scheduler="simple", steps=4, denoise=1.0)[0],
        latent_image={"samples": _clip()}),
     r"FlowEdit: input 'latent_image' has shape \(1, 16, 3, 8, 8\); an image latent \[batch, channels, height, "
     r"width\] is needed"),
    ("wan-inversion-to-flux-model", lambda k: call(k.host, "InvertEditRFInversion", model=k.tiny("flux-dev")[0],
                                                     inversion=_wan_inverted(k)[0], eta=0.9, start=0.0, stop=0.25,
                                                     eta_decay=0.0),
     r"RF-Inversion: input 'model' is not the model the inversion was made with"),
    ("wan-sample-other-frame-count", lambda k: _sample_wan_inversion(k, frames=2),
     r"Flow Invert: the sampler's latent_image is \(1, 16, 2, 8, 8\), but the inversion was made from a latent "
     r"\(1, 16, 3, 8, 8\)"),
    ("wan-region-lock-region-cache", lambda k: _region_lock(k, cache=True),
     r"Region Lock: input 'region_cache' is on, but WAN21_T2V's blocks attend twice \(a self-attention, then a "
     r"cross-attention to the text\), not jointly.*turn region_cache off"),
    ("wan-i2v-model", lambda k: _invert(k, model=_wan_i2v(k)),
     r"Flow Invert: input 'model' is WAN21_I2V \(WanModel\), a model this node was not tested on; it edits with "
     r"Flux.1 dev and schnell, SD3/SD3.5 and Qwen-Image, and Wan 2.1/2.2 text-to-video"),
]

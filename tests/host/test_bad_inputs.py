"""Bad inputs, node by node: each is refused with a message naming the node, the input and what
would work (issue 13: "no silent wrong picture"). The cases came from a user's test through the
server's API: NaN and infinite numbers, dropdown values the host does not check (V3 combos
accept anything), malformed inversion files, objects that are not inversions, runs that would
sample a wrong picture.

THE TABLE GROWS WITH EVERY NODE: a new node (or a new input of one) adds its bad values to
CASES below, as (id, run, expected message), where ``run(kit)`` calls the node(s) with
the bad input on the tiny SD1 model and a few steps. One parametrized test runs them all.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import struct

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err

PROMPT = "a red circle on a blue background"
NAN, INF = float("nan"), float("inf")
STEPS = 4


@dataclasses.dataclass
class Kit:
    """Tiny inputs shared by the cases (built once): the SD1 tiny model, prompts, a source
    latent and its inversions (DDIM, EDICT, edit-friendly DDPM) at a few steps."""
    host: object
    model: object
    clip: object
    pos: list
    neg: list
    src: dict
    inv: object       # DDIM, 4 steps from step 0
    lat: dict
    sigmas: torch.Tensor
    other: object     # another tiny SD1 model (seed 1): what an input was not made with
    tiny: object      # the tiny models' builder (tests/conftest.py's ``tiny``)
    make_gguf: object = None   # the tiny SD1 UNet from a GGUF file (``gguf``)
    cache: dict = dataclasses.field(default_factory=dict)

    def once(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def edict(self):
        return self.once("edict", lambda: call(self.host, "InvertEditEDICTInvert", **self.invert_args(cfg=3.0),
                                               negative=self.neg, mixing=0.93))

    def ddpm(self):
        return self.once("ddpm", lambda: call(self.host, "InvertEditDDPMInvert", **self.invert_args(cfg=3.5, start_at_step=1),
                                              negative=self.neg, seed=0))

    def inv10(self):
        """A DDIM inversion of 10 steps (Noise Map Guidance refuses fewer): (INVERSION, LATENT, SIGMAS)."""
        return self.once("inv10", lambda: ddim_invert(self, steps=10))

    def optimized(self, scale: float = 1.0):
        """Imagic Optimize Embedding (1 step) on the source latent times ``scale``: (optimized, target, loss)."""
        return self.once(("optimized", scale), lambda: imagic_embedding(self, latent={"samples": self.src["samples"] * scale}))

    def other_clip(self):
        """The tiny SDXL model's text encoder: another family's (its prompts are 96 wide, SD1's 64)."""
        return self.once("other_clip", lambda: self.tiny("sdxl")[1])

    def invert_args(self, **change) -> dict:
        args = dict(model=self.model, latent=self.src, positive=self.pos, steps=STEPS, scheduler="ddim_uniform",
                    start_at_step=0, cfg=1.0)
        args.update(change)
        return args

    def pair(self) -> dict:
        return {"samples": self.lat["samples"].repeat(2, 1, 1, 1)}

    def gguf(self):
        """The tiny SD1 UNet (seed 0, ``model``'s weights) from a GGUF file at Q8_0, loaded by ComfyUI-GGUF (fetched at
        test time: ``test_quantised_lane.gguf_tiny_unet``; the case is skipped loudly where it is absent)."""
        return self.once("gguf", self.make_gguf)


@pytest.fixture(scope="module")
def kit(host, tiny, reference_copy, tmp_path_factory, skip_loudly):
    def make_gguf():
        from test_quantised_lane import _load_gguf, gguf_tiny_unet

        convert, absent = _load_gguf(host, reference_copy, tmp_path_factory)
        if convert is None:
            skip_loudly(f"bad inputs, the GGUF cases: {absent}")
        return gguf_tiny_unet(host, tmp_path_factory.mktemp("gguf-sd1"))

    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv, lat, sigmas = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=pos, steps=STEPS,
                            scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    return Kit(host, model, clip, pos, encode(host, clip, ""), src, inv, lat, sigmas, tiny("sd1", seed=1)[0], tiny,
               make_gguf)


# -- how the cases run their nodes ---------------------------------------------------------

def with_nan(latent: dict, value: float = NAN) -> dict:
    x = latent["samples"].clone()
    x[0, 0, 0, 0] = value
    return {"samples": x}


def overflowing(k: Kit):
    """The model as float16 overflow leaves it: every prediction NaN."""
    m = k.model.clone()
    m.set_model_unet_function_wrapper(lambda apply, a: apply(a["input"], a["timestep"], **a["c"]) * float("nan"))
    return m


def ddim_invert(k: Kit, **change):
    return call(k.host, "InvertEditDDIMInvert", **k.invert_args(**change))


def fixed_point_invert(k: Kit, **change):
    """Fixed-Point Invert with ReNoise's settings (2 iterations, to keep it quick) and ``change``."""
    settings = dict(iterations=2, average=2, low_noise_rule=True, anderson=0)
    settings.update({key: change.pop(key) for key in list(change) if key in settings})
    return call(k.host, "InvertEditFixedPointInvert", **k.invert_args(**change), **settings)


def ksampler(k: Kit, model, latent: dict, start_at_step: int = 0, cfg: float = 1.0):
    return call(k.host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=STEPS, cfg=cfg,
                sampler_name="ddim", scheduler="ddim_uniform", positive=k.pos, negative=k.pos, latent_image=latent,
                start_at_step=start_at_step, end_at_step=10000, return_with_leftover_noise="disable")


def apply_inversion(k: Kit, inversion, latent: dict | None = None, start_at_step: int = 0, cfg: float = 1.0):
    guarded = call(k.host, "InvertEditApplyInversion", model=k.model, inversion=inversion)[0]
    return ksampler(k, guarded, latent if latent is not None else k.lat, start_at_step, cfg)


def pack_sampler(k: Kit, node: str, inversion, latent: dict, sigmas, cfg: float, model=None):
    sampler = call(k.host, node, inversion=inversion)[0]
    guider = call(k.host, "CFGGuider", model=model or k.model, positive=k.pos, negative=k.neg, cfg=cfg)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "DisableNoise")[0], guider=guider, sampler=sampler,
                sigmas=sigmas, latent_image=latent)


def save(k: Kit, filename_prefix: str, inversion=None):
    return call(k.host, "InvertEditSaveInversion", inversion=inversion if inversion is not None else k.inv,
                filename_prefix=filename_prefix)


def load_file(k: Kit, name: str, content: bytes | None = None, tensors=None, meta=None):
    """Write a file into the input folder (raw bytes, or tensors and metadata), then Load Inversion it."""
    import safetensors.torch

    path = os.path.join(k.host.input_dir, name)
    if content is not None:
        with open(path, "wb") as f:
            f.write(content)
    else:
        safetensors.torch.save_file(tensors, path, metadata=meta)
    return call(k.host, "InvertEditLoadInversion", inversion=name)


def valid_file_bytes(k: Kit) -> bytes:
    import safetensors.torch

    tensors, meta = k.inv.to_state()
    return safetensors.torch.save(tensors, metadata=meta)


def load_state(k: Kit, name: str, inversion=None, **meta_change):
    tensors, meta = (inversion or k.inv).to_state()
    meta.update(meta_change)
    return load_file(k, name, tensors=tensors, meta=meta)


def null_text(k: Kit, inversion=None, **change):
    args = dict(model=k.model, inversion=inversion if inversion is not None else k.inv, positive=k.pos,
                negative=k.neg, cfg=7.5, inner_steps=1, learning_rate=0.01, early_stop=True)
    args.update(change)
    return call(k.host, "InvertEditNullTextOptimize", **args)


def attention_store(k: Kit, inversion=None, **change):
    args = dict(model=k.model, clip=k.clip, inversion=inversion if inversion is not None else k.inv, prompt=PROMPT,
                words="circle", start=0.0, end=1.0, threshold=0.3)
    args.update(change)
    return call(k.host, "InvertEditAttentionStore", **args)


def masactrl(k: Kit, **change):
    args = dict(model=k.model, clip=k.clip, latent=k.lat, source_prompt=PROMPT,
                target_prompt="a red square on a blue background", start_step=1, start_layer=0)
    args.update(change)
    return call(k.host, "InvertEditMasaCtrl", **args)


def plug_and_play(k: Kit, **change):
    args = dict(model=k.model, clip=k.clip, latent=k.lat, source_prompt="", target_prompt="a red square",
                feature_injection=0.8, self_attention_injection=0.5)
    args.update(change)
    return call(k.host, "InvertEditPlugAndPlay", **args)


def blended(change: dict) -> bool:
    """A case's local_blend unless it says: on where it gives blend words (global otherwise, as the cases were
    written before the blend took the words that differ where none are given)."""
    return bool(change.get("blend_source_words") or change.get("blend_target_words"))


def attention_inject(k: Kit, **change):
    args = dict(model=k.model, clip=k.clip, latent=k.lat, source_prompt=PROMPT,
                target_prompt="a red square on a blue background", mode="replace", reweight="", cross_replace=0.8,
                self_replace=0.4, local_blend=blended(change))
    args.update(change)
    return call(k.host, "InvertEditAttentionInject", **args)


def latent_blend(k: Kit, **change):
    args = dict(model=k.model, latent=k.pair(), mask=torch.ones(1, 64, 64), start=0.0, end=1.0)
    args.update(change)
    return call(k.host, "InvertEditLatentBlend", **args)


def line_mask() -> torch.Tensor:
    """A 512 px mask of one pixel-wide column (column 3): nearest-resized to a latent it leaves nothing."""
    mask = torch.zeros(1, 512, 512)
    mask[:, :, 3] = 1.0
    return mask


def diffedit(k: Kit, **change):
    args = dict(model=k.model, latent=k.src, source=k.pos, target=encode(k.host, k.clip, "a red square"),
                strength=0.5, samples=1, threshold=0.5, seed=0)
    args.update(change)
    return call(k.host, "InvertEditDiffEditMask", **args)


def sega_concept(k: Kit, chain=None, **change):
    args = dict(conditioning=encode(k.host, k.clip, "a green square"), direction="add", scale=5.0, warmup=0,
                cooldown=0, threshold=0.9, weight=1.0, concepts=chain)
    args.update(change)
    return call(k.host, "InvertEditSEGAConcept", **args)[0]


def sega_guidance(k: Kit, concepts, **change):
    args = dict(model=k.model, positive=k.pos, negative=k.neg, cfg=7.5, concepts=concepts, momentum_scale=0.1,
                momentum_beta=0.4)
    args.update(change)
    return call(k.host, "InvertEditSEGAGuidance", **args)


def ledits_concept(k: Kit, chain=None, **change):
    args = dict(clip=k.clip, text="a yellow background", direction="add", scale=5.0, warmup=0, cooldown=0,
                threshold=0.9, weight=1.0, concepts=chain)
    args.update(change)
    return call(k.host, "InvertEditLEDITSConcept", **args)[0]


def ledits_guidance(k: Kit, concepts=None, **change):
    args = dict(model=k.model, negative=k.neg, concepts=concepts if concepts is not None else ledits_concept(k),
                mask="intersect")
    args.update(change)
    return call(k.host, "InvertEditLEDITSGuidance", **args)


def p2pz_invert(k: Kit, **change):
    args = dict(k.invert_args(), lambda_auto_corr=20.0, lambda_kl=20.0, reg_steps=5, auto_corr_rolls=5, seed=0)
    args.update(change)
    return call(k.host, "InvertEditPix2PixZeroInvert", **args)


def edit_direction(k: Kit, **change):
    args = dict(conditioning=k.pos, source_sentences="a red circle", target_sentences="a red square", clip=k.clip)
    args.update(change)
    return call(k.host, "InvertEditEditDirection", **args)


def cross_guidance(k: Kit, sampler: str = "ddim", noise=None, sampled=None, sigmas=None, **change):
    """Cross-Attention Guidance on the DDIM inversion, sampled (the run's refusals come from the sampler)."""
    args = dict(model=k.model, positive=k.pos, target=encode(k.host, k.clip, "a red square on a blue background"),
                negative=k.neg, latent=k.lat, cfg=7.5, guidance_amount=0.1)
    args.update(change)
    guider, pair = call(k.host, "InvertEditCrossAttentionGuidance", **args)
    return call(k.host, "SamplerCustomAdvanced", noise=noise or call(k.host, "DisableNoise")[0], guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0],
                sigmas=sigmas if sigmas is not None else k.sigmas, latent_image=sampled if sampled is not None else pair)


def replaced(inversion, **change):
    return dataclasses.replace(inversion, **change)


def nan_conditioning(conditioning: list) -> list:
    embedding = conditioning[0][0].clone()
    embedding[0, 0, 0] = NAN
    return [[embedding, dict(conditioning[0][1])]]


def imagic_embedding(k: Kit, **change):
    args = dict(model=k.model, latent=k.src, target=k.pos, steps=1, learning_rate=0.001, seed=0)
    args.update(change)
    return call(k.host, "InvertEditImagicOptimizeEmbedding", **args)


def imagic_fine_tune(k: Kit, **change):
    args = dict(model=k.model, latent=k.src, optimized=k.pos, steps=1, learning_rate=0.0001, rank=2, seed=0)
    args.update(change)
    return call(k.host, "InvertEditImagicFineTune", **args)


def imagic_interpolate(k: Kit, **change):
    args = dict(target=k.pos, optimized=k.pos, alpha=0.7)
    args.update(change)
    return call(k.host, "InvertEditImagicInterpolate", **args)


def dreambooth(k: Kit, **change):
    args = dict(model=k.model, instance_images=k.pair(), instance_prompt=k.pos, steps=1, learning_rate=0.0001, rank=2,
                prior_loss_weight=1.0, batch_size=1, seed=0, class_images=k.src, class_prompt=k.neg)
    args.update(change)
    return call(k.host, "InvertEditDreamBoothLoRA", **args)


def dreambooth_full(k: Kit, **change):
    args = dict(model=k.model, instance_images=k.pair(), instance_prompt=k.pos, steps=1, learning_rate=5e-6,
                prior_loss_weight=1.0, batch_size=1, seed=0, class_images=k.src, class_prompt=k.neg)
    args.update(change)
    return call(k.host, "InvertEditDreamBoothFineTune", **args)


def textual_inversion(k: Kit, **change):
    args = dict(model=k.model, clip=k.clip, images=k.pair(), name="bad-input", initializer="square", steps=1,
                learning_rate=0.001, batch_size=1, num_vectors=1, templates="object", seed=0)
    args.update(change)
    return call(k.host, "InvertEditTextualInversion", **args)


def photos(count: int = 2, size: int = 128, width: int | None = None) -> torch.Tensor:
    return torch.rand(count, size, width or size, 3, generator=torch.Generator().manual_seed(count))


def custom_diffusion(k: Kit, **change):
    args = dict(model=k.model, clip=k.clip, vae=k.tiny("sd1")[2], instance_images=photos(),
                instance_prompt="photo of a {} square", name="bad-input-cd", initializer="ktn", steps=1,
                learning_rate=0.0001, batch_size=1, prior_loss_weight=1.0, augment=True, hflip=True, seed=0,
                class_images=photos(3), class_prompt="square")
    args.update(change)
    return call(k.host, "InvertEditCustomDiffusion", **args)


def guided_run(k: Kit, guider, sampler: str = "ddim", inverted=None):
    """SamplerCustomAdvanced with ``guider`` from an inversion's latent (DisableNoise, its sigmas):
    ``inverted`` (INVERSION, LATENT, SIGMAS), the kit's 4-step DDIM inversion by default."""
    _, latent, sigmas = inverted or (k.inv, k.lat, k.sigmas)
    return call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "DisableNoise")[0], guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0], sigmas=sigmas, latent_image=latent)


def proximal(k: Kit, **change):
    args = dict(model=k.model, positive=k.pos, negative=k.neg, inversion=k.inv, cfg=7.5, prox="l0", quantile=0.7,
                quantile_over="pair", start_step=0, pull="inversion", recon_lr=1.0, recon_t=400.0, dilate_mask=1)
    args.update(change)
    return call(k.host, "InvertEditProximalGuidance", **args)[0]


def noise_map(k: Kit, **change):
    args = dict(model=k.model, positive=k.pos, negative=k.neg, inversion=k.inv10()[0], cfg=10.0, noise_map_scale=10.0,
                grad_scale=5000.0, loss="l1")
    args.update(change)
    return call(k.host, "InvertEditNoiseMapGuidance", **args)[0]


def imagic_sampled(k: Kit, positive):
    """KSampler on Imagic Fine-Tune's model (fine-tuned on the kit's optimisation) with ``positive``."""
    model = imagic_fine_tune(k, optimized=k.optimized()[0])[0]
    return call(k.host, "KSampler", model=model, seed=0, steps=1, cfg=1.0, sampler_name="euler", scheduler="normal",
                positive=positive, negative=k.neg, latent_image=k.src, denoise=1.0)


def other_interpolation(k: Kit):
    """Imagic Interpolate of an optimisation on another image (the source latent halved)."""
    return imagic_interpolate(k, target=k.optimized(0.5)[1], optimized=k.optimized(0.5)[0])[0]


NOT_AN_INVERSION = {"samples": torch.zeros(1, 4, 8, 8)}   # a LATENT where an INVERSION belongs
OTHER_FAMILY = [[torch.zeros(1, 77, 768), {}]]   # a prompt encoded for another family (SD1.5's CLIP: 768 wide)
NOT_MADE_WITH = r"input 'model' is not the model the inversion was made with \(weights differ: "
LATER_START = "Use start_at_step=0, the inversion's, or feed the latent that matches step 2"

# (id, run(host, kit), expected message: a regex searched in the error)
CASES = [
    # -- the inverters (DDIM, EDICT, edit-friendly DDPM: check_invert_inputs) --
    ("ddim-cfg-nan", lambda k: ddim_invert(k, cfg=NAN), r"DDIM Invert: input 'cfg' is nan; give a finite number"),
    ("ddim-cfg-inf", lambda k: ddim_invert(k, cfg=INF), r"DDIM Invert: input 'cfg' is inf; give a finite number"),
    ("edict-cfg-nan", lambda k: call(k.host, "InvertEditEDICTInvert", **k.invert_args(cfg=NAN), negative=k.neg,
                                     mixing=0.93), r"EDICT Invert: input 'cfg' is nan"),
    ("edict-mixing-nan", lambda k: call(k.host, "InvertEditEDICTInvert", **k.invert_args(cfg=3.0), negative=k.neg,
                                        mixing=NAN), r"EDICT Invert: input 'mixing' is nan; give a finite number"),
    ("ddpm-cfg-nan", lambda k: call(k.host, "InvertEditDDPMInvert", **k.invert_args(cfg=NAN), negative=k.neg, seed=0),
     r"Edit-Friendly DDPM Invert: input 'cfg' is nan"),
    ("ddim-latent-nan", lambda k: ddim_invert(k, latent=with_nan(k.src)),
     r"DDIM Invert: input 'latent' has NaN or infinite values; connect the image's latent from VAE Encode"),
    ("ddim-latent-inf", lambda k: ddim_invert(k, latent=with_nan(k.src, INF)),
     r"DDIM Invert: input 'latent' has NaN or infinite values"),
    ("toy-model-world-bogus", lambda k: call(k.host, "InvertEditToyModel", world="three objects"),
     r"Toy World Model \(built-in demo\): input 'world' is 'three objects'; choose one of 'two objects \(512 px\)', 'one object \(128 px\)'"),
    ("ddim-scheduler-bogus", lambda k: ddim_invert(k, scheduler="bogus"),
     r"DDIM Invert: input 'scheduler' is 'bogus'; choose one of .*'ddim_uniform'"),
    ("ddpm-scheduler-bogus", lambda k: call(k.host, "InvertEditDDPMInvert", **k.invert_args(scheduler="Karras", cfg=3.5),
                                            negative=k.neg, seed=0),
     r"Edit-Friendly DDPM Invert: input 'scheduler' is 'Karras'; choose one of"),
    ("ddim-start-negative", lambda k: ddim_invert(k, start_at_step=-3),
     r"DDIM Invert: input 'start_at_step' is -3; give 0 or more"),
    ("ddim-model-overflows", lambda k: ddim_invert(k, model=overflowing(k)),
     r"DDIM Invert: the inversion ran into NaN or infinite values \(cfg 1, 4 steps\); the model overflows"),
    ("ddim-steps-zero", lambda k: ddim_invert(k, steps=0), r"DDIM Invert: input 'steps' is 0; give 1 or more"),
    ("fixed-point-cfg-nan", lambda k: fixed_point_invert(k, cfg=NAN),
     r"Fixed-Point Invert: input 'cfg' is nan; give a finite number"),
    ("fixed-point-iterations-negative", lambda k: fixed_point_invert(k, iterations=-1),
     r"Fixed-Point Invert: input 'iterations' is -1; give 0 or more"),
    ("fixed-point-anderson-negative", lambda k: fixed_point_invert(k, anderson=-2),
     r"Fixed-Point Invert: input 'anderson' is -2; give 0 or more"),
    ("fixed-point-average-zero", lambda k: fixed_point_invert(k, average=0),
     r"Fixed-Point Invert: input 'average' is 0; give 1 or more"),
    ("fixed-point-average-above-estimates", lambda k: fixed_point_invert(k, iterations=1, average=5),
     r"Fixed-Point Invert: input 'average' is 5, but iterations 1 make only 2 noise estimates a step; give "
     r"average 1 to 2, or more iterations \(ReNoise: iterations 9, average 2\)"),
    ("fixed-point-scheduler-bogus", lambda k: fixed_point_invert(k, scheduler="bogus"),
     r"Fixed-Point Invert: input 'scheduler' is 'bogus'; choose one of"),
    ("fixed-point-latent-nan", lambda k: fixed_point_invert(k, latent=with_nan(k.src)),
     r"Fixed-Point Invert: input 'latent' has NaN or infinite values; connect the image's latent from VAE Encode"),
    ("fixed-point-model-overflows", lambda k: fixed_point_invert(k, model=overflowing(k)),
     r"Fixed-Point Invert: the inversion ran into NaN or infinite values \(cfg 1, 4 steps\)"),

    # -- Apply Inversion --
    ("apply-not-an-inversion", lambda k: apply_inversion(k, NOT_AN_INVERSION),
     r"Apply Inversion: input 'inversion' is a dict, not an INVERSION; connect the INVERSION output"),
    ("apply-inversion-nan", lambda k: apply_inversion(k, replaced(k.inv, latent=with_nan(k.lat)["samples"])),
     r"Apply Inversion: input 'inversion' \(latent\) has NaN or infinite values; invert the image again"),
    ("apply-sampled-latent-nan", lambda k: apply_inversion(k, k.inv, with_nan(k.lat)),
     r"Apply Inversion: the latent being sampled has NaN or infinite values; sample the inversion's own LATENT"),
    ("apply-later-start-step-0-latent", lambda k: apply_inversion(k, k.inv, start_at_step=2),
     r"Apply Inversion: the run starts at step 2 \(start_at_step=2\), but the latent being sampled is not the "
     r"inversion's latent at that step.*" + LATER_START),
    ("apply-null-text-without-data", lambda k: apply_inversion(k, replaced(k.inv, method="null-text")),
     r"Apply Inversion: input 'inversion' is a null-text inversion without its data \(null_text\); make it again "
     r"with Null-Text Optimize"),

    # -- the pack's samplers --
    ("edict-sampler-not-an-inversion", lambda k: call(k.host, "InvertEditEDICTSampler", inversion=NOT_AN_INVERSION),
     r"EDICT Sampler: input 'inversion' is a dict, not an INVERSION"),
    ("edict-sampler-without-data", lambda k: call(k.host, "InvertEditEDICTSampler",
                                                  inversion=replaced(k.edict()[0], clues={})),
     r"EDICT Sampler: input 'inversion' is a edict inversion without its data \(edict.y\); make it again with "
     r"EDICT Invert"),
    ("ddpm-sampler-without-data", lambda k: call(k.host, "InvertEditDDPMSampler",
                                                 inversion=replaced(k.ddpm()[0], clues={})),
     r"Edit-Friendly DDPM Sampler: input 'inversion' is a edit-friendly inversion without its data "
     r"\(ddpm.corrections\)"),
    ("edict-sampler-latent-nan", lambda k: pack_sampler(k, "InvertEditEDICTSampler", k.edict()[0],
                                                        with_nan(k.edict()[1]), k.edict()[2], 3.0),
     r"EDICT Sampler: the latent being sampled has NaN or infinite values"),

    # -- Save Inversion --
    ("save-empty-prefix", lambda k: save(k, ""),
     r"Save Inversion: input 'filename_prefix' is empty, which writes a hidden file .* use a name such as "
     r"'inversions/my_image'"),
    ("save-dot-prefix", lambda k: save(k, ".hidden"),
     r"Save Inversion: input 'filename_prefix' \('.hidden'\) has a part starting with '.'"),
    ("save-dot-name-in-folder", lambda k: save(k, "inversions/.x"),
     r"Save Inversion: input 'filename_prefix' \('inversions/.x'\) has a part starting with '.' \('.x'\)"),
    ("save-300-characters", lambda k: save(k, "inversions/" + "a" * 289),
     r"Save Inversion: input 'filename_prefix' is 300 characters long; use 100 or fewer"),
    ("save-not-an-inversion", lambda k: save(k, "inversions/x", NOT_AN_INVERSION),
     r"Save Inversion: input 'inversion' is a dict, not an INVERSION"),

    # -- Load Inversion: malformed files name the file and say it is not a valid inversion --
    ("load-huge-header", lambda k: load_file(k, "bad_huge_header.safetensors", struct.pack("<Q", 1 << 40) + b"{}"),
     r"Load Inversion: input 'inversion': 'bad_huge_header.safetensors' is not a valid InvertEdit inversion file "
     r"\(it cannot be read as safetensors: .*header too large\)\. Choose a file written by Save Inversion"),
    ("load-corrupt", lambda k: load_file(k, "bad_corrupt.safetensors", struct.pack("<Q", 10) + b"{not json!"),
     r"Load Inversion: input 'inversion': 'bad_corrupt.safetensors' is not a valid InvertEdit inversion file \(it cannot be read as safetensors"),
    ("load-truncated", lambda k: load_file(k, "bad_truncated.safetensors", valid_file_bytes(k)[:-100]),
     r"Load Inversion: input 'inversion': 'bad_truncated.safetensors' is not a valid InvertEdit inversion file \(it cannot be read as safetensors"),
    ("load-other-safetensors", lambda k: load_file(k, "bad_other.safetensors", tensors={"a": torch.zeros(1)}),
     r"Load Inversion: input 'inversion': 'bad_other.safetensors' is not a valid InvertEdit inversion file \(it has no InvertEdit format 1 metadata"),
    ("load-fingerprint-wrong-type", lambda k: load_state(k, "bad_fingerprint.safetensors", fingerprint="[1, 2]"),
     r"Load Inversion: input 'inversion': 'bad_fingerprint.safetensors' is not a valid InvertEdit inversion file \(its fingerprint is a JSON array, "
     r"not an object\)"),
    ("load-settings-not-json", lambda k: load_state(k, "bad_settings.safetensors", settings="{steps: 4"),
     r"Load Inversion: input 'inversion': 'bad_settings.safetensors' is not a valid InvertEdit inversion file \(its settings is not valid JSON\)"),
    ("load-unknown-method", lambda k: load_state(k, "bad_method.safetensors", method="magic"),
     r"Load Inversion: input 'inversion': 'bad_method.safetensors' is not a valid InvertEdit inversion file \('magic' is not an inversion method"),
    ("load-null-text-without-data", lambda k: load_state(k, "bad_null_text.safetensors", replaced(k.inv, method="null-text")),
     r"Load Inversion: input 'inversion': 'bad_null_text.safetensors' is not a valid InvertEdit inversion file \(a null-text inversion without its "
     r"data: null_text\)"),
    ("load-edict-without-data", lambda k: load_state(k, "bad_edict.safetensors", replaced(k.inv, method="edict")),
     r"Load Inversion: input 'inversion': 'bad_edict.safetensors' is not a valid InvertEdit inversion file \(a edict inversion without its data: edict.y\)"),
    ("load-ddpm-without-data", lambda k: load_state(k, "bad_ddpm.safetensors", replaced(k.inv, method="edit-friendly")),
     r"Load Inversion: input 'inversion': 'bad_ddpm.safetensors' is not a valid InvertEdit inversion file \(a edit-friendly inversion without its data: "
     r"ddpm.corrections\)"),
    ("load-nan-latent", lambda k: load_state(k, "bad_nan.safetensors", replaced(k.inv, latent=with_nan(k.lat)["samples"])),
     r"Load Inversion: input 'inversion': 'bad_nan.safetensors' is not a valid InvertEdit inversion file \(its latent has NaN or infinite values\)"),

    # -- the nodes that refine or read an inversion --
    ("null-text-not-an-inversion", lambda k: null_text(k, inversion="inversion.safetensors"),
     r"Null-Text Optimize: input 'inversion' is a str, not an INVERSION"),
    ("null-text-cfg-nan", lambda k: null_text(k, cfg=NAN), r"Null-Text Optimize: input 'cfg' is nan"),
    ("null-text-negative-a-pair", lambda k: null_text(k, negative=attention_inject(k)[1]),
     r"Null-Text Optimize: input 'negative' holds 2 prompts' embeddings \(a pair editor's CONDITIONING\); connect one "
     r"prompt's, from a CLIP Text Encode"),
    ("null-text-learning-rate-inf", lambda k: null_text(k, learning_rate=INF),
     r"Null-Text Optimize: input 'learning_rate' is inf"),
    ("null-text-start-from-bogus", lambda k: null_text(k, start_from="bogus"),
     r"Null-Text Optimize: input 'start_from' is 'bogus'; choose one of 'negative \(paper\)', 'source prompt \(faster\)'"),
    ("null-text-start-from-source-of-another-length",
     lambda k: null_text(k, negative=encode(k.host, k.clip, "word " * 100), start_from="source prompt (faster)"),
     r"Null-Text Optimize: start_from 'source prompt \(faster\)': the source prompt's embedding has 77 tokens and the "
     r"negative's 154"),
    ("negative-prompt-not-an-inversion", lambda k: call(k.host, "InvertEditNegativePromptInversion",
                                                        inversion=NOT_AN_INVERSION, positive=k.pos),
     r"Negative-Prompt Inversion: input 'inversion' is a dict, not an INVERSION"),
    ("direct-not-an-inversion", lambda k: call(k.host, "InvertEditDirectInversion", inversion=None),
     r"Direct Inversion: input 'inversion' is empty: the node linked to it gave no INVERSION there; connect an "
     r"output that holds one"),
    ("attention-store-not-an-inversion", lambda k: attention_store(k, inversion=NOT_AN_INVERSION),
     r"Attention Store: input 'inversion' is a dict, not an INVERSION"),
    ("attention-store-start-after-end", lambda k: attention_store(k, start=0.8, end=0.2),
     r"Attention Store: inputs 'start' \(0.8\) and 'end' \(0.2\) leave no steps to record maps at; give "
     r"0 <= start < end <= 1"),
    ("attention-store-start-equals-end", lambda k: attention_store(k, start=1.0, end=1.0),
     r"Attention Store: inputs 'start' \(1.0\) and 'end' \(1.0\) leave no steps"),
    ("attention-store-window-between-steps", lambda k: attention_store(k, start=0.99, end=1.0),
     r"Attention Store: inputs 'start' \(0.99\) and 'end' \(1.0\) select none of the inversion's 4 steps"),
    ("attention-store-threshold-nan", lambda k: attention_store(k, threshold=NAN),
     r"Attention Store: input 'threshold' is nan"),
    ("attention-store-threshold-one", lambda k: attention_store(k, threshold=1.0),
     r"Attention Store: input 'threshold' is 1: the maps are normalised to a maximum of 1, so the mask would be empty; "
     r"give a threshold between 0 and 1 \(paper: 0.3\)"),
    ("attention-store-threshold-zero", lambda k: attention_store(k, threshold=0.0),
     r"Attention Store: input 'threshold' is 0: .* so the mask would be the whole image"),
    ("attention-store-even-pool", lambda k: attention_store(k, mask_pool=2),
     r"Attention Store: input 'mask_pool' is 2; give an odd window of map cells: 1 \(none\), 3 \(the paper's local "
     r"blend\)"),

    # -- pair editors and guidance --
    ("masactrl-start-step-negative", lambda k: masactrl(k, start_step=-3),
     r"MasaCtrl: input 'start_step' is -3; give 0 or more"),
    ("masactrl-start-layer-negative", lambda k: masactrl(k, start_layer=-1),
     r"MasaCtrl: input 'start_layer' is -1; give 0 or more"),
    ("plug-and-play-injection-nan", lambda k: plug_and_play(k, feature_injection=NAN),
     r"Plug-and-Play: input 'feature_injection' is nan"),
    ("attention-inject-clip-empty", lambda k: attention_inject(k, clip=None),
     r"Attention Inject: input 'clip' is empty: the node linked to it gave no CLIP there \(Load Checkpoint on a file "
     r"without one, such as a diffusion-model-only Flux or SD3 file, or DreamBooth's or DreamBooth Fine-Tune's CLIP "
     r"when their own clip input is not connected\); connect an output that holds one"),
    ("attention-inject-model-empty", lambda k: attention_inject(k, model=None),
     r"Attention Inject: input 'model' is empty: the node linked to it gave no MODEL there"),
    ("custom-diffusion-vae-empty", lambda k: custom_diffusion(k, vae=None),
     r"Custom Diffusion: input 'vae' is empty: the node linked to it gave no VAE there"),
    ("attention-inject-mode-bogus", lambda k: attention_inject(k, mode="bogus"),
     r"Attention Inject: input 'mode' is 'bogus'; choose one of 'replace', 'refine'"),
    ("attention-inject-reweight-nan", lambda k: attention_inject(k, reweight="square:nan"),
     r"Attention Inject: input 'reweight': 'square:nan' is not a finite number"),
    ("attention-inject-reweight-huge", lambda k: attention_inject(k, reweight="square:1e308"),
     r"Attention Inject: input 'reweight': a scale of 1e\+308 would overflow the attention maps; use scales between -100 and 100"),
    ("latent-blend-start-nan", lambda k: latent_blend(k, start=NAN), r"Latent Blend: input 'start' is nan"),
    ("latent-blend-end-inf", lambda k: latent_blend(k, end=INF), r"Latent Blend: input 'end' is inf"),
    ("latent-blend-mask-nan", lambda k: latent_blend(k, mask=torch.full((1, 64, 64), NAN)),
     r"Latent Blend: input 'mask' has NaN or infinite values; give a mask with values from 0 to 1"),
    ("latent-blend-empty-mask", lambda k: latent_blend(k, mask=torch.zeros(1, 64, 64)),
     r"Latent Blend: input 'mask' is empty \(all 0\), so the target would follow the source everywhere and come out "
     r"as the source; give the region \(white\)"),
    ("latent-blend-mask-under-a-cell", lambda k: latent_blend(k, mask=line_mask()),
     r"Latent Blend: input 'mask' covers less than one cell of the \d+x\d+ latent, so at latent resolution it is empty"),
    ("ledits-user-mask-nan", lambda k: ledits_guidance(k, user_mask=torch.full((1, 64, 64), NAN)),
     r"LEDITS\+\+ Guidance: input 'user_mask' has NaN or infinite values"),
    ("ledits-user-mask-empty", lambda k: ledits_guidance(k, user_mask=torch.zeros(1, 64, 64)),
     r"LEDITS\+\+ Guidance: input 'user_mask' is empty \(all 0\), so every concept's guidance would be confined to "
     r"nothing"),
    ("masactrl-source-mask-nan", lambda k: masactrl(k, source_mask=torch.full((1, 64, 64), NAN)),
     r"MasaCtrl: input 'source_mask' has NaN or infinite values"),
    ("masactrl-source-mask-empty", lambda k: masactrl(k, source_mask=torch.zeros(1, 64, 64)),
     r"MasaCtrl: input 'source_mask' is empty \(all 0\), so the object's side of the mutual attention would have no "
     r"tokens"),
    ("masactrl-target-mask-empty", lambda k: masactrl(k, source_mask=torch.ones(1, 64, 64), target_mask=torch.zeros(1, 64, 64)),
     r"MasaCtrl: input 'target_mask' is empty \(all 0\)"),
    ("diffedit-strength-nan", lambda k: diffedit(k, strength=NAN), r"DiffEdit Mask: input 'strength' is nan"),
    ("diffedit-threshold-one", lambda k: diffedit(k, threshold=1.0),
     r"DiffEdit Mask: input 'threshold' is 1: the difference is rescaled to at most 1, so the mask would be empty; "
     r"give a threshold between 0 and 1 \(paper: 0.5\)"),
    ("diffedit-threshold-zero", lambda k: diffedit(k, threshold=0.0),
     r"DiffEdit Mask: input 'threshold' is 0: .* so the mask would be every pixel that differs at all"),
    ("diffedit-latent-nan", lambda k: diffedit(k, latent=with_nan(k.src)),
     r"DiffEdit Mask: input 'latent' has NaN or infinite values"),
    ("sega-direction-sideways", lambda k: sega_concept(k, direction="sideways"),
     r"SEGA Concept: input 'direction' is 'sideways'; choose one of 'add', 'remove'"),
    ("sega-weight-nan", lambda k: sega_concept(k, weight=NAN), r"SEGA Concept: input 'weight' is nan"),
    ("sega-warmup-negative", lambda k: sega_concept(k, warmup=-1), r"SEGA Concept: input 'warmup' is -1; give 0 or more"),
    ("sega-two-concepts-weight-0", lambda k: sega_guidance(k, sega_concept(k, weight=0.0, chain=sega_concept(k, weight=0.0))),
     r"SEGA Guidance: input 'concepts': the weights of all 2 concepts sum to 0, so no concept can act"),
    ("sega-first-concepts-weight-0", lambda k: sega_guidance(
        k, sega_concept(k, weight=0.0, warmup=0, chain=sega_concept(k, weight=1.0, warmup=2))),
     r"SEGA Guidance: input 'concepts': at step 0 only concepts with weight 0 \(or past their cooldown\) have "
     r"warmed up.*give those concepts a weight above 0, or all concepts the same warmup"),
    ("sega-cooldown-before-next-warmup", lambda k: sega_guidance(
        k, sega_concept(k, warmup=0, cooldown=1, chain=sega_concept(k, warmup=3))),
     r"SEGA Guidance: input 'concepts': at step 1 only concepts with weight 0 \(or past their cooldown\)"),
    ("sega-cfg-nan", lambda k: sega_guidance(k, sega_concept(k), cfg=NAN), r"SEGA Guidance: input 'cfg' is nan"),
    ("ledits-direction-sideways", lambda k: ledits_concept(k, direction="sideways"),
     r"LEDITS\+\+ Concept: input 'direction' is 'sideways'; choose one of 'add', 'remove'"),
    ("ledits-mask-bogus", lambda k: ledits_guidance(k, mask="bogus"),
     r"LEDITS\+\+ Guidance: input 'mask' is 'bogus'; choose one of 'intersect', 'attention', 'noise'"),
    ("ledits-two-concepts-weight-0", lambda k: ledits_guidance(
        k, ledits_concept(k, weight=0.0, chain=ledits_concept(k, weight=0.0))),
     r"LEDITS\+\+ Guidance: input 'concepts': the weights of all 2 concepts sum to 0"),

    # -- Proximal Guidance, Noise Map Guidance --
    ("proximal-prox-bogus", lambda k: proximal(k, prox="l2"),
     r"Proximal Guidance: input 'prox' is 'l2'; choose one of 'l0', 'l1'"),
    ("proximal-pull-bogus", lambda k: proximal(k, pull="sideways"),
     r"Proximal Guidance: input 'pull' is 'sideways'; choose one of 'inversion', 'reconstruction', 'both', 'none'"),
    ("proximal-quantile-over-bogus", lambda k: proximal(k, quantile_over="source"),
     r"Proximal Guidance: input 'quantile_over' is 'source'; choose one of 'pair', 'target'"),
    ("proximal-quantile-nan", lambda k: proximal(k, quantile=NAN), r"Proximal Guidance: input 'quantile' is nan"),
    ("proximal-quantile-above-1", lambda k: proximal(k, quantile=1.5),
     r"Proximal Guidance: input 'quantile' is 1.5; give a quantile from 0 to 1 \(paper: 0.7\), or a negative number"),
    ("proximal-recon-lr-inf", lambda k: proximal(k, recon_lr=INF), r"Proximal Guidance: input 'recon_lr' is inf"),
    ("proximal-dilate-negative", lambda k: proximal(k, dilate_mask=-1),
     r"Proximal Guidance: input 'dilate_mask' is -1; give 0 or more"),
    ("proximal-not-an-inversion", lambda k: proximal(k, inversion=NOT_AN_INVERSION),
     r"Proximal Guidance: input 'inversion' is a dict, not an INVERSION"),
    ("proximal-edict-inversion", lambda k: proximal(k, inversion=k.edict()[0]),
     r"Proximal Guidance: input 'inversion' is a edict inversion \(from EDICT Invert\), which only its own sampler "
     r"\(EDICT Sampler, Edit-Friendly DDPM Sampler\) replays.*; Proximal Guidance takes these inversions: ddim \(from "
     r"DDIM Invert\), negative-prompt"),
    ("proximal-model-carries-another-inversion", lambda k: proximal(
        k, model=call(k.host, "InvertEditApplyInversion", model=k.model, inversion=k.inv)[0],
        inversion=call(k.host, "InvertEditNegativePromptInversion", inversion=k.inv, positive=k.pos)[0]),
     r"Proximal Guidance: input 'model' carries another inversion \(from Apply Inversion\) than input 'inversion'"),
    ("proximal-pull-with-dpmpp", lambda k: guided_run(k, proximal(k), sampler="dpmpp_2m"),
     r"Proximal Guidance: sampler 'dpmpp_2m' steps differently from the DDIM step this guider computes; use ddim"),
    ("noise-map-loss-bogus", lambda k: noise_map(k, loss="l3"),
     r"Noise Map Guidance: input 'loss' is 'l3'; choose one of 'l1', 'l2', 'smooth_l1'"),
    ("noise-map-grad-scale-inf", lambda k: noise_map(k, grad_scale=INF), r"Noise Map Guidance: input 'grad_scale' is inf"),
    ("noise-map-direct-inversion", lambda k: noise_map(k, inversion=call(k.host, "InvertEditDirectInversion",
                                                                         inversion=k.inv)[0]),
     r"Noise Map Guidance: input 'inversion' is a direct inversion \(from Direct Inversion\), which already puts the "
     r"source back on its trajectory"),
    ("noise-map-ddpm-inversion", lambda k: noise_map(k, inversion=k.ddpm()[0]),
     r"Noise Map Guidance: input 'inversion' is a edit-friendly inversion \(from Edit-Friendly DDPM Invert\), which only "
     r"its own sampler"),
    ("noise-map-ancestral-sampler", lambda k: guided_run(k, noise_map(k), sampler="euler_ancestral", inverted=k.inv10()),
     r"Noise Map Guidance: sampler 'euler_ancestral' adds fresh noise at every step and cannot retrace an inversion"),
    ("noise-map-other-steps", lambda k: call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "DisableNoise")[0],
                                             guider=noise_map(k), sampler=call(k.host, "KSamplerSelect",
                                                                                sampler_name="ddim")[0],
                                             sigmas=call(k.host, "BasicScheduler", model=k.model, scheduler="ddim_uniform",
                                                         steps=6, denoise=1.0)[0], latent_image=k.inv10()[1]),
     r"Noise Map Guidance: the sampler runs \d+ steps on sigmas .* which are not the schedule this inversion was made on"),

    # -- Imagic --
    ("imagic-embedding-latent-nan", lambda k: imagic_embedding(k, latent=with_nan(k.src)),
     r"Imagic Optimize Embedding: input 'latent' has NaN or infinite values; connect the image's latent from VAE Encode"),
    ("imagic-embedding-two-images", lambda k: imagic_embedding(k, latent=k.pair()),
     r"Imagic Optimize Embedding: input 'latent' has shape \(2, 4, 8, 8\); Imagic edits one image"),
    ("imagic-embedding-learning-rate-nan", lambda k: imagic_embedding(k, learning_rate=NAN),
     r"Imagic Optimize Embedding: input 'learning_rate' is nan; give a finite number"),
    ("imagic-embedding-steps-negative", lambda k: imagic_embedding(k, steps=-1),
     r"Imagic Optimize Embedding: input 'steps' is -1; give 0 or more"),
    ("imagic-embedding-combined-prompts", lambda k: imagic_embedding(k, target=k.pos + k.neg),
     r"Imagic Optimize Embedding: input 'target' holds 2 conditioning entries; .*connect one CLIP Text Encode"),
    ("imagic-embedding-other-checkpoints-prompt", lambda k: imagic_embedding(k, target=[[torch.zeros(1, 77, 768), {}]]),
     r"Imagic Optimize Embedding: input 'target' is an embedding 768 wide; the model's cross-attention takes 64"),
    ("imagic-fine-tune-learning-rate-inf", lambda k: imagic_fine_tune(k, learning_rate=INF),
     r"Imagic Fine-Tune: input 'learning_rate' is inf"),
    ("imagic-fine-tune-rank-0", lambda k: imagic_fine_tune(k, rank=0), r"Imagic Fine-Tune: input 'rank' is 0; give 1 or more"),
    ("imagic-fine-tune-embedding-nan", lambda k: imagic_fine_tune(k, optimized=nan_conditioning(k.pos)),
     r"Imagic Fine-Tune: input 'optimized' has NaN or infinite values; encode the prompt again"),
    ("imagic-interpolate-alpha-nan", lambda k: imagic_interpolate(k, alpha=NAN),
     r"Imagic Interpolate: input 'alpha' is nan; give a finite number"),
    ("imagic-interpolate-lengths-differ", lambda k: imagic_interpolate(k, optimized=[[k.pos[0][0].repeat(1, 2, 1), {}]]),
     r"Imagic Interpolate: inputs 'target' \(1, 77, 64\) and 'optimized' \(1, 154, 64\) differ in shape; connect the "
     r"two outputs of one Imagic Optimize Embedding"),
    ("imagic-interpolate-not-conditioning", lambda k: imagic_interpolate(k, optimized=k.src),
     r"Imagic Interpolate: input 'optimized' is a dict, not a CONDITIONING"),
    ("p2pz-invert-lambda-nan", lambda k: p2pz_invert(k, lambda_kl=NAN), r"Pix2Pix-Zero Invert: input 'lambda_kl' is nan"),
    ("p2pz-invert-lambda-negative", lambda k: p2pz_invert(k, lambda_auto_corr=-1.0),
     r"Pix2Pix-Zero Invert: input 'lambda_auto_corr' is -1.0; give 0 or more"),
    ("p2pz-invert-rolls-0", lambda k: p2pz_invert(k, auto_corr_rolls=0),
     r"Pix2Pix-Zero Invert: input 'auto_corr_rolls' is 0; give 1 or more"),
    ("p2pz-invert-regulariser-diverges", lambda k: p2pz_invert(k),   # an 8x8 latent of spread 5: the steps overshoot
     r"Pix2Pix-Zero Invert: the noise regulariser diverged at inversion step \d+ of 4 \(latent 8x8.*Lower lambda_auto_corr"),
    ("p2pz-invert-latent-nan", lambda k: p2pz_invert(k, latent=with_nan(k.src)),
     r"Pix2Pix-Zero Invert: input 'latent' has NaN or infinite values"),
    ("edit-direction-no-sentences", lambda k: edit_direction(k, source_sentences=" \n "),
     r"Edit Direction: input 'source_sentences' has no sentences; write one sentence per line"),
    ("edit-direction-no-clip", lambda k: edit_direction(k, clip=None),
     r"Edit Direction: input 'source_sentences' needs the 'clip' input"),
    ("edit-direction-long-sentence", lambda k: edit_direction(k, target_sentences=" ".join(["red"] * 80)),
     r"Edit Direction: a target sentence encodes to \(154, 64\) \(tokens, width\), the prompt \('conditioning'\) to "
     r"\(77, 64\); use sentences of at most 75 tokens"),
    ("edit-direction-prompt-nan", lambda k: edit_direction(k, conditioning=nan_conditioning(k.pos)),
     r"Edit Direction: input 'conditioning' has NaN or infinite values; encode the prompt again"),
    ("edit-direction-embeddings-not-conditioning", lambda k: edit_direction(k, source_embeddings=k.src),
     r"Edit Direction: input 'source_embeddings' is not a CONDITIONING"),
    ("xa-guidance-amount-nan", lambda k: cross_guidance(k, guidance_amount=NAN),
     r"Cross-Attention Guidance: input 'guidance_amount' is nan"),
    ("xa-guidance-amount-negative", lambda k: cross_guidance(k, guidance_amount=-0.1),
     r"Cross-Attention Guidance: input 'guidance_amount' is -0.1; give 0 or more"),
    ("xa-guidance-latent-pair-given", lambda k: cross_guidance(k, latent=k.pair()),
     r"Cross-Attention Guidance: input 'latent' has shape \(2, 4, 8, 8\); connect one inverted image's latent"),
    ("xa-guidance-target-longer", lambda k: cross_guidance(k, target=encode(k.host, k.clip, " ".join(["red"] * 80))),
     r"Cross-Attention Guidance: input 'target' has \(154, 64\) \(tokens, width\), 'positive' \(77, 64\)"),
    ("xa-guidance-target-nan", lambda k: cross_guidance(k, target=nan_conditioning(k.pos)),
     r"Cross-Attention Guidance: input 'target' has NaN or infinite values"),
    ("xa-guidance-ancestral-sampler", lambda k: cross_guidance(k, sampler="euler_ancestral"),
     r"Cross-Attention Guidance: sampler 'euler_ancestral' steps differently from DDIM; .*ddim or euler"),
    ("xa-guidance-random-noise", lambda k: cross_guidance(k, noise=call(k.host, "RandomNoise", noise_seed=1)[0]),
     r"Cross-Attention Guidance: the sampler adds noise to the latent pair; connect DisableNoise"),
    ("xa-guidance-unpaired-latent-sampled", lambda k: cross_guidance(k, sampled=k.lat),
     r"Cross-Attention Guidance: the latent being sampled has a batch of 1; sample the LATENT pair from this node"),
    ("xa-guidance-attn2-patched", lambda k: cross_guidance(k, model=attention_inject(k)[0]),
     r"Cross-Attention Guidance: the input MODEL already has cross-attention replace patches"),

    # -- issue 24: every node given an inversion, or a model and something made from one, checks
    #    that model (one check: errors.check_made_with), and names the inversion methods it takes --
    ("null-text-other-model", lambda k: null_text(k, model=k.other), r"Null-Text Optimize: " + NOT_MADE_WITH),
    ("attention-store-other-model", lambda k: attention_store(k, model=k.other), r"Attention Store: " + NOT_MADE_WITH),
    ("apply-other-model", lambda k: call(k.host, "InvertEditApplyInversion", model=k.other, inversion=k.inv),
     r"Apply Inversion: " + NOT_MADE_WITH),
    ("proximal-other-model", lambda k: proximal(k, model=k.other), r"Proximal Guidance: " + NOT_MADE_WITH),
    ("noise-map-other-model", lambda k: noise_map(k, model=k.other), r"Noise Map Guidance: " + NOT_MADE_WITH),
    ("edict-sampler-other-model", lambda k: pack_sampler(k, "InvertEditEDICTSampler", k.edict()[0], k.edict()[1],
                                                         k.edict()[2], 3.0, model=k.other),
     r"EDICT Sampler: the MODEL being sampled is not the one the inversion was made with \(weights differ"),
    ("edict-sampler-other-cfg", lambda k: pack_sampler(k, "InvertEditEDICTSampler", k.edict()[0], k.edict()[1],
                                                       k.edict()[2], 5.0),
     r"EDICT Sampler: the guider's cfg is 5, and this edict inversion was made at cfg 3; it reconstructs only at that "
     r"cfg. Set the guider's cfg to 3, or invert again at 5"),
    ("noise-map-negative-prompt-inversion", lambda k: noise_map(
        k, inversion=call(k.host, "InvertEditNegativePromptInversion", inversion=k.inv10()[0], positive=k.pos)[0]),
     r"Noise Map Guidance: input 'inversion' is a negative-prompt inversion \(from Negative-Prompt Inversion\), whose "
     r"source prompt stands in for the null text.*; Noise Map Guidance takes these inversions: ddim \(from DDIM "
     r"Invert\), fixed-point \(from Fixed-Point Invert\), null-text \(from Null-Text Optimize\)"),
    ("imagic-fine-tune-other-model", lambda k: imagic_fine_tune(k, model=k.other, optimized=k.optimized()[0]),
     r"Imagic Fine-Tune: input 'model' is not the model input 'optimized' was optimised with \(weights differ: .*"
     r"Connect the MODEL Imagic Optimize Embedding was given"),
    ("imagic-fine-tune-other-image", lambda k: imagic_fine_tune(k, optimized=k.optimized(0.5)[0]),
     r"Imagic Fine-Tune: input 'latent' is not the image input 'optimized' was optimised on; connect the LATENT "
     r"Imagic Optimize Embedding was given"),
    ("imagic-interpolate-two-optimisations", lambda k: imagic_interpolate(k, target=k.optimized()[1],
                                                                          optimized=k.optimized(0.5)[0]),
     r"Imagic Interpolate: inputs 'target' and 'optimized' come from different Imagic Optimize Embedding runs"),
    ("imagic-sampled-with-another-interpolation", lambda k: imagic_sampled(k, other_interpolation(k)),
     r"Imagic Fine-Tune: the run's conditioning comes from another Imagic Optimize Embedding \(another model or "
     r"image\) than the one this model was fine-tuned on"),

    # -- issue 24: settings that destroy the picture --
    ("apply-sampler-cfg-nan", lambda k: apply_inversion(k, k.inv, cfg=NAN),
     r"Apply Inversion: the sampler's cfg is nan; give a finite number \(this inversion reconstructs at cfg 1"),
    ("noise-map-grad-scale-1e7", lambda k: noise_map(k, grad_scale=1e7),
     r"Noise Map Guidance: input 'grad_scale' is 1e\+07; give 0 to 10000 \(default 5000\)"),
    # issue 78: the earlier maxima (100, 50000) gave a mottled picture without the edit
    ("noise-map-scale-100", lambda k: noise_map(k, noise_map_scale=100.0),
     r"Noise Map Guidance: input 'noise_map_scale' is 100; give 0 to 20 \(default 10\)"),
    ("noise-map-grad-scale-50000", lambda k: noise_map(k, grad_scale=50000.0),
     r"Noise Map Guidance: input 'grad_scale' is 50000; give 0 to 10000 \(default 5000\)"),
    ("noise-map-scale-1000", lambda k: noise_map(k, noise_map_scale=1000.0),
     r"Noise Map Guidance: input 'noise_map_scale' is 1000; give 0 to 20 \(default 10\)"),
    ("noise-map-5-steps", lambda k: noise_map(k, inversion=ddim_invert(k, steps=5)[0]),
     r"Noise Map Guidance: input 'inversion' has 5 steps; NMG's pull towards the noise maps overshoots with fewer "
     r"than 10 .* Invert with 10 steps or more \(paper: 50\)"),
    ("ddim-cfg-100", lambda k: ddim_invert(k, cfg=100.0),
     r"DDIM Invert: input 'cfg' is 100; give 0 to 30 \(1 for a DDIM-like inversion"),
    ("fixed-point-cfg-100", lambda k: fixed_point_invert(k, cfg=100.0, negative=k.neg),
     r"Fixed-Point Invert: input 'cfg' is 100; give 0 to 30"),
    ("imagic-fine-tune-diverges", lambda k: imagic_fine_tune(k, optimized=k.optimized()[0], learning_rate=1e30, steps=2),
     r"Imagic Fine-Tune: the optimisation diverged .* with learning_rate 1e\+30, which would sample a black picture; "
     r"lower learning_rate \(default 0.0005\)"),
    ("imagic-embedding-diverges", lambda k: imagic_embedding(k, learning_rate=1e30, steps=2),
     r"Imagic Optimize Embedding: the optimisation diverged .* lower learning_rate \(default 0.001\)"),

    # -- issue 24: settings an editor would silently ignore --
    ("proximal-start-step-beyond-the-run", lambda k: guided_run(k, proximal(k, start_step=1000)),
     r"Proximal Guidance: input 'start_step' is 1000, but the run has 4 steps, so proximal guidance would never act; "
     r"give a start_step below 4 \(paper: 0\)"),
    ("masactrl-latent-inverted-with-another-model", lambda k: masactrl(k, model=k.other),
     r"MasaCtrl: input 'model' is not the model input 'latent' was inverted with \(weights differ"),
    ("attention-inject-latent-inverted-with-another-model", lambda k: attention_inject(k, model=k.other),
     r"Attention Inject: input 'model' is not the model input 'latent' was inverted with"),
    ("plug-and-play-latent-inverted-with-another-model", lambda k: plug_and_play(k, model=k.other),
     r"Plug-and-Play: input 'model' is not the model input 'latent' was inverted with"),
    ("xa-guidance-other-model", lambda k: cross_guidance(k, model=k.other),
     r"Cross-Attention Guidance: input 'model' is not the model input 'latent' was inverted with \(weights differ"),
    ("xa-guidance-other-steps", lambda k: cross_guidance(k, sigmas=k.inv10()[2]),
     r"Cross-Attention Guidance: the sampler runs 10 steps on sigmas from .*, but the latent was inverted over 4 steps "
     r"from .*; connect the inverter's SIGMAS"),

    # -- issue 24: sizes and prompts the model cannot take --
    ("ddim-latent-too-small", lambda k: ddim_invert(k, latent={"samples": torch.randn(1, 4, 2, 2)}),
     r"DDIM Invert: input 'latent' is 2x2 \(an image of 16x16 px\); this model needs a latent of at least 3x3 "
     r"\(24x24 px images\)"),
    ("fixed-point-prompt-other-family", lambda k: fixed_point_invert(k, positive=OTHER_FAMILY),
     r"Fixed-Point Invert: input 'positive' is an embedding 768 wide; the model's cross-attention takes 64. The prompt "
     r"was encoded for another model family: encode it with this checkpoint's CLIP"),
    ("xa-guidance-prompt-other-family", lambda k: cross_guidance(k, positive=OTHER_FAMILY, target=OTHER_FAMILY),
     r"Cross-Attention Guidance: input 'positive' is an embedding 768 wide; the model's cross-attention takes 64"),
    ("null-text-prompt-other-family", lambda k: null_text(k, negative=OTHER_FAMILY),
     r"Null-Text Optimize: input 'negative' is an embedding 768 wide"),
    ("diffedit-prompt-other-family", lambda k: diffedit(k, target=OTHER_FAMILY),
     r"DiffEdit Mask: input 'target' is an embedding 768 wide"),
    ("masactrl-clip-other-family", lambda k: masactrl(k, clip=k.other_clip()),
     r"MasaCtrl: input 'clip' encodes prompts 96 wide; the model's cross-attention takes 64. It is another model "
     r"family's text encoder: connect this checkpoint's CLIP"),
    ("plug-and-play-clip-other-family", lambda k: plug_and_play(k, clip=k.other_clip()),
     r"Plug-and-Play: input 'clip' encodes prompts 96 wide"),
    ("attention-inject-clip-other-family", lambda k: attention_inject(k, clip=k.other_clip()),
     r"Attention Inject: input 'clip' encodes prompts 96 wide"),
    ("attention-store-clip-other-family", lambda k: attention_store(k, clip=k.other_clip()),
     r"Attention Store: input 'clip' encodes prompts 96 wide"),
    ("masactrl-latent-too-small", lambda k: masactrl(k, latent={"samples": torch.randn(1, 4, 2, 2)}),
     r"MasaCtrl: input 'latent' is 2x2 \(an image of 16x16 px\); this model needs a latent of at least 3x3"),
    ("latent-blend-latent-too-small", lambda k: latent_blend(k, latent={"samples": torch.randn(2, 4, 2, 2)}),
     r"Latent Blend: input 'latent' is 2x2 \(an image of 16x16 px\); this model needs a latent of at least 3x3"),

    # -- issue 28: DreamBooth LoRA --
    ("dreambooth-no-class-images", lambda k: dreambooth(k, class_images=None),
     r"DreamBooth LoRA: input 'class_images' is not connected and prior_loss_weight is 1; prior preservation needs "
     r"images of the subject's class and their prompt: draw them with KSampler from the class prompt .* or set "
     r"prior_loss_weight to 0 to train without it"),
    ("dreambooth-no-class-prompt", lambda k: dreambooth(k, class_prompt=None),
     r"DreamBooth LoRA: input 'class_prompt' is not connected and prior_loss_weight is 1"),
    ("dreambooth-class-images-other-size", lambda k: dreambooth(k, class_images={"samples": torch.randn(2, 4, 6, 6)}),
     r"DreamBooth LoRA: inputs 'instance_images' \(4, 8, 8\) and 'class_images' \(4, 6, 6\) differ in size; draw "
     r"the class images at the instance images' size"),
    ("dreambooth-instance-not-latent", lambda k: dreambooth(k, instance_images=k.pos),
     r"DreamBooth LoRA: input 'instance_images' is a list, not a LATENT; connect VAE Encode of the subject's 3-5 "
     r"photos"),
    ("dreambooth-instance-nan", lambda k: dreambooth(k, instance_images=with_nan(k.src)),
     r"DreamBooth LoRA: input 'instance_images' has NaN or infinite values; connect VAE Encode"),
    ("dreambooth-learning-rate-negative", lambda k: dreambooth(k, learning_rate=-1.0),
     r"DreamBooth LoRA: inputs 'learning_rate' and 'prior_loss_weight' must be 0 or more"),
    ("dreambooth-prior-weight-nan", lambda k: dreambooth(k, prior_loss_weight=NAN),
     r"DreamBooth LoRA: input 'prior_loss_weight' is nan"),
    ("dreambooth-batch-size-0", lambda k: dreambooth(k, batch_size=0),
     r"DreamBooth LoRA: input 'batch_size' is 0; give 1 or more"),
    ("dreambooth-prompt-other-family", lambda k: dreambooth(k, class_prompt=OTHER_FAMILY),
     r"DreamBooth LoRA: input 'class_prompt' is an embedding 768 wide; the model's cross-attention takes 64"),
    ("dreambooth-resume-other-rank", lambda k: dreambooth(k, rank=4, resume=dreambooth(k, steps=0)[1]),
     r"DreamBooth LoRA: input 'resume' has rank 2 at diffusion_model\..*; this run's rank is 4: set 'rank' to the "
     r"earlier run's"),
    ("dreambooth-resume-imagic-lora", lambda k: dreambooth(k, resume=imagic_fine_tune(k, steps=0)[1]),
     r"DreamBooth LoRA: input 'resume' is a LoRA of \d+ layers, not the 88 this node trains on this model; connect "
     r"the 'lora' output of an earlier run of this node with the same model"),
    ("dreambooth-text-without-clip", lambda k: dreambooth(k, instance_text=PROMPT),
     r"DreamBooth LoRA: input 'instance_text' is given but 'clip' is not connected; connect the checkpoint's CLIP "
     r"to train its text encoder too \(the script's --train_text_encoder\), or leave the texts empty"),
    ("dreambooth-clip-without-text", lambda k: dreambooth(k, clip=k.clip),
     r"DreamBooth LoRA: input 'instance_text' is empty and 'clip' is connected; give the text 'instance_prompt' "
     r"was encoded from"),
    ("dreambooth-clip-without-class-text", lambda k: dreambooth(k, clip=k.clip, instance_text=PROMPT),
     r"DreamBooth LoRA: input 'class_text' is empty and 'clip' is connected; give the text 'class_prompt' was "
     r"encoded from"),
    ("dreambooth-text-not-the-prompts", lambda k: dreambooth(k, clip=k.clip, instance_text="a sks dog", class_text=""),
     r"DreamBooth LoRA: input 'instance_prompt' is not CLIP Text Encode of 'instance_text' \('a sks dog'\) with the "
     r"connected CLIP; encode instance_text with this CLIP and connect it as instance_prompt"),
    ("dreambooth-text-other-clip", lambda k: dreambooth(k, clip=k.other_clip(), instance_text=PROMPT, class_text=""),
     r"DreamBooth LoRA: input 'clip' encodes prompts 96 wide; the model's cross-attention takes 64\. It is another "
     r"checkpoint's text encoder: connect this checkpoint's CLIP"),
    ("dreambooth-text-flux-clip", lambda k: dreambooth(k, clip=k.tiny("flux-dev")[1], instance_text=PROMPT),
     r"DreamBooth LoRA: input 'clip' is FluxClipModel; this node trains the text encoders of SD1\.x, SD2\.x and SDXL "
     r"checkpoints: connect one of those checkpoints' CLIP"),
    ("dreambooth-text-too-long", lambda k: dreambooth(k, clip=k.clip, instance_text="red " * 80, class_text=""),
     r"DreamBooth LoRA: input 'instance_text' is longer than one chunk of 77 tokens; give a shorter prompt"),
    ("dreambooth-state-name-path", lambda k: dreambooth(k, state_name="../subject"),
     r"DreamBooth LoRA: input 'state_name' is '\.\./subject'; give a plain name of letters, digits, '_', '-' or '\.' "
     r"\(not starting with '\.'\), at most 100 characters"),
    ("dreambooth-state-other-settings",
     lambda k: (dreambooth(k, state_name="bad-input-lr"), dreambooth(k, steps=2, learning_rate=0.0002,
                                                                     state_name="bad-input-lr")),
     r"DreamBooth LoRA: input 'state_name': the run saved as 'bad-input-lr' had other settings \(learning_rate: "
     r"0\.0001 then, 0\.0002 now\); resume with the same model, images, prompts and settings \(only 'steps' may "
     r"change\), or give another 'state_name'"),
    ("dreambooth-state-other-images",
     lambda k: (dreambooth(k, state_name="bad-input-images"), dreambooth(k, steps=2, instance_images=k.src,
                                                                         state_name="bad-input-images")),
     r"DreamBooth LoRA: input 'state_name': the run saved as 'bad-input-images' had other settings "
     r"\(instance_images: '[0-9a-f]+' then, '[0-9a-f]+' now\)"),
    ("dreambooth-state-other-resume",
     lambda k: (dreambooth(k, state_name="bad-input-resume"),
                dreambooth(k, steps=2, resume=dreambooth(k, seed=5)[1], state_name="bad-input-resume")),
     r"DreamBooth LoRA: input 'state_name': the run saved as 'bad-input-resume' had other settings \(resume: 'none' "
     r"then, '[0-9a-f]+' now\)"),
    ("dreambooth-state-fewer-steps",
     lambda k: (dreambooth(k, steps=2, state_name="bad-input-steps"), dreambooth(k, steps=1, state_name="bad-input-steps")),
     r"DreamBooth LoRA: input 'state_name': the run saved as 'bad-input-steps' has done 2 steps, more than 'steps' "
     r"\(1\); set 'steps' to 2 or more"),
    ("dreambooth-full-state-of-the-lora",
     lambda k: (dreambooth(k, state_name="bad-input-kind"), dreambooth_full(k, state_name="bad-input-kind")),
     r"DreamBooth Fine-Tune: input 'state_name': the run saved as 'bad-input-kind' had other settings \(.*node: "
     r"'DreamBooth LoRA' then, 'DreamBooth Fine-Tune' now"),
    ("textual-inversion-sdxl-clip-on-sd1", lambda k: textual_inversion(k, clip=k.other_clip()),
     r"Textual Inversion: input 'clip' encodes prompts 96 wide; the model's cross-attention takes 64. It is another "
     r"checkpoint's text encoder: connect this checkpoint's CLIP"),
    ("textual-inversion-sd1-clip-on-sdxl", lambda k: textual_inversion(k, model=k.tiny("sdxl")[0]),
     r"Textual Inversion: input 'clip' encodes prompts 64 wide; the model's cross-attention takes 96"),
    ("textual-inversion-flux-clip", lambda k: textual_inversion(k, clip=k.tiny("flux-dev")[1]),
     r"Textual Inversion: input 'clip' is FluxClipModel; this node trains the text encoders of SD1.x, SD2.x and SDXL "
     r"checkpoints: connect one of those checkpoints' CLIP"),
    ("textual-inversion-initializer-two-words", lambda k: textual_inversion(k, initializer="red square"),
     r"Textual Inversion: input 'initializer' is 'red square', 2 tokens for this tokenizer; give one word of one "
     r"token that names the subject's class"),
    ("textual-inversion-initializer-empty", lambda k: textual_inversion(k, initializer=""),
     r"Textual Inversion: input 'initializer' is '', 0 tokens for this tokenizer"),
    ("textual-inversion-name-with-space", lambda k: textual_inversion(k, name="my subject"),
     r"Textual Inversion: input 'name' is 'my subject'; give a file name of letters, digits, '_', '-' or '.' \(no "
     r"spaces: prompts name it as embedding:<name>\)"),
    ("textual-inversion-name-path", lambda k: textual_inversion(k, name="../escape"),
     r"Textual Inversion: input 'name' is '../escape'"),
    # refused before the run: 100,000 steps would not end within the suite
    ("textual-inversion-name-too-long", lambda k: textual_inversion(k, name="a" * 300, steps=100_000),
     r"Textual Inversion: input 'name' is 300 characters long; give at most 200 \(it names the file "
     r"<name>\.safetensors, and file names end at 255 bytes\)"),
    ("custom-diffusion-name-too-long", lambda k: custom_diffusion(k, name="b" * 256, steps=100_000),
     r"Custom Diffusion: input 'name' is 256 characters long; give at most 200"),
    ("textual-inversion-images-nan", lambda k: textual_inversion(k, images=with_nan(k.src)),
     r"Textual Inversion: input 'images' has NaN or infinite values; connect VAE Encode"),
    ("textual-inversion-learning-rate-negative", lambda k: textual_inversion(k, learning_rate=-0.1),
     r"Textual Inversion: input 'learning_rate' is -0.1; give 0 or more"),
    ("textual-inversion-num-vectors-0", lambda k: textual_inversion(k, num_vectors=0),
     r"Textual Inversion: input 'num_vectors' is 0; give 1 or more"),
    ("textual-inversion-caption-without-place", lambda k: textual_inversion(k, caption="a red square"),
     r"Textual Inversion: input 'caption' is 'a red square'; give one caption with \{\} once, where the new word goes"),
    ("textual-inversion-diverged", lambda k: textual_inversion(k, model=overflowing(k)),
     r"Textual Inversion: the optimisation diverged at step 1 \(loss .*\) with learning_rate 0.001, which would "
     r"sample a black picture; lower learning_rate \(default 0.002\)"),
    ("custom-diffusion-sdxl-clip-on-sd1", lambda k: custom_diffusion(k, clip=k.other_clip()),
     r"Custom Diffusion: input 'clip' encodes prompts 96 wide; the model's cross-attention takes 64\. It is another "
     r"checkpoint's text encoder: connect this checkpoint's CLIP"),
    ("custom-diffusion-flux-clip", lambda k: custom_diffusion(k, clip=k.tiny("flux-dev")[1]),
     r"Custom Diffusion: input 'clip' is FluxClipModel; this node trains the text encoders of SD1.x, SD2.x and SDXL "
     r"checkpoints: connect one of those checkpoints' CLIP"),
    ("custom-diffusion-prompt-without-place", lambda k: custom_diffusion(k, instance_prompt="photo of a square"),
     r"Custom Diffusion: input 'instance_prompt' is 'photo of a square'; write \{\} once where the new word goes"),
    ("custom-diffusion-images-latent", lambda k: custom_diffusion(k, instance_images=k.src),
     r"Custom Diffusion: input 'instance_images' is dict, not an IMAGE batch of RGB pictures; connect Load Image"),
    ("custom-diffusion-images-not-square", lambda k: custom_diffusion(k, instance_images=photos(2, 128, 96)),
     r"Custom Diffusion: input 'instance_images' is 96x128 px; the scale augmentation works on square images"),
    ("custom-diffusion-images-not-multiple", lambda k: custom_diffusion(k, instance_images=photos(2, 132)),
     r"Custom Diffusion: input 'instance_images' is 132 px, not a multiple of the VAE's 8; resize to 128 or 136 px"),
    ("custom-diffusion-images-too-small", lambda k: custom_diffusion(k, instance_images=photos(2, 64)),
     r"Custom Diffusion: input 'instance_images' is 64 px: the scale augmentation shrinks a photo to a third, which "
     r"leaves no latent cell to learn from; give photos of at least \d+ px \(the script's 512\), or turn 'augment' off"),
    ("custom-diffusion-images-nan", lambda k: custom_diffusion(k, instance_images=photos().index_put_(
        (torch.tensor([0]),), torch.tensor(float("nan")))),
     r"Custom Diffusion: input 'instance_images' has NaN or infinite values"),
    ("custom-diffusion-class-missing", lambda k: custom_diffusion(k, class_images=None),
     r"Custom Diffusion: input 'class_images' is empty and prior_loss_weight is 1; prior preservation needs pictures "
     r"of the subject's class"),
    ("custom-diffusion-class-prompt-empty", lambda k: custom_diffusion(k, class_prompt=" "),
     r"Custom Diffusion: input 'class_prompt' is empty and prior_loss_weight is 1"),
    ("custom-diffusion-class-other-size", lambda k: custom_diffusion(k, class_images=photos(2, 136)),
     r"Custom Diffusion: inputs 'instance_images' \(128 px\) and 'class_images' \(136x136 px\) differ in size"),
    ("custom-diffusion-vae-other-family", lambda k: custom_diffusion(k, vae=k.tiny("sd3")[2]),
     r"Custom Diffusion: input 'vae' makes 16-channel latents; the model takes 4: connect this checkpoint's VAE"),
    ("custom-diffusion-initializer-unknown", lambda k: custom_diffusion(k, initializer="qzxv-blorp"),
     r"Custom Diffusion: input 'initializer' is 'qzxv-blorp', \d+ tokens and no entry of this tokenizer's vocabulary"),
    ("custom-diffusion-learning-rate-negative", lambda k: custom_diffusion(k, learning_rate=-1.0),
     r"Custom Diffusion: inputs 'learning_rate' and 'prior_loss_weight' must be 0 or more"),
    ("custom-diffusion-diverged", lambda k: custom_diffusion(k, model=overflowing(k)),
     r"Custom Diffusion: the optimisation diverged at step 1 \(loss .*\) with learning_rate 0.0001, which would "
     r"sample a black picture; lower learning_rate \(default 4e-05\)"),
    ("dreambooth-diverged", lambda k: dreambooth(k, learning_rate=0.01, model=overflowing(k)),
     r"DreamBooth LoRA: the optimisation diverged at step 1 \(loss .*\) with learning_rate 0.01, which would sample "
     r"a black picture; lower learning_rate \(default 0.0001\)"),
    ("dreambooth-full-diverged", lambda k: dreambooth_full(k, learning_rate=0.01, model=overflowing(k)),
     r"DreamBooth Fine-Tune: the optimisation diverged at step 1 \(loss .*\) with learning_rate 0.01, which would "
     r"sample a black picture; lower learning_rate \(default 5e-06\)"),
    ("dreambooth-full-text-without-clip", lambda k: dreambooth_full(k, class_text="a square"),
     r"DreamBooth Fine-Tune: input 'class_text' is given but 'clip' is not connected; connect the checkpoint's CLIP "
     r"to train its text encoder too"),
    ("dreambooth-full-text-not-the-prompts",
     lambda k: dreambooth_full(k, clip=k.clip, instance_text="a sks dog", class_text="a dog"),
     r"DreamBooth Fine-Tune: input 'instance_prompt' is not CLIP Text Encode of 'instance_text' \('a sks dog'\) "
     r"with the connected CLIP"),
    ("dreambooth-full-no-class-images", lambda k: dreambooth_full(k, class_images=None),
     r"DreamBooth Fine-Tune: input 'class_images' is not connected and prior_loss_weight is 1; prior preservation "
     r"needs images of the subject's class"),
    ("dreambooth-full-learning-rate-negative", lambda k: dreambooth_full(k, learning_rate=-1.0),
     r"DreamBooth Fine-Tune: inputs 'learning_rate' and 'prior_loss_weight' must be 0 or more \(paper: lambda 1; "
     r"diffusers' READMEs: learning rate 1e-4 for the LoRA, 5e-6 for the full fine-tune\)"),
]



# -- Load Inversion and Save Inversion: files and names (issue 24) ----------------------------

INVALID = r"Load Inversion: input 'inversion': '{}' is not a valid InvertEdit inversion file \({}\)\. Choose a file " \
          r"written by Save Inversion"
LISTED = r"choose a \.safetensors file from the list: one in the input folder, or one Save Inversion wrote to " \
         r"output/inversions \(marked \[output\]\)"


def load_changed(k: Kit, name: str, inversion=None, meta: dict | None = None, **tensors):
    """Load Inversion a file of ``inversion`` (the DDIM one by default) with ``tensors`` replaced
    (None: left out) and ``meta`` entries changed."""
    state, metadata = (inversion or k.inv).to_state()
    for key, value in tensors.items():
        key = key.replace("__", ".")   # clue__edict__y: the tensor 'clue.edict.y'
        if value is None:
            state.pop(key)
        else:
            state[key] = value.contiguous()
    metadata.update(meta or {})
    return load_file(k, name, tensors=state, meta=metadata)


def settings(k: Kit, **change) -> str:
    return json.dumps(dict(k.inv.settings, **change))


def invalid(name: str, why: str) -> str:
    return INVALID.format(name.replace(".", r"\."), why)


def negative_prompt(k: Kit):
    return k.once("negative-prompt", lambda: call(k.host, "InvertEditNegativePromptInversion", inversion=k.inv,
                                                  positive=k.pos)[0])


def load_node(k: Kit):
    return k.host.nodes.NODE_CLASS_MAPPINGS["InvertEditLoadInversion"]


# (id, run(kit), expected message: a regex searched in the error)
FILE_CASES = [
    # -- the file's parts disagree --
    ("load-latent-size-disagrees", lambda k: load_changed(k, "bad_latent_size.safetensors",
                                                          latent=torch.zeros(1, 4, 64, 64)),
     invalid("bad_latent_size.safetensors", r"its latent is \(1, 4, 64, 64\) \(batch, channels, height, width\) but "
                                            r"its trajectory's latents are \(1, 4, 8, 8\); they must match")),
    ("load-latent-batch-disagrees", lambda k: load_changed(k, "bad_latent_batch.safetensors",
                                                           latent=torch.zeros(2, 4, 8, 8)),
     invalid("bad_latent_batch.safetensors", r"its latent is \(2, 4, 8, 8\) .* trajectory's latents are \(1, 4, 8, 8\); they must match")),
    ("load-trajectory-shorter-than-schedule", lambda k: load_changed(k, "bad_short.safetensors",
                                                                     trajectory=k.inv.trajectory[1:]),
     invalid("bad_short.safetensors", r"its trajectory has 4 latents but its schedule has 5 points from start_step 0; "
                                      r"they must match")),
    ("load-trajectory-empty-latents", lambda k: load_changed(k, "bad_empty.safetensors",
                                                             trajectory=torch.zeros(5, 1, 4, 0, 8),
                                                             latent=torch.zeros(1, 4, 0, 8)),
     invalid("bad_empty.safetensors", r"its trajectory's latents are empty \(\(1, 4, 0, 8\)\)")),
    ("load-edict-clue-other-size", lambda k: load_changed(k, "bad_edict_y.safetensors", k.edict()[0],
                                                          clue__edict__y=torch.zeros(1, 4, 16, 16)),
     invalid("bad_edict_y.safetensors", r"its clue 'edict.y' has shape \(1, 4, 16, 16\) where \(1, 4, 8, 8\) is "
                                        r"needed \(4 steps from its start_step, latents \(1, 4, 8, 8\)\)")),
    ("load-ddpm-clue-one-step-short", lambda k: load_changed(k, "bad_ddpm_maps.safetensors", k.ddpm()[0],
                                                             clue__ddpm__corrections=k.ddpm()[0].clues["ddpm.corrections"][1:]),
     invalid("bad_ddpm_maps.safetensors", r"its clue 'ddpm.corrections' has shape \(2, 1, 4, 8, 8\) where "
                                          r"\(3, 1, 4, 8, 8\) is needed \(3 steps from its start_step, latents \(1, 4, 8, 8\)\)")),
    ("load-null-text-clue-wrong-rank", lambda k: load_state(k, "bad_null_text_rank.safetensors", replaced(
        k.inv, method="null-text", clues={"null_text": torch.zeros(4, 77, 64)})),
     invalid("bad_null_text_rank.safetensors", r"its clue 'null_text' has shape \(4, 77, 64\) where "
                                               r"\(4, 1, \*, \*\) is needed .*")),
    ("load-source-cond-wrong-rank", lambda k: load_changed(k, "bad_source_cond.safetensors", negative_prompt(k),
                                                           clue__source__cond=torch.zeros(77, 64)),
     invalid("bad_source_cond.safetensors", r"its clue 'source.cond' has shape \(77, 64\) where \(\*, \*, \*\) is needed .*")),
    ("load-latent-wrong-rank", lambda k: load_changed(k, "bad_latent_rank.safetensors", latent=torch.zeros(4, 8, 8)),
     invalid("bad_latent_rank.safetensors", r"its 'latent' tensor has 3 dimensions, not 4")),
    ("load-trajectory-missing", lambda k: load_changed(k, "bad_no_trajectory.safetensors", trajectory=None),
     invalid("bad_no_trajectory.safetensors", r"it lacks the tensors \['trajectory'\]")),

    # -- tensors an inversion cannot hold --
    ("load-integer-latent", lambda k: load_changed(k, "bad_int_latent.safetensors",
                                                   latent=k.inv.latent.round().to(torch.int64)),
     invalid("bad_int_latent.safetensors", r"its 'latent' tensor holds int64 values; an inversion's tensors are "
                                           r"floating point \(float32\)")),
    ("load-integer-sigmas", lambda k: load_changed(k, "bad_int_sigmas.safetensors", sigmas=k.inv.sigmas.to(torch.int32)),
     invalid("bad_int_sigmas.safetensors", r"its 'sigmas' tensor holds int32 values; .*")),
    ("load-bool-clue", lambda k: load_changed(k, "bad_bool_clue.safetensors", k.edict()[0],
                                              clue__edict__y=torch.ones(1, 4, 8, 8, dtype=torch.bool)),
     invalid("bad_bool_clue.safetensors", r"its 'clue.edict.y' tensor holds bool values; .*")),
    ("load-float8-trajectory", lambda k: load_changed(k, "bad_fp8.safetensors",
                                                      trajectory=k.inv.trajectory.to(torch.float8_e4m3fn)),
     invalid("bad_fp8.safetensors", r"its 'trajectory' tensor is float8_e4m3fn, too coarse for an inversion; float32, "
                                    r"float16 or bfloat16 are read")),
    ("load-float16-sigmas", lambda k: load_changed(k, "bad_fp16_sigmas.safetensors", sigmas=k.inv.sigmas.half()),
     invalid("bad_fp16_sigmas.safetensors", r"its sigmas are float16, which rounds the schedule off the sampler's; "
                                            r"an inversion's sigmas are float32")),
    ("load-bfloat16-sigmas", lambda k: load_changed(k, "bad_bf16_sigmas.safetensors", sigmas=k.inv.sigmas.bfloat16()),
     invalid("bad_bf16_sigmas.safetensors", r"its sigmas are bfloat16, .*")),

    # -- sigmas that are no schedule --
    ("load-sigmas-reversed", lambda k: load_changed(k, "bad_reversed.safetensors", sigmas=k.inv.sigmas.flip(0)),
     invalid("bad_reversed.safetensors", r"its sigmas rise \(from 0 at step 0 to .* at step 1\) where an "
                                         r"inversion's fall \(\[0, .*\]\)")),
    ("load-sigmas-not-monotonic", lambda k: load_changed(k, "bad_wiggle.safetensors",
                                                         sigmas=k.inv.sigmas[[0, 2, 1, 3, 4]]),
     invalid("bad_wiggle.safetensors", r"its sigmas rise \(from .* at step 1 to .* at step 2\) .*")),
    ("load-sigmas-nan", lambda k: load_changed(k, "bad_nan_sigmas.safetensors",
                                               sigmas=torch.cat([k.inv.sigmas[:2], torch.tensor([float("nan")]),
                                                                 k.inv.sigmas[3:]])),
     invalid("bad_nan_sigmas.safetensors", r"its sigmas \[.*, nan, .*\] have NaN or infinite values")),
    ("load-sigmas-negative", lambda k: load_changed(k, "bad_negative_sigmas.safetensors", sigmas=k.inv.sigmas - 1),
     invalid("bad_negative_sigmas.safetensors", r"its sigmas \[.*-1\] go below 0; noise levels are 0 or more")),
    ("load-sigmas-one-point", lambda k: load_changed(k, "bad_one_sigma.safetensors", sigmas=k.inv.sigmas[-1:],
                                                     trajectory=k.inv.trajectory[-1:]),
     invalid("bad_one_sigma.safetensors", r"its sigmas have 1 point\(s\); an inversion's schedule has 2 or more \(a step\)")),
    ("load-start-step-at-the-end", lambda k: load_changed(k, "bad_start_end.safetensors", meta={"start_step": "4"},
                                                          trajectory=k.inv.trajectory[-1:]),
     invalid("bad_start_end.safetensors", r"its start_step 4 is not a step of its 4-step schedule \(0 to 3\)")),
    ("load-clue-nan", lambda k: load_changed(k, "bad_nan_clue.safetensors", k.edict()[0],
                                             clue__edict__y=torch.full((1, 4, 8, 8), float("nan"))),
     invalid("bad_nan_clue.safetensors", r"its clue 'edict.y' has NaN or infinite values")),

    # -- metadata --
    ("load-settings-cfg-text", lambda k: load_state(k, "bad_cfg.safetensors", settings=settings(k, cfg="high")),
     invalid("bad_cfg.safetensors", r"its settings' cfg is \"high\", not a finite number")),
    ("load-settings-cfg-nan", lambda k: load_state(k, "bad_cfg_nan.safetensors", settings=settings(k, cfg=float("nan"))),
     invalid("bad_cfg_nan.safetensors", r"its settings' cfg is NaN, not a finite number")),
    ("load-settings-steps-fraction", lambda k: load_state(k, "bad_steps.safetensors", settings=settings(k, steps=4.5)),
     invalid("bad_steps.safetensors", r"its settings' steps is 4.5, not a whole number")),
    ("load-edict-without-mixing", lambda k: load_state(k, "bad_edict_mixing.safetensors", k.edict()[0],
                                                       settings=settings(k)),
     invalid("bad_edict_mixing.safetensors", r"an edict inversion needs its settings' mixing, a weight above 0, up to "
                                             r"1; it has none")),
    ("load-settings-array", lambda k: load_state(k, "bad_settings_array.safetensors", settings="[4]"),
     invalid("bad_settings_array.safetensors", r"its settings is a JSON array, not an object")),
    ("load-no-method", lambda k: load_state(k, "bad_no_method.safetensors", method=""),
     invalid("bad_no_method.safetensors", r"it names no inversion method")),
    ("load-start-step-text", lambda k: load_state(k, "bad_start_text.safetensors", start_step="first"),
     invalid("bad_start_text.safetensors", r"its start_step 'first' is not a whole number")),

    # -- names --
    ("load-temp-mark", lambda k: call(k.host, "InvertEditLoadInversion", inversion="x.safetensors [temp]"),
     r"Load Inversion: input 'inversion' is 'x.safetensors \[temp\]': files marked \[temp\] are not read, only names "
     r"without a mark or marked \[input\] or \[output\]; " + LISTED),
    ("load-other-suffix", lambda k: call(k.host, "InvertEditLoadInversion", inversion="x.ckpt"),
     r"Load Inversion: input 'inversion' is 'x.ckpt': only \.safetensors files are read; " + LISTED),
    ("load-nul-in-name", lambda k: call(k.host, "InvertEditLoadInversion", inversion="bad\x00.safetensors"),
     r"Load Inversion: input 'inversion' \('bad\\x00.safetensors'\) holds a NUL character, which no file name holds; "
     + LISTED),
    ("load-name-an-int", lambda k: call(k.host, "InvertEditLoadInversion", inversion=5),
     r"Load Inversion: input 'inversion' is of type int \(5\), not a file name; " + LISTED),
    ("load-name-a-link", lambda k: call(k.host, "InvertEditLoadInversion", inversion=["3", 0]),
     r"Load Inversion: input 'inversion' is of type list \(\['3', 0\]\), not a file name; " + LISTED),
    ("load-missing-file", lambda k: call(k.host, "InvertEditLoadInversion", inversion="no_such.safetensors [output]"),
     r"Load Inversion: input 'inversion': no file 'no_such.safetensors \[output\]' \(looked for .*\); " + LISTED),
    ("save-nul-in-prefix", lambda k: save(k, "inversions/a\x00b"),
     r"Save Inversion: input 'filename_prefix' \('inversions/a\\x00b'\) holds the character U\+0000, which file "
     r"names cannot hold; use a name such as 'inversions/my_image'"),
    ("save-newline-in-prefix", lambda k: save(k, "inversions/a\nb"),
     r"Save Inversion: input 'filename_prefix' \('inversions/a\\nb'\) holds the character U\+000A, which file names "
     r"cannot hold; use a name such as 'inversions/my_image'"),
    ("save-prefix-an-int", lambda k: save(k, 5),
     r"Save Inversion: input 'filename_prefix' is of type int, not text; use a name such as 'inversions/my_image'"),
    ("save-prefix-over-255-bytes", lambda k: save(k, "inversions/" + "€" * 80),
     r"Save Inversion: input 'filename_prefix': the name '.*' is 240 bytes in UTF-8, which with the counter and "
     r"\.safetensors is over the 255 bytes a file name can have; use a shorter name, such as 'inversions/my_image'"),
]


# -- the pair editors: long prompts, editors that would do nothing (issue 24) --------------

LONG = " ".join(["red"] * 90)          # 90 tokens: two CLIP windows (154 tokens)
TARGET = "a red square on a blue background"


def pair_sample(k: Kit, editor_outputs: tuple, negative: list | None = None, sampler: str = "ddim") -> torch.Tensor:
    """KSampler (Advanced) of an editor's MODEL, CONDITIONING pair and LATENT pair, STEPS ``sampler`` steps, cfg 5."""
    m, pair, latent = editor_outputs
    return call(k.host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=STEPS, cfg=5.0,
                sampler_name=sampler, scheduler="ddim_uniform", positive=pair,
                negative=negative if negative is not None else k.neg, latent_image=latent, start_at_step=0,
                end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]


# (id, run(kit), expected message: a regex searched in the error)
PAIR_CASES = [
    # -- prompts longer than one CLIP window: Prompt-to-Prompt's maps are token-aligned within one --
    ("attention-inject-target-prompt-two-windows", lambda k: attention_inject(k, target_prompt=LONG),
     r"Attention Inject: input 'target_prompt' has 90 tokens, more than one CLIP window holds \(75, 77 with its start "
     r"and end tokens\), and Prompt-to-Prompt aligns .* \(MasaCtrl and Plug-and-Play take longer prompts\); shorten "
     r"it to at most 75 tokens"),
    ("attention-inject-source-prompt-two-windows", lambda k: attention_inject(k, source_prompt=LONG),
     r"Attention Inject: input 'source_prompt' has 90 tokens, more than one CLIP window"),

    # -- word lists of commas and spaces only: no word, though the input is set --
    ("attention-inject-blend-source-words-commas", lambda k: attention_inject(k, blend_source_words=",,, ,"),
     r"Attention Inject: input 'blend_source_words' is ',,, ,', which names no word; write words of the source "
     r"prompt, comma-separated \(e.g. 'circle'\), or leave it empty"),
    ("attention-inject-blend-target-words-commas", lambda k: attention_inject(k, blend_source_words="circle",
                                                                               blend_target_words=" , "),
     r"Attention Inject: input 'blend_target_words' is ' , ', which names no word; write words of the target prompt"),
    ("attention-inject-reweight-commas", lambda k: attention_inject(k, reweight=" ,, "),
     r"Attention Inject: input 'reweight' is ' ,, ', which names no word; write 'word:scale' with words of the "
     r"target prompt"),
    ("attention-inject-cross-replace-words-commas", lambda k: attention_inject(k, cross_replace_words=","),
     r"Attention Inject: input 'cross_replace_words' is ',', which names no word; write 'word:fraction'"),

    # -- local blend settings under which it would not blend --
    ("attention-inject-blend-threshold-1", lambda k: attention_inject(k, blend_source_words="circle", blend_threshold=1.0),
     r"Attention Inject: input 'blend_threshold' is 1: the maps are normalised to a maximum of 1, so no pixel's map "
     r"is above it and the target would come out as the source; give a threshold between 0 and 1 \(paper: 0.3\)"),
    ("attention-inject-blend-threshold-0", lambda k: attention_inject(k, blend_target_words="square", blend_threshold=0.0),
     r"Attention Inject: input 'blend_threshold' is 0: .* every pixel's map is above it and the local blend would "
     r"keep the whole target; give a threshold between 0 and 1 \(paper: 0.3\)"),
    ("attention-inject-blend-start-1", lambda k: attention_inject(k, blend_source_words="circle", blend_start=1.0),
     r"Attention Inject: input 'blend_start' is 1, so the local blend would never start \(it blends from step "
     r"int\(f \* N\) of N steps\); give a fraction below 1 \(paper: 0.2\)"),
    # -- the local blend's subtract words (the reference's substruct_words) without blend words, or not in the prompt --
    ("attention-inject-blend-subtract-without-blend", lambda k: attention_inject(
        k, target_prompt=PROMPT, blend_subtract_source_words="blue", local_blend=True),
     r"Attention Inject: inputs 'blend_subtract_source_words'/'blend_subtract_target_words' take words out of the "
     r"local blend's region, but there is none: no blend words are given and no word differs between the prompts; "
     r"give blend_source_words and/or blend_target_words"),
    ("attention-inject-blend-subtract-word-missing", lambda k: attention_inject(
        k, blend_source_words="circle", blend_subtract_target_words="zebra"),
     r"Attention Inject: input 'blend_subtract_target_words'.*'zebra'.*target prompt"),

    # -- editors that would never act: refused at the node (fractions) or by the run (its step count) --
    # -- a sampler whose step is not the one the local blend lands on the blend with --
    ("attention-inject-blend-with-dpmpp-2m", lambda k: pair_sample(k, attention_inject(
        k, blend_source_words="circle", blend_target_words="square"), sampler="dpmpp_2m"),
     r"Attention Inject: sampler 'dpmpp_2m' steps differently from the DDIM/Euler step for which the local blend "
     r"makes the blended latent, .*; use ddim or euler \(Flow Sampler: euler\), or turn local_blend off \(a global "
     r"edit\)"),
    # -- the same, the blend words left empty: the local blend on the words that differ (circle, square) --
    ("attention-inject-differing-words-with-dpmpp-2m", lambda k: pair_sample(k, attention_inject(k, local_blend=True),
                                                                              sampler="dpmpp_2m"),
     r"Attention Inject: sampler 'dpmpp_2m' steps differently from the DDIM/Euler step for which the local blend .*"
     r"or turn local_blend off \(a global edit\)"),
    ("attention-inject-blend-with-euler-ancestral", lambda k: pair_sample(k, attention_inject(
        k, blend_source_words="circle"), sampler="euler_ancestral"),
     r"Attention Inject: sampler 'euler_ancestral' steps differently from the DDIM/Euler step"),
    ("attention-inject-nothing-injected", lambda k: attention_inject(k, cross_replace=0.0, self_replace=0.0),
     r"Attention Inject: inputs 'cross_replace' and 'self_replace' are 0, so the target would never take the "
     r"source's maps and Attention Inject would never act; give cross_replace or self_replace above 0 \(paper: 0.8 "
     r"and 0.4\)"),
    ("attention-inject-reweight-without-cross", lambda k: attention_inject(k, cross_replace=0.0, reweight="square:2"),
     r"Attention Inject: input 'reweight' scales words' maps while cross-attention maps are injected, but "
     r"cross_replace is 0; give cross_replace above 0 \(paper: 0.8\), or leave reweight empty"),
    ("attention-inject-no-step-in-the-run", lambda k: pair_sample(k, attention_inject(k, cross_replace=0.1,
                                                                                       self_replace=0.2)),
     r"Attention Inject: inputs 'cross_replace' \(0.1\) and 'self_replace' \(0.2\) inject no map in a run of 4 steps "
     r".* so Attention Inject would never act; give cross_replace 0.2 or self_replace 0.25 or more \(paper: 0.8 and "
     r"0.4\), or sample more steps"),
    ("attention-inject-reweight-no-cross-step", lambda k: pair_sample(k, attention_inject(k, cross_replace=0.1,
                                                                                           reweight="square:2")),
     r"Attention Inject: input 'reweight' scales words' maps while cross-attention maps are injected, but "
     r"cross_replace 0.1 injects them in none of the run's 4 steps .*; give cross_replace 0.2 or more \(paper: 0.8\)"),
    ("masactrl-start-step-past-the-run", lambda k: pair_sample(k, masactrl(k, start_step=1000)),
     r"MasaCtrl: input 'start_step' is 1000, but the run has 4 steps, so MasaCtrl would never act; give a start_step "
     r"below 4 \(paper: 4\)"),
    ("masactrl-start-step-at-the-run-end", lambda k: pair_sample(k, masactrl(k, start_step=STEPS)),
     r"MasaCtrl: input 'start_step' is 4, but the run has 4 steps"),
    ("plug-and-play-both-fractions-0", lambda k: plug_and_play(k, feature_injection=0.0, self_attention_injection=0.0),
     r"Plug-and-Play: inputs 'feature_injection' and 'self_attention_injection' are both 0, so Plug-and-Play would "
     r"never act; give fractions above 0 \(paper: 0.8 and 0.5\)"),
    ("plug-and-play-fraction-above-1", lambda k: plug_and_play(k, self_attention_injection=1.5),
     r"Plug-and-Play: input 'self_attention_injection' is 1.5; use a fraction between 0 and 1 \(paper: 0.5\)"),
    ("plug-and-play-no-step-in-the-run", lambda k: pair_sample(k, plug_and_play(k, feature_injection=0.2,
                                                                                 self_attention_injection=0.1)),
     r"Plug-and-Play: inputs 'feature_injection' \(0.2\) and 'self_attention_injection' \(0.1\) inject in none of "
     r"the run's 4 steps .* so Plug-and-Play would never act; give one of them 0.25 or more \(paper: 0.8 and 0.5\)"),
]


# ------------------------------------------------------------------ FlowEdit (Flux.1 and SD3)

def flow(k: Kit, family: str = "flux-dev") -> tuple:
    """The tiny random flow model of ``family`` (MODEL, CLIP, VAE)."""
    return k.tiny(family)


def flowedit(k: Kit, family: str = "flux-dev", model=None, clip=None, **change):
    """FlowEdit's GUIDER on the tiny flow model of ``family`` (the authors' Flux settings, n_max 4)."""
    m, c, _ = flow(k, family)
    m, c = model or m, clip or c
    args = dict(model=m, source=encode(k.host, c, PROMPT), target=encode(k.host, c, "a yellow circle"),
                source_guidance=1.5, target_guidance=5.5, n_max=4, n_min=0, n_avg=1)
    args.update(change)
    return call(k.host, "InvertEditFlowEdit", **args)[0]


def flowedit_run(k: Kit, guider, steps: int = 5, sampler: str = "euler", latent: torch.Tensor | None = None):
    """SamplerCustomAdvanced with FlowEdit's GUIDER on a random 8x8 latent of the tiny Flux model."""
    model = flow(k)[0]
    sigmas = call(k.host, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    latent = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0)) if latent is None else latent
    return call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "RandomNoise", noise_seed=0)[0], guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0], sigmas=sigmas,
                latent_image={"samples": latent})[0]


FLOW_CASES = [
    ("textual-inversion-flux-model", lambda k: textual_inversion(k, model=flow(k)[0], images={"samples": torch.randn(1, 16, 8, 8)}),
     r"Textual Inversion: input 'model' is Flux \(Flux, .*\); this node supports Stable Diffusion UNet checkpoints"),
    ("dreambooth-flux-model", lambda k: dreambooth(k, model=flow(k)[0], instance_images={"samples": torch.randn(1, 16, 8, 8)},
                                                   instance_prompt=encode(k.host, flow(k)[1], PROMPT), prior_loss_weight=0.0),
     r"DreamBooth LoRA: input 'model' is Flux \(Flux, .*\); this node supports Stable Diffusion UNet checkpoints"),
    ("dreambooth-full-flux-model", lambda k: dreambooth_full(k, model=flow(k)[0], instance_images={"samples": torch.randn(1, 16, 8, 8)},
                                                             instance_prompt=encode(k.host, flow(k)[1], PROMPT),
                                                             prior_loss_weight=0.0),
     r"DreamBooth Fine-Tune: input 'model' is Flux \(Flux, .*\); this node supports Stable Diffusion UNet checkpoints"),
    ("flowedit-sd-model", lambda k: flowedit(k, model=k.model, clip=k.clip),
     r"FlowEdit: input 'model' is SD15 \(UNetModel, .*\); this node edits with rectified-flow transformers: Flux.1 "
     r"\(dev, schnell\), SD3/SD3.5 and Qwen-Image. For Stable Diffusion checkpoints use the pack's inversion nodes"),
    ("ddim-invert-flux-model", lambda k: call(k.host, "InvertEditDDIMInvert", **dict(
        k.invert_args(), model=flow(k)[0], positive=encode(k.host, flow(k)[1], PROMPT),
        latent={"samples": torch.randn(1, 16, 8, 8)})),
     r"DDIM Invert: input 'model' is Flux \(Flux, .*\); this node supports Stable Diffusion UNet checkpoints.* "
     r"For Flux.1, SD3 and Qwen-Image use the pack's flow nodes \(InvertEdit/flow: FlowEdit\)"),
    ("flowedit-negative-on-flux", lambda k: flowedit(k, negative=encode(k.host, flow(k)[1], "")),
     r"FlowEdit: input 'negative' is connected, but Flux takes no negative prompt .*; disconnect it"),
    ("flowedit-sd3-without-negative", lambda k: flowedit(k, "sd3", source_guidance=3.5, target_guidance=13.5),
     r"FlowEdit: SD3 guides each prompt with classifier-free guidance: connect 'negative' \(an empty prompt, as the "
     r"authors\), or set both guidance scales to 1"),
    ("flowedit-n-min-above-n-max", lambda k: flowedit(k, n_min=5),
     r"FlowEdit: n_min is 5, above n_max 4; .* keep n_min at most n_max \(authors: 0\)"),
    ("flowedit-guidance-nan", lambda k: flowedit(k, target_guidance=NAN),
     r"FlowEdit: input 'target_guidance' is nan; give a finite number"),
    # issue 78: a prompt of another family whose context is as wide (real SD3 and Flux both give T5's 4096; the tiny
    # ones differ, so the SD3 prompt's pooled vector goes with the Flux prompt's context here)
    ("flowedit-sd3-pooled-vector", lambda k: flowedit(k, source=[[encode(k.host, flow(k)[1], PROMPT)[0][0], {
        "pooled_output": encode(k.host, flow(k, "sd3")[1], PROMPT)[0][1]["pooled_output"]}]]),
     r"FlowEdit: input 'source' carries a pooled text vector 96 wide; this model \(Flux\) takes 32\. The prompt was "
     r"encoded by another model's text encoders"),
    # issue 78: a prompt of thousands of words ran on a sequence the model never saw, and wrecked the picture
    ("flowedit-prompt-of-thousands-of-words", lambda k: flowedit(k, target=encode(k.host, flow(k)[1], " ".join(["red"] * 3000))),
     r"FlowEdit: input 'target' is a prompt of 3001 text tokens; Flux reads at most 512 \(Flux.1's pipelines cut a "
     r"prompt at 512 T5 tokens\): shorten the prompt"),
    ("flow-invert-sd3-prompt-of-thousands-of-words", lambda k: flow_invert(
        k, "sd3", positive=encode(k.host, flow(k, "sd3")[1], " ".join(["red"] * 1000))),
     r"Flow Invert: input 'positive' is a prompt of \d+ text tokens; SD3 reads at most 589 \(one CLIP window of 77 "
     r"and 512 T5 tokens, where SD3's pipelines cut a prompt\): shorten the prompt"),
    ("flowedit-prompt-of-another-family", lambda k: flowedit(k, source=encode(k.host, flow(k, "sd3")[1], PROMPT)),
     r"FlowEdit: input 'source' is an embedding 4096 wide; the model's cross-attention takes 64. The prompt was "
     r"encoded for another model family: encode it with this checkpoint's CLIP"),
    ("flowedit-n-min-past-the-run", lambda k: flowedit_run(k, flowedit(k, n_min=3), steps=3),
     r"FlowEdit: n_min is 3 but the run has 3 steps; .* keep it below the steps \(authors: 0\)"),
    ("flowedit-sampler-not-euler", lambda k: flowedit_run(k, flowedit(k), sampler="dpmpp_2m"),
     r"FlowEdit: sampler 'dpmpp_2m' is not FlowEdit's step; FlowEdit integrates its edit with Euler steps: connect "
     r"KSamplerSelect with euler"),
    ("flowedit-empty-latent", lambda k: flowedit_run(k, flowedit(k), latent=torch.zeros(1, 16, 8, 8)),
     r"FlowEdit: the latent is empty \(all zeros\); FlowEdit edits an image: connect VAE Encode"),
]


def flow_invert(k: Kit, family: str = "flux-dev", **change):
    """Flow Invert on a random 8x8 latent of the tiny flow model of ``family`` (rf-solver, 4 steps)."""
    m, c, _ = flow(k, family)
    args = dict(model=m, latent={"samples": torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))},
                positive=encode(k.host, c, PROMPT), solver="rf-solver", steps=4, scheduler="simple", guidance=1.0)
    args.update(change)
    return call(k.host, "InvertEditFlowInvert", **args)


def rf_inverted(k: Kit):
    return k.once("rf_inverted", lambda: call(k.host, "InvertEditRFInversionInvert", model=flow(k)[0],
                                              latent={"samples": torch.randn(1, 16, 8, 8)},
                                              positive=encode(k.host, flow(k)[1], ""), steps=4, scheduler="simple",
                                              gamma=0.5, guidance=0.0, seed=0))


def rf_inversion(k: Kit, model=None, **change):
    args = dict(model=model or flow(k)[0], inversion=rf_inverted(k)[0], eta=0.9, start=0.0, stop=0.25, eta_decay=0.0)
    args.update(change)
    return call(k.host, "InvertEditRFInversion", **args)


def flow_sample_other_latent(k: Kit):
    """Sampling a Flow Invert inversion's NOISE with a latent of another size."""
    _, noise, sigmas = flow_invert(k)
    m, c, _ = flow(k)
    guider = call(k.host, "BasicGuider", model=m, conditioning=encode(k.host, c, PROMPT))[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                sampler=call(k.host, "InvertEditFlowSampler", solver="rf-solver")[0], sigmas=sigmas,
                latent_image={"samples": torch.randn(1, 16, 16, 16)})


def flow_sample_other_schedule(k: Kit, steps: int = 3, scheduler: str = "simple"):
    """Sampling a Flow Invert inversion (4 steps, simple) back with the Flow Sampler on another schedule."""
    _, noise, _ = flow_invert(k)
    m, c, _ = flow(k)
    guider = call(k.host, "BasicGuider", model=m, conditioning=encode(k.host, c, PROMPT))[0]
    sigmas = call(k.host, "BasicScheduler", model=m, scheduler=scheduler, steps=steps, denoise=1.0)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                sampler=call(k.host, "InvertEditFlowSampler", solver="rf-solver")[0], sigmas=sigmas,
                latent_image={"samples": torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))})


FLOW_CASES += [
    ("flow-sample-fewer-steps", flow_sample_other_schedule,
     r"Flow Sampler: the run's sigmas \(3 steps, from 1\) are not those Flow Invert inverted on \(4 steps, from 1\); "
     r"connect Flow Invert's SIGMAS output to the sampler's sigmas \(the same steps and scheduler\)"),
    ("flow-sample-other-scheduler", lambda k: flow_sample_other_schedule(k, steps=4, scheduler="beta"),
     r"Flow Sampler: the run's sigmas \(4 steps, from 1\) are not those Flow Invert inverted on \(4 steps"),
    ("flow-invert-sd-model", lambda k: flow_invert(k, model=k.model, positive=k.pos, latent=k.src),
     r"Flow Invert: input 'model' is SD15 .*; this node edits with rectified-flow transformers: Flux.1 \(dev, "
     r"schnell\), SD3/SD3.5 and Qwen-Image"),
    ("flow-invert-empty-latent", lambda k: flow_invert(k, latent={"samples": torch.zeros(1, 16, 8, 8)}),
     r"Flow Invert: input 'latent' is empty \(all zeros\); connect VAE Encode of the image to invert"),
    ("flow-invert-latent-nan", lambda k: flow_invert(k, latent={"samples": torch.full((1, 16, 8, 8), NAN)}),
     r"Flow Invert: input 'latent' .*NaN"),
    ("flow-invert-prompt-of-another-family", lambda k: flow_invert(k, positive=encode(k.host, flow(k, "sd3")[1], PROMPT)),
     r"Flow Invert: input 'positive' is an embedding 4096 wide; the model's cross-attention takes 64"),
    ("flow-invert-unknown-solver", lambda k: flow_invert(k, solver="heun"),
     r"Flow Invert: input 'solver' is 'heun'"),
    ("flow-invert-guidance-inf", lambda k: flow_invert(k, guidance=INF),
     r"Flow Invert: input 'guidance' is inf; give a finite number"),
    ("flow-invert-unknown-scheduler", lambda k: flow_invert(k, scheduler="cosine"),
     r"Flow Invert: input 'scheduler' is 'cosine'"),
    ("flow-invert-latent-not-an-image", lambda k: flow_invert(k, latent={"samples": torch.randn(16, 8, 8)}),
     r"Flow Invert: input 'latent' has shape \(16, 8, 8\); an image latent \[batch, channels, height, width\]"),
    ("flow-sampler-unknown-solver", lambda k: call(k.host, "InvertEditFlowSampler", solver="dpm"),
     r"Flow Sampler: input 'solver' is 'dpm'"),
    ("rf-inversion-eta-nan", lambda k: rf_inversion(k, eta=NAN),
     r"RF-Inversion: input 'eta' is nan; give a finite number"),
    ("flow-sample-latent-of-another-size", flow_sample_other_latent,
     r"Flow Invert: the sampler's latent_image is \(1, 16, 16, 16\), but the inversion was made from a latent "
     r"\(1, 16, 8, 8\); connect the image's latent"),
    ("flowedit-kontext-reference", lambda k: flowedit(k, target=call(
        k.host, "ReferenceLatent", conditioning=encode(k.host, flow(k)[1], PROMPT),
        latent={"samples": torch.randn(1, 16, 8, 8)})[0]),
     r"FlowEdit: input 'target' carries reference images \(ReferenceLatent or TextEncodeQwenImageEdit: Flux "
     r"Kontext's or Qwen-Image-Edit's instruction editing\)"),
    # ---- Qwen-Image: its instruction editor's reference images, prompts of other text encoders, a clip's latent
    ("flowedit-qwen-image-edit-reference", lambda k: flowedit(k, "qwen-image", target=call(
        k.host, "TextEncodeQwenImageEdit", clip=flow(k, "qwen-image")[1], prompt="a yellow circle",
        vae=flow(k, "qwen-image")[2], image=torch.rand(1, 64, 64, 3))[0]),
     r"FlowEdit: input 'target' carries reference images \(ReferenceLatent or TextEncodeQwenImageEdit"),
    ("flow-invert-qwen-model-flux-prompt", lambda k: flow_invert(k, "qwen-image", positive=encode(
        k.host, flow(k)[1], PROMPT)),
     r"Flow Invert: input 'positive' carries a pooled text vector \(CLIP's\), which QwenImage does not take"),
    ("flow-invert-flux-model-qwen-prompt", lambda k: flow_invert(k, positive=encode(
        k.host, flow(k, "qwen-image")[1], PROMPT)),
     r"Flow Invert: input 'positive' carries no pooled text vector; this model \(Flux\) takes one 32 wide"),
    ("flow-invert-qwen-clip-latent", lambda k: flow_invert(k, "qwen-image", latent={"samples": torch.randn(1, 16, 2, 8, 8)}),
     r"Flow Invert: input 'latent' has shape \(1, 16, 2, 8, 8\): 2 frames. This model's VAE encodes a batch of images "
     r"as the frames of one clip"),
    ("rf-inversion-gamma-above-1", lambda k: call(k.host, "InvertEditRFInversionInvert", model=flow(k)[0],
                                                  latent={"samples": torch.randn(1, 16, 8, 8)},
                                                  positive=encode(k.host, flow(k)[1], ""), steps=4, scheduler="simple",
                                                  gamma=1.5, guidance=0.0, seed=0),
     r"RF-Inversion Invert: input 'gamma' is 1.5; give 0 to 1 \(authors: 0.5\)"),
    ("rf-inversion-stop-before-start", lambda k: rf_inversion(k, start=0.5, stop=0.25),
     r"RF-Inversion: 'stop' \(0.25\) is before 'start' \(0.5\)"),
    ("rf-inversion-sd-model", lambda k: rf_inversion(k, model=k.model),
     r"RF-Inversion: input 'model' is SD15 .*rectified-flow transformers"),
    ("rf-inversion-other-model", lambda k: rf_inversion(k, model=flow(k, "flux-schnell")[0]),
     r"RF-Inversion: input 'model' is not the model the inversion was made with"),
    # issue 78: inputs of another model, degenerate settings
    ("flow-invert-sd-latent", lambda k: flow_invert(k, latent=k.src),
     r"Flow Invert: input 'latent' has 4 channels; this model \(Flux\) works on latents of 16: it was encoded with "
     r"another model's VAE\. Encode the image with the VAE of this model's checkpoint"),
    ("rf-inversion-invert-sd-latent", lambda k: call(k.host, "InvertEditRFInversionInvert", model=flow(k)[0],
                                                     latent=k.src, positive=encode(k.host, flow(k)[1], ""), steps=4,
                                                     scheduler="simple", gamma=0.5, guidance=0.0, seed=0),
     r"RF-Inversion Invert: input 'latent' has 4 channels; this model \(Flux\) works on latents of 16"),
    ("flowedit-sd-latent", lambda k: flowedit_run(k, flowedit(k), latent=torch.randn(1, 4, 8, 8)),
     r"FlowEdit: input 'latent_image' has 4 channels; this model \(Flux\) works on latents of 16"),
    ("flowedit-latent-nan", lambda k: flowedit_run(k, flowedit(k), latent=torch.full((1, 16, 8, 8), NAN)),
     r"FlowEdit: the sampler's latent_image has NaN or infinite values; connect VAE Encode of the source image"),
    ("ddim-invert-flux-latent", lambda k: ddim_invert(k, latent={"samples": torch.randn(1, 16, 8, 8)}),
     r"DDIM Invert: input 'latent' has 16 channels; this model \(SD15\) works on latents of 4"),
    # the training nodes and Imagic failed inside torch ("expected input ... to have 4 channels"), DreamBooth named
    # a size difference with the class images; Latent Blend took it
    ("dreambooth-flux-latents", lambda k: dreambooth(k, instance_images={"samples": torch.randn(2, 16, 8, 8)}),
     r"DreamBooth LoRA: input 'instance_images' has 16 channels; this model \(SD15\) works on latents of 4"),
    ("dreambooth-full-flux-latents", lambda k: dreambooth_full(k, instance_images={"samples": torch.randn(2, 16, 8, 8)}),
     r"DreamBooth Fine-Tune: input 'instance_images' has 16 channels; this model \(SD15\) works on latents of 4"),
    ("textual-inversion-flux-latents", lambda k: textual_inversion(k, images={"samples": torch.randn(2, 16, 8, 8)}),
     r"Textual Inversion: input 'images' has 16 channels; this model \(SD15\) works on latents of 4"),
    ("imagic-embedding-flux-latent", lambda k: imagic_embedding(k, latent={"samples": torch.randn(1, 16, 8, 8)}),
     r"Imagic Optimize Embedding: input 'latent' has 16 channels; this model \(SD15\) works on latents of 4"),
    ("imagic-fine-tune-flux-latent", lambda k: imagic_fine_tune(k, latent={"samples": torch.randn(1, 16, 8, 8)}),
     r"Imagic Fine-Tune: input 'latent' has 16 channels; this model \(SD15\) works on latents of 4"),
    ("latent-blend-flux-latent", lambda k: latent_blend(k, latent={"samples": torch.randn(2, 16, 8, 8)}),
     r"Latent Blend: input 'latent' has 16 channels; this model \(SD15\) works on latents of 4"),
    ("flow-invert-one-step", lambda k: flow_invert(k, steps=1),
     r"Flow Invert: input 'steps' is 1; give at least 2: at fewer steps the inversion cannot retrace the image and the "
     r"picture comes back wrecked"),
    ("flow-invert-euler-two-steps", lambda k: flow_invert(k, solver="euler", steps=2),
     r"Flow Invert: input 'steps' is 2; give at least 3"),
    ("rf-inversion-invert-three-steps", lambda k: call(k.host, "InvertEditRFInversionInvert", model=flow(k)[0],
                                                       latent={"samples": torch.randn(1, 16, 8, 8)},
                                                       positive=encode(k.host, flow(k)[1], ""), steps=3,
                                                       scheduler="simple", gamma=0.5, guidance=0.0, seed=0),
     r"RF-Inversion Invert: input 'steps' is 3; give at least 4"),
    ("stable-flow-invert-one-step", lambda k: call(k.host, "InvertEditStableFlowInvert", model=flow(k)[0],
                                                   latent={"samples": torch.randn(1, 16, 8, 8)},
                                                   positive=encode(k.host, flow(k)[1], PROMPT), steps=1,
                                                   scheduler="simple", guidance=1.0, nudge=1.15),
     r"Stable Flow Invert: input 'steps' is 1; give at least 2"),
    ("flowedit-one-step", lambda k: flowedit_run(k, flowedit(k), steps=1),
     r"FlowEdit: the run has 1 step; FlowEdit needs at least 2: one step from pure noise replaces the picture"),
    ("rf-inversion-empty-window", lambda k: rf_inversion(k, start=0.25, stop=0.25),
     r"RF-Inversion: 'start' and 'stop' are both 0.25: the pull toward the image acts on no step.*give a window"),
]



def shared(k: Kit):
    """Flow Invert keeping the values of the tiny Flux's single blocks for 2 of 4 steps."""
    return k.once("shared_inverted", lambda: flow_invert(k, share_steps=2, share_from_block=0))


def share_values(k: Kit, inversion=None, model=None):
    return call(k.host, "InvertEditShareValues", model=model or flow(k)[0],
                inversion=inversion if inversion is not None else shared(k)[0])


def shared_on_other_steps(k: Kit):
    """Share Values sampled on 3 steps, not the inversion's 4."""
    m, c, _ = flow(k)
    guider = call(k.host, "BasicGuider", model=share_values(k)[0], conditioning=encode(k.host, c, PROMPT))[0]
    sigmas = call(k.host, "BasicScheduler", model=m, scheduler="simple", steps=3, denoise=1.0)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "RandomNoise", noise_seed=0)[0], guider=guider,
                sampler=call(k.host, "InvertEditFlowSampler", solver="rf-solver")[0], sigmas=sigmas,
                latent_image={"samples": torch.randn(1, 16, 8, 8)})


def flow_store(k: Kit, family: str = "flux-dev", **change):
    """Attention Store on a Flow Invert (euler, 4 steps) inversion of the tiny flow model of ``family``."""
    m, c, _ = flow(k, family)
    inv = k.once(f"flow_store_{family}", lambda: flow_invert(k, family, solver="euler"))[0]
    args = dict(model=m, clip=c, inversion=inv, prompt=PROMPT, words="", start=0.0, end=1.0, threshold=0.3,
                dit_blocks="all")
    args.update(change)
    return call(k.host, "InvertEditAttentionStore", **args)


FLOW_CASES += [
    ("attention-store-single-blocks-on-sd3", lambda k: flow_store(k, "sd3", dit_blocks="single"),
     r"Attention Store: input 'dit_blocks' is 'single', but this SD3 model has no such blocks; choose all or double"),
    ("attention-store-unknown-dit-blocks", lambda k: flow_store(k, dit_blocks="middle"),
     r"Attention Store: input 'dit_blocks' is 'middle'"),
    ("attention-store-flux-word-not-in-prompt", lambda k: flow_store(k, words="zebra"),
     r"Attention Store: input 'words': \['zebra'\] not in the prompt"),
    ("attention-store-flux-model-of-another-inversion", lambda k: flow_store(k, model=flow(k, "flux-schnell")[0]),
     r"Attention Store: input 'model' is not the model the inversion was made with"),
    ("share-values-sd3", lambda k: flow_invert(k, "sd3", share_steps=2),
     r"Flow Invert: input 'share_steps' is 2, but RF-Solver-Edit shares the values of Flux's single-stream blocks "
     r"and this SD3 model has none; set share_steps to 0"),
    ("share-values-more-steps-than-the-run", lambda k: flow_invert(k, share_steps=5, share_from_block=0),
     r"Flow Invert: input 'share_steps' is 5, more than the 4 steps; give 0 to 4 \(authors: 20 of 25\)"),
    ("share-values-block-past-the-model", lambda k: flow_invert(k, share_steps=2),
     r"Flow Invert: input 'share_from_block' is 20, but the model has 2 single blocks \(0 to 1\); the authors share "
     r"from 20 of Flux's 38"),
    ("share-values-kept-on-unknown", lambda k: flow_invert(k, share_steps=2, keep_values_on="disk"),
     r"Flow Invert: input 'keep_values_on' is 'disk'"),
    ("share-values-nothing-kept", lambda k: share_values(k, inversion=flow_invert(k)[0]),
     r"Share Values: input 'inversion' kept no attention values .*; invert with Flow Invert's share_steps above 0"),
    ("share-values-rf-inversion-record", lambda k: share_values(k, inversion=rf_inverted(k)[0]),
     r"Share Values: input 'inversion' is a rf-inversion inversion .*; Share Values takes these inversions"),
    ("share-values-sd-model", lambda k: share_values(k, model=k.model),
     r"Share Values: input 'model' is not the model the inversion was made with"),
    ("share-values-other-schedule", shared_on_other_steps,
     r"Share Values: the model is sampled on 3 steps that are not the inversion's schedule \(4 steps\); sample "
     r"with the SIGMAS of the inversion's Flow Invert"),
]



def box_mask(side: int = 64, rows=slice(16, 40), cols=slice(20, 44)) -> torch.Tensor:
    """A MASK [1, side, side] with a rectangle set (the region to edit of the 8x8 latent's image)."""
    mask = torch.zeros(1, side, side)
    mask[:, rows, cols] = 1.0
    return mask


def kv_inverted(k: Kit):
    """Flow Invert (euler, 4 steps) keeping KV-Edit's keys and values on the tiny Flux."""
    return k.once("kv_inverted", lambda: flow_invert(k, solver="euler", keep_keys_values=True))


def kv_edit(k: Kit, **change):
    args = dict(model=flow(k)[0], inversion=kv_inverted(k)[0], mask=box_mask(), skip_steps=1, attn_scale=1.0,
                re_init=False, seed=0)
    args.update(change)
    return call(k.host, "InvertEditKVEdit", **args)


def load_image_mask(k: Kit, alpha: int | None) -> torch.Tensor:
    """Load Image's MASK of a 128x64 picture: without an alpha channel (``alpha`` None: nothing painted, the
    host's 64x64 mask of 0), or with one of ``alpha`` everywhere (0: painted all over, as the mask editor
    saves it; the MASK is 1 - alpha)."""
    from PIL import Image

    name = f"bad_inputs_mask_{alpha}.png"
    picture = Image.new("RGB" if alpha is None else "RGBA", (128, 64), (200, 30, 30) if alpha is None else
                        (200, 30, 30, alpha))
    picture.save(os.path.join(k.host.input_dir, name))
    return call(k.host, "LoadImage", image=name)[1]


def kv_wide(k: Kit):
    """KV-Edit's inversion of a 128x64 picture's latent (8x16)."""
    return k.once("kv_wide", lambda: flow_invert(k, solver="euler", keep_keys_values=True,
                                                 latent={"samples": torch.randn(1, 16, 8, 16)})[0])


def kv_sampled(k: Kit, sigmas=None, sampler: str = "euler", latent=None):
    """KV-Edit's model sampled (its NOISE) on ``sigmas`` (its own by default) with ``sampler``."""
    m, c, _ = flow(k)
    model, noise, own = kv_edit(k)
    guider = call(k.host, "BasicGuider", model=model, conditioning=encode(k.host, c, PROMPT))[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0],
                sigmas=own if sigmas is None else sigmas, latent_image={"samples": latent if latent is not None else
                                                                        torch.randn(1, 16, 8, 8)})


FLOW_CASES += [
    ("kv-edit-rf-solver-inversion", lambda k: flow_invert(k, keep_keys_values=True),
     r"Flow Invert: input 'keep_keys_values' is on with solver rf-solver; KV-Edit inverts with euler"),
    ("kv-edit-with-share-steps", lambda k: flow_invert(k, solver="euler", keep_keys_values=True, share_steps=2,
                                                       share_from_block=0),
     r"Flow Invert: inputs 'share_steps' and 'keep_keys_values' are both on"),
    ("kv-edit-sd3-inversion", lambda k: flow_invert(k, "sd3", solver="euler", keep_keys_values=True),
     r"Flow Invert: input 'model' is SD3; KV-Edit is defined for Flux.1"),
    ("kv-edit-mask-without-keeping", lambda k: flow_invert(k, solver="euler", kv_mask=box_mask()),
     r"Flow Invert: input 'kv_mask' is connected but keep_keys_values is off"),
    ("kv-edit-nothing-kept", lambda k: kv_edit(k, inversion=flow_invert(k, solver="euler")[0]),
     r"KV-Edit: input 'inversion' kept no keys and values .*; invert with Flow Invert's keep_keys_values on"),
    ("kv-edit-rf-solver-record", lambda k: kv_edit(k, inversion=flow_invert(k)[0]),
     r"KV-Edit: input 'inversion' is a rf-solver inversion .*\(KV-Edit keeps Euler's evaluations: invert with "
     r"solver euler\)"),
    ("kv-edit-sd-model", lambda k: kv_edit(k, model=k.model),
     r"KV-Edit: input 'model' is not the model the inversion was made with"),
    ("kv-edit-empty-mask", lambda k: kv_edit(k, mask=torch.zeros(1, 64, 64)),
     r"KV-Edit: input 'mask' is empty \(all 0\): nothing is painted, and KV-Edit remakes only the masked region; "
     r"paint it: right click the image in Load Image > Open in MaskEditor, paint over the region to edit and save"),
    # Load Image's MASK of a picture with nothing painted: its 64x64 mask of 0, not of the picture's shape
    ("kv-edit-nothing-painted-in-load-image", lambda k: kv_edit(k, inversion=kv_wide(k), mask=load_image_mask(k, None)),
     r"KV-Edit: input 'mask' is empty \(all 0\): nothing is painted, .*right click the image in Load Image > Open "
     r"in MaskEditor"),
    ("kv-edit-whole-mask", lambda k: kv_edit(k, mask=torch.ones(1, 64, 64)),
     r"KV-Edit: input 'mask' covers the whole image: KV-Edit keeps the background outside the mask"),
    ("kv-edit-all-painted-in-load-image", lambda k: kv_edit(k, inversion=kv_wide(k), mask=load_image_mask(k, 0)),
     r"KV-Edit: input 'mask' covers the whole image: KV-Edit keeps the background outside the mask and there is "
     r"none; paint only the region to edit \(right click the image in Load Image > Open in MaskEditor"),
    ("kv-edit-mask-under-a-cell", lambda k: kv_edit(k, mask=box_mask(rows=slice(0, 1), cols=slice(0, 1))),
     r"KV-Edit: input 'mask' marks no cell of the 8x8 latent \(what is painted is too thin\); paint the region to "
     r"edit wider"),
    ("kv-edit-mask-of-another-shape", lambda k: kv_edit(k, mask=box_mask()[:, :, :32]),
     r"KV-Edit: input 'mask' is 32x64 and the image 64x64: their shapes differ"),
    ("kv-edit-two-masks", lambda k: kv_edit(k, mask=box_mask().repeat(2, 1, 1)),
     r"KV-Edit: input 'mask' holds 2 masks; give one"),
    ("kv-edit-mask-nan", lambda k: kv_edit(k, mask=box_mask() * NAN),
     r"KV-Edit: input 'mask' .*NaN"),
    ("kv-edit-skip-past-the-schedule", lambda k: kv_edit(k, skip_steps=4),
     r"KV-Edit: input 'skip_steps' is 4; give 0 to 3 \(the inversion has 4 steps; authors: 4 of 28\)"),
    ("kv-edit-attn-scale-nan", lambda k: kv_edit(k, attn_scale=NAN),
     r"KV-Edit: input 'attn_scale' is nan; give a finite number"),
    ("kv-edit-not-the-attention-mask", lambda k: kv_edit(
        k, inversion=flow_invert(k, solver="euler", keep_keys_values=True, kv_mask=box_mask(rows=slice(0, 20)))[0]),
     r"KV-Edit: input 'mask' is not the mask the inversion kept apart"),
    ("kv-edit-other-sigmas", lambda k: kv_sampled(k, sigmas=call(
        k.host, "BasicScheduler", model=flow(k)[0], scheduler="simple", steps=4, denoise=1.0)[0]),
     r"KV-Edit: the model is sampled on 4 steps that are not KV-Edit's \(3: the inversion's from step 1\)"),
    ("kv-edit-midpoint-sampler", lambda k: kv_sampled(k, sampler="dpm_2"),
     r"KV-Edit: the model was called between the inversion's steps; KV-Edit samples with euler"),
    ("kv-edit-latent-of-another-size", lambda k: kv_sampled(k, latent=torch.randn(1, 16, 16, 16)),
     r"KV-Edit: the sampler's latent_image is \(1, 16, 16, 16\), but the inversion was made from a latent"),
]



def sf_inverted(k: Kit):
    """Stable Flow Invert (4 steps) of a random 8x8 latent on the tiny Flux dev."""
    m, c, _ = flow(k)
    return k.once("sf_inverted", lambda: call(k.host, "InvertEditStableFlowInvert", model=m,
                                              latent={"samples": torch.randn(1, 16, 8, 8)},
                                              positive=encode(k.host, c, PROMPT), steps=4, scheduler="simple",
                                              guidance=1.0, nudge=1.15))


def join_conditioning(k: Kit) -> list:
    """One CONDITIONING holding two prompts (batch 2)."""
    (emb, extra), = encode(k.host, flow(k)[1], PROMPT)
    return [[emb.repeat(2, 1, 1), {**extra, "pooled_output": extra["pooled_output"].repeat(2, 1)}]]


def sf_on_sd3(k: Kit):
    m, c, _ = flow(k, "sd3")
    inv = call(k.host, "InvertEditStableFlowInvert", model=m, latent={"samples": torch.randn(1, 16, 8, 8)},
               positive=encode(k.host, c, PROMPT), steps=2, scheduler="simple", guidance=1.0, nudge=1.15)[0]
    return stable_flow(k, model=m, inversion=inv, source=encode(k.host, c, PROMPT), target=encode(k.host, c, PROMPT))


def stable_flow(k: Kit, **change):
    m, c, _ = flow(k)
    args = dict(model=m, inversion=sf_inverted(k)[0], source=encode(k.host, c, PROMPT),
                target=encode(k.host, c, "a yellow circle"), double_blocks="0, 1", single_blocks="1")
    args.update(change)
    return call(k.host, "InvertEditStableFlow", **args)


def sf_generated_one_row(k: Kit):
    """Stable Flow without an inversion, sampled on a latent of one row (its pair conditioning cut to one)."""
    m, c, _ = flow(k)
    model, pair, noise = stable_flow(k, inversion=None)
    guider = call(k.host, "BasicGuider", model=model, conditioning=encode(k.host, c, PROMPT))[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name="euler")[0],
                sigmas=call(k.host, "BasicScheduler", model=m, scheduler="simple", steps=2, denoise=1.0)[0],
                latent_image={"samples": torch.zeros(1, 16, 8, 8)})


def sf_sampled(k: Kit, latent=None, sigmas=None, sampler: str = "euler", conditioning=None):
    """Stable Flow's pair sampled with its NOISE on the inversion's SIGMAS (or ``sigmas``)."""
    model, pair, noise = stable_flow(k)
    guider = call(k.host, "BasicGuider", model=model, conditioning=conditioning or pair)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0],
                sigmas=sf_inverted(k)[1] if sigmas is None else sigmas,
                latent_image={"samples": torch.randn(2, 16, 8, 8) if latent is None else latent})


FLOW_CASES += [
    ("stable-flow-invert-sd-model", lambda k: call(k.host, "InvertEditStableFlowInvert", model=k.model,
                                                   latent={"samples": torch.randn(1, 4, 8, 8)},
                                                   positive=encode(k.host, k.clip, PROMPT), steps=4, scheduler="simple",
                                                   guidance=1.0, nudge=1.15),
     r"Stable Flow Invert: input 'model' is SD15 .*rectified-flow transformers"),
    ("stable-flow-invert-nudge-nan", lambda k: call(k.host, "InvertEditStableFlowInvert", model=flow(k)[0],
                                                    latent={"samples": torch.randn(1, 16, 8, 8)},
                                                    positive=encode(k.host, flow(k)[1], PROMPT), steps=4,
                                                    scheduler="simple", guidance=1.0, nudge=NAN),
     r"Stable Flow Invert: input 'nudge' is nan; give a finite number"),
    ("stable-flow-sd3", sf_on_sd3,
     r"Stable Flow: input 'model' is SD3; Stable Flow's vital layers are Flux.1's"),
    ("stable-flow-other-model", lambda k: stable_flow(k, model=flow(k, "flux-schnell")[0]),
     r"Stable Flow: input 'model' is not the model the inversion was made with"),
    ("stable-flow-flow-invert-record", lambda k: stable_flow(k, inversion=flow_invert(k, solver="euler")[0]),
     r"Stable Flow: input 'inversion' is a flow-euler inversion .*; Stable Flow takes only these inversions: "
     r"stable-flow \(from Stable Flow Invert\)"),
    ("stable-flow-block-past-the-model", lambda k: stable_flow(k, single_blocks="9, 34"),
     r"Stable Flow: input 'single_blocks' names single block 9, but the model has 2 \(0 to 1\)"),
    ("stable-flow-blocks-not-numbers", lambda k: stable_flow(k, double_blocks="first"),
     r"Stable Flow: input 'double_blocks' is 'first'; give block numbers separated by commas"),
    ("stable-flow-no-blocks", lambda k: stable_flow(k, double_blocks="", single_blocks=" "),
     r"Stable Flow: inputs 'double_blocks' and 'single_blocks' are both empty"),
    ("stable-flow-two-source-prompts", lambda k: stable_flow(k, source=join_conditioning(k)),
     r"Stable Flow: input 'source' holds 2 prompts; give one"),
    ("stable-flow-latent-not-repeated", lambda k: sf_sampled(k, latent=torch.randn(1, 16, 8, 8)),
     r"Stable Flow: the sampler's latent_image is \(1, 16, 8, 8\), .*connect the image's latent repeated 2 times "
     r"\(Repeat Latent Batch, amount 2\)"),
    ("stable-flow-other-sigmas", lambda k: sf_sampled(k, sigmas=call(
        k.host, "BasicScheduler", model=flow(k)[0], scheduler="simple", steps=3, denoise=1.0)[0]),
     r"Stable Flow: the model is sampled on 3 steps that are not the inversion's \(4\)"),
    ("stable-flow-generated-one-row", sf_generated_one_row,
     r"Stable Flow: the model is sampled on 1 rows a prompt; Stable Flow samples the source/target pair: its "
     r"CONDITIONING with a latent of 2 rows"),
    ("stable-flow-midpoint-sampler", lambda k: sf_sampled(k, sampler="dpm_2"),
     r"Stable Flow: the model was called between the inversion's steps; Stable Flow samples with euler"),
]

def euler_inverted(k: Kit, family: str = "flux-dev"):
    return k.once(f"euler_inverted_{family}", lambda: flow_invert(k, family, solver="euler"))


def joint(k: Kit, **change):
    """Joint Attention Inject on the tiny Flux dev's Euler inversion (replace, the paper's fractions)."""
    m, c, _ = flow(k)
    args = dict(model=m, clip=c, inversion=euler_inverted(k)[0], source_prompt=PROMPT,
                target_prompt="a red square on a blue background", mode="replace", reweight="", cross_replace=0.8,
                self_replace=0.4, blocks="all", guidance=3.5, local_blend=blended(change))
    args.update(change)
    return call(k.host, "InvertEditJointAttentionInject", **args)


def joint_sampled(k: Kit, latent=None, sigmas=None, sampler: str = "euler", conditioning=None, flow_solver=None,
                  **change):
    """Joint Attention Inject's pair sampled with its NOISE on the inversion's SIGMAS (or ``sigmas``), by
    KSamplerSelect's ``sampler`` (or the pack's Flow Sampler with ``flow_solver``)."""
    model, pair, noise = joint(k, **change)
    guider = call(k.host, "BasicGuider", model=model, conditioning=conditioning or pair)[0]
    chosen = (call(k.host, "KSamplerSelect", sampler_name=sampler)[0] if flow_solver is None
              else call(k.host, "InvertEditFlowSampler", solver=flow_solver)[0])
    return call(k.host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=chosen,
                sigmas=euler_inverted(k)[2] if sigmas is None else sigmas,
                latent_image={"samples": torch.randn(2, 16, 8, 8) if latent is None else latent})


FLOW_CASES += [
    ("joint-p2p-sd-model", lambda k: joint(k, model=k.model, clip=k.clip, inversion=None),
     r"Joint Attention Inject: input 'model' is SD15 .*rectified-flow transformers"),
    ("joint-p2p-ddim-inversion", lambda k: joint(k, inversion=k.inv),
     r"Joint Attention Inject: input 'inversion' is a .*; Joint Attention Inject takes these inversions: flow-euler"),
    ("joint-p2p-other-model", lambda k: joint(k, model=flow(k, "flux-schnell")[0], clip=flow(k, "flux-schnell")[1]),
     r"Joint Attention Inject: input 'model' is not the model the inversion was made with"),
    ("joint-p2p-mode", lambda k: joint(k, mode="swap"), r"Joint Attention Inject: input 'mode' is 'swap'"),
    ("joint-p2p-blocks", lambda k: joint(k, blocks="middle"), r"Joint Attention Inject: input 'blocks' is 'middle'"),
    ("joint-p2p-single-blocks-on-sd3", lambda k: joint(k, model=flow(k, "sd3")[0], clip=flow(k, "sd3")[1],
                                                       inversion=euler_inverted(k, "sd3")[0], blocks="single"),
     r"Joint Attention Inject: input 'blocks' is 'single', but this SD3 model has no such blocks; choose all or "
     r"double"),
    ("joint-p2p-nothing-injected", lambda k: joint(k, cross_replace=0.0, self_replace=0.0),
     r"Joint Attention Inject: inputs 'cross_replace' and 'self_replace' are 0, so the target would never take the "
     r"source's maps"),
    ("joint-p2p-fraction", lambda k: joint(k, cross_replace=1.5),
     r"Joint Attention Inject: input 'cross_replace' is 1.5; use a fraction between 0 and 1"),
    ("joint-p2p-guidance-nan", lambda k: joint(k, guidance=NAN),
     r"Joint Attention Inject: input 'guidance' is nan; give a finite number"),
    ("joint-p2p-reweight-word-missing", lambda k: joint(k, reweight="triangle:2"),
     r"Joint Attention Inject: input 'reweight': 'triangle' is not a word of the target prompt"),
    ("joint-p2p-reweight-not-a-pair", lambda k: joint(k, reweight="square"),
     r"Joint Attention Inject: input 'reweight': 'square' is not 'word:scale'"),
    ("joint-p2p-reweight-overflow", lambda k: joint(k, reweight="square:1e6"),
     r"Joint Attention Inject: input 'reweight': a scale of 1e\+06 would overflow"),
    ("joint-p2p-word-fraction", lambda k: joint(k, cross_replace_words="square:2"),
     r"Joint Attention Inject: input 'cross_replace_words': fractions are between 0 and 1"),
    ("joint-p2p-blend-word-missing", lambda k: joint(k, blend_source_words="triangle"),
     r"Joint Attention Inject: input 'blend_source_words': 'triangle' is not a word of the source prompt"),
    ("joint-p2p-blend-commas", lambda k: joint(k, blend_target_words=" , "),
     r"Joint Attention Inject: input 'blend_target_words' is ' , ', which names no word"),
    ("joint-p2p-blend-threshold", lambda k: joint(k, blend_source_words="circle", blend_threshold=1.0),
     r"Joint Attention Inject: input 'blend_threshold' is 1"),
    ("joint-p2p-blend-subtract-without-blend", lambda k: joint(k, target_prompt=PROMPT, blend_subtract_target_words="blue",
                                                               local_blend=True),
     r"Joint Attention Inject: inputs 'blend_subtract_source_words'/'blend_subtract_target_words' take words out of "
     r"the local blend's region, but there is none: no blend words are given and no word differs"),
    ("joint-p2p-blend-subtract-word-missing", lambda k: joint(k, blend_source_words="circle",
                                                              blend_subtract_source_words="triangle"),
     r"Joint Attention Inject: input 'blend_subtract_source_words': 'triangle' is not a word of the source prompt"),
    ("joint-p2p-blend-blocks", lambda k: joint(k, blend_source_words="circle", blend_blocks="middle"),
     r"Joint Attention Inject: input 'blend_blocks' is 'middle'"),
    ("joint-p2p-blend-blocks-not-edited", lambda k: joint(k, blocks="single", blend_source_words="circle",
                                                          blend_blocks="double"),
     r"Joint Attention Inject: input 'blend_blocks' is 'double', but the local blend reads the maps of edited blocks "
     r"and 'blocks' 'single' edits none of those; choose blend_blocks all, or blocks all or double"),
    ("joint-p2p-replace-word-counts", lambda k: joint(k, target_prompt="a red hexagonal prism on a blue background"),
     r"Joint Attention Inject: mode 'replace' swaps words one for one, but the source prompt has 7 words and the "
     r"target 8"),
    ("joint-p2p-prompts-of-different-lengths", lambda k: joint(k, target_prompt=" ".join(["square"] * 300)),
     r"Joint Attention Inject: the source prompt encodes to 256 text tokens and the target prompt to 301; joint "
     r"attention aligns them token by token\. T5 tokens: the source prompt 9, the target prompt 300, over one window "
     r"of 255 \(a character of a script other than Latin can take several tokens\); shorten the longer prompt"),
    # issue 78: a short prompt in another script overflows SD3's CLIP window (the message named Flux's T5 window)
    ("joint-p2p-sd3-non-latin-target", lambda k: joint(
        k, model=flow(k, "sd3")[0], clip=flow(k, "sd3")[1], inversion=euler_inverted(k, "sd3")[0],
        target_prompt="一只红色的猫坐在蓝色的长椅上，阳光明媚，旁边有一棵绿色的大树和一只白色的小狗在草地上奔跑玩耍", mode="refine"),
     r"Joint Attention Inject: the source prompt encodes to \d+ text tokens and the target prompt to \d+; joint attention "
     r"aligns them token by token\. CLIP-G tokens: the source prompt 7, the target prompt 121, over one window of 75; "
     r"CLIP-L tokens: the source prompt 7, the target prompt 121, over one window of 75"),
    ("joint-p2p-latent-not-repeated", lambda k: joint_sampled(k, latent=torch.randn(1, 16, 8, 8)),
     r"Joint Attention Inject: the sampler's latent_image is \(1, 16, 8, 8\), .*connect the image's latent repeated "
     r"2 times"),
    ("joint-p2p-other-sigmas", lambda k: joint_sampled(k, sigmas=call(
        k.host, "BasicScheduler", model=flow(k)[0], scheduler="simple", steps=3, denoise=1.0)[0]),
     r"Joint Attention Inject: the model is sampled on 3 steps that are not the inversion's \(4\)"),
    ("joint-p2p-midpoint-sampler", lambda k: joint_sampled(k, sampler="dpm_2"),
     r"Joint Attention Inject: the model was called between the inversion's steps; Joint Attention Inject samples "
     r"with euler"),
    ("joint-p2p-blend-with-dpmpp-2m", lambda k: joint_sampled(k, sampler="dpmpp_2m", blend_source_words="circle",
                                                              blend_target_words="square"),
     r"Joint Attention Inject: sampler 'dpmpp_2m' steps differently from the DDIM/Euler step for which the local "
     r"blend makes the blended latent"),
    ("joint-p2p-blend-with-flow-sampler-rf-solver", lambda k: joint_sampled(k, flow_solver="rf-solver",
                                                                            blend_source_words="circle"),
     r"Joint Attention Inject: sampler 'flow_rf_solver' steps differently from the DDIM/Euler step"),
    ("joint-p2p-other-text-length", lambda k: joint_sampled(k, conditioning=[[torch.randn(2, 77, 64), {
        "pooled_output": torch.randn(2, 64), "guidance": 3.5}]]),
     r"Joint Attention Inject: the joint attention has 77 text tokens, not the source and target prompts' 256"),
]

# ============================================================================ issue 80: Qwen-Image's attention nodes
# (per-word maps, Joint Attention Inject, KV-Edit): prompts of another text encoder (the tiny Flux T5 and the tiny
# Qwen2.5-VL are both 64 wide, so the pooled vector tells them apart), a model of another family, what the Qwen text
# cannot give. Kept together: other blocks add Qwen-Image cases of other nodes.

def qwen_joint(k: Kit, **change):
    """Joint Attention Inject on the tiny Qwen-Image's Euler inversion (replace, the paper's fractions)."""
    m, c, _ = flow(k, "qwen-image")
    args = dict(model=m, clip=c, inversion=euler_inverted(k, "qwen-image")[0], source_prompt=PROMPT,
                target_prompt="a red square on a blue background", mode="replace", reweight="", cross_replace=0.8,
                self_replace=0.4, blocks="all", guidance=1.0, local_blend=blended(change))
    args.update(change)
    return call(k.host, "InvertEditJointAttentionInject", **args)


def qwen_joint_sampled(k: Kit, conditioning=None, **change):
    """Qwen-Image's Joint Attention Inject pair (or ``conditioning``) sampled with its NOISE on the inversion's SIGMAS."""
    model, pair, noise = qwen_joint(k, **change)
    return call(k.host, "SamplerCustomAdvanced", noise=noise,
                guider=call(k.host, "BasicGuider", model=model, conditioning=conditioning or pair)[0],
                sampler=call(k.host, "KSamplerSelect", sampler_name="euler")[0],
                sigmas=euler_inverted(k, "qwen-image")[2], latent_image={"samples": torch.randn(2, 16, 1, 8, 8)})


def qwen_kv_sampled(k: Kit, latent, conditioning=None):
    """KV-Edit on the tiny Qwen-Image (its Euler inversion keeping keys and values) sampled on ``latent`` (with
    ``conditioning``, else the prompt's)."""
    m, c, _ = flow(k, "qwen-image")
    inv = k.once("qwen_kv_inverted", lambda: flow_invert(k, "qwen-image", solver="euler", keep_keys_values=True))[0]
    model, noise, sigmas = kv_edit(k, model=m, inversion=inv)
    return call(k.host, "SamplerCustomAdvanced", noise=noise,
                guider=call(k.host, "BasicGuider", model=model,
                            conditioning=conditioning or encode(k.host, c, PROMPT))[0],
                sampler=call(k.host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                latent_image={"samples": latent})


QWEN_ATTENTION_CASES = [
    ("attention-store-qwen-model-flux-clip", lambda k: flow_store(k, "qwen-image", clip=flow(k)[1]),
     r"Attention Store: input 'clip' carries a pooled text vector \(CLIP's\), which QwenImage does not take"),
    ("attention-store-flux-model-qwen-clip", lambda k: flow_store(k, clip=flow(k, "qwen-image")[1]),
     r"Attention Store: input 'clip' carries no pooled text vector; this model \(Flux\) takes one 32 wide"),
    ("attention-store-qwen-word-not-in-prompt", lambda k: flow_store(k, "qwen-image", words="zebra"),
     r"Attention Store: input 'words': \['zebra'\] not in the prompt \(\['a', 'red', 'circle', 'on', 'a', 'blue', "
     r"'background'\]\)"),
    ("attention-store-single-blocks-on-qwen", lambda k: flow_store(k, "qwen-image", dit_blocks="single"),
     r"Attention Store: input 'dit_blocks' is 'single', but this QwenImage model has no such blocks; choose all or "
     r"double"),
    ("attention-store-qwen-model-of-a-flux-inversion", lambda k: flow_store(k, "qwen-image",
                                                                            inversion=euler_inverted(k)[0]),
     r"Attention Store: input 'model' is not the model the inversion was made with"),
    # an SD model: the tiny SD1's context is 64 wide as the tiny Flux T5 and Qwen2.5-VL are (the real ones differ)
    ("attention-store-sd-model-qwen-clip", lambda k: attention_store(k, clip=flow(k, "qwen-image")[1]),
     r"Attention Store: input 'clip' holds the text encoders Qwen2.5-VL, another model family's \(Flux.1, SD3 or "
     r"Qwen-Image\); this model \(SD15\) reads prompts of CLIP: connect its checkpoint's CLIP"),
    ("attention-store-sd-model-flux-clip", lambda k: attention_store(k, clip=flow(k)[1]),
     r"Attention Store: input 'clip' holds the text encoders CLIP-L, T5, another model family's"),
    ("attention-store-qwen-model-sd-clip", lambda k: flow_store(k, "qwen-image", clip=k.clip),
     r"Attention Store: input 'clip' carries a pooled text vector \(CLIP's\), which QwenImage does not take"),
    ("joint-p2p-qwen-model-sd-clip", lambda k: qwen_joint(k, clip=k.clip),
     r"Joint Attention Inject: input 'clip' carries a pooled text vector \(CLIP's\), which QwenImage does not take"),
    ("joint-p2p-qwen-model-flux-clip", lambda k: qwen_joint(k, clip=flow(k)[1]),
     r"Joint Attention Inject: input 'clip' carries a pooled text vector \(CLIP's\), which QwenImage does not take"),
    ("joint-p2p-flux-model-qwen-clip", lambda k: joint(k, clip=flow(k, "qwen-image")[1]),
     r"Joint Attention Inject: input 'clip' carries no pooled text vector; this model \(Flux\) takes one 32 wide"),
    ("joint-p2p-qwen-model-of-a-flux-inversion", lambda k: qwen_joint(k, inversion=euler_inverted(k)[0]),
     r"Joint Attention Inject: input 'model' is not the model the inversion was made with"),
    ("joint-p2p-qwen-single-blocks", lambda k: qwen_joint(k, blocks="single"),
     r"Joint Attention Inject: input 'blocks' is 'single', but this QwenImage model has no such blocks; choose all "
     r"or double"),
    # prompts of two token counts are padded on Qwen-Image, but replace still swaps words one for one
    ("joint-p2p-qwen-replace-word-counts", lambda k: qwen_joint(k, target_prompt="a red hexagonal prism on a blue "
                                                                                 "background"),
     r"Joint Attention Inject: mode 'replace' swaps words one for one, but the source prompt has 7 words and the "
     r"target 8; swap words one for one, or use mode 'refine' to add or remove words"),
    ("joint-p2p-qwen-target-past-the-text-limit", lambda k: qwen_joint(k, target_prompt=" ".join(["square"] * 1030),
                                                                       mode="refine"),
     r"Joint Attention Inject: input 'target_prompt' is a prompt of 1035 text tokens; QwenImage reads at most 1024"),
    ("joint-p2p-qwen-other-text-length", lambda k: qwen_joint_sampled(k, conditioning=[[torch.randn(2, 5, 64), {}]]),
     r"Joint Attention Inject: the joint attention has 5 text tokens, not the source and target prompts' 12"),
    ("kv-edit-qwen-model-of-a-flux-inversion", lambda k: kv_edit(k, model=flow(k, "qwen-image")[0]),
     r"KV-Edit: input 'model' is not the model the inversion was made with"),
    ("kv-edit-qwen-latent-of-another-size", lambda k: qwen_kv_sampled(k, torch.randn(1, 16, 1, 16, 16)),
     r"KV-Edit: the sampler's latent_image is \(1, 16, 1, 16, 16\), but the inversion was made from a latent"),
    ("kv-edit-qwen-sampled-with-an-sd3-prompt", lambda k: qwen_kv_sampled(k, torch.randn(1, 16, 1, 8, 8), encode(
        k.host, flow(k, "sd3")[1], PROMPT)),
     r"KV-Edit: the prompt the edit is sampled with is an embedding 4096 wide; the model takes 64"),
    ("kv-edit-qwen-image-edit-reference", lambda k: qwen_kv_sampled(k, torch.randn(1, 16, 1, 8, 8), call(
        k.host, "TextEncodeQwenImageEdit", clip=flow(k, "qwen-image")[1], prompt="a yellow circle",
        vae=flow(k, "qwen-image")[2], image=torch.rand(1, 64, 64, 3))[0]),
     r"KV-Edit: the prompt the edit is sampled with carries reference images \(ReferenceLatent, "
     r"TextEncodeQwenImageEdit: an instruction edit\) and the image was inverted without them; invert it with the same "
     r"prompt"),
]
FLOW_CASES += QWEN_ATTENTION_CASES
# ============================================================================ end of issue 80's attention cases


# -- issue 77: a model whose weights a GGUF file holds, into the nodes that train its weights --
_GGUF = r"input 'model' holds quantised weights \(\d+ layers in Q8_0: a GGUF file from Unet Loader \(GGUF\)\); "
QUANTISED_CASES = [
    ("dreambooth-gguf-model", lambda k: dreambooth(k, model=k.gguf()),
     r"DreamBooth LoRA: " + _GGUF + r"DreamBooth LoRA trains through the model's weights"),
    ("dreambooth-full-gguf-model", lambda k: dreambooth_full(k, model=k.gguf()),
     r"DreamBooth Fine-Tune: " + _GGUF + r"DreamBooth Fine-Tune trains through the model's weights"),
    ("custom-diffusion-gguf-model", lambda k: custom_diffusion(k, model=k.gguf()),
     r"Custom Diffusion: " + _GGUF),
    ("imagic-fine-tune-gguf-model", lambda k: imagic_fine_tune(k, model=k.gguf()),
     r"Imagic Fine-Tune: " + _GGUF + r".*use the GGUF file for sampling"),
    # a ControlNet on the prompts of a node that takes gradients through the model
    ("null-text-controlnet-negative", lambda k: null_text(k, negative=controlled(k, k.neg)),
     r"Null-Text Optimize: input 'negative' carries a ControlNet \(Apply ControlNet\); Null-Text Optimize takes "
     r"gradients through the model, and the host's UNet adds a ControlNet's residuals in place"),
]


def controlled(k: Kit, conditioning: list) -> list:
    """``conditioning`` through the stock Apply ControlNet with a ControlNet of the tiny SD1 UNet
    (``test_lora_in_graph.controlnet_of``; the host's loader is not needed to build the conditioning)."""
    import comfy.controlnet
    from test_lora_in_graph import controlnet_of

    def make():
        return comfy.controlnet.ControlNet(controlnet_of(k.model))
    control = k.once("controlnet", make)
    return call(k.host, "ControlNetApply", conditioning=conditioning, control_net=control,
                image=torch.zeros(1, 64, 64, 3), strength=1.0)[0]

# ------------------------------------------------------------------ the Qwen-Image templates' graph (issue 80)
# What a Qwen-Image template (Load Diffusion Model, Load CLIP qwen_image, Load VAE) may be given by mistake, and
# the way back: a Qwen-Image model or its text encoder's prompt in the nodes the SD templates start from (DDIM
# Invert, Attention Inject), the message naming the flow nodes that take Qwen-Image; an SD checkpoint's model or
# prompt in the nodes the Qwen-Image templates use (Flow Invert, FlowEdit, Joint Attention Inject, KV-Edit).

def qwen(k: Kit) -> tuple:
    """The tiny random Qwen-Image (MODEL, CLIP, VAE): what the Qwen-Image templates run on in the tests."""
    return flow(k, "qwen-image")


def qwen_latent() -> dict:
    """A latent as Qwen-Image's VAE encodes one image: 16 channels and a frame axis of one."""
    return {"samples": torch.randn(1, 16, 1, 8, 8, generator=torch.Generator().manual_seed(0))}


QWEN_TEMPLATE_CASES = [
    ("ddim-invert-qwen-model", lambda k: call(k.host, "InvertEditDDIMInvert", **dict(
        k.invert_args(), model=qwen(k)[0], positive=encode(k.host, qwen(k)[1], PROMPT), latent=qwen_latent())),
     r"DDIM Invert: input 'model' is QwenImage \(.*\); this node supports Stable Diffusion UNet checkpoints.* "
     r"For Flux.1, SD3 and Qwen-Image use the pack's flow nodes \(InvertEdit/flow: FlowEdit\)"),
    ("attention-inject-qwen-model", lambda k: attention_inject(k, model=qwen(k)[0], clip=qwen(k)[1]),
     r"Attention Inject: input 'model' is QwenImage \(QwenImageTransformer2DModel, .*\); this node supports Stable "
     r"Diffusion UNet checkpoints.* For Flux.1, SD3 and Qwen-Image use the pack's flow nodes"),
    ("flow-invert-sd-model-qwen-prompt", lambda k: flow_invert(k, "qwen-image", model=k.model),
     r"Flow Invert: input 'model' is SD15 \(UNetModel, .*\); this node edits with rectified-flow transformers"),
    ("flowedit-qwen-model-sd-prompt", lambda k: flowedit(k, "qwen-image", source=encode(k.host, k.clip, PROMPT),
                                                         negative=encode(k.host, qwen(k)[1], "")),
     r"FlowEdit: input 'source' carries a pooled text vector \(CLIP's\), which QwenImage does not take: the prompt "
     r"was encoded by another model's text encoders.* Encode it with this model's text encoder \(Load CLIP, type "
     r"qwen_image: Qwen2.5-VL\)"),
    ("joint-p2p-qwen-model-flux-inversion", lambda k: joint(k, model=qwen(k)[0], clip=qwen(k)[1]),
     r"Joint Attention Inject: input 'model' is not the model the inversion was made with \(model family, .*"
     r"Flux vs QwenImage\)"),
    ("kv-edit-sd-model-qwen-inversion", lambda k: kv_edit(k, model=k.model, inversion=flow_invert(
        k, "qwen-image", latent=qwen_latent(), solver="euler", keep_keys_values=True)[0]),
     r"KV-Edit: input 'model' is not the model the inversion was made with \(model family, .*QwenImage vs SD15\)"),
]


# ============================================================================ issue 81: the instruction lock
# KV-Edit on an instruction editor (Flux.1 Kontext: the tiny Flux with ReferenceLatent; Qwen-Image-Edit: the tiny
# Qwen-Image with TextEncodeQwenImageEdit), Changed Region, and the other nodes' refusal of reference tokens.

def kontext_prompt(k: Kit, text: str = PROMPT, latent: torch.Tensor | None = None, family: str = "flux-dev") -> list:
    """An instruction editor's prompt on the tiny model of ``family``: the text, then ReferenceLatent of ``latent``
    (the flow cases' random 8x8 latent by default)."""
    latent = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0)) if latent is None else latent
    return call(k.host, "ReferenceLatent", conditioning=encode(k.host, flow(k, family)[1], text),
                latent={"samples": latent})[0]


def lock_inverted(k: Kit):
    """Flow Invert (euler, 4 steps, keeping keys and values) of the flow cases' latent with the empty instruction
    and its reference on the tiny Flux (Kontext's way)."""
    return k.once("lock_inverted", lambda: flow_invert(k, solver="euler", keep_keys_values=True,
                                                       positive=kontext_prompt(k, ""))[0])


def lock_sampled(k: Kit, conditioning, inversion=None, latent=None, **change):
    """KV-Edit on the lock's inversion (or ``inversion``) sampled with ``conditioning``."""
    model, noise, sigmas = kv_edit(k, inversion=inversion or lock_inverted(k), **change)
    return call(k.host, "SamplerCustomAdvanced", noise=noise,
                guider=call(k.host, "BasicGuider", model=model, conditioning=conditioning)[0],
                sampler=call(k.host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                latent_image={"samples": torch.randn(1, 16, 8, 8) if latent is None else latent})


def changed_region(k: Kit, **change):
    image = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    edited = image.clone()
    edited[:, :, 2:5, 3:6] += 2.0
    args = dict(image={"samples": image}, edited={"samples": edited}, threshold=0.3, grow=1)
    args.update(change)
    return call(k.host, "InvertEditChangedRegion", **args)


LOCK_CASES = [
    # the stages of a lock receive what was made from the instruction editor, and check it was
    ("lock-no-reference-latent", lambda k: lock_sampled(k, encode(k.host, flow(k)[1], PROMPT)),
     r"KV-Edit: the image was inverted with reference images \(16 tokens: an instruction edit\) and the prompt the "
     r"edit is sampled with \(or its negative\) carries none; sample with the same prompt"),
    ("lock-reference-of-another-size", lambda k: lock_sampled(k, kontext_prompt(k, latent=torch.randn(1, 16, 16, 16))),
     r"KV-Edit: the prompt the edit is sampled with carries reference images of 64 tokens and the inversion's 16; give "
     r"the edit the reference the image was inverted with"),
    ("lock-cache-reference-without-reference", lambda k: kv_edit(k, cache_reference=True),
     r"KV-Edit: input 'cache_reference' is on and the image was inverted without reference images"),
    ("lock-cache-reference-not-kept", lambda k: kv_edit(k, inversion=lock_inverted(k), cache_reference=True),
     r"KV-Edit: input 'cache_reference' is on and the inversion kept no keys and values of the reference image; invert "
     r"with Flow Invert's keep_reference on"),
    ("lock-keep-reference-without-keeping", lambda k: flow_invert(k, solver="euler", positive=kontext_prompt(k, ""),
                                                                  keep_reference=True),
     r"Flow Invert: input 'keep_reference' is on but keep_keys_values is off"),
    ("lock-keep-reference-of-a-plain-prompt", lambda k: flow_invert(k, solver="euler", keep_keys_values=True,
                                                                    keep_reference=True),
     r"Flow Invert: input 'keep_reference' is on and the prompt carries no reference image"),
    ("lock-mask-of-another-size", lambda k: kv_edit(k, inversion=lock_inverted(k), mask=box_mask()[:, :, :32]),
     r"KV-Edit: input 'mask' is 32x64 and the image 64x64: their shapes differ; give the mask painted on the image"),
    ("lock-empty-region", lambda k: kv_edit(k, inversion=lock_inverted(k), mask=torch.zeros(1, 64, 64)),
     r"KV-Edit: input 'mask' is empty \(all 0\): nothing is painted"),
    ("lock-region-covering-everything", lambda k: kv_edit(k, inversion=lock_inverted(k), mask=torch.ones(1, 64, 64)),
     r"KV-Edit: input 'mask' covers the whole image: KV-Edit keeps the background outside the mask and there is none"),
    ("lock-kontext-model-qwen-image-edit-prompt", lambda k: lock_sampled(k, kontext_prompt(k, family="qwen-image")),
     r"KV-Edit: the prompt the edit is sampled with carries no pooled text vector \(CLIP's\), which this Flux model "
     r"takes"),
    ("lock-kontext-model-qwen-image-edit-inversion-prompt", lambda k: flow_invert(
        k, solver="euler", keep_keys_values=True, positive=kontext_prompt(k, "", family="qwen-image")),
     r"Flow Invert: input 'positive' carries no pooled text vector; this model \(Flux\) takes one"),
    ("lock-kontext-model-of-a-qwen-image-edit-inversion", lambda k: kv_edit(k, inversion=flow_invert(
        k, "qwen-image", solver="euler", keep_keys_values=True, positive=kontext_prompt(
            k, "", torch.randn(1, 16, 1, 8, 8), family="qwen-image"))[0]),
     r"KV-Edit: input 'model' is not the model the inversion was made with"),
    ("lock-qwen-image-edit-reference-of-a-flux-vae", lambda k: flow_invert(
        k, "qwen-image", solver="euler", keep_keys_values=True, positive=kontext_prompt(k, "", family="qwen-image")),
     r"Flow Invert: input 'positive': reference image 0 is a latent \(1, 16, 8, 8\); this model \(QwenImage\) reads one "
     r"image's \[batch, channels, 1, height, width\]"),
    ("lock-reference-of-an-sd-latent", lambda k: flow_invert(k, solver="euler", keep_keys_values=True,
                                                             positive=kontext_prompt(k, "", torch.randn(1, 4, 8, 8))),
     r"Flow Invert: input 'positive': reference image 0 has 4 channels and this model \(Flux\) takes 16: it was "
     r"encoded with another model's VAE"),
    ("lock-reference-nan", lambda k: flow_invert(k, solver="euler", positive=kontext_prompt(
        k, "", torch.full((1, 16, 8, 8), NAN))),
     r"Flow Invert: input 'positive' reference image 0 .*NaN"),
    # a node that does not read reference tokens refuses them by name rather than edit the wrong ones
    ("lock-rf-solver-values-with-a-reference", lambda k: flow_invert(k, positive=kontext_prompt(k, ""), share_steps=2,
                                                                     share_from_block=0),
     r"Flow Invert: the model is sampled with reference images \(ReferenceLatent, TextEncodeQwenImageEdit: Flux.1 "
     r"Kontext's or Qwen-Image-Edit's instruction editing\), whose tokens this node does not edit"),
    ("lock-joint-p2p-sampled-with-a-reference", lambda k: joint_sampled(
        k, conditioning=call(k.host, "ReferenceLatent", conditioning=joint(k)[1],
                             latent={"samples": torch.randn(1, 16, 8, 8)})[0]),
     r"Joint Attention Inject: the model is sampled with reference images"),
    # Changed Region: the region an unlocked run changed
    ("changed-region-nothing-changed", lambda k: changed_region(k, edited=changed_region_image()),
     r"Changed Region: input 'edited' is the image itself: nothing changed, so there is no region to lock around"),
    ("changed-region-everything-changed", lambda k: changed_region(k, edited={"samples": torch.randn(1, 16, 8, 8)},
                                                                    threshold=0.01),
     r"Changed Region: the change covers the whole image at threshold 0.01 and grow 1: the unlocked edit redrew "
     r"everything"),
    ("changed-region-another-size", lambda k: changed_region(k, edited={"samples": torch.randn(1, 16, 8, 12)}),
     r"Changed Region: input 'edited' is a latent \(16, 8, 12\) and 'image' \(16, 8, 8\): the edit was sampled at "
     r"another size"),
    ("changed-region-threshold-zero", lambda k: changed_region(k, threshold=0.0),
     r"Changed Region: input 'threshold' is 0: .* so every cell would be in it; give a threshold between 0 and 1"),
    ("changed-region-threshold-nan", lambda k: changed_region(k, threshold=NAN),
     r"Changed Region: input 'threshold' is nan; give a finite number"),
    ("changed-region-grow-negative", lambda k: changed_region(k, grow=-1),
     r"Changed Region: input 'grow' is -1; give a whole number of cells, 0 or more"),
    ("changed-region-clip-latent", lambda k: changed_region(k, edited={"samples": torch.randn(1, 16, 3, 8, 8)}),
     r"Changed Region: input 'edited' holds 3 frames; give one image's latent"),
    ("changed-region-batch", lambda k: changed_region(k, image={"samples": torch.randn(2, 16, 8, 8)}),
     r"Changed Region: input 'image' holds 2 images; give one"),
    ("changed-region-not-a-latent", lambda k: changed_region(k, image=torch.randn(1, 16, 8, 8)),
     r"Changed Region: input 'image' is not an image's LATENT"),
    ("changed-region-nan", lambda k: changed_region(k, edited={"samples": torch.full((1, 16, 8, 8), NAN)}),
     r"Changed Region: input 'edited' .*NaN"),
]


def region_lock(k: Kit, **change):
    """Region Lock on the tiny Flux (Kontext's way) with the flow cases' latent and box."""
    args = dict(model=flow(k)[0], latent={"samples": torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))},
                mask=box_mask(), region_cache=True, warmup_steps=1, refresh_steps="")
    args.update(change)
    return call(k.host, "InvertEditRegionLock", **args)


def region_lock_sampled(k: Kit, latent=None, sampler: str = "euler"):
    model = region_lock(k)[0]
    sigmas = call(k.host, "BasicScheduler", model=flow(k)[0], scheduler="simple", steps=3, denoise=1.0)[0]
    return call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "RandomNoise", noise_seed=0)[0],
                guider=call(k.host, "BasicGuider", model=model, conditioning=kontext_prompt(k))[0],
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0], sigmas=sigmas,
                latent_image={"samples": torch.randn(1, 16, 8, 8) if latent is None else latent})


LOCK_CASES += [
    ("region-lock-sd-model", lambda k: region_lock(k, model=k.model),
     r"Region Lock: input 'model' is SD15"),
    ("region-lock-warmup-zero-with-cache", lambda k: region_lock(k, warmup_steps=0),
     r"Region Lock: input 'warmup_steps' is 0 with region_cache on"),
    ("region-lock-refresh-not-numbers", lambda k: region_lock(k, refresh_steps="16, later"),
     r"Region Lock: input 'refresh_steps' is '16, later'; give step numbers separated by commas"),
    ("region-lock-refresh-negative", lambda k: region_lock(k, refresh_steps="-2"),
     r"Region Lock: input 'refresh_steps' holds -2; steps count from 0"),
    ("region-lock-empty-latent", lambda k: region_lock(k, latent={"samples": torch.zeros(1, 16, 8, 8)}),
     r"Region Lock: input 'latent' is empty \(all zeros\)"),
    ("region-lock-not-a-latent", lambda k: region_lock(k, latent=torch.randn(1, 16, 8, 8)),
     r"Region Lock: input 'latent' is not a LATENT"),
    ("region-lock-empty-region", lambda k: region_lock(k, mask=torch.zeros(1, 64, 64)),
     r"Region Lock: input 'mask' is empty \(all 0\): nothing is painted, and Region Lock remakes only the masked region"),
    ("region-lock-region-covering-everything", lambda k: region_lock(k, mask=torch.ones(1, 64, 64)),
     r"Region Lock: input 'mask' covers the whole image: Region Lock keeps the background outside the mask and there "
     r"is none; paint only the region to edit .*, or sample the editor as it is"),
    ("region-lock-mask-of-another-size", lambda k: region_lock(k, mask=box_mask()[:, :, :32]),
     r"Region Lock: input 'mask' is 32x64 and the image 64x64: their shapes differ"),
    ("region-lock-sampled-on-another-latent", lambda k: region_lock_sampled(k, latent=torch.randn(1, 16, 16, 16)),
     r"Region Lock: the latent being sampled is \(1, 16, 16, 16\) and the image's \(1, 16, 8, 8\); sample with the "
     r"image's latent"),
    ("region-lock-second-order-sampler", lambda k: region_lock_sampled(k, sampler="dpm_2"),
     r"Region Lock: the model was called between the run's steps \(a second-order sampler\)"),
    ("region-lock-qwen-clip-latent", lambda k: region_lock(k, model=flow(k, "qwen-image")[0],
                                                           latent={"samples": torch.randn(1, 16, 3, 8, 8)}),
     r"Region Lock: input 'latent' has shape \(1, 16, 3, 8, 8\): 3 frames"),
]


def changed_region_image() -> dict:
    return {"samples": torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))}
# ============================================================================ end of issue 81's cases

import sys as _sys  # noqa: E402  (the part lists below sit beside this file; make_docs loads it by path)
_sys.path.insert(0, os.path.dirname(os.path.abspath(__file__))) if os.path.dirname(os.path.abspath(__file__)) not in _sys.path else None
from bad_inputs_wan import WAN_CASES; CASES += WAN_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_clips import CLIP_CASES; CASES += CLIP_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_tokenflow import TOKENFLOW_CASES; CASES += TOKENFLOW_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_views import VIEW_CASES; CASES += VIEW_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_flowviews import FLOWVIEWS_CASES; CASES += FLOWVIEWS_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_uniedit_flow import UNIEDIT_CASES; CASES += UNIEDIT_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_views3d import VIEWS3D_CASES; CASES += VIEWS3D_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_sv3d import SV3D_CASES; CASES += SV3D_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_flowalign import FLOWALIGN_CASES; CASES += FLOWALIGN_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_ftedit import FTEDIT_CASES; CASES += FTEDIT_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_dnaedit import DNAEDIT_CASES; CASES += DNAEDIT_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_layerverse import LAYERVERSE_CASES; CASES += LAYERVERSE_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_consist_edit import CONSIST_EDIT_CASES; CASES += CONSIST_EDIT_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_attentive_eraser import ATTENTIVE_ERASER_CASES; CASES += ATTENTIVE_ERASER_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_dragon_diffusion import DRAGON_DIFFUSION_CASES; CASES += DRAGON_DIFFUSION_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_drag_diffusion import DRAG_DIFFUSION_CASES; CASES += DRAG_DIFFUSION_CASES  # noqa: E402, E702  (tests/host is on the path)
from bad_inputs_self_guidance import SELF_GUIDANCE_CASES; CASES += SELF_GUIDANCE_CASES  # noqa: E402, E702  (tests/host is on the path)


CASES += FILE_CASES + PAIR_CASES + FLOW_CASES + QUANTISED_CASES + QWEN_TEMPLATE_CASES + LOCK_CASES


@pytest.mark.parametrize("run, message", [pytest.param(run, message, id=name) for name, run, message in CASES])
def test_bad_input_is_refused_by_name(kit, run, message):
    with pytest.raises(ValueError, match=message):
        run(kit)


def test_case_ids_are_unique():
    names = [name for name, _, _ in CASES]
    assert len(names) == len(set(names))


# -- the good inputs next to the bad ones still work -----------------------------------------

def test_later_start_with_the_matching_latent_is_sampled(host, kit):
    """A run from a later step than the inversion's is fine when it samples the trajectory's point there."""
    point = kit.model.model.process_latent_out(kit.inv.trajectory[2].clone())
    out = apply_inversion(kit, kit.inv, {"samples": point}, start_at_step=2)[0]["samples"]
    assert torch.isfinite(out).all()


def test_save_with_a_plain_prefix_is_listed(host, kit):
    save(kit, "inversions/bad_inputs_plain")
    listed = host.nodes.NODE_CLASS_MAPPINGS["InvertEditLoadInversion"].define_schema().inputs[0].options
    assert any("bad_inputs_plain" in name for name in listed)


def test_null_text_interrupt_stops_within_one_inner_step(host, kit):
    """Interrupt is honoured at the next inner (Adam) step, not only between timesteps."""
    import comfy.model_management

    calls = []
    counted = kit.model.clone()

    def count(apply, args):
        calls.append(1)
        if len(calls) == 2:   # the cond pass and the first inner step's pass of the first timestep ran
            comfy.model_management.interrupt_current_processing(True)
        return apply(args["input"], args["timestep"], **args["c"])

    counted.set_model_unet_function_wrapper(count)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            null_text(kit, model=counted, inner_steps=50, early_stop=False)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert len(calls) == 2   # without the inner-step check: 50 inner steps and more before it stops


# -- stated warnings: a result that is right, and a line in the log naming the node (issue 24) --

def test_proximal_guidance_says_when_its_threshold_removed_the_edit(host, kit, caplog):
    """Quantile -100 (a fixed threshold of 100) zeroes every guidance term: the target is the source."""
    target = encode(host, kit.clip, "a red square on a blue background")
    pair = [[torch.cat([kit.pos[0][0], target[0][0]]), {}]]
    for quantile, said in ((-100.0, True), (0.7, False)):
        guider = proximal(kit, positive=pair, quantile=quantile, pull="none")
        caplog.clear()
        with caplog.at_level("WARNING"):
            out = call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
                       sampler=call(host, "KSamplerSelect", sampler_name="ddim")[0], sigmas=kit.sigmas,
                       latent_image=kit.pair())[0]["samples"]
        assert torch.equal(out[0], out[1]) is said
        assert ("Proximal Guidance: the target came out identical to the source" in caplog.text) is said


def test_inverting_under_guidance_is_named_in_the_log(host, kit, caplog):
    with caplog.at_level("WARNING"):
        ddim_invert(kit, cfg=7.5, negative=kit.neg)
    assert "DDIM Invert: inverting at cfg 7.5; an inversion the host's samplers retrace reconstructs well only at cfg 1" \
        in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        call(kit.host, "InvertEditEDICTInvert", **kit.invert_args(cfg=3.0), negative=kit.neg, mixing=0.93)
    assert "inverting at cfg" not in caplog.text   # EDICT is exact at any cfg


def test_a_replaced_negative_prompt_is_named_in_the_log(host, kit, caplog):
    """Negative-Prompt and Null-Text inversions replace the run's negative prompt: the log says so."""
    npi = call(host, "InvertEditNegativePromptInversion", inversion=kit.inv, positive=kit.pos)[0]
    with caplog.at_level("INFO"):
        apply_inversion(kit, npi, cfg=7.5)
    assert "Apply Inversion: the run's negative prompt is replaced by the source prompt" in caplog.text


def test_a_lora_the_inversion_was_not_made_with_is_a_warning(host, kit, caplog):
    """The same checkpoint with other weight patches: sampled, with a warning naming the node."""
    key = next(k for k in kit.model.model_state_dict() if k.endswith(".weight") and "diffusion_model" in k)
    lora = kit.model.clone()
    lora.add_patches({key: (torch.zeros_like(kit.model.model_state_dict()[key]),)}, 1.0)
    with caplog.at_level("WARNING"):
        guarded = call(host, "InvertEditApplyInversion", model=lora, inversion=kit.inv)[0]
        out = ksampler(kit, guarded, kit.lat)[0]["samples"]
    assert torch.isfinite(out).all()
    assert "Apply Inversion: the model's weight patches (LoRA) differ from those it was made with" in caplog.text


def test_every_case_names_the_node_that_refuses_it(host):
    """Each expected message starts with the refusing node's display name (docs/nodes.md lists each
    node's refusals from this table, grouped by that name)."""
    from workshop.make_docs import message_name, readable

    names = {message_name(host, key) for key in host.nodes.NODE_CLASS_MAPPINGS if key.startswith("InvertEdit")}
    unnamed = [case for case, _, message in CASES if readable(message).partition(": ")[0] not in names]
    assert not unnamed, f"cases whose message does not start with 'Node Name: ': {unnamed}"



# -- what the host's validation sees, and the good files next to the bad ones --------------

def test_validation_refuses_names_and_waits_for_links(kit):
    load = load_node(kit)
    # a link: its value is checked when the node runs
    assert load.validate_inputs(inversion=None, input_types={"inversion": "COMBO"}) is True
    # no value and no link: a list sent as {"__value__": [...]}, which would stop the host's prompt worker
    assert "input 'inversion' is a list, not a file name" in load.validate_inputs(inversion=None, input_types={})
    assert "input 'inversion' is of type int (5), not a file name" in load.validate_inputs(inversion=5)
    assert "holds a NUL character" in load.validate_inputs(inversion="a\x00.safetensors")
    assert "files marked [temp] are not read" in load.validate_inputs(inversion="a.safetensors [temp]")
    assert load.fingerprint_inputs(inversion=5) == 5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_precision_file_loads_as_float32_and_reconstructs(kit, dtype):
    """A file whose latents and trajectory are float16/bfloat16 (float64) is read as float32 and
    reconstructs as the float32 file does, within that precision."""
    name = f"half_{str(dtype).removeprefix('torch.')}.safetensors"
    inv, lat, sigmas = load_changed(kit, name, latent=kit.inv.latent.to(dtype), trajectory=kit.inv.trajectory.to(dtype))
    assert inv.latent.dtype == inv.trajectory.dtype == lat["samples"].dtype == torch.float32
    assert torch.equal(sigmas, kit.inv.sampling_sigmas)
    eps = torch.finfo(dtype).eps if dtype != torch.float64 else 0.0   # float32 -> float64 -> float32 is exact
    assert torch.allclose(inv.latent, kit.inv.latent, rtol=eps, atol=1e-6)
    full = apply_inversion(kit, kit.inv)[0]["samples"]
    half = apply_inversion(kit, inv, lat)[0]["samples"]
    assert float((half - full).abs().max()) <= 4 * eps * float(full.abs().max())


def test_every_method_round_trips_through_a_file(kit):
    """The shape checks accept what each method's node writes (DDIM, EDICT, edit-friendly DDPM,
    Negative-Prompt, Null-Text), saved by Save Inversion and loaded by Load Inversion."""
    records = {"ddim": kit.inv, "edict": kit.edict()[0], "edit-friendly": kit.ddpm()[0],
               "negative-prompt": negative_prompt(kit), "null-text": null_text(kit, inner_steps=1)[0]}
    for method, inv in records.items():
        assert inv.method == method
        save(kit, f"inversions/methods_{method}", inv)
        name = [n for n in load_node(kit).define_schema().inputs[0].options if f"methods_{method}_" in n][-1]
        back = call(kit.host, "InvertEditLoadInversion", inversion=name)[0]
        assert back.method == method and set(back.clues) == set(inv.clues)
        assert torch.equal(back.trajectory, inv.trajectory)
        for key, clue in inv.clues.items():
            assert torch.equal(back.clues[key], clue)


def test_input_mark_and_plain_name_load_the_same_file(kit):
    load_state(kit, "marked.safetensors")
    plain = call(kit.host, "InvertEditLoadInversion", inversion="marked.safetensors")[0]
    marked = call(kit.host, "InvertEditLoadInversion", inversion="marked.safetensors [input]")[0]
    assert torch.equal(plain.trajectory, marked.trajectory)


def test_bundled_sample_inversion_is_valid(host):
    sample = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "sample_inversion.safetensors")
    inv = host.pack.hostkit.inversion_files.load_inversion(sample)
    assert inv.method == "ddim" and inv.steps == 50



# -- what works now: prompts longer than one CLIP window -------------------------------------------

@pytest.mark.parametrize("editor", ["masactrl", "plug-and-play"])
def test_a_target_prompt_of_two_windows_works_in_the_self_attention_editors(kit, editor):
    """The pair's prompts are repeated to a common token length, as the host batches conds: the
    source row is the one a short target gives (it attends to its own prompt), the target is edited."""
    make = {"masactrl": masactrl, "plug-and-play": plug_and_play}[editor]
    out_long = make(kit, target_prompt=LONG)
    assert out_long[1][0][0].shape[:2] == (2, 154)
    long, short = pair_sample(kit, out_long), pair_sample(kit, make(kit, target_prompt=TARGET))
    assert torch.isfinite(long).all()
    assert rel_err(long[:1], short[:1]) < 1e-5            # float sums over a repeated context
    assert rel_err(long[1:], short[1:]) > 1e-3 and rel_err(long[1:], long[:1]) > 1e-3


def test_a_long_target_prompt_keeps_sdxls_pooled_output(host, tiny):
    model, clip, _ = tiny("sdxl")
    lat = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))}
    outs = {t: call(host, "InvertEditMasaCtrl", model=model, clip=clip, latent=lat, source_prompt=TARGET, target_prompt=t,
                    start_step=1, start_layer=0) for t in (LONG, "a red circle on a blue background")}
    emb, extra = outs[LONG][1][0]
    assert emb.shape[:2] == (2, 154) and extra["pooled_output"].shape[0] == 2
    sample = {t: call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=STEPS, cfg=5.0,
                      sampler_name="ddim", scheduler="ddim_uniform", positive=pair, negative=encode(host, clip, ""),
                      latent_image=pair_lat, start_at_step=0, end_at_step=10000,
                      return_with_leftover_noise="disable")[0]["samples"] for t, (m, pair, pair_lat) in outs.items()}
    assert torch.isfinite(sample[LONG]).all()
    assert rel_err(sample[LONG][:1], sample["a red circle on a blue background"][:1]) < 1e-5


@pytest.mark.parametrize("change", [dict(blend_source_words="circle", blend_target_words="square", reweight="square:2"),
                                    dict(mode="refine", target_prompt="a red fluffy circle on a blue background",
                                         cross_replace_words="fluffy:0.3"),
                                    dict(target_prompt="a red hippopotamus on a blue background")])
def test_attention_inject_edits_a_repeated_context_as_its_prompts(kit, change):
    """A negative prompt of two windows makes the host repeat the pair's 77 tokens to 154: the edit
    (swap, refine, reweight, per-word fractions, local blend) acts on each copy alike, so a negative
    repeated to 154 tokens gives the pair of the 77-token one."""
    outputs = attention_inject(kit, **change)
    doubled = [[kit.neg[0][0].repeat(1, 2, 1), dict(kit.neg[0][1])]]
    assert rel_err(pair_sample(kit, outputs, doubled), pair_sample(kit, outputs)) < 1e-5
    assert torch.isfinite(pair_sample(kit, outputs, encode(kit.host, kit.clip, LONG))).all()


# -- warnings: the result is right, and the log says what the user may not have meant -------------

def test_a_source_prompt_other_than_the_inversions_is_warned_in_either_order(kit, caplog):
    """Apply Inversion before or after the editor: the run compares the editor's source prompt with
    the prompt the inversion was made with (an empty one can be meant: only a warning)."""
    apply = lambda m: call(kit.host, "InvertEditApplyInversion", model=m, inversion=kit.inv)[0]
    other = dict(source_prompt="a red circle on a green background", target_prompt="a red square on a green background")
    runs = {"before": lambda: attention_inject(kit, model=apply(kit.model), **other),
            "after": lambda: (lambda o: (apply(o[0]),) + o[1:])(attention_inject(kit, **other)),
            "same prompt": lambda: (lambda o: (apply(o[0]),) + o[1:])(attention_inject(kit)),
            "plug-and-play": lambda: (lambda o: (apply(o[0]),) + o[1:])(plug_and_play(kit))}
    for name, make in runs.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert torch.isfinite(pair_sample(kit, make())).all()
        warned = [r.getMessage() for r in caplog.records if "is not the prompt the inversion" in r.getMessage()]
        assert len(warned) == (0 if name == "same prompt" else 1), (name, warned)
        node = "Plug-and-Play" if name == "plug-and-play" else "Attention Inject"
        assert all(w.startswith(f"{node}: the source prompt is not the prompt the inversion (from Apply Inversion)")
                   for w in warned)


@pytest.mark.parametrize("editor", ["masactrl", "plug-and-play", "attention inject"])
def test_the_same_prompt_twice_is_warned(kit, caplog, editor):
    make = {"masactrl": masactrl, "plug-and-play": plug_and_play, "attention inject": attention_inject}[editor]
    with caplog.at_level(logging.WARNING):
        make(kit, source_prompt=TARGET, target_prompt=TARGET)
    assert any("the source and target prompts are the same, so the target will reproduce the source" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("editor", ["Attention Inject", "Joint Attention Inject"])
def test_the_same_prompt_twice_with_the_blend_words_left_empty_is_warned(kit, caplog, editor):
    """Issue 79: blend words left empty, the local blend takes the words that differ between the prompts; with none
    differing the edit is global, and the log says so, naming the node and the inputs (local_blend off: not said)."""
    make = attention_inject if editor == "Attention Inject" else joint
    for local_blend, said in ((True, True), (False, False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            make(kit, target_prompt=PROMPT, local_blend=local_blend)
        assert (f"{editor}: inputs 'blend_source_words' and 'blend_target_words' are empty, so the local blend would "
                f"take the words that differ between source_prompt and target_prompt, but no word differs: the edit "
                f"is global" in caplog.text) is said, caplog.text


def test_flowedit_says_when_its_edit_starts_at_pure_noise(host, kit, caplog):
    """FlowEdit with n_max at or past the run's steps edits from sigma 1, which replaced the whole picture on the
    toy flow model (issue 78): the run says so; at the authors' n_max below the steps it does not."""
    for steps, said in ((4, True), (6, False)):
        caplog.clear()
        with caplog.at_level("WARNING"):
            flowedit_run(kit, flowedit(kit), steps=steps)   # n_max 4
        assert ("FlowEdit: n_max (4) is not below the run's 4 steps, so the edit starts at pure noise"
                in caplog.text) is said


def test_a_local_blend_that_keeps_almost_nothing_is_named_in_the_log(host, kit, caplog):
    """Attention Inject's local blend at blend_threshold 0.99 (its widget's maximum) discards almost the whole edit
    (at 256 px the tiny model's mask keeps 3.5% of the image; 0.9% at 512 px): the run says so at its last step (issue 78: "the edit
    disappears" without a word); at the paper's 0.3 (all of it kept) it does not."""
    big = {"samples": torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0)) * 5.0}   # 256 px
    inverted = call(host, "InvertEditDDIMInvert", model=kit.model, latent=big, positive=kit.pos, steps=STEPS,
                    scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[1]
    for threshold, said in ((0.99, True), (0.3, False)):
        model, pair, latent = attention_inject(kit, latent=inverted, blend_source_words="circle",
                                               blend_threshold=threshold)[:3]
        caplog.clear()
        with caplog.at_level("WARNING"):
            call(host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=STEPS, cfg=1.0,
                 sampler_name="ddim", scheduler="ddim_uniform", positive=pair, negative=pair, latent_image=latent,
                 start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")
        assert ("Attention Inject: the local blend's mask keeps" in caplog.text) is said, (threshold, caplog.text)


def test_attention_store_says_when_its_mask_is_every_word(host, kit, caplog):
    """Attention Store with no 'words' makes its mask of every word of the prompt, most of the image on a DiT (issue
    78): the run says so, naming how much it covers; with a word it does not."""
    for words, said in (("", True), ("circle", False)):
        caplog.clear()
        with caplog.at_level("WARNING"):
            flow_store(kit, words=words)
        assert ("Attention Store: input 'words' is empty, so the mask is every word of the prompt's" in caplog.text) \
            is said, caplog.text

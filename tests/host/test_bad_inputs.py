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
import os
import struct

import pytest
import torch

from workshop.headless.calls import call, encode

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

    def invert_args(self, **change) -> dict:
        args = dict(model=self.model, latent=self.src, positive=self.pos, steps=STEPS, scheduler="ddim_uniform",
                    start_at_step=0, cfg=1.0)
        args.update(change)
        return args

    def pair(self) -> dict:
        return {"samples": self.lat["samples"].repeat(2, 1, 1, 1)}


@pytest.fixture(scope="module")
def kit(host, tiny):
    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv, lat, sigmas = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=pos, steps=STEPS,
                            scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    return Kit(host, model, clip, pos, encode(host, clip, ""), src, inv, lat, sigmas)


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


def ksampler(k: Kit, model, latent: dict, start_at_step: int = 0):
    return call(k.host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=STEPS, cfg=1.0,
                sampler_name="ddim", scheduler="ddim_uniform", positive=k.pos, negative=k.pos, latent_image=latent,
                start_at_step=start_at_step, end_at_step=10000, return_with_leftover_noise="disable")


def apply_inversion(k: Kit, inversion, latent: dict | None = None, start_at_step: int = 0):
    guarded = call(k.host, "InvertEditApplyInversion", model=k.model, inversion=inversion)[0]
    return ksampler(k, guarded, latent if latent is not None else k.lat, start_at_step)


def pack_sampler(k: Kit, node: str, inversion, latent: dict, sigmas, cfg: float):
    sampler = call(k.host, node, inversion=inversion)[0]
    guider = call(k.host, "CFGGuider", model=k.model, positive=k.pos, negative=k.neg, cfg=cfg)[0]
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


def attention_inject(k: Kit, **change):
    args = dict(model=k.model, clip=k.clip, latent=k.lat, source_prompt=PROMPT,
                target_prompt="a red square on a blue background", mode="replace", reweight="", cross_replace=0.8,
                self_replace=0.4)
    args.update(change)
    return call(k.host, "InvertEditAttentionInject", **args)


def latent_blend(k: Kit, **change):
    args = dict(model=k.model, latent=k.pair(), mask=torch.ones(1, 64, 64), start=0.0, end=1.0)
    args.update(change)
    return call(k.host, "InvertEditLatentBlend", **args)


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


def cross_guidance(k: Kit, sampler: str = "ddim", noise=None, sampled=None, **change):
    """Cross-Attention Guidance on the DDIM inversion, sampled (the run's refusals come from the sampler)."""
    args = dict(model=k.model, positive=k.pos, target=encode(k.host, k.clip, "a red square on a blue background"),
                negative=k.neg, latent=k.lat, cfg=7.5, guidance_amount=0.1)
    args.update(change)
    guider, pair = call(k.host, "InvertEditCrossAttentionGuidance", **args)
    return call(k.host, "SamplerCustomAdvanced", noise=noise or call(k.host, "DisableNoise")[0], guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0], sigmas=k.sigmas,
                latent_image=sampled if sampled is not None else pair)


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


def guided_run(k: Kit, guider, sampler: str = "ddim"):
    """SamplerCustomAdvanced with ``guider`` from the inversion's latent (DisableNoise, its sigmas)."""
    return call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "DisableNoise")[0], guider=guider,
                sampler=call(k.host, "KSamplerSelect", sampler_name=sampler)[0], sigmas=k.sigmas, latent_image=k.lat)


def proximal(k: Kit, **change):
    args = dict(model=k.model, positive=k.pos, negative=k.neg, inversion=k.inv, cfg=7.5, prox="l0", quantile=0.7,
                quantile_over="pair", start_step=0, pull="inversion", recon_lr=1.0, recon_t=400.0, dilate_mask=1)
    args.update(change)
    return call(k.host, "InvertEditProximalGuidance", **args)[0]


def noise_map(k: Kit, **change):
    args = dict(model=k.model, positive=k.pos, negative=k.neg, inversion=k.inv, cfg=10.0, noise_map_scale=10.0,
                grad_scale=5000.0, loss="l1")
    args.update(change)
    return call(k.host, "InvertEditNoiseMapGuidance", **args)[0]


NOT_AN_INVERSION = {"samples": torch.zeros(1, 4, 8, 8)}   # a LATENT where an INVERSION belongs
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
     r"'bad_corrupt.safetensors' is not a valid InvertEdit inversion file \(it cannot be read as safetensors"),
    ("load-truncated", lambda k: load_file(k, "bad_truncated.safetensors", valid_file_bytes(k)[:-100]),
     r"'bad_truncated.safetensors' is not a valid InvertEdit inversion file \(it cannot be read as safetensors"),
    ("load-other-safetensors", lambda k: load_file(k, "bad_other.safetensors", tensors={"a": torch.zeros(1)}),
     r"'bad_other.safetensors' is not a valid InvertEdit inversion file \(it has no InvertEdit format 1 metadata"),
    ("load-fingerprint-wrong-type", lambda k: load_state(k, "bad_fingerprint.safetensors", fingerprint="[1, 2]"),
     r"'bad_fingerprint.safetensors' is not a valid InvertEdit inversion file \(its fingerprint is a JSON array, "
     r"not an object\)"),
    ("load-settings-not-json", lambda k: load_state(k, "bad_settings.safetensors", settings="{steps: 4"),
     r"'bad_settings.safetensors' is not a valid InvertEdit inversion file \(its settings is not valid JSON\)"),
    ("load-unknown-method", lambda k: load_state(k, "bad_method.safetensors", method="magic"),
     r"'bad_method.safetensors' is not a valid InvertEdit inversion file \('magic' is not an inversion method"),
    ("load-null-text-without-data", lambda k: load_state(k, "bad_null_text.safetensors", replaced(k.inv, method="null-text")),
     r"'bad_null_text.safetensors' is not a valid InvertEdit inversion file \(a null-text inversion without its "
     r"data: null_text\)"),
    ("load-edict-without-data", lambda k: load_state(k, "bad_edict.safetensors", replaced(k.inv, method="edict")),
     r"'bad_edict.safetensors' is not a valid InvertEdit inversion file \(a edict inversion without its data: edict.y\)"),
    ("load-ddpm-without-data", lambda k: load_state(k, "bad_ddpm.safetensors", replaced(k.inv, method="edit-friendly")),
     r"'bad_ddpm.safetensors' is not a valid InvertEdit inversion file \(a edit-friendly inversion without its data: "
     r"ddpm.corrections\)"),
    ("load-nan-latent", lambda k: load_state(k, "bad_nan.safetensors", replaced(k.inv, latent=with_nan(k.lat)["samples"])),
     r"'bad_nan.safetensors' is not a valid InvertEdit inversion file \(its latent has NaN or infinite values\)"),

    # -- the nodes that refine or read an inversion --
    ("null-text-not-an-inversion", lambda k: null_text(k, inversion="inversion.safetensors"),
     r"Null-Text Optimize: input 'inversion' is a str, not an INVERSION"),
    ("null-text-cfg-nan", lambda k: null_text(k, cfg=NAN), r"Null-Text Optimize: input 'cfg' is nan"),
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
     r"Direct Inversion: input 'inversion' is a NoneType, not an INVERSION"),
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

    # -- pair editors and guidance --
    ("masactrl-start-step-negative", lambda k: masactrl(k, start_step=-3),
     r"MasaCtrl: input 'start_step' is -3; give 0 or more"),
    ("masactrl-start-layer-negative", lambda k: masactrl(k, start_layer=-1),
     r"MasaCtrl: input 'start_layer' is -1; give 0 or more"),
    ("plug-and-play-injection-nan", lambda k: plug_and_play(k, feature_injection=NAN),
     r"Plug-and-Play: input 'feature_injection' is nan"),
    ("attention-inject-mode-bogus", lambda k: attention_inject(k, mode="bogus"),
     r"Attention Inject: input 'mode' is 'bogus'; choose one of 'replace', 'refine'"),
    ("attention-inject-reweight-nan", lambda k: attention_inject(k, reweight="square:nan"),
     r"Attention Inject: input 'reweight': 'square:nan' is not a finite number"),
    ("attention-inject-reweight-huge", lambda k: attention_inject(k, reweight="square:1e308"),
     r"Attention Inject: input 'reweight': a scale of 1e\+308 would overflow the attention maps; use scales between -100 and 100"),
    ("latent-blend-start-nan", lambda k: latent_blend(k, start=NAN), r"Latent Blend: input 'start' is nan"),
    ("latent-blend-end-inf", lambda k: latent_blend(k, end=INF), r"Latent Blend: input 'end' is inf"),
    ("diffedit-strength-nan", lambda k: diffedit(k, strength=NAN), r"DiffEdit Mask: input 'strength' is nan"),
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
     r"Proximal Guidance: input 'inversion' is a edict inversion, which only the EDICT Sampler replays; .*DDIM Invert"),
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
     r"Noise Map Guidance: input 'inversion' is a Direct Inversion, which already puts the source back on its "
     r"trajectory"),
    ("noise-map-ddpm-inversion", lambda k: noise_map(k, inversion=k.ddpm()[0]),
     r"Noise Map Guidance: input 'inversion' is a edit-friendly inversion, which only the Edit-Friendly DDPM Sampler"),
    ("noise-map-ancestral-sampler", lambda k: guided_run(k, noise_map(k), sampler="euler_ancestral"),
     r"Noise Map Guidance: sampler 'euler_ancestral' adds fresh noise at every step and cannot retrace an inversion"),
    ("noise-map-other-steps", lambda k: call(k.host, "SamplerCustomAdvanced", noise=call(k.host, "DisableNoise")[0],
                                             guider=noise_map(k), sampler=call(k.host, "KSamplerSelect",
                                                                                sampler_name="ddim")[0],
                                             sigmas=call(k.host, "BasicScheduler", model=k.model, scheduler="ddim_uniform",
                                                         steps=6, denoise=1.0)[0], latent_image=k.lat),
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
]


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

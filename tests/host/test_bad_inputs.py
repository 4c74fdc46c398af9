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


def replaced(inversion, **change):
    return dataclasses.replace(inversion, **change)


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
     r"Toy World Model \(built-in demo\): input 'world' is 'three objects'; choose one of 'one object \(128 px\)'"),
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

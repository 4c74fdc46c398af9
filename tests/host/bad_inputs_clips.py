"""Bad inputs of a clip on the SD family (issue 82, part clip-sd), in ``tests/host/test_bad_inputs.py``'s shape:
``(id, run(kit), message)``. A clip of one frame given to Cross-Frame Attention, anchors out of range, an inversion
of another frame count (Apply Inversion, a pair editor), a clip whose frames are of another size than the
inversion's, a sampled batch that is not the clip's frames, and the nodes that edit one image only (Null-Text
Optimize, the local blend) given a clip."""
from __future__ import annotations

import torch

from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a blue background", "a red square on a blue background"


def _clip(frames: int = 3, size: int = 8) -> dict:
    return {"samples": torch.randn(frames, 4, size, size, generator=torch.Generator().manual_seed(0)) * 5.0}


def _invert(k, frames: int = 3):
    return k.once(("clip_inversion", frames), lambda: call(
        k.host, "InvertEditDDIMInvert", model=k.model, latent=_clip(frames), positive=k.pos, steps=4,
        scheduler="ddim_uniform", start_at_step=0, cfg=1.0))


def _sample(k, model, latent: dict, positive=None, cfg: float = 1.0):
    return call(k.host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=4, cfg=cfg,
                sampler_name="ddim", scheduler="ddim_uniform", positive=positive or k.pos, negative=k.neg,
                latent_image=latent, start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")


def _cross(k, latent=None, anchors="first and previous", anchor_frames=""):
    return call(k.host, "InvertEditCrossFrameAttention", model=k.model, latent=latent or _clip(),
                anchors=anchors, anchor_frames=anchor_frames)[0]


def _applied(k, frames: int):
    return call(k.host, "InvertEditApplyInversion", model=k.model, inversion=_invert(k, frames)[0])[0]


def _pair_on_inversion_of(k, frames: int, inverted: int):
    m, pair, lat = call(k.host, "InvertEditMasaCtrl", model=_applied(k, inverted), clip=k.clip,
                        latent=_clip(frames), source_prompt=SOURCE, target_prompt=TARGET, start_step=1, start_layer=0)
    return _sample(k, m, lat, pair)


def _fatezero(k, latent=None, **kw):
    args = dict(source_prompt=SOURCE, target_prompt=TARGET, mode="refine", cross_replace=0.8, self_replace=0.6,
                blend_words="circle", blend_threshold=0.3)
    args.update(kw)
    return call(k.host, "InvertEditFateZero", model=k.model, clip=k.clip, latent=latent or _clip(), **args)


CLIP_CASES = [
    ("fatezero-one-frame", lambda k: _fatezero(k, _clip(1)),
     r"FateZero Fusion: input 'latent' is a clip of 1 frame; connect 2 frames or more"),
    ("fatezero-replace-other-token-count", lambda k: _fatezero(k, mode="replace",
                                                                target_prompt="a big red square on a blue background"),
     r"FateZero Fusion: mode 'replace' swaps tokens one for one, but the source prompt has \d+ tokens and the target "
     r"\d+; use mode 'refine'"),
    ("fatezero-blend-word-not-in-source", lambda k: _fatezero(k, blend_words="triangle"),
     r"FateZero Fusion: .*triangle"),
    ("fatezero-fraction-out-of-range", lambda k: _fatezero(k, self_replace=1.5),
     r"FateZero Fusion: input 'self_replace' is 1.5; give a fraction from 0 to 1 \(paper: 0.6\)"),
    ("cross-frame-one-frame", lambda k: _cross(k, _clip(1)),
     r"Cross-Frame Attention: input 'latent' is a clip of 1 frame; connect 2 frames or more \(an IMAGE batch"),
    ("cross-frame-anchor-out-of-range", lambda k: _cross(k, anchor_frames="0, 3"),
     r"Cross-Frame Attention: input 'anchor_frames' \('0, 3'\): frame 3 is out of range for a clip of 3 frames "
     r"\(0 to 2, or -1 for the last\)"),
    ("cross-frame-anchor-not-a-number", lambda k: _cross(k, anchor_frames="first"),
     r"Cross-Frame Attention: input 'anchor_frames' \('first'\): 'first' is not a frame number"),
    ("cross-frame-listed-without-frames", lambda k: _cross(k, anchors="listed frames"),
     r"Cross-Frame Attention: input 'anchor_frames' \(''\): anchors 'listed frames' needs frames listed"),
    ("cross-frame-batch-not-the-clip", lambda k: _sample(k, _cross(k), _clip(4)),
     r"Cross-Frame Attention: the sampler runs a batch of 4 rows in 1 chunk\(s\), not the clip's 3 frames "
     r"\(or 6: a source/target pair of them\)"),
    ("apply-inversion-other-frame-count", lambda k: _sample(k, _applied(k, 3), _clip(2)),
     r"Apply Inversion: the inversion holds a clip of 3 frames, but the latent being sampled has 2 rows; sample the "
     r"inversion's own LATENT \(3 frames\) or a pair editor's LATENT of it \(6 rows"),
    ("apply-inversion-frames-of-another-size", lambda k: _sample(k, _applied(k, 3), _clip(3, size=16)),
     r"Apply Inversion: the latent being sampled is \(4, 16, 16\) \(channels, height, width\) but the inversion was "
     r"made from a \(4, 8, 8\) latent"),
    ("pair-editor-inversion-other-frame-count", lambda k: _pair_on_inversion_of(k, 2, 4),
     r"MasaCtrl: the MODEL carries an inversion \(Apply Inversion\) of 4 frames, but the LATENT pair holds a clip of "
     r"2; apply the inversion of this clip"),
    ("null-text-clip", lambda k: call(k.host, "InvertEditNullTextOptimize", model=k.model, inversion=_invert(k)[0],
                                      positive=k.pos, negative=k.neg, cfg=7.5, inner_steps=1, learning_rate=0.01,
                                      early_stop=1e-5),
     r"Null-Text Optimize: input 'inversion' is of a clip of 3 frames, and Null-Text Optimize finds one null text "
     r"for one image"),
    ("local-blend-clip", lambda k: call(k.host, "InvertEditAttentionInject", model=k.model, clip=k.clip,
                                        latent=_clip(2), source_prompt=SOURCE, target_prompt=TARGET, mode="replace",
                                        reweight="", cross_replace=0.8, self_replace=0.4),
     r"Attention Inject: input 'latent' is a clip of 2 frames, and the local blend masks one image pair; set "
     r"local_blend off for a clip"),
]

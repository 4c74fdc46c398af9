"""Inputs and outputs that several nodes declare alike, in one place so that their tooltips agree."""
from __future__ import annotations

import comfy.samplers
from comfy_api.latest import ComfyExtension, io  # noqa: F401 (the node API, handed to the nodes)

from ..guidance.concepts import Concept
from .errors import NodeInputError, check_at_least, check_choice, check_finite
from .sockets import Concepts
from .sockets import Inversion as InversionSocket

SCHEDULERS = comfy.samplers.KSampler.SCHEDULERS   # the host's scheduler names, for the nodes' Combo inputs


DIRECTIONS = ("add", "remove")


def concept_inputs(scale: float, warmup: int, threshold: float, paper: str) -> list:
    """The inputs every concept node shares (defaults: the ``paper``'s, from the node's technique)."""
    return [
        io.Combo.Input("direction", options=list(DIRECTIONS), default="add",
                       tooltip="Add the concept, or remove it (the paper's reverse direction)."),
        io.Float.Input("scale", default=scale, min=0.0, max=100.0, step=0.1,
                       tooltip=f"Edit guidance scale ({paper}: {scale:g})."),
        io.Int.Input("warmup", default=warmup, min=0, max=1000, tooltip=f"Steps before the concept acts ({paper}: {warmup})."),
        io.Int.Input("cooldown", default=0, min=0, max=1000,
                     tooltip="Step from which the concept stops acting; 0: never (the default)."),
        io.Float.Input("threshold", default=threshold, min=0.0, max=0.999, step=0.01,
                       tooltip=f"Percentile below which the concept's guidance (or mask) is dropped ({paper}: "
                               f"{threshold:g})."),
        io.Float.Input("weight", default=1.0, min=0.0, max=100.0, step=0.1,
                       tooltip="Weight against the other concepts (all 1: equal)."),
        Concepts.Input("concepts", optional=True, tooltip="Concepts from other concept nodes, to chain."),
    ]


def make_concept(direction: str, scale: float, warmup: int, cooldown: int, threshold: float, weight: float,
                 tokens: tuple[int, ...] | None = None, node: str = "SEGA Concept") -> Concept:
    """A concept from the inputs of ``concept_inputs``, checked (the host checks neither the
    dropdown's value nor NaN)."""
    check_choice(node, "direction", direction, DIRECTIONS)
    check_finite(node, scale=scale, threshold=threshold, weight=weight)
    check_at_least(node, 0, warmup=warmup, cooldown=cooldown, weight=weight)
    if not 0.0 <= threshold < 1.0:
        raise NodeInputError(node, f"input 'threshold' is {threshold}; give a percentile from 0 up to (not "
                                   f"including) 1 (paper: 0.9).")
    return Concept(scale=scale, reverse=direction == "remove", warmup=warmup, cooldown=cooldown or None,
                   threshold=threshold, weight=weight, tokens=tokens)


def check_concept_weights(node: str, concepts: list[Concept], divides: bool) -> None:
    """Refuse weights that leave nothing to guide: the weights of all concepts summing to 0 and,
    where the guidance ``divides`` the edits by the acting concepts' weight sum while only some
    concepts are past their warm-up (SEGA), a step at which the concepts past their warm-up all
    have weight 0 or are past their cooldown (0/0: a black image)."""
    if sum(c.weight for c in concepts) <= 0:
        raise NodeInputError(node, f"input 'concepts': the weights of all {len(concepts)} concepts sum to 0, so no "
                                   f"concept can act (0/0); give at least one concept a weight above 0 (1 each: "
                                   f"equal weights).")
    if not divides:
        return
    for step in range(min(c.warmup for c in concepts), max(c.warmup for c in concepts)):
        warm = [c for c in concepts if c.warmup <= step]
        if sum(c.weight for c in warm if c.cooldown is None or step < c.cooldown) <= 0:
            raise NodeInputError(node, f"input 'concepts': at step {step} only concepts with weight 0 (or past their "
                                       f"cooldown) have warmed up, and SEGA divides their edits by their weights' sum "
                                       f"until every concept has (0/0: a black image); give those concepts a weight "
                                       f"above 0, or all concepts the same warmup.")


# The largest cfg an inverter takes: above it no inversion the host's samplers retrace means
# anything (toy world, DDIM at 50 steps: 45 dB at cfg 1, 17 at 7.5, 12 at 30, 6 at 50), and the exact
# ones (EDICT, edit-friendly DDPM) are used at 3-15.
INVERT_CFG_MAX = 30.0


def inverter_inputs(*, steps: int, start_at_step: int, cfg: float, paper: str, start_tooltip: str,
                    cfg_tooltip: str) -> list:
    """The inputs every inverter node shares (model, latent, source prompt, schedule, guidance),
    with the paper's defaults."""
    return [
        io.Model.Input("model", tooltip="The model to invert with. Sample with the same model (LoRAs included)."),
        io.Latent.Input("latent", tooltip="The source image's latent, from VAE Encode."),
        io.Conditioning.Input("positive", tooltip="The source prompt: a caption of the image as it is (the papers' "
                                                  "source prompt)."),
        io.Int.Input("steps", default=steps, min=1, max=1000,
                     tooltip=f"Steps ({paper}: {steps}). Sample with the same number of steps."),
        io.Combo.Input("scheduler", options=SCHEDULERS, default="ddim_uniform",
                       tooltip="The sigma schedule; sample with the same one. ddim_uniform gives the papers' DDIM "
                               "timesteps (diffusers' DDIMScheduler, steps_offset=1, from and to sigma 0); the "
                               "PnPInversion code's set_alpha_to_one=False variant is not a host schedule."),
        io.Int.Input("start_at_step", default=start_at_step, min=0, max=999, tooltip=start_tooltip),
        io.Float.Input("cfg", default=cfg, min=0.0, max=INVERT_CFG_MAX, step=0.1, round=0.01, tooltip=cfg_tooltip),
        io.Conditioning.Input("negative", optional=True,
                              tooltip="The unconditional prompt (usually empty); only used when cfg is not 1."),
    ]


def inverter_outputs(latent_tooltip: str, sigmas_tooltip: str) -> list:
    """INVERSION, LATENT and SIGMAS, the outputs of every inverter node."""
    return [
        InversionSocket.Output(display_name="INVERSION", tooltip="The inversion: schedule, trajectory, clues and "
                                                                  "fingerprint, for Apply Inversion, Save Inversion, "
                                                                  "the samplers and the editors."),
        io.Latent.Output(display_name="LATENT", tooltip=latent_tooltip),
        io.Sigmas.Output(display_name="SIGMAS", tooltip=sigmas_tooltip),
    ]


def pair_inputs(*, source_default: str, source_tooltip: str, target_default: str, target_tooltip: str) -> list:
    """The inputs every pair editor (Attention Inject, MasaCtrl, Plug-and-Play) starts with."""
    return [
        io.Model.Input("model", tooltip="The model to sample with (patches already on it are kept)."),
        io.Clip.Input("clip", tooltip="Its text encoder: both prompts are encoded, in one batch of 2."),
        io.Latent.Input("latent", tooltip="The inverted latent (e.g. DDIM Invert's LATENT); it is paired."),
        io.String.Input("source_prompt", multiline=True, default=source_default, tooltip=source_tooltip),
        io.String.Input("target_prompt", multiline=True, default=target_default, tooltip=target_tooltip),
    ]


def pair_outputs(patches: str) -> list:
    """MODEL, positive (the prompt pair) and latent (the LATENT pair): the outputs of every pair editor."""
    return [
        io.Model.Output(tooltip=f"A clone of the model with the {patches}."),
        io.Conditioning.Output(display_name="positive", tooltip="Source and target prompts as one batch of 2 (row 0 "
                                                                "source, row 1 target)."),
        io.Latent.Output(display_name="latent", tooltip="The latent twice: row 0 source, row 1 target."),
    ]


def flow_inverter_outputs() -> list:
    """INVERSION, NOISE and SIGMAS, the outputs of every flow inverter node."""
    return [InversionSocket.Output(tooltip="The inversion: schedule, trajectory and fingerprint (Save Inversion keeps "
                                           "it)."),
            io.Noise.Output(tooltip="The inverted noise: SamplerCustomAdvanced's noise, with the image's latent as its "
                                    "latent_image, starts the run at the inversion."),
            io.Sigmas.Output(tooltip="The schedule to sample back with (SamplerCustomAdvanced's sigmas).")]


# The inputs of both Prompt-to-Prompt nodes (Attention Inject on a UNet, Joint Attention Inject on a DiT)

STEP_COUNTS = ("Steps counted as the reference code does: of N sampling steps, cross-attention maps are injected in the "
               "first int(f * (N + 1)) steps, self-attention maps in the first int(f * N) (50 steps at 0.8: 40; 15 steps "
               "at 0.1: 1). The sampler's log says the counts of each run.")


def blend_inputs(sampler: str, threshold: float, start: float) -> list:
    """The local blend's inputs (its words, threshold and start), as both Prompt-to-Prompt nodes (UNet
    and joint attention) take them; ``sampler`` says which sampler the blend's step is made for, the
    paper's ``threshold`` and ``start`` are the node's technique's."""
    return [io.String.Input("blend_source_words", default="", optional=True,
                            tooltip="Local blend (paper's LocalBlend): words of the source prompt whose attention "
                                    "marks the edited region, comma-separated (paper: the edited object, given by "
                                    "hand; PIE-Bench's blended word, e.g. 'circle'). Empty, with blend_target_words "
                                    "empty: the words that differ between the prompts, as the authors choose them (a "
                                    "swapped word: 'squirrel' / 'lion'; added words: the object they join on both "
                                    "sides, 'a cat' -> 'a silver cat': cat / silver, cat); the log names them. Not "
                                    f"used with local_blend off (a global edit). The blend is made for the {sampler} "
                                    f"step: sample with {sampler}."),
            io.String.Input("blend_target_words", default="", optional=True,
                            tooltip="Local blend: words of the target prompt whose attention marks the edited region "
                                    "(e.g. 'square'; empty with blend_source_words empty: the words that differ). The "
                                    "mask is the OR of the source's and the target's."),
            io.Float.Input("blend_threshold", default=threshold, min=0.01, max=0.99, step=0.01, optional=True,
                           tooltip=f"Local blend: threshold on the max-pooled maps, normalised to a maximum of 1 "
                                   f"(paper: {threshold:g}); between 0 and 1: at 1 no pixel is edited, at 0 every pixel."),
            io.Float.Input("blend_start", default=start, min=0.0, max=0.95, step=0.05, optional=True,
                           tooltip=f"Local blend: fraction of the steps before blending starts (paper: {start:g}); the "
                                   "latents are blended after each step from step int(f * N) on (below 1: at 1 "
                                   "it never starts).")]


def local_blend_input(default: bool) -> io.Boolean.Input:
    """The local blend's switch, last of both Prompt-to-Prompt nodes' inputs (a saved workflow's widget
    values keep their places); ``default`` its technique's paper default."""
    return io.Boolean.Input("local_blend", default=default, optional=True, label_on="on",
                            label_off="off (global edit)",
                            tooltip=f"Local blend (paper's LocalBlend; paper: {'on' if default else 'off'} for a "
                                    "local edit, as in its local edits and PIE-Bench's runs): the target follows "
                                    "the source outside the blend words' attention. On: on the blend words, or, "
                                    "both empty, on the words that differ between the prompts. Off: a global edit "
                                    "(style, season, light: the whole image may change); the blend and subtract "
                                    "words are kept but not used.")


def blend_subtract_inputs() -> list:
    """The local blend's subtract words (Prompt-to-Prompt's code: ``LocalBlend(..., substruct_words=...)``), after
    every other input of both Prompt-to-Prompt nodes."""
    return [io.String.Input("blend_subtract_source_words", default="", optional=True,
                            tooltip="Local blend: words of the source prompt whose attention is taken out of the edited "
                                    "region, comma-separated (the reference code's substruct_words, e.g. 'house' to "
                                    "change the background and not the house; its maps are not max-pooled). Needs "
                                    "a local blend (blend words, or words that differ); empty (the paper's default): "
                                    "none."),
            io.String.Input("blend_subtract_target_words", default="", optional=True,
                            tooltip="Local blend: words of the target prompt whose attention is taken out of the edited "
                                    "region (the source's and the target's are OR-ed, as the blend words are); empty: "
                                    "none.")]

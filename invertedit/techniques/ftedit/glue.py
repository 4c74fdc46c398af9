"""FTEdit inside the host (math in ``fixed_point.py``, policy in ``invariance.py``): FTEdit Invert's loop on
Flow Invert's body (``hostkit/flow_inverters.py``), and the patched clone of an SD3 or Flux.1 model that samples the
source/target pair: the invariance policy (the pack's DiT attention driver) on every joint block but the last (SD3,
the authors') or on the double-stream blocks (Flux.1, Justin900429/RF-Image-Editing's port), and the source row
following the inversion (``hostkit/flow_pair.SourceRow``), which is the authors' residual.

Where the Flux port differs from the authors' SD3 code (``pipeline/ft_edit.py``, ``processor/
ft_editing_attn_processor.py``), the authors' method is kept: its inversion evaluates the model ``fixed_point_steps``
(3) times at the same latent and the step's start (plain Euler at three times the cost), FTEdit Invert solves the
fixed point as the authors; its schedule stops short of sigma 0 (``num_inference_steps + 1`` timesteps), the host's
reaches it; its controllers count 37 calls a step (SD3.5 Large's blocks) over Flux's 19 double blocks, so a step
fraction acts about twice as many steps as it says (attn_ratio 0.15 of 25: about 6, not 3), here steps are counted
(int(N x f)). Its blocks (all 19 double-stream ones for both controls) and guidance (2, both rows) are kept.

The residual (``edit_img_with_residual``): after each Euler step of the pair the authors add to the source row
``all_latents[-2 - i] - src_prev_sample``, so the source row is the inversion's next state, exactly, at every
step: the source's attention, which the target's reads, is the inverted image's. ``SourceRow`` puts the
inversion's state into the source row of every model call, which is the same model input; the sampler's own
source row (what comes out) differs from the image by the last step's reconstruction error only."""
from __future__ import annotations

import logging

from ...attention.align import sequence_refine
from ...attention.prompt_to_prompt import check_fractions
from ...hostkit.dit_attention import dit_blocks, install_dit_policy
from ...hostkit.errors import NodeInputError
from ...hostkit.fingerprint import conditioning_fingerprint
from ...hostkit.flow_inverters import FEWEST_STEPS, InvertedNoise, flow_invert
from ...hostkit.flow_pair import SourceRow
from ...hostkit.pair import encode_prompt, join_pair, warn_same_prompts
from ...hostkit.patches import wrap_model_calls
from ...hostkit.sampling import check_flow_family
from ...hostkit.tokens import longer_prompt, stream_words
from ...inversion.methods import FTEDIT
from ...inversion.record import Inversion
from . import fixed_point
from .invariance import Invariance

WRAPPER_KEY = "invertedit_ftedit_source_row"
#: the tokenizers whose tokens make a family's text sequence, by ``text_sequence`` (Flux: T5's; CLIP-L gives its
#: pooled vector); SD3: all
ENCODERS = {"t5xxl": ("t5xxl",)}
#: the families FTEdit's control is defined on, by their text sequence: SD3/SD3.5 (the authors'; CLIP's window, then
#: T5's) and Flux.1 (Justin900429/RF-Image-Editing's port; T5's)
TEXT_SEQUENCES = ("clip+t5xxl", "t5xxl")


def check_iterations(node: str, iterations: int, average: tuple[int, int]) -> None:
    if iterations < 0:
        raise NodeInputError(node, f"input 'iterations' is {iterations}; give 0 (plain Euler at the step's far end) "
                                   f"or more (authors: {fixed_point.ITERATIONS}).")
    if average[0] < 0 or average[1] < average[0]:
        raise NodeInputError(node, f"inputs 'average_from' {average[0]} and 'average_until' {average[1]} are not a "
                                   f"range of iterations [from, until); give 0 <= from <= until (authors: "
                                   f"{fixed_point.AVERAGE[0]} and {fixed_point.AVERAGE[1]}: every iteration's velocity "
                                   f"averaged).")


def ftedit_invert(node: str, model, samples, positive, steps: int, scheduler: str, iterations: int,
                  average: tuple[int, int], guidance: float):
    """(INVERSION, NOISE, SIGMAS) of FTEdit's fixed-point inversion of the image's latent ``samples``."""
    check_iterations(node, iterations, average)

    def loop(velocity, x, sigmas, callback):
        return fixed_point.invert(velocity, x, sigmas.flip(0), iterations, average, callback)

    inversion = flow_invert(node, FTEDIT, model, samples, positive, steps, scheduler, guidance, loop,
                            {"iterations": iterations, "average_from": average[0], "average_until": average[1]},
                            fewest=FEWEST_STEPS["euler"])
    return inversion, InvertedNoise(inversion, node), inversion.sampling_sigmas


def controlled_blocks(model) -> list:
    """The blocks FTEdit controls. SD3: every joint block but the last (the authors' 37 of SD3.5 Large's 38). Flux:
    the double-stream blocks, all 19 (the port's: its ``norm1_context`` forward on every ``transformer_blocks``
    entry, its value-injecting processor on ``transformer_blocks`` 0 to 36, i.e. all), the single-stream blocks left
    as they are (their norm modulates text and image together)."""
    doubles = dit_blocks(model, ("double_block",))
    if dit_blocks(model, ("single_block",)):
        return doubles
    return doubles[:-1]


def ftedit(node: str, model, clip, inversion: Inversion, source_prompt: str, target_prompt: str,
           adaln_steps: float, attention_steps: float, guidance: float = 2.0):
    """A clone of ``model`` sampling FTEdit's pair, the pair's CONDITIONING (row 0 the source, row 1 the target;
    Flux dev: both rows at the distilled ``guidance``, as the port samples them) and the NOISE that starts both rows
    at the inversion."""
    family = check_flow_family(model, node)
    if family.text_sequence not in TEXT_SEQUENCES:
        raise NodeInputError(node, f"input 'model' is {family.config_name}; FTEdit's control is built for SD3/SD3.5 "
                                   f"(the authors' code) and Flux.1 (a port), whose text runs through each joint "
                                   f"block's adaptive norm: load an SD3, SD3.5 or Flux.1 model.")
    check_fractions(node, adaln_steps=adaln_steps, attention_steps=attention_steps)
    blocks = controlled_blocks(model)
    if not blocks:
        raise NodeInputError(node, f"input 'model' has {len(dit_blocks(model))} joint block; FTEdit controls every "
                                   f"joint block but the last, so it needs at least 2.")
    source, target = encode_prompt(clip, source_prompt), encode_prompt(clip, target_prompt)
    lengths = (source[0][0].shape[1], target[0][0].shape[1])
    if lengths[0] != lengths[1]:
        raise NodeInputError(node, f"the source prompt encodes to {lengths[0]} text tokens and the target prompt to "
                                   f"{lengths[1]}; FTEdit aligns them token by token. "
                                   f"{longer_prompt(clip, {'source prompt': source_prompt, 'target prompt': target_prompt}, ENCODERS.get(family.text_sequence))}.")
    streams = [stream_words(clip, text, node, family.text_sequence, lengths[0], name)
               for name, text in (("source_prompt", source_prompt), ("target_prompt", target_prompt))]
    mapper, alphas = sequence_refine(*streams, lengths[0])
    warn_same_prompts(node, source_prompt, target_prompt)
    made = inversion.fingerprint.get("positive")
    if made is not None and made != conditioning_fingerprint(source):
        logging.warning("%s: the source prompt is not the prompt the image was inverted with, so the source row's "
                        "features are not the image's; give the source prompt the inversion's prompt.", node)
    patched = model.clone()
    install_dit_policy(patched, Invariance(mapper, alphas, adaln_steps, attention_steps), blocks, node)
    wrap_model_calls(patched, WRAPPER_KEY, SourceRow(inversion, guidance, node))
    pair = join_pair(source, target)
    if family.distilled_guidance:
        pair[0][1]["guidance"] = guidance
    return patched, pair, InvertedNoise(inversion, node, rows=2)

"""ConsistEdit inside the host (policies in ``control.py``): the mask pass on the inversion's trajectory, and the
patched clone of the model that samples the source/edit pair (the source row following the inversion step for
step, ``hostkit/flow_pair.py``'s ``SourceRow``).

Which blocks, as the authors' code controls them: SD3's joint blocks, every one
(``regiter_attention_editor_diffusers_sd3_mask_real`` patches every ``Attention`` of ``transformer_blocks``);
Flux's single-stream blocks only (``regiter_attention_editor_diffusers_flux_mask`` edits and reads its mask where
``not is_dual_attn``; the double-stream blocks attend as they are).

Where the mask comes from: their real-image script (``run_real_sd3.py``) accumulates the source's attention maps
while it inverts the image (Uni-Inv, N + 1 evaluations at every point of the schedule) and reads the mean back
while editing; their synthesis scripts run the source alone first (``GENERATE_MASK``). The pack's inversion keeps
no maps, so the mask pass evaluates the source prompt at every point of the inversion's trajectory (the states the
inversion went through, ``t = 0`` at the image included): N + 1 evaluations of one row, before the edit.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from ...hostkit.dit_attention import dit_blocks, install_dit_policy
from ...hostkit.errors import NodeInputError, check_choice, check_conditioning, check_finite_tensor
from ...hostkit.fingerprint import conditioning_fingerprint
from ...hostkit.flow_pair import SourceRow
from ...hostkit.pair import encode_prompt, join_pair, warn_same_prompts
from ...hostkit.patches import wrap_model_calls
from ...hostkit.run_state import keep_run_state
from ...hostkit.sampling import check_flow_family, run_loop, to_output, with_guidance
from ...hostkit.tokens import longer_prompt, sequence_phrase_positions, sequence_words
from ...inversion.record import Inversion
from .control import ConsistencyControl, EditMaps, edit_region

WRAPPER_KEY = "invertedit_consist_edit_source_row"
#: The blocks the authors control and read the mask from, by the host's config: SD3's joint blocks, Flux's single
BLOCKS = {"SD3": ("double_block",), "Flux": ("single_block",), "FluxSchnell": ("single_block",)}
#: Where the mask is read: "authors" the controlled blocks (the authors' code: SD3's joint blocks, Flux's single-stream
#: blocks), or every block, or the double-stream blocks (SD3: its joint blocks, the same as authors). On the toy flow
#: model (2 double-, 4 single-stream blocks) the single blocks' maps of a word sit on the image's border cells and the
#: double blocks' on the object (the edit region's measurement in the report of issue 84's ConsistEdit part).
MASK_BLOCKS = {"authors": None, "all": ("double_block", "single_block"), "double": ("double_block",)}
#: The text sequences the host pads to one length (Flux's T5, SD3's CLIP window and T5)
TEXT_SEQUENCE = {"t5xxl": ("t5xxl",)}


def controlled_blocks(node: str, model) -> list:
    """The blocks ConsistEdit controls on ``model`` (``BLOCKS``); refuses another flow model by name."""
    family = check_flow_family(model, node)
    kinds = BLOCKS.get(family.config_name)
    if kinds is None:
        raise NodeInputError(node, f"input 'model' is {family.config_name}; ConsistEdit is defined on SD3 and Flux.1 "
                                   f"(the authors' code: SD3's joint blocks, Flux's single-stream blocks; CogVideoX, "
                                   f"their third model, is not this pack's). Load an SD3/SD3.5 or Flux.1 model.")
    return dit_blocks(model, kinds)


def word_positions(node: str, clip, model, prompt: str, words: str, text_tokens: int) -> list[int]:
    """The positions of the edited object's ``words`` in the source prompt's text sequence (every stream: SD3's CLIP
    window and T5, as the authors' ``clip_indices + t5_indices``; Flux's T5)."""
    phrases = [w for w in words.split(",") if w.strip()]
    if not phrases:
        raise NodeInputError(node, f"input 'edit_words' is {words!r}; name the edited object's word(s) in the source "
                                   f"prompt (the authors' edit_object, e.g. 'hat'), or connect a mask.")
    family = check_flow_family(model, node)
    found = sequence_words(clip, prompt, node, family.text_sequence, text_tokens)
    return sorted({p for phrase in phrases
                   for p in sequence_phrase_positions(found, phrase, node, "edit_words", "source prompt")})


def mask_pass(node: str, model, inversion: Inversion, source: list, positions: list[int], blocks: list,
              threshold: float) -> torch.Tensor:
    """The keep mask (bool ``[image tokens]``, True outside the edit region) from the source's attention on the
    words at ``positions``, averaged over every point of the inversion's trajectory and the ``blocks``."""
    recorder = EditMaps(positions)
    m = model.clone()
    install_dit_policy(m, recorder, blocks, node)
    cond = source
    if check_flow_family(model, node).distilled_guidance:   # as the inversion evaluated the model
        cond = with_guidance(cond, float(inversion.settings.get("guidance", 1.0)))
    trajectory = inversion.trajectory

    def loop(denoise, x, run_sigmas, step_callback):
        total = len(run_sigmas)
        for i in range(total):   # every point of the schedule, the image's t = 0 included (their N + 1 calls)
            denoise.part("positive", trajectory[i].to(x), run_sigmas[i].to(x))
            step_callback(min(i, total - 2), total - 1, x)
        return x

    run_loop(m, cond, None, 1.0, inversion.latent, inversion.sampling_sigmas, loop)
    return ~edit_region(recorder.mean(), threshold)


def keep_from_mask(node: str, mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The keep mask (bool ``[image tokens]``) of a MASK input (white: the region to edit) on the patch ``grid``: its
    first mask, area-averaged to the grid, above one half (the authors read their mask back resized and thresholded
    at 0.5)."""
    check_finite_tensor(node, "input 'mask'", mask, "give a mask with values from 0 to 1.")
    if mask.ndim == 2:
        mask = mask[None]
    cells = F.interpolate(mask[:1, None].float(), size=grid, mode="area")[0, 0]
    edit = cells > 0.5
    if not bool(edit.any()):  # sampling-path-ok: once, when the node runs
        raise NodeInputError(node, "input 'mask' marks no region to edit at the model's patch grid (all below one half "
                                   "there); give the region to edit in white, e.g. Attention Store's mask.")
    return ~edit.flatten()


def mask_blocks_of(node: str, model, choice: str, controlled: list) -> list:
    """The blocks whose maps make the mask (``MASK_BLOCKS``)."""
    check_choice(node, "mask_blocks", choice, MASK_BLOCKS)
    kinds = MASK_BLOCKS[choice]
    return controlled if kinds is None else dit_blocks(model, kinds)


def consist_edit(node: str, model, clip, inversion: Inversion, source_prompt: str, target_prompt: str,
                 edit_words: str, consistency_strength: float, mask_threshold: float, guidance: float,
                 mask: torch.Tensor | None = None, mask_blocks: str = "authors", use_mask: bool = True):
    """(a clone of ``model`` sampling ConsistEdit's pair, the pair's CONDITIONING: row 0 the source, row 1 the
    edit, at ``guidance`` for Flux dev, the source row at the inversion's guidance, the edit region as a MASK on the
    patch grid)."""
    blocks = controlled_blocks(node, model)
    reading = mask_blocks_of(node, model, mask_blocks, blocks)
    family = check_flow_family(model, node)
    source, target = encode_prompt(clip, source_prompt), encode_prompt(clip, target_prompt)
    check_conditioning(node, "clip", source, model)
    lengths = (source[0][0].shape[1], target[0][0].shape[1])
    if lengths[0] != lengths[1]:
        raise NodeInputError(node, f"the source prompt encodes to {lengths[0]} text tokens and the target prompt to "
                                   f"{lengths[1]}; the pair runs in one call, token for token. "
                                   f"{longer_prompt(clip, {'source prompt': source_prompt, 'target prompt': target_prompt}, TEXT_SEQUENCE.get(family.text_sequence))}.")
    warn_same_prompts(node, source_prompt, target_prompt)
    made = inversion.fingerprint.get("positive")
    if made is not None and made != conditioning_fingerprint(source):
        logging.warning("%s: the source prompt is not the prompt the image was inverted with, so the source row's "
                        "attention is not the image's; give the source prompt the inversion's prompt.", node)
    steps = len(inversion.sampling_sigmas) - 1
    rows, cols = (-(-s // family.patch_size) for s in inversion.latent.shape[-2:])
    if not use_mask:   # their --no_mask editor (regiter_attention_editor_diffusers_sd3 / _flux): nothing kept
        keep = torch.zeros(rows * cols, dtype=torch.bool)
    elif mask is not None:
        keep = keep_from_mask(node, mask, (rows, cols))
    else:
        positions = word_positions(node, clip, model, source_prompt, edit_words, lengths[0])
        keep = mask_pass(node, model, inversion, source, positions, reading, mask_threshold)
    region = to_output((~keep).float().reshape(1, rows, cols))   # the MASK output: white where edited
    return (pair_model(node, model, inversion, keep, int(steps * consistency_strength), blocks),
            pair_conditioning(family, source, target, guidance), region)


def pair_model(node: str, model, inversion: Inversion, keep: torch.Tensor, qk_steps: int, blocks: list):
    """A clone of ``model`` whose ``blocks`` run ``ConsistencyControl`` on the pair, the source row following
    ``inversion`` step for step (at the inversion's Flux guidance)."""
    patched = model.clone()
    keep_run_state(patched)
    install_dit_policy(patched, ConsistencyControl(keep, qk_steps), blocks, node)
    source_guidance = float(inversion.settings.get("guidance", 1.0))
    wrap_model_calls(patched, WRAPPER_KEY, SourceRow(inversion, source_guidance, node))
    return patched


def pair_conditioning(family, source: list, target: list, guidance: float) -> list:
    pair = join_pair(source, target)
    if family.distilled_guidance:
        pair[0][1]["guidance"] = guidance
    return pair

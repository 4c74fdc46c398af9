"""Stable Flow inside the host (policy in ``policy.py``): its inversion (a nudged
latent, the velocity at each step's far end) as an INVERSION record, and the edit as a patched
clone of the model that samples a source/target pair: the vital blocks share the source's image
keys and values, and an APPLY_MODEL wrapper gives the source row, once per model call, the
inverted latent the authors' loop gives it, at the source's own Flux guidance.
"""
from __future__ import annotations

from functools import partial

import torch

from ...hostkit.dit_attention import dit_blocks, install_dit_policy
from ...hostkit.errors import NodeInputError, check_conditioning
from ...hostkit.flow_inverters import FEWEST_STEPS, flow_invert
from ...hostkit.flow_pair import SourceRow
from ...hostkit.pair import join_pair
from ...hostkit.patches import wrap_model_calls
from ...hostkit.sampling import check_flow_family, check_plain_prompt
from ...inversion.methods import STABLE_FLOW
from ...inversion.record import Inversion
from .nudged_euler import ahead_euler
from .policy import ShareSourceKeysValues, source_state

WRAPPER_KEY = "invertedit_stable_flow"
HOST_GUIDANCE = 3.5   # the host's Flux guidance where a conditioning sets none (model_base.Flux.extra_conds)


def stable_flow_invert(node: str, model, samples: torch.Tensor, positive, steps: int, scheduler: str, guidance: float,
                       nudge: float) -> Inversion:
    """Stable Flow's inversion of the image's latent times ``nudge``."""
    def loop(velocity, x, sigmas, callback):
        return ahead_euler(velocity, x * nudge, sigmas.flip(0), callback)
    return flow_invert(node, STABLE_FLOW, model, samples, positive, steps, scheduler, guidance, loop, {"nudge": nudge},
                       fewest=FEWEST_STEPS["stable-flow"])


def parse_blocks(node: str, name: str, text: str, count: int, kind: str) -> list[int]:
    """A comma-separated list of block numbers, each below ``count``."""
    try:
        numbers = [int(part) for part in text.replace(" ", "").split(",") if part != ""]
    except ValueError:
        raise NodeInputError(node, f"input '{name}' is {text!r}; give block numbers separated by commas, e.g. "
                                   f"'0, 1, 17, 18' (the authors' vital {kind} blocks of Flux.1 dev).") from None
    bad = [n for n in numbers if not 0 <= n < count]
    if bad:
        raise NodeInputError(node, f"input '{name}' names {kind} block {bad[0]}, but the model has {count} (0 to "
                                   f"{count - 1}); the authors' numbers are Flux.1 dev's.")
    return numbers


def _guidance(conditioning: list) -> float:
    return float(conditioning[0][1].get("guidance", HOST_GUIDANCE))


def stable_flow(node: str, model, inversion: Inversion | None, source: list, target: list, double: str, single: str,
                aligned: bool = False):
    """A clone of ``model`` sampling Stable Flow's pair, and the pair's CONDITIONING (row 0 the
    source, row 1 the target, at the target's guidance; the source's is set by the wrapper). With
    an ``inversion`` the source row follows it; without, the pair is generated from one noise."""
    family = check_flow_family(model, node)
    if not dit_blocks(model, ("single_block",)):
        raise NodeInputError(node, f"input 'model' is {family.config_name}; Stable Flow's vital layers are Flux.1's "
                                   f"(the authors' code): load Flux dev or schnell.")
    for name, cond in (("source", source), ("target", target)):
        check_conditioning(node, name, cond, model)
        check_plain_prompt(node, name, cond)
        if len(cond) != 1 or cond[0][0].shape[0] != 1:
            raise NodeInputError(node, f"input '{name}' holds {sum(c[0].shape[0] for c in cond)} prompts; give one "
                                       f"(CLIP Text Encode of one prompt).")
    doubles = parse_blocks(node, "double_blocks", double, len(dit_blocks(model, ("double_block",))), "double")
    singles = parse_blocks(node, "single_blocks", single, len(dit_blocks(model, ("single_block",))), "single")
    if not doubles and not singles:
        raise NodeInputError(node, "inputs 'double_blocks' and 'single_blocks' are both empty; name the vital blocks "
                                   "(authors: 0, 1, 17, 18 and 9, 34, 35, 37, 6).")
    pair = join_pair(source, target)
    pair[0][1]["guidance"] = _guidance(target)
    patched = model.clone()
    install_dit_policy(patched, ShareSourceKeysValues(),
                       [("double_block", i) for i in doubles] + [("single_block", i) for i in singles], node)
    wrap_model_calls(patched, WRAPPER_KEY, SourceRow(inversion, _guidance(source), node,
                                                     partial(source_state, aligned=aligned)))
    return patched, pair

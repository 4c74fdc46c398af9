"""Stable Flow inside the host (policy in ``attention/stable_flow.py``): its inversion (a nudged
latent, the velocity at each step's far end) as an INVERSION record, and the edit as a patched
clone of the model that samples a source/target pair: the vital blocks share the source's image
keys and values, and an APPLY_MODEL wrapper gives the source row, once per model call, the
inverted latent the authors' loop gives it, at the source's own Flux guidance.
"""
from __future__ import annotations

import comfy.patcher_extension
import comfy.sample
import torch

from ..attention.policy import schedule_position
from ..attention.stable_flow import ShareSourceKeysValues, source_state
from ..inversion import flow as F
from ..inversion.methods import STABLE_FLOW
from ..inversion.record import Inversion
from .dit_attention import dit_blocks, install_dit_policy
from .errors import NodeInputError, check_conditioning
from .flow_inversion import flow_invert
from .pair import join_pair
from .run_state import run_state
from .sampling import check_flow_family, check_plain_prompt
from .steps import sigma_list, sigma_value

WRAPPER_KEY = "invertedit_stable_flow"
HOST_GUIDANCE = 3.5   # the host's Flux guidance where a conditioning sets none (model_base.Flux.extra_conds)


def stable_flow_invert(node: str, model, samples: torch.Tensor, positive, steps: int, scheduler: str, guidance: float,
                       nudge: float) -> Inversion:
    """Stable Flow's inversion of the image's latent times ``nudge``."""
    def loop(velocity, x, sigmas, callback):
        return F.ahead_euler(velocity, x * nudge, sigmas.flip(0), callback)
    return flow_invert(node, STABLE_FLOW, model, samples, positive, steps, scheduler, guidance, loop, {"nudge": nudge})


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


class SourceRow:
    """APPLY_MODEL wrapper of a pair editor on a flow model (Stable Flow, Joint Attention Inject):
    once per model call, the source rows (row 0 of every chunk) take the inverted latent
    ``source_state`` says (where there is an inversion; a generated pair's source row is its own)
    and the source's Flux guidance."""

    def __init__(self, inversion: Inversion | None, guidance: float, aligned: bool, node: str):
        self.inversion, self.guidance, self.aligned, self.node = inversion, guidance, aligned, node
        self.schedule = None if inversion is None else sigma_list(inversion.sampling_sigmas)

    def _check_run(self, transformer_options: dict, rows: int) -> None:
        if self.schedule is not None:
            run = sigma_list(transformer_options["sample_sigmas"])
            if len(run) != len(self.schedule) or any(abs(a - b) > 1e-6 + 1e-4 * abs(b)
                                                     for a, b in zip(run, self.schedule)):
                raise NodeInputError(self.node, f"the model is sampled on {len(run) - 1} steps that are not the "
                                                f"inversion's ({len(self.schedule) - 1}); sample with the inversion's "
                                                f"SIGMAS, {self.node}'s NOISE and the euler sampler.")
        if rows != 2:
            latent = ("the image's latent repeated twice (Repeat Latent Batch, amount 2)" if self.schedule is not None
                      else "a latent of 2 rows (Empty SD3 Latent Image, batch_size 2)")
            raise NodeInputError(self.node, f"the model is sampled on {rows} rows a prompt; {self.node} samples the "
                                            f"source/target pair: its CONDITIONING with {latent}.")

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                 **kwargs):
        state: dict = run_state(transformer_options, self, dict, self.node)
        chunks = tuple(transformer_options.get("cond_or_uncond", [0]))
        rows = x.shape[0] // max(len(chunks), 1)
        key = (x.shape[0], chunks, x.device)
        if key not in state:
            self._check_run(transformer_options, rows)
            source = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
            source[::rows] = True
            state[key] = (source, source.reshape(-1, *([1] * (x.ndim - 1))))   # per row, and over a latent
            if self.inversion is not None:
                state["trajectory"] = self.inversion.trajectory.to(x)
        source, over_latent = state[key]
        if self.inversion is not None:
            step, half = schedule_position(self.schedule, sigma_value(transformer_options.get("sigmas", t)))  # the attention patches' sigma: one read
            if half or step >= len(self.schedule) - 1:
                raise NodeInputError(self.node, f"the model was called between the inversion's steps; {self.node} "
                                                f"samples with euler: use the euler sampler.")
            inverted = state["trajectory"][source_state(step, len(self.schedule) - 1, self.aligned)]
            x = torch.where(over_latent, inverted, x)
        guidance = kwargs.get("guidance")
        if guidance is not None:
            # The host moves the model's extra inputs to the latent's device after this wrapper
            # (``BaseModel._apply_model``): Flux's guidance arrives where the conditioning was made (the
            # CPU on a GPU run), so its rows' choice is made on its device, once per run.
            made = state.get(("guidance", key, guidance.shape, guidance.dtype, guidance.device))
            if made is None:   # the source rows' guidance, for this layout of rows
                made = state[("guidance", key, guidance.shape, guidance.dtype, guidance.device)] = (
                    source.to(guidance.device), torch.full_like(guidance, self.guidance))
            kwargs["guidance"] = torch.where(made[0], made[1], guidance)
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)


class SharedNoise:
    """A NOISE for a generated pair: one seeded noise (the host's, of one row) in every row, as the
    authors tile one noise over their prompts."""

    def __init__(self, seed: int, node: str):
        self.seed, self.node = seed, node

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        samples = input_latent["samples"]
        return comfy.sample.prepare_noise(samples[:1], self.seed).repeat(samples.shape[0], 1, 1, 1)


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
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY,
                                 SourceRow(inversion, _guidance(source), aligned, node))
    return patched, pair

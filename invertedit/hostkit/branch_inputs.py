"""Per-branch inputs for one batched model call: the host's ``calc_cond_batch`` evaluates every cond
on the same latent; with ``BranchInputs`` (an APPLY_MODEL wrapper) each cond's rows (its
``cond_or_uncond`` index, its branch) get their own latent instead, so techniques that evaluate
prompts at different latents (pix2pix-zero's guidance, FlowEdit's source and target) still make
one batched call a step, and can take each branch's gradient separately.
"""
from __future__ import annotations

import comfy.model_patcher
import comfy.patcher_extension
import torch

from .keys import BRANCH_INPUTS_KEY


class BranchInputs:
    """APPLY_MODEL wrapper: each branch (``cond_or_uncond``) of the batched call gets its own
    input, ``inputs[branch]`` when given, and with ``track`` its own leaf tensor, so that one
    batched call gives every branch's gradient separately."""

    def __init__(self, inputs: dict | None = None, track: bool = False):
        self.inputs, self.track = inputs, track
        self.leaves: list[tuple[torch.Tensor, list]] = []

    def __call__(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        chunks = list(transformer_options.get("cond_or_uncond", [0]))
        if self.inputs is not None:
            x = torch.cat([self.inputs[c].to(x) for c in chunks])
        if self.track:
            x = x.detach().requires_grad_(True)
            self.leaves.append((x, chunks))
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

    def gradients(self, loss: torch.Tensor | None) -> dict:
        """Each tracked branch's gradient of ``loss`` (zeros where it does not depend on it)."""
        leaves = [leaf for leaf, _ in self.leaves]
        if loss is not None and loss.requires_grad:
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        else:
            grads = [None] * len(leaves)
        out = {}
        for (leaf, chunks), grad in zip(self.leaves, grads):
            grad = torch.zeros_like(leaf) if grad is None else grad.detach()
            rows = leaf.shape[0] // len(chunks)
            for i, branch in enumerate(chunks):
                out[branch] = grad[i * rows:(i + 1) * rows]
        return out


def with_branch_inputs(model_options: dict, wrapper: BranchInputs) -> dict:
    """A copy of ``model_options`` whose model calls go through ``wrapper``."""
    options = comfy.model_patcher.create_model_options_clone(model_options)
    comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, BRANCH_INPUTS_KEY, wrapper,
                                                 options, is_model_options=True)
    return options

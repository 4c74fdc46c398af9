"""Gradients through a host model loaded under inference mode (Null-Text Optimize, the training nodes)."""
from __future__ import annotations

import torch
from comfy.patcher_extension import WrappersMP
from comfy_api.torch_helpers.torch_compile import COMPILE_KEY

from .errors import NodeInputError


def _same(weight: torch.Tensor) -> torch.Tensor:
    return weight


def with_weight_copies(model):
    """A clone whose UNet layers copy their weights at each forward, so that gradients can flow
    through weights that are inference tensors, and that runs its diffusion model eagerly where the
    host's TorchCompileModel compiled it: a graph compiled for sampling saves those weights for the
    backward pass as they are ("Inference tensors cannot be saved for backward"), and a fresh compile
    for a few hundred optimisation steps would cost more than it saves. The model the node outputs
    keeps its compile wrapper. The model itself where neither applies."""
    unet = model.model.diffusion_model
    inference = any(p.is_inference() for p in unet.parameters())
    compiled = bool(model.get_wrappers(WrappersMP.APPLY_MODEL, COMPILE_KEY))
    if not inference and not compiled:
        return model
    m = model.clone()
    if compiled:
        m.remove_wrappers_with_key(WrappersMP.APPLY_MODEL, COMPILE_KEY)
    if inference:
        for name, module in unet.named_modules():
            if hasattr(module, "weight_function"):
                for kind in ("weight", "bias"):   # norms save their bias for backward too
                    if getattr(module, kind, None) is not None:
                        m.add_weight_wrapper(f"diffusion_model.{name}.{kind}", _same)
    return m



def check_no_control(node: str, name: str, conditioning: list) -> None:
    """Refuse a CONDITIONING that carries a ControlNet (Apply ControlNet) into a node that takes gradients
    through the model: the host's UNet adds a ControlNet's residuals to its activations in place
    (``openaimodel.apply_control``), which the backward pass cannot go through (measured: "one of the variables
    needed for gradient computation has been modified by an inplace operation")."""
    if any(extra.get("control") is not None for _, extra in conditioning):
        raise NodeInputError(node, f"input '{name}' carries a ControlNet (Apply ControlNet); {node} takes gradients "
                                   f"through the model, and the host's UNet adds a ControlNet's residuals in place, "
                                   f"which gradients cannot pass. Connect the prompt before Apply ControlNet here, and "
                                   f"apply the ControlNet to the sampler's prompts after this node.")

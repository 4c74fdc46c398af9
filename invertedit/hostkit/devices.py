"""Where the host computes, where it keeps what a node hands on, and how much memory is free: the
host's answers (``comfy.model_management``), for glue that places caches and states."""
from __future__ import annotations

import comfy.model_management
import torch


def compute_device() -> torch.device:
    """The device the host runs its models on (a GPU where there is one)."""
    return comfy.model_management.get_torch_device()


def free_memory(device: torch.device) -> int:
    """The bytes free on ``device``, as the host counts them (its own caches included)."""
    return comfy.model_management.get_free_memory(device)


def intermediate_device() -> torch.device:
    """Where the host's nodes put their outputs between nodes (the CPU)."""
    return comfy.model_management.intermediate_device()


def wholly_on_gpu(model) -> bool:
    """Whether ``model`` (a loaded ModelPatcher) runs on a CUDA device with every weight kept there: not
    loaded partially (the host's low-VRAM mode moves weights in for each layer, from host memory, which a
    CUDA graph cannot capture)."""
    return compute_device().type == "cuda" and model.loaded_size() >= model.model_size()

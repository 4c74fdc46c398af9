"""ChenyangQiQi/FateZero's attention code loaded from a checkout for the pack's parity tests, run
unchanged; never imported by the pack.

FateZero pins diffusers 0.11.1 (``requirements.txt``), whose ``CrossAttention`` its classes
subclass and whose model files no longer import under the diffusers installed here. The adapter
(nothing that changes what the reference computes):
- ``SparseCausalAttention`` (``video_diffusion/models/attention.py``) is taken from the file's
  source by its class definition and executed with its module's names (torch, ``rearrange``) and
  ``CrossAttention``, a stand-in holding diffusers 0.11.1's ``CrossAttention`` methods the class
  calls (``reshape_heads_to_batch_dim``, ``reshape_batch_dim_to_heads``, ``_attention``), copied
  from diffusers 0.11.1's ``models/attention.py``, with its projections given by the caller (the
  host layer's own modules: the same weights).
"""
from __future__ import annotations

import ast
from pathlib import Path

import torch
from einops import rearrange


class CrossAttention(torch.nn.Module):
    """diffusers 0.11.1's ``CrossAttention``, the methods ``SparseCausalAttention`` calls (verbatim),
    on the projections of ``layer`` (a host ``CrossAttention``: ``to_q``, ``to_k``, ``to_v``,
    ``to_out``)."""

    def __init__(self, layer, heads: int, dim_head: int):
        super().__init__()
        self.upcast_attention = False
        self.upcast_softmax = False
        self.scale = dim_head**-0.5
        self.heads = heads
        self._slice_size = None
        self._use_memory_efficient_attention_xformers = False
        self.added_kv_proj_dim = None
        self.group_norm = None
        self.to_q, self.to_k, self.to_v, self.to_out = layer.to_q, layer.to_k, layer.to_v, layer.to_out

    def reshape_heads_to_batch_dim(self, tensor):
        batch_size, seq_len, dim = tensor.shape
        head_size = self.heads
        tensor = tensor.reshape(batch_size, seq_len, head_size, dim // head_size)
        tensor = tensor.permute(0, 2, 1, 3).reshape(batch_size * head_size, seq_len, dim // head_size)
        return tensor

    def reshape_batch_dim_to_heads(self, tensor):
        batch_size, seq_len, dim = tensor.shape
        head_size = self.heads
        tensor = tensor.reshape(batch_size // head_size, head_size, seq_len, dim)
        tensor = tensor.permute(0, 2, 1, 3).reshape(batch_size // head_size, seq_len, dim * head_size)
        return tensor

    def _attention(self, query, key, value, attention_mask=None):
        if self.upcast_attention:
            query = query.float()
            key = key.float()

        attention_scores = torch.baddbmm(
            torch.empty(query.shape[0], query.shape[1], key.shape[1], dtype=query.dtype, device=query.device),
            query,
            key.transpose(-1, -2),
            beta=0,
            alpha=self.scale,
        )

        if attention_mask is not None:
            attention_scores = attention_scores + attention_mask

        if self.upcast_softmax:
            attention_scores = attention_scores.float()

        attention_probs = attention_scores.softmax(dim=-1)

        # cast back to the original dtype
        attention_probs = attention_probs.to(value.dtype)

        # compute attention output
        hidden_states = torch.bmm(attention_probs, value)

        # reshape hidden_states
        hidden_states = self.reshape_batch_dim_to_heads(hidden_states)
        return hidden_states


def reference_class(checkout: Path, name: str, path: str = "video_diffusion/models/attention.py"):
    """The class ``name`` of FateZero's ``path``, its source unchanged, on the stand-in base."""
    source = (checkout / path).read_text()
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    namespace = {"torch": torch, "rearrange": rearrange, "CrossAttention": CrossAttention}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(checkout / path), "exec"), namespace)
    return namespace[name]


def stand_ins() -> None:
    """Empty modules for the packages FateZero's prompt-attention files import for their image and
    video helpers and configs (never called by the controller's forward), where absent."""
    import importlib.util
    import sys
    import types

    names = {"cv2": (), "imageio": (), "torchvision": (), "torchvision.utils": ("save_image",),
             "torchvision.transforms": (), "omegaconf": (), "omegaconf.dictconfig": ("DictConfig",)}
    for name, attributes in names.items():
        try:
            present = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            present = False
        if present or name in sys.modules:
            continue
        module = types.ModuleType(name)
        for attribute in attributes:
            setattr(module, attribute, type(attribute, (), {}))
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


def attention_util(checkout: Path):
    """FateZero's ``video_diffusion.prompt_attention.attention_util`` and ``spatial_blend`` modules,
    imported unchanged from ``checkout``."""
    import importlib
    import sys

    stand_ins()
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    return (importlib.import_module("video_diffusion.prompt_attention.attention_util"),
            importlib.import_module("video_diffusion.prompt_attention.spatial_blend"))

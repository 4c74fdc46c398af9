"""The host's Wan 2.1 denoiser's weights (``comfy.ldm.wan.model.WanModel``, the tiny random one's) as diffusers'
``WanTransformer3DModel``, by the key renames of diffusers' own ``scripts/convert_wan_to_diffusers.py``
(``TRANSFORMER_KEYS_RENAME_DICT``, the text-to-video part): for the Wan parity tests (``tests/host/test_wan_parity.py``).
Never imported by the pack."""
from __future__ import annotations

import torch

#: diffusers' renames (original Wan key -> diffusers key), applied in this order to every key; norm2 and norm3 swap
RENAMES = (
    ("time_embedding.0", "condition_embedder.time_embedder.linear_1"),
    ("time_embedding.2", "condition_embedder.time_embedder.linear_2"),
    ("text_embedding.0", "condition_embedder.text_embedder.linear_1"),
    ("text_embedding.2", "condition_embedder.text_embedder.linear_2"),
    ("time_projection.1", "condition_embedder.time_proj"),
    ("head.modulation", "scale_shift_table"),
    ("head.head", "proj_out"),
    ("modulation", "scale_shift_table"),
    ("ffn.0", "ffn.net.0.proj"),
    ("ffn.2", "ffn.net.2"),
    ("norm2", "norm__placeholder"),
    ("norm3", "norm2"),
    ("norm__placeholder", "norm3"),
    ("self_attn.q", "attn1.to_q"), ("self_attn.k", "attn1.to_k"), ("self_attn.v", "attn1.to_v"),
    ("self_attn.o", "attn1.to_out.0"), ("self_attn.norm_q", "attn1.norm_q"), ("self_attn.norm_k", "attn1.norm_k"),
    ("cross_attn.q", "attn2.to_q"), ("cross_attn.k", "attn2.to_k"), ("cross_attn.v", "attn2.to_v"),
    ("cross_attn.o", "attn2.to_out.0"), ("cross_attn.norm_q", "attn2.norm_q"), ("cross_attn.norm_k", "attn2.norm_k"),
)


def diffusers_key(key: str) -> str:
    for old, new in RENAMES:
        key = key.replace(old, new)
    return key


def wan_transformer(net) -> torch.nn.Module:
    """diffusers' ``WanTransformer3DModel`` holding the weights of the host's ``WanModel`` ``net``, in float32."""
    from diffusers import WanTransformer3DModel

    heads, dim = net.num_heads, net.dim
    model = WanTransformer3DModel(patch_size=tuple(net.patch_size), num_attention_heads=heads,
                                  attention_head_dim=dim // heads, in_channels=net.in_dim, out_channels=net.out_dim,
                                  text_dim=net.text_dim, freq_dim=net.freq_dim, ffn_dim=net.ffn_dim,
                                  num_layers=net.num_layers, cross_attn_norm=net.cross_attn_norm, eps=net.eps)
    state = {diffusers_key(k): v.detach().float().clone() for k, v in net.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"Wan weights do not map: missing {missing}, unexpected {unexpected}")
    return model.float().eval()

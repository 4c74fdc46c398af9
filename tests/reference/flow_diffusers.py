"""diffusers transformers carrying exactly the weights of the host's flow DiTs (Flux, SD3), for tests.

``diffusers_transformer(model_patcher)`` gives a ``FluxTransformer2DModel`` or ``SD3Transformer2DModel``
(float32, eval, no grad) with the host model's weights, converted with the host's own key maps
(``comfy.utils.flux_to_diffusers`` / ``mmdit_to_diffusers``: diffusers key -> host key, or
``(host key, (dim, start, length))`` for a slice of a fused qkv / linear1 weight, or
``(host key, None, function)`` for adaLN weights whose shift and scale halves are swapped). The
diffusers state dict is loaded strictly and every host weight must be used, so a key the mapping misses
is an error, not a silently random weight. Made for the tiny random-weight models
(``invertedit/demo/tiny_flow_models.py``) and for parity runs of reference diffusers code (FlowEdit,
RF-Inversion, ...) on identical weights.

``diffusers_velocity`` / ``host_velocity``: one prediction of each on host-format inputs, with the
conventions to mind when comparing:
- latents: the host's denoiser takes (B, 16, H, W) in the model's space (the host's
  ``process_latent_in`` applied: ``(z - shift) * scale``), as diffusers' pipelines feed theirs
  (``(z - shift_factor) * scaling_factor``); diffusers' Flux takes them packed into 2x2 patches,
  (B, H/2 * W/2, 64) with ``img_ids`` (0, row, col) and ``txt_ids`` zeros.
- time: the host's Flux takes ``timesteps`` = sigma (``ModelSamplingFlux.timestep``; schnell's
  discrete flow sampling has multiplier 1) and embeds 1000 sigma; diffusers' Flux takes
  ``timestep`` = sigma and multiplies by 1000 inside (and so for ``guidance``). The host's SD3 takes
  ``model_sampling.timestep(sigma)`` = 1000 sigma; diffusers' SD3 takes ``timestep`` = 1000 sigma.
- text: ``context`` is diffusers' ``encoder_hidden_states``, ``y`` (the pooled vector) its
  ``pooled_projections``.
- output: both predict the velocity (noise - x0); the host's ``apply_model`` turns it into the denoised
  latent ``x - sigma v``.
"""
from __future__ import annotations

import torch

import comfy.utils
from comfy.ldm.flux.model import Flux
from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT

from diffusers import FluxTransformer2DModel, SD3Transformer2DModel


def _host_denoiser(model_patcher):
    return model_patcher.model.diffusion_model


def diffusers_config(model_patcher) -> tuple[type, dict]:
    """(diffusers class, its config) equivalent to the host denoiser of ``model_patcher``."""
    net = _host_denoiser(model_patcher)
    if isinstance(net, Flux):
        p = net.params
        if p.mlp_ratio != 4.0:
            raise NotImplementedError("the host's Flux key map assumes mlp_ratio 4")
        return FluxTransformer2DModel, dict(
            patch_size=1, in_channels=net.in_channels, out_channels=net.out_channels,
            num_layers=p.depth, num_single_layers=p.depth_single_blocks,
            attention_head_dim=p.hidden_size // p.num_heads, num_attention_heads=p.num_heads,
            joint_attention_dim=p.context_in_dim, pooled_projection_dim=p.vec_in_dim,
            guidance_embeds=p.guidance_embed, axes_dims_rope=tuple(p.axes_dim))
    if isinstance(net, MMDiT):
        if len(net.joint_blocks) != net.depth or net.x_block_self_attn_layers or net.context_processor is not None:
            raise NotImplementedError("only SD3-medium-style MMDiTs (num_blocks == depth, no attn2) are mapped")
        if net.joint_blocks[0].context_block.attn.ln_q is not None and not isinstance(net.joint_blocks[0].context_block.attn.ln_q, torch.nn.Identity):
            raise NotImplementedError("qk norms are not mapped")
        return SD3Transformer2DModel, dict(
            # sample_size only sets the position table diffusers builds (then overwritten by the host's)
            sample_size=32, patch_size=net.patch_size,
            in_channels=net.in_channels, out_channels=net.out_channels, num_layers=len(net.joint_blocks),
            attention_head_dim=net.hidden_size // net.num_heads, num_attention_heads=net.num_heads,
            joint_attention_dim=net.context_embedder.in_features, caption_projection_dim=net.hidden_size,
            pooled_projection_dim=net.y_embedder.mlp[0].in_features, pos_embed_max_size=net.pos_embed_max_size)
    raise NotImplementedError(f"no diffusers counterpart mapped for {type(net).__name__}")


def key_map(model_patcher) -> dict:
    """The host's own diffusers -> host key map for this denoiser."""
    net = _host_denoiser(model_patcher)
    if isinstance(net, Flux):
        p = net.params
        return comfy.utils.flux_to_diffusers({"depth": p.depth, "depth_single_blocks": p.depth_single_blocks,
                                              "hidden_size": p.hidden_size}, output_prefix="")
    return comfy.utils.mmdit_to_diffusers({"depth": net.depth, "num_blocks": len(net.joint_blocks)}, output_prefix="")


def diffusers_state_dict(model_patcher, diffusers_keys) -> dict:
    """The diffusers state dict (for ``diffusers_keys``) holding the host denoiser's weights, in float32."""
    host = {k: v.detach().to(torch.float32) for k, v in _host_denoiser(model_patcher).state_dict().items()}
    mapping = key_map(model_patcher)
    out, used = {}, {}
    for k in diffusers_keys:
        if k not in mapping:
            raise KeyError(f"the host's key map has no entry for diffusers key {k!r}")
        entry = mapping[k]
        if isinstance(entry, str):
            w = host[entry]
            used.setdefault(entry, []).append(None)
        else:
            host_key, piece = entry[0], entry[1]
            w = host[host_key]
            if piece is not None:
                w = w.narrow(*piece)
            if len(entry) > 2:
                fun = entry[2]
                # the host's functions here (swap_scale_shift) are their own inverse: check it
                probe = torch.arange(4.0)
                if not torch.equal(fun(fun(probe)), probe):
                    raise NotImplementedError(f"the host's map for {k!r} is not an involution: cannot invert it")
                w = fun(w)
            used.setdefault(host_key, []).append(piece)
        out[k] = w.clone().contiguous()
    for host_key, tensor in host.items():
        pieces = used.get(host_key)
        if pieces is None:
            raise KeyError(f"host weight {host_key!r} has no diffusers counterpart")
        if None not in pieces and sum(p[2] for p in pieces) != tensor.shape[pieces[0][0]]:
            raise KeyError(f"host weight {host_key!r} is only partly covered by the key map")
    return out


def diffusers_transformer(model_patcher):
    """A diffusers ``FluxTransformer2DModel`` / ``SD3Transformer2DModel`` with the weights of the host
    MODEL ``model_patcher`` (float32, CPU, eval, no grad)."""
    cls, config = diffusers_config(model_patcher)
    model = cls(**config)
    model.load_state_dict(diffusers_state_dict(model_patcher, model.state_dict().keys()), strict=True)
    return model.eval().requires_grad_(False)  # built in float32 already


# ---------------------------------------------------------------------------------------------
# One prediction each, on host-format inputs
# ---------------------------------------------------------------------------------------------

def pack_latents(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/2 * W/2, 4C), as diffusers' Flux pipeline packs (c, ph, pw per token)."""
    b, c, h, w = x.shape
    return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack_latents(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b, _, d = x.shape
    c = d // 4
    return x.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def bfl_flux_params(net: Flux) -> dict:
    """The host's Flux ``net``'s parameters as BFL's ``FluxParams`` (the authors' ``flux`` packages)
    names them; ``in_channels`` is the packed width (64 for 16 latent channels)."""
    p = net.params
    return dict(in_channels=p.in_channels * p.patch_size ** 2, vec_in_dim=p.vec_in_dim, context_in_dim=p.context_in_dim,
                hidden_size=p.hidden_size, mlp_ratio=p.mlp_ratio, num_heads=p.num_heads, depth=p.depth,
                depth_single_blocks=p.depth_single_blocks, axes_dim=list(p.axes_dim), theta=p.theta,
                qkv_bias=p.qkv_bias, guidance_embed=p.guidance_embed)


def flux_ids(h: int, w: int, text_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(img_ids, txt_ids) for a (H, W) latent: (0, row, col) a 2x2 patch, zeros for the text."""
    img = torch.zeros(h // 2, w // 2, 3)
    img[..., 1] = torch.arange(h // 2)[:, None]
    img[..., 2] = torch.arange(w // 2)[None, :]
    return img.reshape(-1, 3), torch.zeros(text_tokens, 3)


@torch.no_grad()
def diffusers_velocity(transformer, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, pooled: torch.Tensor,
                       guidance: torch.Tensor | None = None) -> torch.Tensor:
    """diffusers' velocity for a host-format latent ``x`` (B, 16, H, W) at ``sigma`` (B,)."""
    if isinstance(transformer, FluxTransformer2DModel):
        h, w = x.shape[-2:]
        img_ids, txt_ids = flux_ids(h, w, context.shape[1])
        out = transformer(hidden_states=pack_latents(x), encoder_hidden_states=context, pooled_projections=pooled,
                          timestep=sigma, img_ids=img_ids, txt_ids=txt_ids,
                          guidance=guidance if transformer.config.guidance_embeds else None, return_dict=False)[0]
        return unpack_latents(out, h, w)
    return transformer(hidden_states=x, encoder_hidden_states=context, pooled_projections=pooled,
                       timestep=sigma * 1000.0, return_dict=False)[0]


@torch.no_grad()
def host_velocity(model_patcher, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, pooled: torch.Tensor,
                  guidance: torch.Tensor | None = None) -> torch.Tensor:
    """The host denoiser's velocity for the same inputs (its own timestep convention)."""
    base = model_patcher.model
    t = base.model_sampling.timestep(sigma).float()
    net = base.diffusion_model
    if isinstance(net, Flux):
        return net(x, t, context, y=pooled, guidance=guidance)
    return net(x, t, context=context, y=pooled)

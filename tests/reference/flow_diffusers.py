"""diffusers transformers carrying exactly the weights of the host's flow DiTs (Flux, SD3, Qwen-Image), for tests.

``diffusers_transformer(model_patcher)`` gives a ``FluxTransformer2DModel``, ``SD3Transformer2DModel`` or
``QwenImageTransformer2DModel`` (float32, eval, no grad) with the host model's weights, converted with the
host's own key maps (``comfy.utils.flux_to_diffusers`` / ``mmdit_to_diffusers``: diffusers key -> host key,
or ``(host key, (dim, start, length))`` for a slice of a fused qkv / linear1 weight, or
``(host key, None, function)`` for adaLN weights whose shift and scale halves are swapped); the host's
Qwen-Image already names its weights as diffusers does (its loader converts nothing), so its map is the
identity over the host's keys. The diffusers state dict is loaded strictly and every host weight must be
used, so a key the mapping misses is an error, not a silently random weight. Made for the tiny random-weight models
(``invertedit/demo/tiny_flow_models.py``) and for parity runs of reference diffusers code (FlowEdit,
RF-Inversion, ...) on identical weights.

``diffusers_velocity`` / ``host_velocity``: one prediction of each on host-format inputs, with the
conventions to mind when comparing:
- latents: the host's denoiser takes (B, 16, H, W) in the model's space (the host's
  ``process_latent_in`` applied: ``(z - shift) * scale``), as diffusers' pipelines feed theirs
  (``(z - shift_factor) * scaling_factor``); diffusers' Flux takes them packed into 2x2 patches,
  (B, H/2 * W/2, 64) with ``img_ids`` (0, row, col) and ``txt_ids`` zeros. Qwen-Image's are
  (B, 16, 1, H, W) (the Wan VAE's frame axis; ``process_latent_in``: ``(z - mean) / std`` per channel,
  as diffusers' pipeline's ``(z - latents_mean) * (1 / latents_std)``); diffusers' Qwen-Image takes them
  packed as Flux's, with ``img_shapes`` [(1, H/2, W/2)] a sample for its rope (the positions are made
  inside, from the grid and the text's length; see ``rope_positions`` for where the host's differ).
- time: the host's Flux takes ``timesteps`` = sigma (``ModelSamplingFlux.timestep``; schnell's
  discrete flow sampling has multiplier 1) and embeds 1000 sigma; diffusers' Flux takes
  ``timestep`` = sigma and multiplies by 1000 inside (and so for ``guidance``). The host's SD3 takes
  ``model_sampling.timestep(sigma)`` = 1000 sigma; diffusers' SD3 takes ``timestep`` = 1000 sigma.
  The host's Qwen-Image samples as Flux (``ModelSamplingFlux``, shift 1.15): ``timesteps`` = sigma, 1000
  sigma embedded inside (``Timesteps(scale=1000)``); diffusers' Qwen-Image takes ``timestep`` = sigma
  (its pipeline passes the scheduler's ``t / 1000``) and embeds 1000 sigma alike.
- text: ``context`` is diffusers' ``encoder_hidden_states``, ``y`` (the pooled vector) its
  ``pooled_projections`` (Qwen-Image takes none: ``pooled`` is ignored). Qwen-Image's text is not padded:
  rows of different lengths are separate calls on the host; diffusers pads them and passes
  ``encoder_hidden_states_mask`` (``text_lengths`` here builds it).
- output: both predict the velocity (noise - x0); the host's ``apply_model`` turns it into the denoised
  latent ``x - sigma v``.
"""
from __future__ import annotations

import torch

import comfy.utils
from comfy.ldm.flux.model import Flux
from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT
from comfy.ldm.qwen_image.model import QwenImageTransformer2DModel as HostQwenImage

from diffusers import FluxTransformer2DModel, QwenImageTransformer2DModel, SD3Transformer2DModel


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
    if isinstance(net, HostQwenImage):
        attn = net.transformer_blocks[0].attn
        if not hasattr(net, "proj_out"):
            raise NotImplementedError("a Qwen-Image without its final layer is not mapped")
        # the host's Qwen-Image has no guidance embedder (its time embedding takes the timestep alone)
        return QwenImageTransformer2DModel, dict(
            patch_size=net.patch_size, in_channels=net.in_channels, out_channels=net.out_channels,
            num_layers=len(net.transformer_blocks), attention_head_dim=attn.dim_head, num_attention_heads=attn.heads,
            joint_attention_dim=net.txt_in.in_features, guidance_embeds=False,
            axes_dims_rope=tuple(net.pe_embedder.axes_dim))
    raise NotImplementedError(f"no diffusers counterpart mapped for {type(net).__name__}")


def key_map(model_patcher) -> dict:
    """The host's own diffusers -> host key map for this denoiser (Qwen-Image: the identity, its weights
    carry diffusers' names)."""
    net = _host_denoiser(model_patcher)
    if isinstance(net, HostQwenImage):
        if net.pe_embedder.theta != 10000:
            raise NotImplementedError("diffusers' Qwen-Image rope has theta 10000")
        return {k: k for k in net.state_dict()}
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
    """A diffusers ``FluxTransformer2DModel`` / ``SD3Transformer2DModel`` / ``QwenImageTransformer2DModel``
    with the weights of the host MODEL ``model_patcher`` (float32, CPU, eval, no grad)."""
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


def text_mask(lengths, tokens: int) -> torch.Tensor:
    """diffusers' ``encoder_hidden_states_mask`` (B, tokens) for text rows padded to ``tokens`` whose own
    lengths are ``lengths`` (as its Qwen-Image pipeline pads a batch of prompts)."""
    return torch.arange(tokens)[None, :] < torch.as_tensor(list(lengths))[:, None]


def qwen_image_velocity(transformer, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor,
                        text_lengths=None) -> torch.Tensor:
    """diffusers' Qwen-Image velocity for a host-format latent ``x`` ((B, 16, 1, H, W) or (B, 16, H, W), the
    model's space) at ``sigma`` (B,), as its pipeline calls it: packed 2x2 patches, ``img_shapes``
    (1, H/2, W/2) a sample, ``timestep`` = sigma; ``text_lengths``: each row's own text length where ``context``
    is padded (the mask diffusers' pipeline passes). Returns ``x``'s shape."""
    h, w = x.shape[-2:]
    flat = x.reshape(x.shape[0], x.shape[1], h, w)
    mask = None if text_lengths is None else text_mask(text_lengths, context.shape[1]).to(context.device)
    out = transformer(hidden_states=pack_latents(flat), encoder_hidden_states=context, encoder_hidden_states_mask=mask,
                      timestep=sigma.to(x.dtype), img_shapes=[(1, h // 2, w // 2)] * x.shape[0], return_dict=False)[0]
    return unpack_latents(out, h, w).reshape(x.shape)


@torch.no_grad()
def diffusers_velocity(transformer, x: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, pooled: torch.Tensor,
                       guidance: torch.Tensor | None = None, text_lengths=None) -> torch.Tensor:
    """diffusers' velocity for a host-format latent ``x`` (B, 16, H, W) at ``sigma`` (B,); Qwen-Image's
    (B, 16, 1, H, W), ``pooled`` and ``guidance`` ignored, ``text_lengths`` as ``qwen_image_velocity``."""
    if isinstance(transformer, QwenImageTransformer2DModel):
        return qwen_image_velocity(transformer, x, sigma, context, text_lengths)
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
    if isinstance(net, HostQwenImage):
        return net(x, t, context)
    return net(x, t, context=context, y=pooled)


# ---------------------------------------------------------------------------------------------
# Qwen-Image's rope positions, as each side makes them
# ---------------------------------------------------------------------------------------------

def host_rope_positions(model_patcher, h: int, w: int, text_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (frame, row, column) positions the host's Qwen-Image gives the image tokens ((H/2 * W/2, 3)) and
    the text tokens ((text_tokens, 3)) of an (H, W) latent: the ids its ``pe_embedder`` is called with
    (text first), caught by a forward hook."""
    net = _host_denoiser(model_patcher)
    seen = []
    handle = net.pe_embedder.register_forward_hook(lambda module, args, out: seen.append(args[0].detach().clone()))
    try:
        host_velocity(model_patcher, torch.zeros(1, net.out_channels, 1, h, w), torch.tensor([0.5]),
                      torch.zeros(1, text_tokens, net.txt_in.in_features), None)
    finally:
        handle.remove()
    ids = seen[0][0]
    return ids[text_tokens:], ids[:text_tokens]


def _positions_of(freqs: torch.Tensor, axes_dim, theta: float = 10000.0, reach: int = 512) -> torch.Tensor:
    """The integer positions whose rope factors (complex, (N, sum(axes_dim) / 2)) ``freqs`` holds, axis by axis:
    each row matched to the nearest of positions -reach..reach."""
    candidates = torch.arange(-reach, reach + 1, dtype=torch.float64)
    out, start = [], 0
    for d in axes_dim:
        omega = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        table = torch.polar(torch.ones(len(candidates), d // 2, dtype=torch.float64), candidates[:, None] * omega[None])
        part = freqs[:, start:start + d // 2].to(torch.complex128)
        distance = (part[:, None, :] - table[None]).abs().amax(-1)
        best = distance.argmin(1)
        if distance.gather(1, best[:, None]).max() > 1e-4:
            raise ValueError("a rope factor matches no integer position")
        out.append(candidates[best])
        start += d // 2
    return torch.stack(out, dim=-1).to(torch.float32)


def diffusers_rope_positions(transformer, h: int, w: int, text_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions diffusers' Qwen-Image gives the image and text tokens of an (H, W) latent, read back from
    the rope factors its ``pos_embed`` makes (as its forward calls it)."""
    img, txt = transformer.pos_embed([(1, h // 2, w // 2)], max_txt_seq_len=text_tokens, device=torch.device("cpu"))
    axes = transformer.config.axes_dims_rope
    return _positions_of(img, axes), _positions_of(txt, axes)

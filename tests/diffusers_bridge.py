"""diffusers / transformers models carrying exactly the weights of ComfyUI models (for tests).

Used to compare the pack's results on the host with diffusers' reference pipelines on
identical weights (``invertedit/demo/tiny_models.py`` builds the host side). Every state dict is
loaded strictly, so a key the mapping misses is an error, not a silently random weight.

Conventions to mind when comparing (see HOST-NOTES "Matching diffusers on the same weights"):
the host's UNet sees ``x / sqrt(sigma^2 + 1)`` at timestep ``model_sampling.timestep(sigma)``;
host LATENTs are unscaled (diffusers latent / scaling factor); SDXL's ``y`` is
``cat(pooled, emb(h), emb(w), emb(crop_h), emb(crop_w), emb(target_h), emb(target_w))``,
i.e. diffusers' ``text_embeds`` and ``time_ids = [h, w, crop_h, crop_w, target_h, target_w]``;
``encode_adm`` alone assumes 768 x 768, but in sampling the host fills in the latent's size x 8
when the conditioning carries no size.
"""
from __future__ import annotations

import torch

import comfy.clip_model
import comfy.diffusers_convert
import comfy.model_patcher
import comfy.sd
import comfy.utils

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection


# ---------------------------------------------------------------------------------------------
# UNet
# ---------------------------------------------------------------------------------------------

def _unet_heads(unet_config: dict, channels: int) -> int:
    if unet_config.get("num_head_channels", -1) != -1:
        return channels // unet_config["num_head_channels"]
    return unet_config["num_heads"]


def diffusers_unet_config(unet_config: dict) -> dict:
    """The ``UNet2DConditionModel`` config equivalent to a host (ldm-layout) ``unet_config``."""
    mult = list(unet_config["channel_mult"])
    nrb = list(unet_config["num_res_blocks"])
    if len(set(nrb)) != 1:
        raise NotImplementedError("per-level num_res_blocks differ: not mapped")
    depth = list(unet_config["transformer_depth"])
    channels = [unet_config["model_channels"] * m for m in mult]
    level_depth = []
    for level in range(len(mult)):
        ds = depth[level * nrb[0]:(level + 1) * nrb[0]]
        if len(set(ds)) != 1:
            raise NotImplementedError("transformer depth varies inside a level: not mapped")
        level_depth.append(ds[0])
    if unet_config.get("transformer_depth_middle", 1) != max(level_depth[-1], 1):
        raise NotImplementedError("middle depth differs from the last level's: not mapped")
    out_depth = list(unet_config["transformer_depth_output"])
    if out_depth != [d for d in level_depth for _ in range(nrb[0] + 1)]:
        raise NotImplementedError("output transformer depths are not the mirror of the input's")
    cfg = {
        "sample_size": 8,
        "in_channels": unet_config["in_channels"],
        "out_channels": unet_config["out_channels"],
        "block_out_channels": tuple(channels),
        "layers_per_block": nrb[0],
        "down_block_types": tuple("CrossAttnDownBlock2D" if d > 0 else "DownBlock2D" for d in level_depth),
        "up_block_types": tuple("CrossAttnUpBlock2D" if d > 0 else "UpBlock2D" for d in reversed(level_depth)),
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "transformer_layers_per_block": tuple(max(d, 1) for d in level_depth),
        "cross_attention_dim": unet_config["context_dim"],
        # diffusers' historical name: this is the number of heads per block
        "attention_head_dim": tuple(_unet_heads(unet_config, c) for c in channels),
        "use_linear_projection": bool(unet_config.get("use_linear_in_transformer", False)),
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "act_fn": "silu",
    }
    adm = unet_config.get("adm_in_channels")
    if adm:
        cfg.update(addition_embed_type="text_time", addition_time_embed_dim=256,
                   projection_class_embeddings_input_dim=adm)
    return cfg


def diffusers_unet(model_patcher: comfy.model_patcher.ModelPatcher) -> UNet2DConditionModel:
    """A float32 CPU ``UNet2DConditionModel`` holding the host UNet's weights as this patcher gives them
    (strict load). The patcher is loaded first: the host patches a base model's weights in place for the
    clone it last sampled with (a LoRA, a fine-tune's differences) and leaves them so until another clone
    of it is loaded, so an earlier test's clone of a session-cached tiny model would otherwise be converted
    (seen when the DreamBooth and Imagic tests ran before the bridge's in one process)."""
    import comfy.model_management

    comfy.model_management.load_models_gpu([model_patcher])
    unet_config = model_patcher.model.model_config.unet_config
    host_sd = model_patcher.model.diffusion_model.state_dict()
    key_map = comfy.utils.unet_to_diffusers(unet_config)  # diffusers key -> host key
    unet = UNet2DConditionModel(**diffusers_unet_config(unet_config))
    sd = {}
    for key in unet.state_dict():
        if key not in key_map:
            raise KeyError(f"diffusers key {key!r} has no host counterpart")
        sd[key] = host_sd[key_map[key]].detach().to("cpu", torch.float32).clone()
    unet.load_state_dict(sd, strict=True)
    return unet.eval()


# ---------------------------------------------------------------------------------------------
# Text encoders
# ---------------------------------------------------------------------------------------------

def _host_text_models(clip: comfy.sd.CLIP) -> dict[str, torch.nn.Module]:
    """{"clip_l": SDClipModel, "clip_h": ..., "clip_g": ...} present in a host CLIP."""
    model = clip.cond_stage_model
    return {name: getattr(model, name) for name in ("clip_l", "clip_h", "clip_g") if hasattr(model, name)}


def _text_config(encoder: torch.nn.Module) -> CLIPTextConfig:
    tm = encoder.transformer.text_model
    first = tm.encoder.layers[0]
    # the host keeps the activation function itself; its name is the key in ACTIVATIONS
    # (quick_gelu, gelu, gelu_pytorch_tanh), which transformers knows under the same names
    act_name = next(k for k, v in comfy.clip_model.ACTIVATIONS.items() if v is first.mlp.activation)
    return CLIPTextConfig(
        vocab_size=tm.embeddings.token_embedding.weight.shape[0],
        hidden_size=tm.final_layer_norm.weight.shape[0],
        intermediate_size=first.mlp.fc1.weight.shape[0],
        num_hidden_layers=len(tm.encoder.layers),
        num_attention_heads=first.self_attn.heads,
        max_position_embeddings=tm.embeddings.position_embedding.weight.shape[0],
        hidden_act=act_name,
        layer_norm_eps=tm.final_layer_norm.eps,
        projection_dim=encoder.transformer.text_projection.weight.shape[0],
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
        attn_implementation="eager",
    )


def diffusers_text_encoder(clip: comfy.sd.CLIP, name: str | None = None,
                           with_projection: bool = False) -> CLIPTextModel | CLIPTextModelWithProjection:
    """A float32 transformers CLIP text model with the weights of one host text encoder.

    ``name``: "clip_l", "clip_h" or "clip_g" (default: the only one, or clip_l).
    ``with_projection``: a ``CLIPTextModelWithProjection`` (SDXL's clip_g pooled output).
    """
    encoders = _host_text_models(clip)
    if name is None:
        name = next(iter(encoders)) if len(encoders) == 1 else "clip_l"
    encoder = encoders[name]
    config = _text_config(encoder)
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    model = cls(config)
    host_sd = encoder.transformer.state_dict()  # text_model.*, text_projection.weight
    wanted = model.state_dict()
    sd = {}
    for k, v in wanted.items():
        # transformers 4 nests CLIPTextModel's layers under ``text_model.``; 5 does not
        for host_key in (k, "text_model." + k):
            if host_key in host_sd:
                sd[k] = host_sd[host_key].detach().to("cpu", torch.float32).clone()
                break
        else:
            if k.endswith("position_ids"):  # a buffer transformers makes itself
                sd[k] = v
            else:
                raise KeyError(f"transformers key {k!r} has no host counterpart")
    model.load_state_dict(sd, strict=True)
    return model.eval()


def final_layer_norm(model: CLIPTextModel | CLIPTextModelWithProjection) -> torch.nn.LayerNorm:
    """The final LayerNorm of a transformers CLIP text model (its place moved in v5)."""
    inner = getattr(model, "text_model", model)
    return inner.final_layer_norm


def diffusers_text_encoders_sdxl(clip: comfy.sd.CLIP) -> tuple[CLIPTextModel, CLIPTextModelWithProjection]:
    """SDXL's (text_encoder, text_encoder_2) as diffusers' SDXL pipeline holds them."""
    return diffusers_text_encoder(clip, "clip_l"), diffusers_text_encoder(clip, "clip_g", with_projection=True)


# ---------------------------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------------------------

def diffusers_vae(vae: comfy.sd.VAE, scaling_factor: float = 0.18215) -> AutoencoderKL:
    """A float32 ``AutoencoderKL`` with the weights of a host KL VAE (4 levels, SD layout).

    The key mapping is read off ``comfy.diffusers_convert.convert_vae_state_dict`` (which
    converts diffusers -> host) by feeding it tensors tagged with their own index.
    """
    ae = vae.first_stage_model
    dd = ae.encoder  # host Encoder
    host_sd = ae.state_dict()
    ch_mult = [int(m) for m in dd.in_ch_mult[1:]]
    ch = dd.ch
    model = AutoencoderKL(
        in_channels=dd.in_channels,
        out_channels=ae.decoder.conv_out.weight.shape[0],
        down_block_types=("DownEncoderBlock2D",) * len(ch_mult),
        up_block_types=("UpDecoderBlock2D",) * len(ch_mult),
        block_out_channels=tuple(ch * m for m in ch_mult),
        layers_per_block=dd.num_res_blocks,
        latent_channels=ae.post_quant_conv.weight.shape[1],
        norm_num_groups=32,
        sample_size=dd.resolution,
        scaling_factor=scaling_factor,
    )
    wanted = model.state_dict()
    keys = list(wanted)
    tagged = {k: torch.full(v.shape, float(i)) for i, (k, v) in enumerate(wanted.items())}
    converted = comfy.diffusers_convert.convert_vae_state_dict(tagged)
    sd = {}
    for host_key, t in converted.items():
        diff_key = keys[int(t.flatten()[0].item())]
        if host_key not in host_sd:
            raise KeyError(f"diffusers key {diff_key!r} maps to {host_key!r}, absent from the host VAE")
        sd[diff_key] = host_sd[host_key].detach().to("cpu", torch.float32).reshape(wanted[diff_key].shape).clone()
    unused = set(host_sd) - set(converted)
    if unused:
        raise KeyError(f"host VAE keys not mapped: {sorted(unused)[:5]}")
    model.load_state_dict(sd, strict=True)
    return model.eval()

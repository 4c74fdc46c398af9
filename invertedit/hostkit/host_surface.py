"""Everything of ComfyUI the pack relies on, in one place (issue 77): the host names it imports, the
members it reads on the host's objects, and the keys it reads in the options dicts the host hands
patches. Tested on ComfyUI {TESTED_HOST}; users run newer releases, which have removed internal names
before. ``tests/host/test_host_surface.py`` fails when the pack starts using a host name missing here
(add it, after checking the host's changelog for it) and when the host in use lacks one listed;
``missing()`` says at load time what a user's host lacks, so a node that needs it fails with that
sentence rather than an ``AttributeError`` deep in a run.

Known changes past the tested host (docs/host-compatibility.md): since late October 2025 the
guider passes ``latent_shapes`` to ``outer_sample`` / ``inner_sample`` (every override here takes
and passes on keywords it does not read); Flux.2 runs on Flux.1's transformer class under another
config (the flow techniques refuse configs they were not tested on: ``family.FLOW_EDITABLE``).
"""
from __future__ import annotations

import importlib

TESTED_HOST = "0.3.64"

#: Host names imported or read as attributes of host modules (the longest dotted name used).
SYMBOLS: tuple[str, ...] = (
    "comfy.clip_vision.ClipVisionModel",
    "comfy.image_encoders.dino2.Dinov2Model",
    "comfy.k_diffusion.sampling.sample_euler",
    "comfy.latent_formats.Wan21",
    "comfy.ldm.hunyuan3d.vae.ShapeVAE",
    "comfy.latent_formats.Wan22",
    "comfy.ldm.flux.model.Flux",
    "comfy.ldm.models.autoencoder.AutoencoderKL",
    "comfy.ldm.modules.attention.SpatialTransformer",
    "comfy.ldm.modules.attention.optimized_attention",
    "comfy.ldm.modules.diffusionmodules.mmdit.MMDiT",
    "comfy.ldm.modules.diffusionmodules.openaimodel.Downsample",
    "comfy.ldm.modules.diffusionmodules.openaimodel.ResBlock",
    "comfy.ldm.modules.diffusionmodules.openaimodel.UNetModel",
    "comfy.ldm.modules.diffusionmodules.openaimodel.Upsample",
    "comfy.ldm.qwen_image.model.QwenImageTransformer2DModel",
    "comfy.ldm.wan.vae.WanVAE",
    "comfy.ldm.wan.vae2_2.WanVAE",
    "comfy.ldm.wan.model.WanModel",
    "comfy.lora.load_lora",
    "comfy.lora.model_lora_keys_clip",
    "comfy.lora.model_lora_keys_unet",
    "comfy.lora_convert.convert_lora",
    "comfy.model_base.BaseModel",
    "comfy.model_base.ModelType.EPS",
    "comfy.model_base.ModelType.FLOW",
    "comfy.model_base.ModelType.FLUX",
    "comfy.model_base.ModelType.V_PREDICTION",
    "comfy.model_base.ModelType.V_PREDICTION_EDM",
    "comfy.model_base.SDXL",
    "comfy.model_base.SDXLRefiner",
    "comfy.model_management.dtype_size",
    "comfy.model_management.get_free_memory",
    "comfy.model_management.get_torch_device",
    "comfy.model_management.intermediate_device",
    "comfy.model_management.throw_exception_if_processing_interrupted",
    "comfy.model_management.unet_dtype",
    "comfy.model_management.unet_manual_cast",
    "comfy.model_management.unet_offload_device",
    "comfy.model_management.vae_offload_device",
    "comfy.model_patcher.ModelPatcher",
    "comfy.model_patcher.create_model_options_clone",
    "comfy.model_sampling.CONST",
    "comfy.model_sampling.EPS",
    "comfy.model_sampling.V_PREDICTION",
    "comfy.ops",
    "comfy.patcher_extension.WrappersMP.APPLY_MODEL",
    "comfy.patcher_extension.WrappersMP.OUTER_SAMPLE",
    "comfy.patcher_extension.add_wrapper_with_key",
    "comfy.sample.fix_empty_latent_channels",
    "comfy.sample.prepare_noise",
    "comfy.sampler_helpers.convert_cond",
    "comfy.samplers.CFGGuider",
    "comfy.samplers.KSAMPLER",
    "comfy.samplers.KSampler.SCHEDULERS",
    "comfy.samplers.calc_cond_batch",
    "comfy.samplers.calculate_sigmas",
    "comfy.samplers.cfg_function",
    "comfy.sd.CLIP",
    "comfy.sd.VAE",
    "comfy.sd1_clip.SD1ClipModel",
    "comfy.sd1_clip.SD1Tokenizer",
    "comfy.sdxl_clip.SDXLClipModel",
    "comfy.sdxl_clip.SDXLTokenizer",
    "comfy.supported_models.Hunyuan3Dv2",
    "comfy.supported_models.Flux",
    "comfy.supported_models.QwenImage",
    "comfy.supported_models.FluxSchnell",
    "comfy.supported_models.SD15",
    "comfy.supported_models.SD20",
    "comfy.supported_models.SD3",
    "comfy.supported_models.SDXL",
    "comfy.supported_models.SV3D_p",
    "comfy.supported_models.SV3D_u",
    "comfy.supported_models.WAN21_T2V",
    "comfy.supported_models.WAN22_T2V",
    "comfy.supported_models_base.ClipTarget",
    "comfy.text_encoders.flux.FluxTokenizer",
    "comfy.text_encoders.flux.flux_clip",
    "comfy.text_encoders.qwen_image.QwenImageTokenizer",
    "comfy.text_encoders.qwen_image.te",
    "comfy.text_encoders.wan.WanT5Tokenizer",
    "comfy.text_encoders.wan.te",
    "comfy.text_encoders.aura_t5.__file__",
    "comfy.text_encoders.qwen_vl.Qwen2VLVisionTransformer",
    "comfy.text_encoders.sd2_clip.SD2ClipModel",
    "comfy.text_encoders.sd2_clip.SD2Tokenizer",
    "comfy.text_encoders.sd3_clip.SD3Tokenizer",
    "comfy.text_encoders.sd3_clip.sd3_clip",
    "comfy.utils.ProgressBar",
    "comfy.utils.calculate_parameters",
    "comfy.utils.load_torch_file",
    "comfy.utils.save_torch_file",
    "comfy.utils.weight_dtype",
    "comfy.weight_adapter.lora.LoraDiff",
    "comfy_api.latest.ComfyExtension",
    "comfy_api.torch_helpers.torch_compile.COMPILE_KEY",
    "comfy_api.latest.io.Boolean.Input",
    "comfy_api.latest.io.Clip.Input",
    "comfy_api.latest.io.Combo.Input",
    "comfy_api.latest.io.ComfyNode",
    "comfy_api.latest.io.Conditioning.Input",
    "comfy_api.latest.io.Conditioning.Output",
    "comfy_api.latest.io.Custom",
    "comfy_api.latest.io.Float.Input",
    "comfy_api.latest.io.Int.Input",
    "comfy_api.latest.io.Latent.Input",
    "comfy_api.latest.io.Latent.Output",
    "comfy_api.latest.io.Model.Input",
    "comfy_api.latest.io.Model.Output",
    "comfy_api.latest.io.NodeOutput",
    "comfy_api.latest.io.Noise.Output",
    "comfy_api.latest.io.Sampler.Output",
    "comfy_api.latest.io.Schema",
    "comfy_api.latest.io.Sigmas.Output",
    "comfy_api.latest.io.String.Input",
    "comfy_extras.nodes_custom_sampler.Noise_RandomNoise",
    "comfy_extras.nodes_hunyuan3d.Hunyuan3Dv2ConditioningMultiView",
    "folder_paths.get_annotated_filepath",
    "folder_paths.get_folder_paths",
    "folder_paths.get_input_directory",
    "folder_paths.get_output_directory",
    "folder_paths.get_save_image_path",
    "latent_preview.get_previewer",
    "node_helpers.conditioning_set_values",
    "nodes.CLIPVisionEncode",
)

#: Members the pack reads or calls on host objects, by the host class that defines them.
MEMBERS: dict[str, tuple[str, ...]] = {
    "comfy.model_patcher.ModelPatcher": (
        "add_object_patch", "add_patches", "add_weight_wrapper", "add_wrapper_with_key", "backup",
        "get_model_object", "get_wrappers", "load", "load_device", "loaded_size", "model", "model_options",
        "model_size", "parent", "patches",
        "remove_wrappers_with_key", "set_model_attn1_output_patch", "set_model_attn1_patch", "set_model_attn1_replace", "set_model_attn2_replace",
        "set_model_output_block_patch", "set_model_patch_replace", "set_model_sampler_post_cfg_function"),
    "comfy.samplers.CFGGuider": (
        "cfg", "inner_sample", "inner_set_conds", "model_options", "model_patcher", "outer_sample", "predict_noise",
        "sample", "set_cfg"),
    "comfy.model_base.BaseModel": (
        "diffusion_model", "latent_format", "model_config", "model_sampling", "model_type", "process_latent_in"),
    "comfy.sd.CLIP": (
        "add_patches", "cond_stage_model", "encode", "encode_from_tokens", "encode_from_tokens_scheduled",
        "layer_idx", "load_model", "patcher", "tokenize", "tokenizer"),
    "comfy.sd.VAE": (
        "decode", "downscale_index_formula", "downscale_ratio", "encode", "first_stage_model", "latent_channels", "latent_dim",
        "memory_used_decode", "memory_used_encode", "patcher", "upscale_index_formula", "upscale_ratio",
        "working_dtypes"),
}

#: Keys the pack reads in ``model_options`` / ``transformer_options`` and the attention patches'
#: ``extra_options`` (the host writes them; a renamed key reads as absent).
OPTION_KEYS: tuple[str, ...] = (
    "attn1", "attn2", "attn_precision", "block", "block_index", "cond_or_uncond", "disable_cfg1_optimization", "dit",
    "n_heads", "original_shape", "output_block_patch", "patches", "patches_replace", "sample_sigmas", "sampler_post_cfg_function",
    "sampler_pre_cfg_function", "sigmas", "transformer_options")


def resolve(name: str):
    """The host object a dotted ``name`` names (the longest importable module, then attributes);
    raises ``LookupError`` naming what is missing."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for i, attr in enumerate(parts[cut:], start=cut):
            if not hasattr(obj, attr):
                raise LookupError(f"{'.'.join(parts[:i + 1])} is missing")
            obj = getattr(obj, attr)
        return obj
    raise LookupError(f"{parts[0]} is not importable")


def missing() -> list[str]:
    """The listed host names this ComfyUI lacks: ``SYMBOLS``, and the ``MEMBERS`` its classes define
    (instance attributes set in ``__init__`` are checked by the tests on real objects)."""
    out = []
    for name in SYMBOLS:
        try:
            resolve(name)
        except LookupError as e:
            out.append(str(e))
    for cls_name, members in MEMBERS.items():
        try:
            cls = resolve(cls_name)
        except LookupError as e:
            out.append(str(e))
            continue
        init = getattr(cls.__init__, "__code__", None)
        assigned = set(init.co_names) if init is not None else set()
        out += [f"{cls_name}.{m} is missing" for m in members if not hasattr(cls, m) and m not in assigned]
    return out

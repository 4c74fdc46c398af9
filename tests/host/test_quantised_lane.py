"""The quantised lane (issue 77): the flow workflows with their diffusion model loaded as most Flux users
load it: from a GGUF file by city96's ComfyUI-GGUF (Q8_0, Q4_0), and from a scaled-fp8 file or in fp8 e5m2 by
the host's Load Diffusion Model.

The scaled-fp8 file is written as the host writes one (``BaseModel.state_dict_for_saving`` of a model
loaded with ``scaled_fp8``): every Linear weight in fp8 e4m3fn divided by its ``scale_weight`` (here its
largest magnitude over 448, e4m3fn's largest value), the other weights as they are, and the empty
``scaled_fp8`` marker of dtype e4m3fn; the host reads it with its ``scaled_fp8_ops``. e5m2 is Load
Diffusion Model's ``weight_dtype`` option on the float16 file (e4m3fn is the half-precision lane's, every
workflow). On this CPU the host computes both from the fp8 weights in float32.

ComfyUI-GGUF is fetched at test time (``reference_copy``: ``$COMFYUI_GGUF_PATH`` or the ``fetch`` tool's
snapshot of city96/ComfyUI-GGUF), loaded into the booted host by the host's own custom-node loader, and
run unchanged; the lane is skipped loudly where it or the ``gguf`` package is absent. Its files are made
the way its README makes them: the diffusion model's weights saved as safetensors, turned into an F16
GGUF by its own ``tools/convert.py`` (imported from the copy, unchanged), then quantised to Q8_0 and
Q4_0 by the ``gguf`` package's Python quantisers (``quantise``: every F16 weight of two or more dimensions
whose rows fill whole blocks, as llama.cpp's ``llama-quantize`` picks them). Q4_K, the 4-bit format most Flux
GGUF files use, is made by ComfyUI-GGUF's patched llama.cpp, which this machine cannot fetch and build, and the
Python package only dequantises it: ``q4_k`` writes llama.cpp's Q4_K blocks itself (256 values, eight 6-bit
scales and minimums, 4-bit codes; min-max rounding, not llama.cpp's search, so no better than its files), checked
against the package's own dequantiser (``test_q4_k_blocks_are_llama_cpp_s``). As llama-quantize does, a matrix
whose rows do not fill 256-value blocks falls back to Q5_0 (``FALLBACK``): on the toy flow DiT 6 of its 42
matrices are Q4_K and 36 Q5_0.

The workflow is the one ``test_workflow_runs_headless`` runs (the toy flow DiT for Flux, the tiny
SD3, the tiny Qwen-Image: its GGUF files by convert.py with the Qwen-Image template it lacks,
``add_qwen_image_template``), cut like the half-precision lane's (``test_half_precision.lane_prompt``), with every input that
took the built-in loader's MODEL taken from ComfyUI-GGUF's "Unet Loader (GGUF)" instead. The host's
model detection reads a Flux file's head width as 128 (every real Flux); the tiny models' heads are
narrower, so while the lane runs ``detect_unet_config`` answers with the tiny model's own config for
exactly those weights (``tiny_detection``) and asks the host for any other. Everything after it (the
host's config matching, ComfyUI-GGUF's loader, ops, patcher and dequantisation) is the real code.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import test_half_precision as half_lane
from test_half_precision import _run, lane_prompt, model_from, psnr
from test_workflows import CHECKPOINT_FILES

runner, watch = half_lane.runner, half_lane.watch   # the half-precision lane's fixtures

GGUF_REPO = "city96/ComfyUI-GGUF"
GGUF_PARTS = ("__init__.py", "nodes.py", "ops.py", "loader.py", "dequant.py", "tools")
QUANTS = ("Q8_0", "Q4_0", "Q4_K")
KINDS = ("GGUF Q8_0", "GGUF Q4_0", "GGUF Q4_K", "scaled fp8", "fp8 e5m2")
#: llama-quantize's type for a matrix whose rows do not fill the format's blocks (llama.cpp, llama_tensor_get_type).
FALLBACK = {"Q4_K": "Q5_0"}
# Minimum PSNR (dB) of each saved image against the float32 run's, and of a saved mask the share of pixels that
# flip (measured on this project's CPU machine, 2026-11-29, at the lane's cut, over the 13 flow workflows:
# docs/measurements.md, "The weights artists run"). GGUF Q8_0 (8 bits a weight, one fp16 scale per 32) measured
# 40.5-70.5 dB; Q4_0 (4 bits) 19.8-51.7 dB, the word mask 1.6% flipped; Q4_K (with its Q5_0 fallback, ``q4_k``)
# 22.9-58.1 dB, 2.7% of the mask flipped; scaled fp8 (e4m3fn, one scale a matrix)
# 24.7-60.0 dB; fp8 e5m2 (a 2-bit mantissa, no scale) 23.0-53.5 dB, 1.2% of the mask flipped. The edits land and
# the objects keep their shapes in each; another picture of the toy world scores 5-8 dB, so a wrong or black
# picture still fails. The three Qwen-Image workflows on the tiny random Qwen-Image (this CPU machine, 2026-11-29): Q8_0
# 55.4-62.5 dB, Q4_0 36.9-46.5, Q4_K 40.3-49.9, scaled fp8 46.3-54.5, fp8 e5m2 37.2-48.3. The six instruction lock
# workflows on the tiny random Kontext (flux-dev) and Qwen-Image-Edit (qwen-image), same day and machine: Q8_0
# 46.5-65.1 dB, Q4_0 24.5-51.9, Q4_K 28.7-57.0, scaled fp8 33.5-57.3, fp8 e5m2 25.8-53.5 (the ten rounds the lowest).
PSNR_MIN = {"GGUF Q8_0": 35.0, "GGUF Q4_0": 15.0, "GGUF Q4_K": 18.0, "scaled fp8": 20.0, "fp8 e5m2": 18.0}
MASK_FLIPS_MAX = {"GGUF Q8_0": 0.02, "GGUF Q4_0": 0.05, "GGUF Q4_K": 0.05, "scaled fp8": 0.02, "fp8 e5m2": 0.05}
# The instruction lock's mask from a word on the tiny random Kontext (issue 81): a random model's word maps taken at
# 0.8 of their most (its test override), which any of these weights moves (measured 1.6-9.4% flipped; its PSNR floors
# hold). The lock itself is checked on every mask it is given (test_workflows' latent check)
# LayerVerse's SD3 template (issue 84) takes its mask from Attention Store's word map on the tiny random SD3, a 4x4 grid
# of cells at the lane's cut (one cell: 6.25%), which fp8 e5m2 and the 4-bit GGUF kinds move by one or two cells
# (measured 6.2-12.5%); its PSNR floors hold. The injection itself is checked on every mask in test_layerverse.
MASK_FLIPS_MAX_FOR = {"Kontext - Instruction lock from a word": 0.15, "Qwen-Image-Edit - Instruction lock from a word": 0.15,
                      "SD3 - LayerVerse (FireFlow)": 0.15}
# Floors of a template below its kind's: FlowAlign on the tiny random Flux at fp8 e5m2 (a 2-bit mantissa, no scale)
# measured 17.1 dB (its other kinds 21.6-43.8 dB; FlowEdit's e5m2 19.9): its guidance over the source prompt (2, with
# FluxGuidance 3.5) scales the two prompts' difference, and the quantisation's error with it, every step. Another
# picture still scores 5-8 dB.
PSNR_MIN_FOR = {("Flux - FlowAlign", "fp8 e5m2"): 16.0}
E4M3_MAX = 448.0
# The Flux, SD3 and Qwen-Image workflows. ComfyUI-GGUF's convert.py cannot convert the toy or tiny SD UNets (it
# recognises an SD1 or SDXL UNet by blocks a full-depth one has, input_blocks.9 and the like: "Unknown model
# architecture!").
# The instruction lock's (issue 81) too: Kontext on the tiny random flux-dev, Qwen-Image-Edit on the tiny qwen-image.
LANE_FILES = [p for p in CHECKPOINT_FILES if p.stem.startswith(("Flux - ", "SD3 - ", "Qwen-Image - ", "Kontext - ",
                                                                 "Qwen-Image-Edit - "))]


# Qwen-Image in ComfyUI-GGUF: its loader takes the architecture (loader.py's IMG_ARCH_LIST lists "qwen_image", the
# name the Qwen-Image GGUF files carry), but its tools/convert.py has no template for it: a Qwen-Image state dict's
# keys (transformer_blocks.0.attn.norm_added_k, add_q_proj) read as Flux's and SD3's diffusers format, which it refuses
# ("Model architecture not allowed for conversion"). The lane adds the template convert.py lacks, in its own
# terms (a ``ModelTemplate`` named by the keys only Qwen-Image has, first in its ``arch_list``); the conversion
# itself, its dtypes and the files are convert.py's.
QWEN_IMAGE_KEYS = ("transformer_blocks.0.img_mod.1.weight", "txt_norm.weight", "img_in.weight")


def add_qwen_image_template(convert) -> None:
    """``convert`` (ComfyUI-GGUF's tools/convert.py, loaded) recognising a Qwen-Image diffusion model as
    arch "qwen_image" (what its loader reads), where it does not already."""
    if any(t.arch == "qwen_image" for t in convert.arch_list):
        return
    template = type("ModelQwenImage", (convert.ModelTemplate,), {"arch": "qwen_image", "keys_detect": [QWEN_IMAGE_KEYS]})
    convert.arch_list.insert(0, template)


def quantise(src, dst, kind: str) -> int:
    """Write GGUF file ``src`` (ComfyUI-GGUF's F16 conversion) to ``dst`` with every F16 weight of two or more
    dimensions whose rows fill whole blocks quantised to ``kind`` ("Q8_0", "Q4_0", "Q4_K"; ``FALLBACK`` where
    the rows do not fill ``kind``'s blocks), as llama.cpp's quantiser picks them (a name ending in "weight", two or more dimensions); the rest as they are, and
    the file's architecture and ComfyUI-GGUF's shape records kept. Returns how many tensors were quantised."""
    import gguf

    reader = gguf.GGUFReader(str(src))
    field = reader.fields["general.architecture"]
    writer = gguf.GGUFWriter(path=None, arch=str(bytes(field.parts[field.data[0]]), "utf-8"))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for name, f in reader.fields.items():
        if name.startswith("comfy.gguf.orig_shape."):
            writer.add_array(name, [int(f.parts[i][0]) for i in f.data])
    count = 0
    for t in reader.tensors:
        assert t.tensor_type in (gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.F32), (t.name, t.tensor_type)
        shape = tuple(int(n) for n in reversed(t.shape))      # the file's order is ggml's (fastest first)
        data = np.asarray(t.data).reshape(shape)
        qtype = _quant_type(kind, shape) if t.tensor_type == gguf.GGMLQuantizationType.F16 \
            and t.name.endswith("weight") else None
        if qtype is not None:
            writer.add_tensor(t.name, _quantize(data.astype(np.float32), qtype), raw_dtype=qtype)
            count += 1
        else:
            writer.add_tensor(t.name, data, raw_dtype=t.tensor_type)
    writer.write_header_to_file(path=str(dst))
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return count


def _quant_type(kind: str, shape: tuple):
    """The GGML type llama-quantize gives a weight of ``shape`` for ``kind``: ``kind`` where its rows fill whole
    blocks, else ``FALLBACK[kind]`` where they fill its blocks; None (kept as it is) for a vector or another row."""
    import gguf

    if len(shape) < 2:
        return None
    for name in (kind, FALLBACK.get(kind)):
        qtype = getattr(gguf.GGMLQuantizationType, name) if name else None
        if qtype is not None and shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0] == 0:
            return qtype
    return None


def _quantize(data: np.ndarray, qtype) -> np.ndarray:
    import gguf

    return q4_k(data) if qtype == gguf.GGMLQuantizationType.Q4_K else gguf.quants.quantize(data, qtype)


def q4_k(data: np.ndarray) -> np.ndarray:
    """``data`` (rows a multiple of 256 long) in llama.cpp's Q4_K blocks, as bytes: per 256 values an fp16 scale
    ``d`` and minimum ``dmin``, eight 6-bit sub-block scales and minimums packed in 12 bytes, and 256 4-bit codes
    (sub-blocks 2g and 2g + 1 in the low and high nibbles of bytes 32g..32g + 31); a value is
    ``d * scale[i] * code - dmin * min[i]``. Each sub-block of 32 is rounded min-max (its minimum or 0, whichever is
    lower, to its maximum over 15 codes)."""
    blocks = data.astype(np.float32).reshape(-1, 8, 32)
    n = blocks.shape[0]
    low = np.minimum(blocks.min(-1), 0.0)
    step = (blocks.max(-1) - low) / 15.0
    d = (step.max(-1) / 63.0).astype(np.float16)
    dmin = ((-low).max(-1) / 63.0).astype(np.float16)

    def six_bits(v, unit):
        unit = unit.astype(np.float32)[:, None]
        return np.where(unit > 0, np.rint(v / np.where(unit > 0, unit, 1.0)), 0).clip(0, 63).astype(np.uint8)

    sc, mn = six_bits(step, d), six_bits(-low, dmin)
    scale = d.astype(np.float32)[:, None] * sc
    offset = dmin.astype(np.float32)[:, None] * mn
    codes = np.where(scale[..., None] > 0, np.rint((blocks + offset[..., None]) / np.where(scale > 0, scale, 1.0)[..., None]), 0)
    codes = codes.clip(0, 15).astype(np.uint8)
    packed = np.empty((n, 12), np.uint8)
    packed[:, 0:4] = sc[:, :4] | ((sc[:, 4:] >> 4) << 6)
    packed[:, 4:8] = mn[:, :4] | ((mn[:, 4:] >> 4) << 6)
    packed[:, 8:12] = (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4)
    nibbles = (codes[:, 0::2] | (codes[:, 1::2] << 4)).reshape(n, 128)
    out = np.concatenate([d.reshape(n, 1).view(np.uint8), dmin.reshape(n, 1).view(np.uint8), packed, nibbles], axis=1)
    return out.reshape(*data.shape[:-1], data.shape[-1] // 256 * 144)


def _signature(sd) -> tuple:
    return tuple(sorted((k, tuple(int(n) for n in v.shape)) for k, v in sd.items() if torch.is_tensor(v)))


@contextlib.contextmanager
def tiny_detection(known: dict[tuple, dict]):
    """Within: the host's ``detect_unet_config`` answers ``known[signature]`` (a copy) for a state dict of
    one of those weights' signatures, and itself for any other (module docstring)."""
    import comfy.model_detection

    detect = comfy.model_detection.detect_unet_config

    def detect_tiny(state_dict, key_prefix, metadata=None):
        config = known.get(_signature(state_dict))
        return dict(config) if config is not None else detect(state_dict, key_prefix, metadata=metadata)

    comfy.model_detection.detect_unet_config = detect_tiny
    try:
        yield
    finally:
        comfy.model_detection.detect_unet_config = detect


def scaled_fp8(sd: dict[str, torch.Tensor], linear: set[str]) -> dict[str, torch.Tensor]:
    """``sd`` as the host saves a model loaded with ``scaled_fp8`` (module docstring): the weights of the modules
    in ``linear`` in e4m3fn over their ``scale_weight``, the rest as they are, and the ``scaled_fp8`` marker."""
    out = {}
    for k, v in sd.items():
        module = k.rsplit(".", 1)[0]
        if k.endswith(".weight") and module in linear:
            scale = (v.float().abs().max() / E4M3_MAX).clamp(min=1e-12)
            out[k] = (v.float() / scale).to(torch.float8_e4m3fn)
            out[f"{module}.scale_weight"] = scale.reshape(())
        else:
            out[k] = v
    out["scaled_fp8"] = torch.tensor([], dtype=torch.float8_e4m3fn)
    return out


class LaneFiles:
    """The lane's files, by (builtin, kind), made once a session from the built-in models' weights in the
    host's first diffusion-model folder, and the tiny configs the detection answers with. ``convert``:
    ComfyUI-GGUF's tools/convert.py (None where it is absent: the GGUF kinds are then skipped loudly)."""

    def __init__(self, host, folder, convert=None):
        self.host, self.folder, self.convert = host, folder, convert
        self.files: dict[tuple[str, str], str] = {}
        self.known: dict[tuple, dict] = {}

    def model(self, builtin: str):
        demo = self.host.pack.demo
        if builtin == "toy-flow":
            return demo.toy_model.load_toy_model(demo.worlds.WORLD_FLOW)[0]
        return demo.tiny_flow_models.build_tiny_flow_unet(builtin.removeprefix("demo-"), seed=0)

    def file(self, builtin: str, kind: str) -> str:
        if (builtin, kind) in self.files:
            return self.files[(builtin, kind)]
        model = self.model(builtin)
        net = model.model.diffusion_model
        sd = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
        self.known[_signature(sd)] = dict(model.model.model_config.unet_config)
        src = self.folder / f"invertedit-{builtin}.safetensors"
        save_file(sd, str(src))
        self.files[(builtin, "fp8 e5m2")] = src.name
        linear = {name for name, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
        scaled = scaled_fp8(sd, linear)
        self.known[_signature(scaled)] = self.known[_signature(sd)]   # the host detects before it pops the marker
        save_file(scaled, str(self.folder / f"invertedit-{builtin}-scaled-fp8.safetensors"))
        self.files[(builtin, "scaled fp8")] = f"invertedit-{builtin}-scaled-fp8.safetensors"
        if self.convert is not None:
            f16, _ = self.convert.convert_file(str(src), str(self.folder / f"invertedit-{builtin}-F16.gguf"),
                                               interact=False, overwrite=True)
            for q in QUANTS:
                name = f"invertedit-{builtin}-{q}.gguf"
                assert quantise(f16, self.folder / name, q) > 0
                self.files[(builtin, f"GGUF {q}")] = name
        return self.files[(builtin, kind)]

    def loader(self, builtin: str, kind: str) -> dict:
        """The API node that loads ``kind`` of ``builtin``'s diffusion model."""
        name = self.file(builtin, kind)
        if kind.startswith("GGUF"):
            return {"class_type": "UnetLoaderGGUF", "inputs": {"unet_name": name}}
        return {"class_type": "UNETLoader",
                "inputs": {"unet_name": name, "weight_dtype": "fp8_e5m2" if kind == "fp8 e5m2" else "default"}}


def _load_gguf(host, reference_copy, tmp_path_factory):
    """ComfyUI-GGUF loaded into the host, and its convert tool; None (and why) where it or gguf is absent."""
    try:
        import gguf  # noqa: F401
    except ImportError:
        return None, "the gguf package is missing (scripts/setup.sh installs it)"
    root = tmp_path_factory.mktemp("gguf") / "ComfyUI-GGUF"
    copy = reference_copy(root, "COMFYUI_GGUF", GGUF_REPO, GGUF_PARTS, "nodes.py")
    if copy is None:
        return None, f"{GGUF_REPO} is absent (fetch github:{GGUF_REPO}, or set COMFYUI_GGUF_PATH)"
    if "UnetLoaderGGUF" not in host.nodes.NODE_CLASS_MAPPINGS:
        assert asyncio.run(host.nodes.load_custom_node(str(copy), module_parent="custom_nodes")), \
            "the host could not load ComfyUI-GGUF"
    spec = importlib.util.spec_from_file_location("comfyui_gguf_convert", copy / "tools" / "convert.py")
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    add_qwen_image_template(convert)
    return convert, None


@pytest.fixture(scope="module")
def lane_files(host, reference_copy, tmp_path_factory):
    import folder_paths

    convert, absent = _load_gguf(host, reference_copy, tmp_path_factory)
    files = LaneFiles(host, Path(folder_paths.get_folder_paths("diffusion_models")[0]), convert)
    files.gguf_absent = absent
    return files


def write_gguf(sd: dict[str, torch.Tensor], arch: str, dst, kind: str = "Q8_0") -> None:
    """``sd`` as a GGUF file of ``arch``: each weight of two or more dimensions whose rows fill whole blocks in
    ``kind``, as ``quantise`` picks them, the rest in F32. For the tiny SD UNets, which ComfyUI-GGUF's convert.py
    does not recognise (``LANE_FILES``)."""
    import gguf

    qtype = getattr(gguf.GGMLQuantizationType, kind)
    writer = gguf.GGUFWriter(path=None, arch=arch)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for k, v in sd.items():
        data = v.detach().float().numpy()
        if k.endswith("weight") and data.ndim >= 2 and data.shape[-1] % gguf.GGML_QUANT_SIZES[qtype][0] == 0:
            writer.add_tensor(k, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(k, data, raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file(path=str(dst))
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def gguf_tiny_unet(host, folder, family: str = "sd1"):
    """The tiny ``family`` UNet (seed 0) quantised to Q8_0 in a GGUF file and loaded as ComfyUI-GGUF's Unet
    Loader (GGUF) loads one (its ``gguf_sd_loader``, ``GGMLOps`` and ``GGUFModelPatcher``, the host's
    ``load_diffusion_model_state_dict`` steps), with the tiny model's config where the host would detect one.
    ComfyUI-GGUF must be loaded into the host (``_load_gguf``)."""
    import sys

    import comfy.model_management
    import comfy.model_patcher

    gguf_nodes = sys.modules[host.nodes.NODE_CLASS_MAPPINGS["UnetLoaderGGUF"].__module__]
    gguf_loader = sys.modules[gguf_nodes.__name__.rsplit(".", 1)[0] + ".loader"]
    plain = host.pack.demo.tiny_models.build_tiny_unet(family)
    path = folder / f"invertedit-tiny-{family}-Q8_0.gguf"
    write_gguf(plain.model.diffusion_model.state_dict(), family, path)
    sd = gguf_loader.gguf_sd_loader(str(path))
    config = type(plain.model.model_config)(dict(plain.model.model_config.unet_config))
    config.set_inference_dtype(torch.float32, None)
    config.custom_operations = gguf_nodes.GGMLOps()
    model = host.pack.hostkit.loaders._base_model(config, plain.model.model_type)
    model.load_model_weights(sd, "")
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=comfy.model_management.get_torch_device(),
                                               offload_device=comfy.model_management.unet_offload_device())
    return gguf_nodes.GGUFModelPatcher.clone(patcher)


_REFERENCE: dict[str, dict] = {}   # the float32 run's saved images, by workflow (one run for the four kinds)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", LANE_FILES, ids=[p.stem for p in LANE_FILES])
def test_workflow_with_quantised_weights(path, kind, host, runner, watch, lane_files, skip_loudly):
    """The workflow runs with its diffusion model loaded as ``kind``: no error, nothing non-finite, no flat
    picture, each saved image within ``PSNR_MIN`` of the float32 run's (a mask: at most ``MASK_FLIPS_MAX`` of
    its pixels flipped). Every inversion in it was made and checked on the loaded model (its fingerprint
    reads no dequantised or placeholder weight)."""
    from workshop import make_workflows

    if kind.startswith("GGUF") and lane_files.convert is None:
        skip_loudly(f"quantised lane, {kind}: {lane_files.gguf_absent}")
    if path.stem not in _REFERENCE:
        reference, problems, _ = _run(lane_prompt(path, host, runner), host, runner, watch)
        assert not problems, f"float32: {problems}"
        _REFERENCE[path.stem] = reference
    reference = _REFERENCE[path.stem]
    loader = lane_files.loader(make_workflows.builtin_for(path.stem), kind)
    with tiny_detection(lane_files.known):
        saved, problems, elapsed = _run(model_from(lane_prompt(path, host, runner), "lane_unet", loader), host, runner, watch)
    worst, flips = math.inf, 0.0
    for key, images in saved.items():
        for image, ref in zip(images, reference[key]):
            if np.isin(ref, (0.0, 255.0)).all():   # a mask
                flips = max(flips, float((image != ref).any(-1).mean()))
            else:
                worst = min(worst, psnr(image, ref))
    print(f"{path.stem}, {kind}: {elapsed:.1f}s PSNR>={worst:.1f}dB" + (f" mask flips<={flips:.2%}" if flips else ""))
    assert not problems, problems
    floor = PSNR_MIN_FOR.get((path.stem, kind), PSNR_MIN[kind])
    assert worst >= floor, f"PSNR {worst:.1f} dB < {floor} dB"
    most = MASK_FLIPS_MAX_FOR.get(path.stem, MASK_FLIPS_MAX[kind])
    assert flips <= most, f"{flips:.1%} of a mask's pixels flip (> {most:.0%})"


def test_gguf_model_fingerprint_reads_no_placeholder(host, lane_files, skip_loudly):
    """A GGUF model's fingerprint: computed without error (ComfyUI-GGUF's state dict holds meta placeholders
    for its quantised layers), the same for the same file loaded twice, different between Q8_0, Q4_0 and Q4_K
    and from the float32 model; nothing of the model was dequantised or moved for it."""
    if lane_files.convert is None:
        skip_loudly(f"quantised lane, GGUF fingerprint: {lane_files.gguf_absent}")
    fingerprint = host.pack.hostkit.fingerprint
    loader = host.nodes.NODE_CLASS_MAPPINGS["UnetLoaderGGUF"]()
    seen = {}
    with tiny_detection(lane_files.known):
        for kind in QUANTS:
            name = lane_files.file("toy-flow", f"GGUF {kind}")
            first, second = loader.load_unet(name)[0], loader.load_unet(name)[0]
            assert any(t.device.type == "meta" for t in first.model_state_dict().values()), \
                "ComfyUI-GGUF no longer gives placeholders: this test no longer tests them"
            before = {k: (type(t), t.device, t.data_ptr()) for k, t in fingerprint.stored_tensors(first.model).items()}
            seen[kind] = fingerprint.model_fingerprint(first)["weights"]
            assert fingerprint.model_fingerprint(second)["weights"] == seen[kind]
            after = {k: (type(t), t.device, t.data_ptr()) for k, t in fingerprint.stored_tensors(first.model).items()}
            assert after == before
    plain = fingerprint.model_fingerprint(lane_files.model("toy-flow"))["weights"]
    assert len({*seen.values(), plain}) == len(QUANTS) + 1


def test_qwen_image_gguf_is_comfyui_ggufs_qwen_image(host, lane_files, skip_loudly):
    """The lane's Qwen-Image GGUF files carry the architecture ComfyUI-GGUF's loader lists ("qwen_image"), and its
    Unet Loader (GGUF) gives the host's Qwen-Image with quantised layers (Q8_0 blocks where the rows fill them):
    the Qwen-Image workflows' figures are those of a GGUF Qwen-Image, as the loader runs one."""
    import comfy.model_base
    import gguf

    if lane_files.convert is None:
        skip_loudly(f"quantised lane, Qwen-Image GGUF: {lane_files.gguf_absent}")
    name = lane_files.file("demo-qwen-image", "GGUF Q8_0")
    reader = gguf.GGUFReader(str(lane_files.folder / name))
    field = reader.fields["general.architecture"]
    assert str(bytes(field.parts[field.data[0]]), "utf-8") == "qwen_image"
    assert {t.tensor_type for t in reader.tensors} >= {gguf.GGMLQuantizationType.Q8_0}
    with tiny_detection(lane_files.known):
        model = host.nodes.NODE_CLASS_MAPPINGS["UnetLoaderGGUF"]().load_unet(name)[0]
    assert isinstance(model.model, comfy.model_base.QwenImage)
    assert host.pack.hostkit.quantised.quantised_layers(model)


def test_the_lane_loads_what_it_says(host, lane_files):
    """The scaled-fp8 file loads as the host loads one (``scaled_fp8`` set, Linear weights in e4m3fn with their
    scales), and e5m2 as Load Diffusion Model's option (every Linear weight in e5m2): the lane's PSNR figures are
    those of these weights."""
    loader = host.nodes.UNETLoader()
    with tiny_detection(lane_files.known):
        scaled = loader.load_unet(lane_files.file("toy-flow", "scaled fp8"), "default")[0]
        e5m2 = loader.load_unet(lane_files.file("toy-flow", "fp8 e5m2"), "fp8_e5m2")[0]
    assert scaled.model.model_config.scaled_fp8 == torch.float8_e4m3fn
    linear = [m for m in scaled.model.diffusion_model.modules() if isinstance(m, torch.nn.Linear)]
    assert linear and all(m.weight.dtype == torch.float8_e4m3fn and m.scale_weight.numel() == 1 for m in linear)
    assert len({float(m.scale_weight) for m in linear}) > 1
    assert {m.weight.dtype for m in e5m2.model.diffusion_model.modules() if isinstance(m, torch.nn.Linear)} \
        == {torch.float8_e5m2}


def test_gradient_nodes_run_on_a_gguf_unet(host, lane_files, tiny, skip_loudly, tmp_path_factory):
    """Null-Text Optimize takes its gradients through the UNet's layers to the null-text embedding, not to its
    weights: on a GGUF UNet it runs (the weight-training nodes refuse one: the bad-input table's GGUF cases), moving
    the embeddings as far as on the plain model; its inversion is refused with the plain model."""
    from workshop.headless.calls import call, encode

    if lane_files.convert is None:
        skip_loudly(f"quantised lane, GGUF SD UNet: {lane_files.gguf_absent}")
    quantised = gguf_tiny_unet(host, tmp_path_factory.mktemp("gguf-sd1"))
    assert host.pack.hostkit.quantised.quantised_layers(quantised)
    plain, clip, _ = tiny("sd1")
    pos, neg = encode(host, clip, "a red circle on a blue background"), encode(host, clip, "")
    latent = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    runs = {}
    for name, model in (("plain", plain), ("gguf", quantised)):
        inv, _, _ = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=pos, steps=4,
                         scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
        runs[name] = call(host, "InvertEditNullTextOptimize", model=model, inversion=inv, positive=pos, negative=neg,
                          cfg=7.5, inner_steps=3, learning_rate=0.01, early_stop=False)[0]
    start = neg[0][0].float()
    a, b = (runs[n].clues["null_text"].float() - start for n in ("plain", "gguf"))
    assert torch.isfinite(b).all()
    # Adam's first steps move each value by about the learning rate in its gradient's sign, which Q8_0's rounding
    # flips where a gradient is near zero (measured: the same distance, 9.0 against 9.2, cosine 0.42): compare sizes
    assert abs(float(b.norm()) / float(a.norm()) - 1) < 0.2
    with pytest.raises(ValueError, match="not the one the inversion was made with|not the model"):
        call(host, "InvertEditApplyInversion", model=plain, inversion=runs["gguf"])


def test_q4_k_blocks_are_llama_cpp_s(skip_loudly):
    """``q4_k``'s bytes read back through the ``gguf`` package's own Q4_K dequantiser (llama.cpp's layout): weights
    like a model's within 12% of their spread (root mean square), and the values so read quantised again
    give the same values (the scales, minimums and codes land where the format reads them)."""
    try:
        import gguf
    except ImportError:
        skip_loudly("quantised lane, Q4_K blocks: the gguf package is missing (scripts/setup.sh installs it)")
    rng = np.random.default_rng(0)
    data = rng.standard_normal((4, 512)).astype(np.float32) * np.array([[0.02], [1.0], [30.0], [0.5]], np.float32)
    data[3] = np.abs(data[3])          # a block with no negative value (its minimum offset is 0)
    data[0, :256] = 0.0                # an all-zero block
    back = gguf.quants.dequantize(q4_k(data), gguf.GGMLQuantizationType.Q4_K)
    assert back.shape == data.shape and np.isfinite(back).all()
    assert (back[0, :256] == 0).all()
    rms = np.sqrt(((back - data) ** 2).mean(-1)) / data.std(-1).clip(min=1e-12)
    assert (rms < 0.12).all(), rms     # measured 0.075-0.082 on normal weights (the gguf package's Q4_0: 0.083-0.094)
    again = gguf.quants.dequantize(q4_k(back), gguf.GGMLQuantizationType.Q4_K)
    np.testing.assert_allclose(again, back, rtol=0, atol=1e-3 * np.abs(data).max())

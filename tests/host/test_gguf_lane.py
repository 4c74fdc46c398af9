"""The GGUF lane (issue 77): the flow workflows with their diffusion model loaded from a GGUF file by
city96's ComfyUI-GGUF, as most Flux users load it.

ComfyUI-GGUF is fetched at test time (``reference_copy``: ``$COMFYUI_GGUF_PATH`` or the ``fetch`` tool's
snapshot of city96/ComfyUI-GGUF), loaded into the booted host by the host's own custom-node loader, and
run unchanged; the lane is skipped loudly where it or the ``gguf`` package is absent. Its files are made
the way its README makes them: the diffusion model's weights saved as safetensors, turned into an F16
GGUF by its own ``tools/convert.py`` (imported from the copy, unchanged), then quantised to Q8_0 and
Q4_0 by the ``gguf`` package's Python quantisers (``quantise``: every F16 weight of two or more dimensions
whose rows fill whole blocks, as llama.cpp's ``llama-quantize`` picks them; Q4_K needs
ComfyUI-GGUF's patched llama.cpp, which this machine cannot fetch and build, and the Python package only
dequantises it).

The workflow is the one ``test_workflow_runs_headless`` runs (the toy flow DiT for Flux, the tiny
SD3), cut like the half-precision lane's (``test_half_precision.lane_prompt``), with every input that
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
import sys

import numpy as np
import pytest
import torch

import test_half_precision as half_lane
from test_half_precision import _run, lane_prompt, psnr
from test_workflows import CHECKPOINT_FILES

runner, watch = half_lane.runner, half_lane.watch   # the half-precision lane's fixtures

GGUF_REPO = "city96/ComfyUI-GGUF"
GGUF_PARTS = ("__init__.py", "nodes.py", "ops.py", "loader.py", "dequant.py", "tools")
QUANTS = ("Q8_0", "Q4_0")
# Minimum PSNR (dB) of each saved image against the float32 run's, and of a saved mask the share of pixels that
# flip (measured on this project's CPU machine, 2026-11-29, at the lane's cut: docs/measurements.md, "The weights
# artists run"). Q8_0 (8 bits a weight, one fp16 scale per 32) measured 40.5-70.5 dB over the 13 flow workflows;
# Q4_0 (4 bits) 19.8-51.7 dB, the word mask 1.6% flipped: the edits land and the objects keep their shapes. Another
# picture of the toy world scores 5-8 dB, so a wrong or black picture still fails.
PSNR_MIN = {"Q8_0": 35.0, "Q4_0": 15.0}
MASK_FLIPS_MAX = {"Q8_0": 0.02, "Q4_0": 0.05}
# The Flux and SD3 workflows. ComfyUI-GGUF's convert.py cannot convert the toy or tiny SD UNets (it recognises an SD1
# or SDXL UNet by blocks a full-depth one has, input_blocks.9 and the like: "Unknown model architecture!").
LANE_FILES = [p for p in CHECKPOINT_FILES if p.stem.startswith(("Flux - ", "SD3 - "))]


def quantise(src, dst, kind: str) -> int:
    """Write GGUF file ``src`` (ComfyUI-GGUF's F16 conversion) to ``dst`` with every F16 weight of two or more
    dimensions whose rows fill whole blocks quantised to ``kind`` ("Q8_0", "Q4_0"), as llama.cpp's quantiser
    picks them (a name ending in "weight", two or more dimensions); the rest as they are, and
    the file's architecture and ComfyUI-GGUF's shape records kept. Returns how many tensors were quantised."""
    import gguf

    qtype = getattr(gguf.GGMLQuantizationType, kind)
    block = gguf.GGML_QUANT_SIZES[qtype][0]
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
        if t.tensor_type == gguf.GGMLQuantizationType.F16 and t.name.endswith("weight") and len(shape) >= 2 \
                and shape[-1] % block == 0:
            writer.add_tensor(t.name, gguf.quants.quantize(data.astype(np.float32), qtype), raw_dtype=qtype)
            count += 1
        else:
            writer.add_tensor(t.name, data, raw_dtype=t.tensor_type)
    writer.write_header_to_file(path=str(dst))
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return count


def _signature(sd) -> tuple:
    return tuple(sorted((k, tuple(int(n) for n in v.shape)) for k, v in sd.items() if torch.is_tensor(v)))


@contextlib.contextmanager
def tiny_detection(known: dict[tuple, dict]):
    """Within: the host's ``detect_unet_config`` answers ``known[signature]`` (a copy) for a state dict of
    one of those weights' signatures, and itself for any other (module docstring)."""
    import comfy.model_detection

    detect = comfy.model_detection.detect_unet_config

    def detect_tiny(state_dict, key_prefix, metadata=None):
        config = known.get(_signature(state_dict)) if key_prefix == "" else None
        return dict(config) if config is not None else detect(state_dict, key_prefix, metadata=metadata)

    comfy.model_detection.detect_unet_config = detect_tiny
    try:
        yield
    finally:
        comfy.model_detection.detect_unet_config = detect


class GGUFFiles:
    """The lane's GGUF files, by (builtin, quantisation), made once a session from the built-in models'
    weights, and the tiny configs the detection answers with."""

    def __init__(self, host, convert, folder):
        self.host, self.convert, self.folder = host, convert, folder
        self.files: dict[tuple[str, str], str] = {}
        self.known: dict[tuple, dict] = {}

    def _model(self, builtin: str):
        demo = self.host.pack.demo
        if builtin == "toy-flow":
            return demo.toy_model.load_toy_model(demo.worlds.WORLD_FLOW)[0]
        return demo.tiny_flow_models.build_tiny_flow_unet(builtin.removeprefix("demo-"), seed=0)

    def file(self, builtin: str, kind: str) -> str:
        from safetensors.torch import save_file

        if (builtin, kind) not in self.files:
            model = self._model(builtin)
            sd = {k: v.detach().contiguous() for k, v in model.model.diffusion_model.state_dict().items()}
            self.known[_signature(sd)] = dict(model.model.model_config.unet_config)
            src = self.folder / f"{builtin}.safetensors"
            save_file(sd, str(src))
            f16, _ = self.convert.convert_file(str(src), str(self.folder / f"invertedit-{builtin}-F16.gguf"),
                                               interact=False, overwrite=True)
            for q in QUANTS:
                name = f"invertedit-{builtin}-{q}.gguf"
                assert quantise(f16, self.folder / name, q) > 0
                self.files[(builtin, q)] = name
        return self.files[(builtin, kind)]


@pytest.fixture(scope="module")
def gguf_files(host, reference_copy, skip_loudly, tmp_path_factory):
    """ComfyUI-GGUF loaded into the host, and the lane's files in the host's first diffusion-model folder."""
    import folder_paths

    try:
        import gguf  # noqa: F401
    except ImportError:
        skip_loudly("GGUF lane: the gguf package is missing (scripts/setup.sh installs it)")
    root = tmp_path_factory.mktemp("gguf") / "ComfyUI-GGUF"
    copy = reference_copy(root, "COMFYUI_GGUF", GGUF_REPO, GGUF_PARTS, "nodes.py")
    if copy is None:
        skip_loudly(f"GGUF lane: {GGUF_REPO} is absent (fetch github:{GGUF_REPO}, or set COMFYUI_GGUF_PATH)")
    if "UnetLoaderGGUF" not in host.nodes.NODE_CLASS_MAPPINGS:
        assert asyncio.run(host.nodes.load_custom_node(str(copy), module_parent="custom_nodes")), \
            "the host could not load ComfyUI-GGUF"
    spec = importlib.util.spec_from_file_location("comfyui_gguf_convert", copy / "tools" / "convert.py")
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    sys.modules.setdefault("comfyui_gguf_convert", convert)
    from pathlib import Path
    return GGUFFiles(host, convert, Path(folder_paths.get_folder_paths("diffusion_models")[0]))


def gguf_prompt(prompt: dict, unet_name: str) -> dict:
    """``prompt`` with every input that took the built-in loader's MODEL taken from a "Unet Loader (GGUF)"."""
    builtins = {k for k, v in prompt.items() if v["class_type"] in ("InvertEditToyModel", "InvertEditDemoModel")}
    assert len(builtins) == 1, builtins
    loader = next(iter(builtins))
    prompt["gguf_unet"] = {"class_type": "UnetLoaderGGUF", "inputs": {"unet_name": unet_name}}
    rewired = 0
    for key, node in prompt.items():
        for name, value in node["inputs"].items():
            if isinstance(value, list) and value == [loader, 0]:
                node["inputs"][name] = ["gguf_unet", 0]
                rewired += 1
    assert rewired, "no input took the loader's MODEL"
    return prompt


@pytest.mark.parametrize("path", LANE_FILES, ids=[p.stem for p in LANE_FILES])
def test_workflow_with_a_gguf_model(path, host, runner, watch, gguf_files):
    """The workflow runs with its diffusion model from ComfyUI-GGUF at Q8_0 and Q4_0: no error, nothing
    non-finite, no flat picture, each saved image within ``PSNR_MIN`` of the float32 run's (a mask: at most
    ``MASK_FLIPS_MAX`` of its pixels flipped). Every inversion in it was made and checked on the GGUF model
    (its fingerprint reads no dequantised or placeholder weight)."""
    from workshop import make_workflows

    builtin = make_workflows.builtin_for(path.stem)
    prompt = lane_prompt(path, host, runner)
    reference, problems, elapsed = _run(prompt, host, runner, watch)
    assert not problems, f"float32: {problems}"
    report, failures = [f"fp32 {elapsed:.1f}s"], []
    for kind in QUANTS:
        name = gguf_files.file(builtin, kind)
        try:
            with tiny_detection(gguf_files.known):
                saved, problems, elapsed = _run(gguf_prompt(lane_prompt(path, host, runner), name), host, runner, watch)
        except Exception as e:   # noqa: BLE001  (both quantisations are run and reported)
            failures.append(f"{kind}: {type(e).__name__}: {e}")
            continue
        failures += [f"{kind}: {p}" for p in problems]
        worst, flips = math.inf, 0.0
        for key, images in saved.items():
            for i, (image, ref) in enumerate(zip(images, reference[key])):
                if np.isin(ref, (0.0, 255.0)).all():   # a mask
                    flips = max(flips, float((image != ref).any(-1).mean()))
                    continue
                worst = min(worst, psnr(image, ref))
        if worst < PSNR_MIN[kind]:
            failures.append(f"{kind}: PSNR {worst:.1f} dB < {PSNR_MIN[kind]} dB")
        if flips > MASK_FLIPS_MAX[kind]:
            failures.append(f"{kind}: {flips:.1%} of a mask's pixels flip (> {MASK_FLIPS_MAX[kind]:.0%})")
        report.append(f"{kind} {elapsed:.1f}s PSNR>={worst:.1f}dB" + (f" mask flips<={flips:.2%}" if flips else ""))
    print(f"{path.stem}: " + ", ".join(report))
    assert not failures, "; ".join(failures)


def test_gguf_model_fingerprint_reads_no_placeholder(host, gguf_files):
    """A GGUF model's fingerprint: computed without error (ComfyUI-GGUF's state dict holds meta placeholders
    for its quantised layers), the same for the same file loaded twice, different between Q8_0 and Q4_0 and
    from the float32 model; nothing of the model was dequantised or moved for it."""
    fingerprint = host.pack.hostkit.fingerprint
    loader = host.nodes.NODE_CLASS_MAPPINGS["UnetLoaderGGUF"]()
    seen = {}
    with tiny_detection(gguf_files.known):
        for kind in QUANTS:
            name = gguf_files.file("toy-flow", kind)
            first, second = loader.load_unet(name)[0], loader.load_unet(name)[0]
            assert any(t.device.type == "meta" for t in first.model_state_dict().values()), \
                "ComfyUI-GGUF no longer gives placeholders: this test no longer tests them"
            before = {k: (type(t), t.device, t.data_ptr()) for k, t in fingerprint.stored_tensors(first.model).items()}
            seen[kind] = fingerprint.model_fingerprint(first)["weights"]
            assert fingerprint.model_fingerprint(second)["weights"] == seen[kind]
            after = {k: (type(t), t.device, t.data_ptr()) for k, t in fingerprint.stored_tensors(first.model).items()}
            assert after == before
    plain = fingerprint.model_fingerprint(gguf_files._model("toy-flow"))["weights"]
    assert len({*seen.values(), plain}) == 3

"""Booting ComfyUI in this process: CPU or the host's default device, built-in nodes, this pack.

``boot()`` is idempotent: the host's modules are process-wide, so the first call wins.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from . import absent_torchvision
from .host import PACK_DIR, find_host, host_importable, host_missing_reason


@dataclass
class Host:
    path: Path
    nodes: ModuleType        # ComfyUI's nodes.py
    execution: ModuleType    # ComfyUI's execution.py
    pack: ModuleType         # this pack's code (its ``invertedit`` package), as the host loaded it
    input_dir: Path
    output_dir: Path
    temp_dir: Path


_BOOTED: Host | None = None


def boot(host_path: Path | str | None = None, base_dir: Path | str | None = None, cpu: bool = True,
         folders: dict[str, Path | str] | None = None) -> Host:
    """Import the host, point its input/output/temp folders and its first embeddings, LoRA, diffusion-model and ControlNet folders under
    ``base_dir`` (default: the host's own folders), load its built-in nodes and this pack through
    the host's own loader."""
    global _BOOTED
    if _BOOTED is not None:
        return _BOOTED
    path = Path(host_path) if host_path else find_host()
    if path is None:
        raise RuntimeError("ComfyUI not found: " + host_missing_reason())
    path = path.resolve()
    importable = host_importable()
    if importable is None or importable != path:
        raise RuntimeError(f"ComfyUI at {path} is not the one this Python imports ({importable or 'none'}): run "
                           f"scripts/setup.sh, which registers it (a .pth file in site-packages).")

    from comfy.cli_args import args  # must precede comfy.model_management
    if cpu:
        args.cpu = True
        # The attention kernel the host uses on NVIDIA GPUs (PyTorch SDPA), not its CPU default
        # (sub-quadratic, chunked: a kernel no GPU user runs, slower, and a few dozen operations a
        # call where SDPA dispatches one, which flattered the editors' operation counts against a
        # stock step: docs/measurements.md, "Dispatched operations per step").
        args.use_pytorch_cross_attention = True
    import utils.extra_config  # noqa: F401  (before nodes.py shadows `utils` with comfy/utils.py)
    import folder_paths

    if base_dir is not None:
        base = Path(base_dir)
        dirs = {name: base / name for name in ("input", "output", "temp")}
    else:
        dirs = {"input": path / "input", "output": path / "output", "temp": path / "temp"}
    # ``folders``: any of "input", "output", "temp" elsewhere, set before the pack loads (its entry point
    # supplies the bundled samples to the input folder)
    dirs.update({kind: Path(folder).resolve() for kind, folder in (folders or {}).items() if folder is not None})
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    folder_paths.set_input_directory(str(dirs["input"]))
    folder_paths.set_output_directory(str(dirs["output"]))
    folder_paths.set_temp_directory(str(dirs["temp"]))
    if base_dir is not None:   # what a run teaches (embeddings, LoRAs) and the models a test writes stay under base_dir
        for kind in ("embeddings", "loras", "diffusion_models", "controlnet"):
            (base / kind).mkdir(parents=True, exist_ok=True)
            folder_paths.add_model_folder_path(kind, str(base / kind), is_default=True)

    absent_torchvision.install()
    import nodes
    import execution

    # The host's optional extras that need torchaudio/kornia/spandrel fail to import here,
    # loudly and harmlessly: keep their tracebacks out of the output.
    logging.disable(logging.WARNING)
    try:
        failed = asyncio.run(nodes.init_extra_nodes(init_custom_nodes=False, init_api_nodes=False))
    finally:
        logging.disable(logging.NOTSET)
    if failed:
        logging.info("ComfyUI extras not loaded (missing optional dependencies): %s", ", ".join(failed))
    pack_name = str(PACK_DIR).replace(".", "_x_")
    if pack_name not in sys.modules:
        ok = asyncio.run(nodes.load_custom_node(str(PACK_DIR), module_parent="custom_nodes"))
        if not ok:
            raise RuntimeError(f"ComfyUI could not load the pack at {PACK_DIR}: see the log above")
    pack = sys.modules[pack_name].invertedit   # the pack's code, as the host loaded it
    logging.getLogger().setLevel(os.environ.get("INVERTEDIT_LOG", "WARNING"))
    _BOOTED = Host(path, nodes, execution, pack, dirs["input"], dirs["output"], dirs["temp"])
    return _BOOTED

"""INVERSION files: safetensors in the host's output (and input) folders, written and read back
bit for bit, with every malformed file named."""
from __future__ import annotations

import folder_paths
import os
import comfy.utils
from ..inversion.methods import method_of
from ..inversion.record import Inversion
from ..inversion.record import InversionMismatch
from .errors import NodeInputError


SUFFIX = ".safetensors"


SUBFOLDER = "inversions"


MAX_PREFIX = 100   # characters; longer names are refused (file systems cap a name at 255 bytes)


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath((path, folder)) == folder


def save_inversion(inversion: Inversion, filename_prefix: str, node: str = "Save Inversion") -> str:
    """Write ``inversion`` under the output folder; returns the file's path."""
    check_prefix(filename_prefix, node)
    output_dir = folder_paths.get_output_directory()
    try:
        folder, filename, counter, _, _ = folder_paths.get_save_image_path(filename_prefix, output_dir)
    except Exception:
        raise NodeInputError(node, f"filename_prefix '{filename_prefix}' points outside the output folder; "
                                   f"use a relative name such as '{SUBFOLDER}/my_image'.") from None
    if not _inside(folder, output_dir):
        raise NodeInputError(node, f"filename_prefix '{filename_prefix}' points outside the output folder.")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{filename}_{counter:05}_{SUFFIX}")
    tensors, meta = inversion.to_state()
    comfy.utils.save_torch_file(tensors, path, metadata=meta)
    return path


def check_prefix(filename_prefix: str, node: str = "Save Inversion") -> None:
    """Refuse a prefix that would write a file Load Inversion never lists (empty, or a name
    starting with '.': a hidden file) or an unwieldy one (over ``MAX_PREFIX`` characters)."""
    example = f"use a name such as '{SUBFOLDER}/my_image'"
    if not isinstance(filename_prefix, str) or not filename_prefix.strip():
        raise NodeInputError(node, f"input 'filename_prefix' is empty, which writes a hidden file ('._00001_') that "
                                   f"Load Inversion does not list; {example}.")
    if len(filename_prefix) > MAX_PREFIX:
        raise NodeInputError(node, f"input 'filename_prefix' is {len(filename_prefix)} characters long; use "
                                   f"{MAX_PREFIX} or fewer ({example}).")
    parts = filename_prefix.replace("\\", "/").split("/")
    hidden = [p for p in parts if p.startswith(".") and p != ".."]
    if hidden:
        raise NodeInputError(node, f"input 'filename_prefix' ('{filename_prefix}') has a part starting with '.' "
                                   f"('{hidden[0]}'), which makes a hidden file or folder that Load Inversion does "
                                   f"not list; {example}.")
    if not parts[-1].strip():
        raise NodeInputError(node, f"input 'filename_prefix' ('{filename_prefix}') ends without a file name; {example}.")


def resolve_inversion_file(name: str, node: str = "Load Inversion") -> str:
    """The path of a listed inversion file, refusing names outside the input/output folders."""
    if not name.endswith(SUFFIX) and not name.endswith(SUFFIX + " [output]") and not name.endswith(SUFFIX + " [input]"):
        raise NodeInputError(node, f"input 'inversion' is '{name}': only {SUFFIX} files are read.")
    path = folder_paths.get_annotated_filepath(name)
    roots = (folder_paths.get_input_directory(), folder_paths.get_output_directory())
    if not any(_inside(path, root) for root in roots):
        raise NodeInputError(node, f"input 'inversion' ('{name}') points outside the input and output folders.")
    if not os.path.isfile(path):
        raise NodeInputError(node, f"input 'inversion': no file '{name}' (looked for {path}).")
    return path


def load_inversion(path: str, node: str = "Load Inversion") -> Inversion:
    """Read an inversion file; a file that is not one (corrupt, truncated, another kind of
    safetensors, a method without its data) is refused naming the file."""
    name = os.path.basename(path)

    def invalid(why: str) -> NodeInputError:
        return NodeInputError(node, f"input 'inversion': '{name}' is not a valid InvertEdit inversion file ({why}). "
                                    f"Choose a file written by Save Inversion, or make the inversion again.")

    try:
        tensors, meta = comfy.utils.load_torch_file(path, safe_load=True, return_metadata=True)
    except Exception as e:   # safetensors' own errors, the host's ValueError for a corrupt header, OSError
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise invalid(f"it cannot be read as safetensors: {first}") from None
    try:
        inv = Inversion.from_state(tensors, meta or {})
    except (InversionMismatch, KeyError, ValueError, TypeError, IndexError) as e:
        raise invalid(str(e)) from None
    try:
        method = method_of(inv.method)
    except ValueError as e:
        raise invalid(str(e)) from None
    missing = method.missing_clues(inv.clues)
    if missing:
        raise invalid(f"a {method.name} inversion without its data: {', '.join(missing)}")
    for part, tensor in (("sigmas", inv.sigmas), ("latent", inv.latent), ("trajectory", inv.trajectory),
                         *inv.clues.items()):
        if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            raise invalid(f"its {part} has NaN or infinite values")
    return inv


def list_inversion_files() -> list[str]:
    """Inversion files in the input folder (recursively), then in output/inversions annotated [output]."""
    found = []
    input_dir, output_dir = folder_paths.get_input_directory(), folder_paths.get_output_directory()
    for base, root, annotation in ((input_dir, input_dir, ""),
                                   (output_dir, os.path.join(output_dir, SUBFOLDER), " [output]")):
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f.endswith(SUFFIX):
                    rel = os.path.relpath(os.path.join(dirpath, f), base).replace(os.sep, "/")
                    found.append(rel + annotation)
    return sorted(found)

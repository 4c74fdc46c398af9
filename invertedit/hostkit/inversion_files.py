"""INVERSION files: safetensors in the host's output (and input) folders, written and read back
bit for bit, with every malformed file named."""
from __future__ import annotations

import os
import re
import unicodedata

import comfy.utils
import folder_paths

from ..inversion.methods import EDICT, method_of
from ..inversion.record import Inversion
from ..inversion.record import InversionMismatch
from .errors import NodeInputError


SUFFIX = ".safetensors"


SUBFOLDER = "inversions"


MAX_PREFIX = 100   # characters; longer names are refused

MAX_NAME_BYTES = 255   # file systems cap a file name at 255 bytes


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


def relative_to_output(path: str) -> str:
    """``path`` relative to the output folder, with forward slashes (what the editor shows)."""
    return os.path.relpath(path, folder_paths.get_output_directory()).replace(os.sep, "/")


def check_prefix(filename_prefix: str, node: str = "Save Inversion") -> None:
    """Refuse a prefix that would write a file Load Inversion never lists (empty, or a name
    starting with '.': a hidden file), one no file system takes (a control character, a name
    over 255 bytes) or an unwieldy one (over ``MAX_PREFIX`` characters)."""
    example = f"use a name such as '{SUBFOLDER}/my_image'"
    if not isinstance(filename_prefix, str):
        raise NodeInputError(node, f"input 'filename_prefix' is of type {type(filename_prefix).__name__}, not text; "
                                   f"{example}.")
    if not filename_prefix.strip():
        raise NodeInputError(node, f"input 'filename_prefix' is empty, which writes a hidden file ('._00001_') that "
                                   f"Load Inversion does not list; {example}.")
    bad = _bad_character(filename_prefix)
    if bad:
        raise NodeInputError(node, f"input 'filename_prefix' ({filename_prefix!r}) holds the character {bad}, which "
                                   f"file names cannot hold; {example}.")
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
    # the file is '<last part>_00001_.safetensors': 20 bytes more than its part
    long = [p for i, p in enumerate(parts)
            if len(p.encode()) + (20 if i == len(parts) - 1 else 0) > MAX_NAME_BYTES]
    if long:
        raise NodeInputError(node, f"input 'filename_prefix': the name '{long[0]}' is {len(long[0].encode())} bytes "
                                   f"in UTF-8, which with the counter and {SUFFIX} is over the {MAX_NAME_BYTES} bytes "
                                   f"a file name can have; use a shorter name, such as '{SUBFOLDER}/my_image'.")


def _bad_character(text: str) -> str | None:
    """The first character of ``text`` no file name should hold (a control character, a lone
    surrogate), as 'U+0000'; None when there is none."""
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cs")), None)
    return None if bad is None else f"U+{ord(bad):04X}"


# the annotations a Load Inversion name may carry, as the host writes them ('name.safetensors [output]')
ANNOTATIONS = ("input", "output")

LISTED = (f"choose a {SUFFIX} file from the list: one in the input folder, or one Save Inversion wrote to "
          f"output/{SUBFOLDER} (marked [output])")


def resolve_inversion_file(name: str, node: str = "Load Inversion") -> str:
    """The path of a listed inversion file, refusing names outside the input/output folders."""
    if not isinstance(name, str):
        raise NodeInputError(node, f"input 'inversion' is of type {type(name).__name__} ({name!r:.60}), not a file "
                                   f"name; {LISTED}.")
    if "\0" in name:
        raise NodeInputError(node, f"input 'inversion' ({name!r}) holds a NUL character, which no file name holds; "
                                   f"{LISTED}.")
    annotated = re.fullmatch(r"(.*?)\s*\[(\w*)\]", name)
    if annotated and annotated.group(2) not in ANNOTATIONS:
        raise NodeInputError(node, f"input 'inversion' is '{name}': files marked [{annotated.group(2)}] are not read, "
                                   f"only names without a mark or marked {' or '.join(f'[{a}]' for a in ANNOTATIONS)}; "
                                   f"{LISTED}.")
    file = annotated.group(1) if annotated else name
    if not file.endswith(SUFFIX):
        raise NodeInputError(node, f"input 'inversion' is '{name}': only {SUFFIX} files are read; {LISTED}.")
    path = folder_paths.get_annotated_filepath(f"{file} [{annotated.group(2)}]" if annotated else file)
    roots = (folder_paths.get_input_directory(), folder_paths.get_output_directory())
    if not any(_inside(path, root) for root in roots):
        raise NodeInputError(node, f"input 'inversion' ('{name}') points outside the input and output folders; "
                                   f"{LISTED}.")
    if not os.path.isfile(path):
        raise NodeInputError(node, f"input 'inversion': no file '{name}' (looked for {path}); {LISTED}.")
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
    if method is EDICT and not 0.0 < inv.settings.get("mixing", 0.0) <= 1.0:
        raise invalid(f"an edict inversion needs its settings' mixing, a weight above 0, up to 1; it has "
                      f"{inv.settings.get('mixing', 'none')}")
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

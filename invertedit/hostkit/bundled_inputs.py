"""The pack's bundled inputs (``assets/``: the toy worlds' sample images and the sample inversion)
put where the server's Load Image and Load Inversion look, so the example workflows queue as
shipped on a real server, not only in the headless runner."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"

log = logging.getLogger("invertedit")


def bundled_inputs() -> list[Path]:
    return sorted(p for p in ASSETS.glob("*") if p.is_file())


def supply_bundled_inputs(input_dir: str | Path) -> list[str]:
    """Copy each bundled file into ``input_dir`` when no file of its name is there (a user's file
    of the same name is never overwritten); returns the names copied."""
    input_dir = Path(input_dir)
    copied = []
    for src in bundled_inputs():
        dest = input_dir / src.name
        if dest.exists():
            continue
        try:
            input_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            copied.append(src.name)
        except OSError as e:  # a read-only input folder: the workflows then say what to copy
            log.warning("InvertEdit: could not copy %s into %s (%s); copy it there to run the example workflows",
                        src.name, input_dir, e)
    return copied


def supply_to_host() -> list[str]:
    """``supply_bundled_inputs`` into the host's input folder (folder_paths)."""
    import folder_paths
    return supply_bundled_inputs(folder_paths.get_input_directory())

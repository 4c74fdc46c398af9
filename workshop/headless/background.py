"""The test suite's background subprocesses (reference runs, the CLI run of the main workflow, the
browser tests' server booting), started early so that they use the machine's second core while the
suite's one-thread main process uses the first: they run at a lower priority (niceness 10), so that
where several run at once they share what the main process leaves instead of taking its share."""
from __future__ import annotations

import os

NICENESS = 10


def _lower_priority() -> None:
    os.nice(NICENESS)


def background() -> dict:
    """``subprocess.Popen`` keyword arguments of a background process (POSIX: a higher niceness)."""
    return {"preexec_fn": _lower_priority} if os.name == "posix" else {}

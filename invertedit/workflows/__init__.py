"""The example workflows as data: the parts technique folders' ``workflows.py`` compose (``toy.py``,
``subjects.py``, ``checkpoint.py``). Plain data (no torch, no host)."""

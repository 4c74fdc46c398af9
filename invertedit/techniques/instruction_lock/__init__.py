"""The instruction lock: an instruction editor's edit (Flux.1 Kontext, Qwen-Image-Edit) kept to a region, the rest
of the picture the input's own, without shift, crop or drift. KV-Edit (Zhu et al. 2025) on the editor's own
inversion of the input locks it (``kv_edit``'s nodes take reference images); this folder holds Region Lock (the same
without an inversion, with RegionE's region-instruction KV cache: ``policies.py``, ``glue.py``), Changed Region
(the region where an unlocked run of the editor changed the picture: ``region.py``) and the workflows.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is ``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Instruction lock", "flow", ("InvertEditChangedRegion", "InvertEditRegionLock"),
    "Zhu et al. 2025 (KV-Edit) on Flux.1 Kontext and Qwen-Image-Edit; Region Lock and the caches after RegionE "
    "(Chen et al. 2025) and CacheEdit",
    "KV-Edit's (28 Euler steps, 4 skipped, attn_scale 1); the image inverted with the empty instruction and its "
    "reference, edited with the instruction (Kontext: guidance 2.5; Qwen-Image-Edit: cfg 4); Region Lock: "
    "region cache on, 6 warm-up steps and a refresh at 16 of 28 (RegionE's); Changed Region: threshold 0.3 of the "
    "largest change, grown 1 cell",
    "N to invert (every token: text, image, reference), N - skip to edit on the text, the region's and the "
    "reference's tokens (cache_reference: the text's and the region's alone); kept keys and values as KV-Edit's "
    "(keep_reference: with the reference's); Region Lock: no inversion, N steps, the warm-up and refresh steps on "
    "every token, the others on the text's and the region's (one step's keys and values kept)",
    ("Kontext - Instruction lock", "Kontext - Instruction lock from a word", "Kontext - Instruction lock (automatic)",
     "Kontext - Instruction lock (ten rounds)", "Qwen-Image-Edit - Instruction lock",
     "Qwen-Image-Edit - Instruction lock from a word",
     "Qwen-Image-Edit - Instruction lock (automatic)", "Qwen-Image-Edit - Instruction lock (ten rounds)",
     "Kontext - Region Lock (fast)"), None,
    "An instruction editor's edit kept to a region (painted, a word's, or where an unlocked run changed the "
    "picture): outside it the output is the input, at its own size, over any number of rounds.",
    settings={"InvertEditChangedRegion.threshold": 0.3, "InvertEditChangedRegion.grow": 1,
              "InvertEditRegionLock.region_cache": True, "InvertEditRegionLock.warmup_steps": 6,
              "InvertEditRegionLock.refresh_steps": "16"})

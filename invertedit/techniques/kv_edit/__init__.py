"""KV-Edit, Zhu et al. 2025 (KV-Edit): Flow Invert keeps every block's keys and values while inverting;
KV-Edit remakes only the masked tokens, attending to the background's kept keys and values, and
keeps the background's latent as the image's.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "KV-Edit", "flow", ("InvertEditKVEdit",), "Zhu et al. 2025 (KV-Edit)",
    "28 steps, 4 skipped; guidance 1.5 inverting, 5.5 editing (Qwen-Image: none inverting, cfg 4 editing); "
    "attn_scale 1; attn_mask and re_init off",
    "N to invert (Euler), N - skip to sample (stock euler); kept keys and values about 3 GB per step per megapixel "
    "(bfloat16, 57 blocks; Qwen-Image 60 blocks, about the same), computed; on the model's device, or offloaded to the CPU as the authors'",
    ("Flux - KV-Edit", "Flux - KV-Edit from a word", "Flux - KV-Edit (one node)", "Qwen-Image - KV-Edit"), None,
    "Flow Invert keeps every block's keys and values while inverting; KV-Edit remakes only the masked tokens, "
    "attending to the background's kept keys and values, and keeps the background's latent as the image's.",
    settings={"InvertEditKVEdit.skip_steps": 4, "InvertEditKVEdit.attn_scale": 1.0})

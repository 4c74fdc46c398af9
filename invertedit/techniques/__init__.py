"""The technique table: one row per technique of the pack, read by the code and the docs.

Each technique lives in one folder, ``invertedit/techniques/<name>/``: its pure math or policy (torch,
numpy and einops only), its host glue (``glue.py``, through ``invertedit/hostkit``'s verbs), its
node(s) (``nodes.py``, each a schema and an execute), its example workflows' builders
(``workflows.py``) and its row (``ROW`` in its ``__init__.py``: the paper, the defaults the nodes
take from it, the cost, the workflows that show it, its benchmark row). ``FOLDERS`` lists them in the
table's order, which is the node menu's: adding a technique is its folder, its tests and one name
here. A technique never imports another: what two share lives in the generic layers
(``inversion/``, ``attention/``, ``guidance/``, ``personalisation/``, ``hostkit/``).

``python -m workshop.make_docs`` renders the README's technique table and docs/techniques.md's
summary from the rows; ``tests/host/test_techniques.py`` checks them against the registered nodes,
the workflow builders, the folders and the benchmarks. Plain data (no torch, no host): importing a
folder's package reads its row alone, so the docs and the workflow writer read the table without
booting.
"""
from __future__ import annotations

from importlib import import_module

from ..technique_row import KINDS, QUICK_SIZE, QUICK_STEPS, Technique  # noqa: F401 (the table's types, handed on)

FOLDERS = ("ddim_inversion", "negative_prompt_inversion", "direct_inversion", "null_text", "edict",
           "edit_friendly_ddpm", "fixed_point", "saved_inversions", "prompt_to_prompt", "attention_maps", "masactrl",
           "plug_and_play", "cross_frame_attention", "cross_view_attention", "views_to_3d", "fatezero", "tokenflow", "rave", "latent_blend", "diffedit", "sega", "ledits", "pix2pix_zero", "proximal", "noise_map",
           "imagic", "dreambooth", "custom_edit", "textual_inversion", "custom_diffusion", "sdedit", "flow_edit",
           "flow_inversion", "rf_solver_edit", "kv_edit", "instruction_lock", "stable_flow", "joint_prompt_to_prompt", "rf_inversion", "consist_edit", "layerverse", "dnaedit", "uniedit_flow", "flow_align", "ftedit",
           "self_guidance", "drag_diffusion", "attentive_eraser", "dragon_diffusion", "toy_world_model", "demo_model")

TECHNIQUES: tuple[Technique, ...] = tuple(import_module(f".{folder}", __name__).ROW for folder in FOLDERS)


def by_node() -> dict[str, Technique]:
    """node_id -> the technique it belongs to."""
    return {node: t for t in TECHNIQUES for node in t.nodes}


def folder_of(technique: Technique) -> str:
    """The folder (under ``invertedit/techniques/``) that holds ``technique``."""
    return FOLDERS[TECHNIQUES.index(technique)]

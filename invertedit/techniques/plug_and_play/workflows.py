"""Plug-and-Play's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import TOY, TOY_NOTE, pair_editor_workflow
from . import ROW

PAPER = ROW.settings_of("InvertEditPlugAndPlay")


def plug_and_play_edit() -> dict:
    intro = (
        "# Plug-and-Play\n\n"
        "The image is inverted with an empty prompt (paper); **Plug-and-Play** (Tumanyan et al.; paper defaults: "
        f"decoder features injected for {PAPER['feature_injection']:g} of the steps, decoder self-attention for "
        f"{PAPER['self_attention_injection']:g}) plugs the source's "
        "spatial features into the target branch, so the target prompt re-renders the image on its structure. "
        "Source row exact through **Direct Inversion**.\n\n" + TOY_NOTE)
    editor = {"type": "InvertEditPlugAndPlay",
              "widgets": {"source_prompt": "", "target_prompt": TOY["pnp_target"],
                          **PAPER}}
    return pair_editor_workflow(intro, editor, "invertedit/plug_and_play", "Source (reconstruction) and target",
                                source_prompt="")


WORKFLOWS = {"Toy - Plug-and-Play edit": plug_and_play_edit}

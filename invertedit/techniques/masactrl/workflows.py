"""MasaCtrl's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import QUICK_TOY_DDIM, TOY_WORLD, TOY_WORLDS, pair_editor_workflow, toy_note


def masactrl_edit(world: str = TOY_WORLD) -> dict:
    w = TOY_WORLDS[world]
    source, target = w["source"], w["shape_target"]   # MasaCtrl is made for changes of shape and pose
    source_noun, target_noun = w["shape_nouns"]
    intro = (
        "# MasaCtrl: mutual self-attention, mask-guided\n\n"
        "**Mutual Self-Attention (MasaCtrl)** (Cao et al.; paper defaults for SD1.5: from step 4 and layer 10 of 16) "
        "lets the target's self-attention read the source's keys and values, so the edited object keeps the source's "
        "content. Here the paper's mask-guided version: two **Attention Store** nodes give the object's mask in the "
        f"source ('{source_noun}') and in the target ('{target_noun}', on the same inversion), and the target's object reads only "
        "the source's object, its background only the background. Disconnect the masks for plain MasaCtrl. Source "
        "row exact through **Direct Inversion**; one sampler run for the pair.\n\n" + toy_note(world))
    editor = {"type": "InvertEditMasaCtrl",
              "widgets": {"source_prompt": source, "target_prompt": target, "start_step": 4,
                          "start_layer": w["masactrl_layer"]}}
    workflow = pair_editor_workflow(intro, editor, "invertedit/masactrl", "Source (reconstruction) and target (edit)",
                                      world=world)
    for key, prompt, word in (("source_store", source, source_noun), ("target_store", target, target_noun)):
        workflow["nodes"].append(
            {"key": key, "type": "InvertEditAttentionStore",
             "widgets": {"prompt": prompt, "words": word, "start": 0.0, "end": 1.0, "threshold": 0.3},
             "inputs": {"model": ("model", "MODEL"), "clip": ("model", "CLIP"), "inversion": ("invert", 0)},
             "title": f"Attention Store: '{word}' mask"})
    for n in workflow["nodes"]:
        if n["key"] == "editor":
            n["inputs"].update(source_mask=("source_store", "MASK"), target_mask=("target_store", "MASK"))
    return workflow


WORKFLOWS = {"Toy - MasaCtrl edit": masactrl_edit}
QUICK_TOY = {"Toy - MasaCtrl edit": QUICK_TOY_DDIM}

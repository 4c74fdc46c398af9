"""The pack's canvas workflows, run headlessly through ComfyUI's own executor.

Every ``example_workflows/*.json`` (the folder the editor's template browser lists) is converted
with the host's node definitions (as the editor would submit it), validated and executed; the
workflows built on Load Checkpoint run with the checkpoint swapped for the Toy World Model
(the runner's ``builtin="toy"``), the toy world's prompts and fewer steps, and the SDXL ones
also on the Demo Model's SDXL layout. Also: the runner's --image / --ckpt / --builtin / --set
replacements, its error messages, the CLI, the host's template serving of the file names, and
the converter against the editor-saved templates shipped with the host.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from invertedit.workflows import checkpoint as families
from workshop.headless.background import background
from workshop.headless.hygiene import OPT_OUT, SamplingPathWatch

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "example_workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.json"))
MAIN_WORKFLOW = WORKFLOWS / "Start here - Invert and edit.json"
CHECKPOINT_LOADER = "CheckpointLoaderSimple"
UNET_LOADER = "UNETLoader"   # Load Diffusion Model: the Qwen-Image templates load the model's files separately


def _on_checkpoint(path: Path) -> bool:
    """Built on the stock Load Checkpoint or Load Diffusion Model (for the user's model), not on a built-in model."""
    return any(n.get("type") in (CHECKPOINT_LOADER, UNET_LOADER)
               for n in json.loads(path.read_text(encoding="utf-8"))["nodes"])


CHECKPOINT_FILES = [p for p in WORKFLOW_FILES if _on_checkpoint(p)]


@pytest.fixture(scope="module")
def runner(host):
    from workshop.headless import runner

    return runner


def _lookup(host, runner):
    return lambda c: runner.node_info(c, host) if c in host.nodes.NODE_CLASS_MAPPINGS else None


def test_there_are_workflows():
    assert WORKFLOW_FILES, f"no workflows in {WORKFLOWS} (write them with python -m workshop.make_workflows)"


# The pictures the personalisation workflows show of each prompt: (Save Image prefix, Save or Preview title)
SHOWN = {f"{p}_{k}": (f"invertedit/{p}_{k}", title) for p, titles in {
    "dreambooth": {"subject": "The subject, drawn by the taught model",
                   "class": "The class prompt on the taught model (kept)", "before": "The instance prompt before teaching"},
    "dreambooth_fine_tune": {"subject": "The subject, drawn by the fine-tuned model",
                             "class": "The class prompt on the fine-tuned model (kept)",
                             "before": "The instance prompt before teaching"},
    "custom_diffusion": {"subject": "The subject, drawn by the taught model",
                         "class": "The class prompt on the taught model (kept)", "before": "The class prompt before teaching"},
    "custom_edit_two_objects": {"subject": "The subject, drawn by the fine-tuned model",
                                "class": "The class prompt on the fine-tuned model (kept)"},
    "textual_inversion": {"word": "The learned word", "plain": "The initializer's word"},
}.items() for k, title in titles.items()}


def _saved(prompt, outputs, runner, *names: str) -> list:
    """The images (float [H, W, 3]) that the Save Image node of prefix ``name``, or the Save or Preview
    Image node titled ``name`` (one of ``names``), showed, in batch order."""
    import numpy as np
    import torch
    from PIL import Image

    keys = [k for k, v in prompt.items() if v["class_type"] == "SaveImage" and v["inputs"]["filename_prefix"] in names] \
        or [k for k, v in prompt.items() if v["class_type"] in ("SaveImage", "PreviewImage")
            and v.get("_meta", {}).get("title") in names]
    assert len(keys) == 1, f"{len(keys)} Save/Preview Image nodes of prefix or title {names}"
    images = []
    for picture in runner.pictures(prompt, {keys[0]: outputs[keys[0]]}):
        with Image.open(picture.path) as im:
            images.append(torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255))
    return images


def _sample_image(builtin: str):
    """The bundled image a built-in model's run loads (float [H, W, 3])."""
    import numpy as np
    import torch
    from PIL import Image

    from workshop.headless import runner

    with Image.open(runner.BUILTIN_SWAPS[builtin].image) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255)


def _mask_covers_the_circle(prefix: str = "invertedit/attention_mask"):
    """An attention-maps workflow's check (on a two-object world): the saved mask of "circle" is the
    circle of the sample (issue 12), not the picture: IoU >= 0.5 with the circle's exact mask, and it
    misses the square."""
    def check(prompt, outputs, runner) -> None:
        from workshop.toyworld import scenes as S

        (image,) = _saved(prompt, outputs, runner, prefix)
        mask = image.mean(-1) > 0.5
        _, truth = S.render(S.SAMPLE, mask.shape[0])
        circle, square = (S.mask_iou(mask, m) for m in truth)
        print(f"'circle' mask: {mask.float().mean():.0%} of the picture, IoU {circle:.2f} with the circle, "
              f"{square:.2f} with the square")
        assert circle >= 0.5 and square == 0.0 and mask.float().mean() < 0.3
    return check


def _edit_check(prefix: str, row: int, circle: str | None = "yellow", background: str = "green",
                moved: float = 3.0, circle_moved: float = 8.0, resized: float = 0.1, panel: int | None = None):
    """An output check for a workflow that edits the two-object sample ("a red circle and a blue
    square on a green background"): its saved image ``row`` of ``prefix`` is read by the exact
    judge. What must not change is kept: the blue square (centre within ``moved`` px, 3 by
    default, and size within ``resized``, 10%: the benchmark's "other object kept"), and the background unless
    it is the edit; the circle took the edit's colour in its own place (centre within
    ``circle_moved`` px, size within 15%). ``circle`` None: only what must not change is checked
    (a change of shape, which this model draws roughly). ``panel``: the saved image is a strip of
    square pictures (Image Stitch, 8 px apart) and this one is judged."""
    def check(prompt, outputs, runner) -> None:
        from workshop.toyworld import scenes as S
        from workshop.toyworld.scenes_judge import judge

        image = _saved(prompt, outputs, runner, prefix)[row]
        if panel is not None:
            side = image.shape[0]
            image = image[:, panel * (side + STITCH_SPACING):panel * (side + STITCH_SPACING) + side]
        reading = judge(image)
        source_circle, source_square = S.SAMPLE.objects
        print(f"{prefix}[{row}]: {reading.background} background, "
              f"{[(o.colour, o.shape, round(o.cx), round(o.cy), o.size) for o in reading.objects]}")
        assert reading.background == background
        square = reading.find("blue", "square")
        assert square is not None and square.matches(source_square, pos_tol=moved, size_tol=resized), "the other object (the blue square) changed"
        if circle is not None:
            edited = reading.find(circle, "circle")
            assert edited is not None and edited.same_structure(source_circle, pos_tol=circle_moved, size_tol=0.15), \
                f"the circle is not {circle} in its place"
            assert len(reading.objects) == 2
    return check


_SAMPLE_SCENE = {"background": "blue", "colour": "red", "shape": "circle", "cx": 56.0, "cy": 68.0, "size": 26.0}   # models/toyworld/config.json


def _dreambooth_draws_the_subject_and_keeps_the_class(prompt, outputs, runner) -> None:
    """The DreamBooth + Custom-Edit workflow (the one-object world): the taught model draws the
    subject, a hollow red frame on blue, in at least 3 of its 4 samples; the class prompt on the same
    model still draws solid red squares (4 of 4); before teaching, the instance prompt drew no red
    frame (the model had never drawn one). Read by the exact judge (``judge.filled``: a frame covers
    under a third of its inner box)."""
    from workshop.toyworld.judge import filled, judge

    def readings(*names):
        return [judge(image) for image in _saved(prompt, outputs, runner, *names)]

    def frame(r):
        return r.background == "blue" and r.colour == "red" and filled(r) < 1 / 3

    subject, klass, before = (readings(*SHOWN[f"dreambooth_{k}"]) for k in ("subject", "class", "before"))
    for name, found in (("subject", subject), ("class", klass), ("before", before)):
        print(f"dreambooth {name}: {[(r.background, r.colour, r.shape, round(filled(r), 2)) for r in found]}")
    assert len(subject) == len(klass) == len(before) == 4
    assert sum(map(frame, subject)) >= 3, "the taught model does not draw the subject (a hollow red square)"
    assert all(r.background == "blue" and r.colour == "red" and r.shape == "square" and filled(r) > 0.9 for r in klass), \
        "the class prompt no longer draws solid red squares"
    assert not any(map(frame, before))
    # Custom-Edit: the strip image | reconstruction | edit. The edit changes the object where the circle was (a
    # red shape with the subject's dark inner slit; Prompt-to-Prompt keeps the circle's layout, so the judge's
    # shape reading is no test) and keeps the blue background: changed inside the circle's box (PSNR against
    # the reconstruction under 20 dB), kept outside a margin around it (over 25 dB)
    from workshop.toyworld import world as W

    panels = [None, *_saved(prompt, outputs, runner, "Reconstruction"), *_saved(prompt, outputs, runner, "invertedit/custom_edit")]
    reconstruction, edit = judge(panels[1]), judge(panels[2])
    c = _SAMPLE_SCENE
    box = W.coverage("square", c["cx"], c["cy"], c["size"]) > 0.5
    outside = ~(W.coverage("square", c["cx"], c["cy"], 1.6 * c["size"]) > 0.5)
    inside_db, outside_db = W.psnr(panels[2], panels[1], box), W.psnr(panels[2], panels[1], outside)
    print(f"custom-edit: reconstruction {reconstruction.background} {reconstruction.colour} {reconstruction.shape}; "
          f"edit {edit.background} {edit.colour} {edit.shape} at ({edit.cx:.0f}, {edit.cy:.0f}); against the "
          f"reconstruction {inside_db:.1f} dB in the circle's box, {outside_db:.1f} dB outside")
    assert (reconstruction.background, reconstruction.colour, reconstruction.shape) == ("blue", "red", "circle")
    assert (edit.background, edit.colour) == ("blue", "red")
    assert ((edit.cx - c["cx"]) ** 2 + (edit.cy - c["cy"]) ** 2) ** 0.5 <= 10.0
    assert inside_db < 20.0 and outside_db > 25.0


def _fine_tune_draws_the_subject_and_keeps_the_class(prompt, outputs, runner) -> None:
    """The DreamBooth Fine-Tune workflow (the one-object world): the fine-tuned model draws the
    subject, a hollow red frame on blue, in at least 3 of its 4 samples; the class prompt on the same
    model still draws solid red squares on blue, none a frame, in at least 3 of 4 (the untouched
    model: 4); before the fine-tune the instance prompt drew no frame. Read by the exact judge."""
    from workshop.toyworld.judge import filled, judge

    def frame(r):
        return r.background == "blue" and r.colour == "red" and filled(r) < 1 / 3

    subject, klass, before = ([judge(image) for image in _saved(prompt, outputs, runner, *SHOWN[f"dreambooth_fine_tune_{k}"])]
                              for k in ("subject", "class", "before"))
    for name, found in (("subject", subject), ("class", klass), ("before", before)):
        print(f"dreambooth fine-tune {name}: {[(r.background, r.colour, r.shape, round(filled(r), 2)) for r in found]}")
    assert len(subject) == len(klass) == len(before) == 4
    assert sum(map(frame, subject)) >= 3, "the fine-tuned model does not draw the subject (a hollow red square)"
    assert not any(map(frame, klass)), "the class prompt draws the subject: the class drifted"
    assert sum(r.background == "blue" and r.colour == "red" and r.shape == "square" and filled(r) > 0.9
               for r in klass) >= 3, "the class prompt no longer draws solid red squares"
    assert not any(map(frame, before))


def _custom_diffusion_draws_the_subject_and_keeps_the_class(prompt, outputs, runner) -> None:
    """The Custom Diffusion workflow (the one-object world): the new word on the taught model draws
    a red frame on blue (the hollow square) in at least 3 of its 4 samples (measured: 4); the class
    prompt on the taught model still draws solid red shapes on blue, none a frame, at least 3 of 4
    squares (measured: 3; one circle: the changed keys and values move the class word a little),
    where the untouched model drew 4 squares. Read by the exact judge (``judge.filled``: a frame
    covers under a third of its inner box)."""
    from workshop.toyworld.judge import filled, judge

    def frame(r):
        return r.background == "blue" and r.colour == "red" and filled(r) < 1 / 3

    subject, klass, before = ([judge(image) for image in _saved(prompt, outputs, runner, *SHOWN[f"custom_diffusion_{k}"])]
                              for k in ("subject", "class", "before"))
    for name, found in (("subject", subject), ("class", klass), ("before", before)):
        print(f"custom diffusion {name}: {[(r.background, r.colour, r.shape, round(filled(r), 2)) for r in found]}")
    assert len(subject) == len(klass) == len(before) == 4
    assert sum(map(frame, subject)) >= 3, "the new word does not draw the subject (a hollow red square)"
    assert all(r.background == "blue" and r.colour == "red" and not frame(r) for r in klass), \
        "the class prompt no longer draws solid red shapes"
    assert sum(r.shape == "square" for r in klass) >= 3, "the class prompt no longer draws red squares"
    assert not any(map(frame, before)) and all(r.shape == "square" for r in before)


def _custom_edit_puts_the_subject_into_the_photo(prompt, outputs, runner) -> None:
    """World 2's DreamBooth Fine-Tune + Custom-Edit workflow (issue 28's bar (c)): the fine-tuned model
    draws the subject, an orange square on white (``scenes_judge.tint``: the palette alone reads orange
    pixels as red or yellow), in at least 3 of its 4 samples, and the class prompt still draws red
    squares in at least 3 of 4. Custom-Edit's strip: the reconstruction is the photo's scene; the edit
    is orange in the red square's box, and the blue circle and the white background are kept (world
    2's judge: the circle's colour, shape, centre within 3 px, size within 10%), the picture outside
    both objects within 25 dB of the reconstruction. The test's run (``custom_edit.workflows.QUICK_TOY``: 25 class
    images) measured: subject 4 of 4, class 4 of 4, placed, 41.4 dB; at the fine-tune's seed 2: 3, 4, placed,
    38.2 dB; its seed 1 draws the subject yellow, as the shipped 50 class images do (2026-11-30)."""
    from invertedit.techniques.custom_edit.workflows import DREAMBOOTH_WORLD_2
    from workshop.benchmarks.dreambooth_toy import SUBJECTS, prompts, seen, solid
    from workshop.toyworld import scenes as S
    from workshop.toyworld.scenes_judge import judge
    from workshop.toyworld.subject import CUSTOM_EDIT_SCENE

    # the workflow's prompts and photo are the benchmark's measured ones (the workflows' builders stay free of torch)
    d, orange = DREAMBOOTH_WORLD_2, SUBJECTS["orange"]
    assert (d["instance"], d["class"]) == prompts("white", "orange")[:2] and d["source"] == CUSTOM_EDIT_SCENE.caption
    assert d["target"] == d["source"].replace("a red square", prompts("white", "orange")[0].split(" on ")[0])
    assert d["cfg"] == orange.edit_cfg
    subject, klass = ([seen(image, orange.tints) for image in _saved(prompt, outputs, runner, *SHOWN[f"custom_edit_two_objects_{k}"])]
                      for k in ("subject", "class"))
    print(f"custom-edit world 2: subject {[(r.colour, r.shape, r.tint) for r in subject]}; "
          f"class {[(r.colour, r.shape, r.tint) for r in klass]}")
    assert len(subject) == len(klass) == 4
    assert sum(map(orange.drawn, subject)) >= 3, "the fine-tuned model does not draw the orange square"
    assert sum(solid(r, "red") for r in klass) >= 3, "the class prompt no longer draws red squares"
    (reconstruction,), (edit,) = (_saved(prompt, outputs, runner, name)
                                  for name in ("Reconstruction", "invertedit/custom_edit_two_objects"))
    scene = CUSTOM_EDIT_SCENE
    circle = scene.objects[1]
    reading = judge(edit)
    placed = orange.placed(edit, reading, scene)   # the square's box reads orange (the benchmark's "subject placed")
    _, masks = S.render(scene, edit.shape[0])
    outside = S.psnr(edit, reconstruction, ~masks.any(0))
    print(f"custom-edit world 2: edit {reading.content()}; the subject placed: {placed}; outside the objects {outside:.1f} dB "
          "against the reconstruction")
    assert judge(reconstruction).matches_scene(scene)
    assert placed, "the subject is not put in the square's place"
    assert reading.background == "white" and any(r.matches(circle) for r in reading.objects), "the circle is not kept"
    assert outside >= 25.0


def _textual_inversion_names_the_subject(prompt, outputs, runner) -> None:
    """The Textual Inversion workflow (the one-object world): the learned word draws the photos'
    subject, a yellow triangle on white, in all 4 samples; the initializer's prompt ("a square on a
    white background") draws none (exact judge)."""
    from workshop.toyworld.judge import judge

    word, plain = ([judge(image) for image in _saved(prompt, outputs, runner, *SHOWN[f"textual_inversion_{k}"])]
                   for k in ("word", "plain"))
    print(f"learned word: {[(r.background, r.colour, r.shape) for r in word]}; "
          f"initializer: {[(r.background, r.colour, r.shape) for r in plain]}")
    assert len(word) == len(plain) == 4
    assert all(r.background == "white" and r.colour == "yellow" and r.shape == "triangle" for r in word)
    assert not any(r.colour == "yellow" and r.shape == "triangle" for r in plain)


STITCH_SPACING = 8   # prompt_to_prompt's invert_and_edit strip: image | reconstruction | naive edit | edit

def _panel(image, i: int):
    """Picture ``i`` of a strip of square pictures (Image Stitch, ``STITCH_SPACING`` apart)."""
    side = image.shape[0]
    return image[:, i * (side + STITCH_SPACING):i * (side + STITCH_SPACING) + side]


def _flow_reconstruction_is_the_image(prefix: str, panel: int = 1, db: float = 28.0):
    """A Flux inversion workflow's check on the toy flow model: its reconstruction (panel ``panel`` of
    the strip) is the sample scene again (exact judge: colours, shapes, places and sizes) and within
    ``db`` of the image (measured 30.5 dB with RF-Solver at 25 steps; the VAE alone gives 31.6)."""
    def check(prompt, outputs, runner) -> None:
        from workshop.toyworld import scenes as S
        from workshop.toyworld.scenes_judge import judge

        image, (rec,) = _sample_image("toy-flow"), _saved(prompt, outputs, runner, "Reconstruction")
        print(f"{prefix}: reconstruction {S.psnr(rec, image):.1f} dB")
        assert judge(rec).matches_scene(S.SAMPLE) and S.psnr(rec, image) >= db
    return check


def _kv_edit_keeps_the_image_outside_the_mask(prefix: str, word: bool = False):
    """KV-Edit's promise (Zhu et al.): outside the mask the picture is the image itself (only the VAE's round
    trip between them: measured 32.8 dB against 31.6 for the VAE alone), and the square, outside the mask, is
    kept by the judge's reading. With the mask from a word (Attention Store on the same inversion): the mask
    holds the edited circle and at most the square's edge (its margin, a cell of the maps, may touch it),
    and the circle takes the target's colour."""
    def check(prompt, outputs, runner) -> None:
        import torch

        from invertedit.workflows.toy import SOURCE_PROMPT, TARGET_PROMPT
        from workshop.toyworld import scenes as S
        from workshop.toyworld.scenes_judge import judge

        image, (mask,), (edit,) = (_sample_image("toy-flow"), _saved(prompt, outputs, runner, "Mask"),
                                   _saved(prompt, outputs, runner, prefix))
        outside = mask.mean(-1) < 0.5
        mse = ((edit - image) ** 2)[outside].mean()
        db = float(10 * torch.log10(1 / mse))
        print(f"KV-Edit: {db:.1f} dB outside the mask ({float(outside.float().mean()):.0%} of the picture)")
        assert 0.5 < float(outside.float().mean()) < 0.95 and db >= 30.0
        reading = judge(edit)
        square = reading.find("blue", "square")
        assert square is not None and square.matches(S.SAMPLE.objects[1])
        if word:
            _, objects = S.render(S.SAMPLE, image.shape[0])
            circle, rest = objects[0], objects[1]
            held, touched = (float((~outside & o).sum() / o.sum()) for o in (circle, rest))
            print(f"the word's mask holds {held:.0%} of the circle and {touched:.0%} of the square")
            assert held >= 0.95 and touched <= 0.05   # the margin may touch the square
            colour = next(w for w, v in zip(TARGET_PROMPT.split(), SOURCE_PROMPT.split()) if w != v)
            assert reading.find(colour, "circle") is not None, reading.content()
    return check


OUTPUT_CHECKS = {
    "Toy - Attention maps": _mask_covers_the_circle(),
    # the main job: the last of its strip's four pictures is the pack's edit
    "Start here - Invert and edit": _edit_check("invertedit/invert_and_edit", 0),
    # the editors that keep what the prompt does not change (row 1 of a pair is the edit)
    "Toy - Prompt-to-Prompt replace": _edit_check("invertedit/p2p_replace", 0),
    "Toy - Null-text inversion and edit": _edit_check("invertedit/null_text_p2p", 0),
    "Toy - Local edit with Latent Blend": _edit_check("invertedit/local_edit", 0),
    "Toy - Noise Map Guidance edit": _edit_check("invertedit/noise_map_guidance", 0),
    "Toy - Proximal Guidance edit": _edit_check("invertedit/proximal_guidance", 0),
    "Toy - pix2pix-zero edit": _edit_check("invertedit/pix2pix_zero", 0),
    "Toy - Plug-and-Play edit": _edit_check("invertedit/plug_and_play", 0),
    # a red triangle, drawn roughly; MasaCtrl redraws the square 8 px to the right
    "Toy - MasaCtrl edit": _edit_check("invertedit/masactrl", 0, circle=None, moved=10.0),
    # SEGA, from step 12 (the SEGA workflow's SEGA_SKIP): the circle 7 px off and 0.99x wide, the square 1 px and 1.00x
    "Toy - SEGA edit": _edit_check("invertedit/sega_edit", 0, circle="red", background="yellow", moved=5.0, circle_moved=12.0),
    "Toy - LEDITS++ edit": _edit_check("invertedit/ledits_edit", 0),
    "Toy - DreamBooth subject and Custom-Edit": _dreambooth_draws_the_subject_and_keeps_the_class,
    "Toy - DreamBooth fine-tune": _fine_tune_draws_the_subject_and_keeps_the_class,
    "Toy - Custom-Edit (your subject into a photo)": _custom_edit_puts_the_subject_into_the_photo,
    "Toy - Textual Inversion word": _textual_inversion_names_the_subject,
    "Toy - Custom Diffusion subject": _custom_diffusion_draws_the_subject_and_keeps_the_class,
    # run on the toy model at 10 steps (make_workflows.toy_overrides); Null-text's 2 inner steps there leave
    # the square 6 px off, so that one is checked in null_text_inversion_edit (20 steps, 5 inner) only
    "SD1.5 - Prompt-to-Prompt edit": _edit_check("invertedit/p2p_edit", 0),
    "SDXL - Prompt-to-Prompt edit": _edit_check("invertedit/p2p_edit", 0),
    "SD1.5 - LEDITS++ edit": _edit_check("invertedit/ledits_edit", 0),
    # on the toy flow model (guidance distilled, 256 px) at the workflows' own settings: FlowEdit and joint
    # Prompt-to-Prompt (its local blend on the noun's map, since the bound T5) turn the circle yellow in its
    # place; the inversions give the image back; KV-Edit keeps what the mask leaves out. The other editors'
    # edits on this model (Stable Flow leaves the circle red; RF-Inversion and RF-Solver-Edit move the
    # square's edge): the flow benchmark's rows (docs/measurements.md)
    "Flux - FlowEdit": _edit_check("invertedit/flowedit_flux", 0),
    "Flux - Prompt-to-Prompt edit": _edit_check("invertedit/flux_joint_p2p", 0),
    "Flux - Flow inversion and edit": _flow_reconstruction_is_the_image("invertedit/flux_rf_solver"),
    "Flux - KV-Edit": _kv_edit_keeps_the_image_outside_the_mask("invertedit/flux_kv_edit"),
    "Flux - KV-Edit from a word": _kv_edit_keeps_the_image_outside_the_mask("invertedit/flux_kv_edit_word", word=True),
}
# the one-node templates (issue 79: one subgraph node doing the edit) run the workflows they wrap: the same checks
OUTPUT_CHECKS.update({f"{name} (one node)": OUTPUT_CHECKS[name]
                      for name in ("SD1.5 - Prompt-to-Prompt edit", "Flux - FlowEdit", "Flux - KV-Edit")})


def _vae_round_trip(prompt, runner, host):
    """The image of a prompt run on the Demo Model through that model's VAE and back (float [H, W, 3]): its Load
    Image, its Scale Image to Total Pixels, VAE Encode and VAE Decode."""
    kind = {k: v["class_type"] for k, v in prompt.items()}
    load, resize, model = (next((k for k, c in kind.items() if c == want), None)
                           for want in ("LoadImage", "ImageScaleToTotalPixels", runner.DEMO_MODEL))
    trip = {k: prompt[k] for k in (load, resize, model) if k is not None}   # the instruction lock: no rescaling
    trip.update({"encode": {"class_type": "VAEEncode", "inputs": {"pixels": [resize or load, 0], "vae": [model, 2]}},
                 "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["encode", 0], "vae": [model, 2]}},
                 "show": {"class_type": "PreviewImage", "inputs": {"images": ["decode", 0]},
                          "_meta": {"title": "Round trip"}}})
    (round_trip,) = _saved(trip, runner.execute(trip, host=host), runner, "Round trip")
    return round_trip


def _kv_edit_keeps_the_round_trip_outside_the_mask(margin: int = 16, db: float = 45.0, gap: float = 8.0,
                                                  edit: str = "Edit", least: float = 0.2):
    """KV-Edit's promise on a random-weight model (the Qwen-Image template on the tiny random Qwen-Image, whose
    pictures are noise, so no judge reads them): outside the painted mask the edit's latent is the image's, so
    away from the mask (``margin`` px: the VAE decoder's reach) the edit is the image's VAE round trip through the
    same loaders' VAE (measured 51.0 dB at 16 px), far closer than inside the mask, which is made anew (36.0 dB):
    at least ``db``, and ``gap`` dB above the inside."""
    def check(prompt, outputs, runner, host) -> None:
        import torch
        import torch.nn.functional as F

        (result,), (mask,) = (_saved(prompt, outputs, runner, name) for name in (edit, "Mask"))
        round_trip = _vae_round_trip(prompt, runner, host)
        painted = mask.mean(-1) > 0.5
        near = F.max_pool2d(painted[None, None].float(), 2 * margin + 1, stride=1, padding=margin)[0, 0] > 0
        far = ~near

        def db_of(region):
            return float(10 * torch.log10(1 / ((result - round_trip) ** 2)[region].mean()))

        outside, inside = db_of(far), db_of(painted)
        print(f"KV-Edit on the random model ({edit}): {outside:.1f} dB against the VAE round trip {margin} px from the "
              f"mask ({float(far.float().mean()):.0%} of the picture), {inside:.1f} dB inside it")
        assert least < float(far.float().mean()) < 0.9 and outside >= db and outside >= inside + gap
    return check


# Checks of what a technique promises whatever the model draws: run on the random-weight demo models too
MECHANICS_CHECKS = {"Qwen-Image - KV-Edit": _kv_edit_keeps_the_round_trip_outside_the_mask()}
LOCK_TOLERANCE = 1e-5   # the instruction lock's outside against the image's latent (measured at most 9.5e-7: float32
                        # rounding of the model's latent scale and shift, once; ten rounds do not add to it)


def _probe_latents(prompt: dict) -> dict:
    """``prompt`` with Save Latent nodes of the image's latent (VAE Encode's) and of the latent its saved picture was
    decoded from (the last locked edit's), so a check reads latents instead of pictures (a random VAE's decoder, with
    attention in its middle, carries any change inside the mask to every pixel)."""
    (encode,) = [k for k, v in prompt.items() if v["class_type"] == "VAEEncode"]
    (save,) = [k for k, v in prompt.items() if v["class_type"] == "SaveImage"]
    decode = prompt[prompt[save]["inputs"]["images"][0]]
    assert decode["class_type"] == "VAEDecode"
    for name, source in (("image", [encode, 0]), ("edit", decode["inputs"]["samples"])):
        prompt[f"probe_{name}"] = {"class_type": "SaveLatent",
                                   "inputs": {"samples": source, "filename_prefix": f"invertedit_probe/{name}"}}
    return prompt


def _lock_keeps_the_latent_outside_the_mask(prompt, outputs, runner, host) -> None:
    """The instruction lock's promise (issue 81), read on the latents (``_probe_latents``): outside the mask
    (painted, a word's, or where the unlocked run changed most; the latent's cells the mask touches, scaled as KV-Edit
    scales it, and the rest of their 2 x 2 tokens) the locked edit's latent is the image's within ``LOCK_TOLERANCE``,
    after one round and after ten chained through latents; inside it differs (the instruction acts). On the tiny
    random Kontext (the Demo Model's flux-dev) and Qwen-Image-Edit (its qwen-image), both given the image's latent as
    reference."""
    import safetensors.torch
    import torch.nn.functional as F

    (mask,) = _saved(prompt, outputs, runner, "Mask")
    image, edit = (safetensors.torch.load_file(str(runner.saved_files({k: outputs[k]}, "latents")[0]))["latent_tensor"]
                   for k in ("probe_image", "probe_edit"))
    if image.ndim == 5:   # Qwen-Image's frame axis
        image, edit = image[:, :, 0], edit[:, :, 0]
    cells = F.interpolate(mask.mean(-1)[None, None], size=tuple(image.shape[-2:]), mode="bilinear") > 0
    tokens = F.max_pool2d(cells.float(), 2, 2, ceil_mode=True)
    inside = F.interpolate(tokens, scale_factor=2.0, mode="nearest")[..., :image.shape[-2], :image.shape[-1]] > 0
    outside = ~inside.expand_as(image)
    moved = float((edit - image)[outside].abs().max())
    changed = float((edit - image)[~outside].abs().mean())
    print(f"instruction lock: the latent outside the mask ({float(outside.float().mean()):.0%} of it) at most {moved:.2g} "
          f"from the image's; inside, {changed:.3f} on average")
    assert 0.05 < float(outside.float().mean()) < 0.95
    # inside, the instruction acts: a change a hundred times the outside's tolerance (the tiny random Qwen-Image-Edit's
    # is small, 0.009 to 0.02 on average: its text moves its prediction little)
    assert moved <= LOCK_TOLERANCE and changed > 100 * LOCK_TOLERANCE


LOCK_WORKFLOWS = ("Kontext - Instruction lock", "Kontext - Instruction lock from a word",
                  "Kontext - Instruction lock (automatic)", "Kontext - Instruction lock (ten rounds)",
                  "Qwen-Image-Edit - Instruction lock", "Qwen-Image-Edit - Instruction lock from a word",
                  "Qwen-Image-Edit - Instruction lock (automatic)", "Qwen-Image-Edit - Instruction lock (ten rounds)",
                  "Kontext - Region Lock (fast)")
MECHANICS_CHECKS.update({name: _lock_keeps_the_latent_outside_the_mask for name in LOCK_WORKFLOWS})
if str(Path(__file__).resolve().parent) not in sys.path:   # glb_checks beside this file (the GPU lane imports it by path)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from glb_checks import GLB_CHECKS; MECHANICS_CHECKS.update(GLB_CHECKS)  # noqa: E402, E702  (the 3D workflows' meshes)


def _run_and_check(path, prompt, workflow, host, runner, size=None, check_pictures: bool = True,
                   mechanics: bool = False) -> float:
    """Execute ``prompt``; check that every SaveImage wrote images (of ``size``) carrying the
    workflow, and what ``OUTPUT_CHECKS`` says of its pictures (and, with ``mechanics``, ``MECHANICS_CHECKS``
    whatever the model); return the seconds it took."""
    from PIL import Image

    savers = sorted(k for k, v in prompt.items() if v["class_type"] == "SaveImage")
    assert savers, f"{path.name} saves no image"

    started = time.perf_counter()
    with SamplingPathWatch(REPO / "invertedit") as watch:   # what would fail or stall on a GPU (issue 23)
        outputs = runner.execute(prompt, extra_data={"extra_pnginfo": {"workflow": workflow}}, host=host)
    elapsed = time.perf_counter() - started
    assert not watch.findings, (
        f"{path.name}: the pack's sampling path moves values to the CPU, makes tensors on the CPU or makes the CPU "
        f"wait for the device (on a GPU these fail or stall; fix them, or mark a line '# {OPT_OUT} why' if it runs "
        f"once per run):\n{watch.report()}")
    for key in savers:
        assert outputs.get(key, {}).get("images"), f"SaveImage node {key} of {path.name} wrote nothing"
    files = runner.saved_images({k: outputs[k] for k in savers})   # (an animated PNG/WEBP saver's file is its own)
    assert len(files) == sum(len(outputs[k]["images"]) for k in savers)
    for file in files:
        assert file.is_file() and file.is_relative_to(host.output_dir)
        with Image.open(file) as im:
            assert im.size[0] >= 8 and im.size[1] >= 8
            # one picture of the model's size, or a strip of them (ImageStitch, STITCH_SPACING apart)
            assert size is None or (im.size[1] == size and (im.size[0] - size) % (size + STITCH_SPACING) == 0), (
                file.name, im.size)
            assert json.loads(im.info["workflow"])["nodes"], "the saved PNG should carry its workflow"
    if check_pictures and path.stem in OUTPUT_CHECKS:
        OUTPUT_CHECKS[path.stem](prompt, outputs, runner)
    if mechanics and path.stem in MECHANICS_CHECKS:
        MECHANICS_CHECKS[path.stem](prompt, outputs, runner, host)
    return elapsed


def headless_prompt(path: Path, workflow: dict, host, runner) -> tuple[dict, int | None, bool, str | None]:
    """How ``test_workflow_runs_headless`` (and the GPU lane's worker, ``tests/gpu/gpu_lane_worker.py``)
    prepares a shipped workflow: (the prompt, the pictures' size, whether the exact judge reads them,
    the built-in model or None). One built on Load Checkpoint runs on the built-in model of its family
    (``make_workflows.builtin_for``: the Toy World Model, the toy flow model for Flux/SD3), whose
    pictures are judged unless it is a random-weight demo model; every workflow with the toy world's
    quick settings (``make_workflows.toy_overrides``)."""
    from workshop import make_workflows

    overrides = make_workflows.toy_overrides(path.stem, quick=True)
    if path not in CHECKPOINT_FILES:
        assert path.stem not in make_workflows.CHECKPOINT_WORKFLOWS
        return runner.prepare_prompt(workflow, overrides=overrides, host=host), None, True, None
    builtin = make_workflows.builtin_for(path.stem)
    prompt = runner.prepare_prompt(workflow, builtin=builtin, overrides=overrides, host=host)
    assert not [v for v in prompt.values() if v["class_type"] in runner.MODEL_LOADERS]
    return prompt, runner.BUILTIN_SWAPS[builtin].size, not builtin.startswith("demo-"), builtin


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=[p.stem for p in WORKFLOW_FILES])
def test_workflow_runs_headless(path, host, runner):
    """Every shipped workflow runs as the CLI runs it; one built on Load Checkpoint runs on the
    Toy World Model (make_workflows.TOY_BUILTIN: "toy", the bundled two-object sample at 512 px;
    the Flux/SD3 ones on the toy flow model) with the toy world's prompts and 10 steps
    (make_workflows.toy_overrides); the slowest toy workflows run at 20 steps
    (make_workflows.QUICK_TOY_WORKFLOWS). The preparation: ``headless_prompt``."""
    workflow = json.loads(path.read_text(encoding="utf-8"))
    prompt, size, judged, builtin = headless_prompt(path, workflow, host, runner)
    if path.stem in LOCK_WORKFLOWS:
        prompt = _probe_latents(prompt)
    elapsed = _run_and_check(path, prompt, workflow, host, runner, size=size, check_pictures=judged, mechanics=True)
    print(f"{path.name}: executed" + (f" on the built-in {builtin} model (quick settings)" if builtin else "")
          + f" in {elapsed:.2f}s")


def test_the_qwen_image_flowedit_template_keeps_the_image_when_nothing_is_edited(host, runner):
    """FlowEdit's edit moves by the target's minus the source's velocity: the Qwen-Image template (its three
    loaders, ModelSamplingAuraFlow, both prompts and the empty negative under true cfg, as shipped) with the target
    prompt and guidance the source's gives back the image's latent, so its saved picture is the same VAE's round
    trip of the image (on the tiny random Qwen-Image, whose pictures are noise otherwise); with the target
    guidance as shipped the same prompts move it (the difference of two cfg scales is no edit-free velocity)."""
    from invertedit.techniques.flow_edit.workflows import QWEN_FLOWEDIT
    from invertedit.workflows.toy import SOURCE_PROMPT
    from workshop import make_workflows

    name = "Qwen-Image - FlowEdit"
    workflow = json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))
    differences = []
    for guidance in (QWEN_FLOWEDIT["source"], QWEN_FLOWEDIT["target"]):
        overrides = dict(make_workflows.toy_overrides(name), **{"Target prompt": {"value": SOURCE_PROMPT}},
                         InvertEditFlowEdit={"target_guidance": guidance})
        prompt = runner.prepare_prompt(workflow, builtin=make_workflows.builtin_for(name), overrides=overrides, host=host)
        (edit,) = _saved(prompt, runner.execute(prompt, host=host), runner, "invertedit/flowedit_qwen_image")
        differences.append(float((edit - _vae_round_trip(prompt, runner, host)).abs().max()))
    print(f"{name}, the target prompt the source's: at most {differences[0] * 255:.1f} of 255 from the VAE round "
          f"trip at the source's guidance, {differences[1] * 255:.1f} at the shipped target guidance")
    assert differences[0] <= 2 / 255 < 10 / 255 < differences[1]   # the PNGs' rounding; an edit


SDXL_FILES = [p for p in CHECKPOINT_FILES if p.name.startswith("SDXL")]


def sdxl_layout_prompt(path: Path, workflow: dict, host, runner) -> tuple[dict, int]:
    """How ``test_sdxl_workflow_runs_on_the_sdxl_layout`` (and the GPU lane's worker) prepares an SDXL
    workflow for the Demo Model's SDXL layout: (the prompt, the pictures' size); random weights draw
    noise, so the pictures are not judged."""
    from workshop import make_workflows

    prompt = runner.prepare_prompt(workflow, builtin="demo-sdxl",
                                   overrides=make_workflows.toy_overrides(path.stem, quick=True), host=host)
    assert [v["inputs"] for v in prompt.values() if v["class_type"] == runner.DEMO_MODEL] == [{"family": "sdxl", "seed": 0}]
    return prompt, runner.BUILTIN_SWAPS["demo-sdxl"].size


@pytest.mark.parametrize("path", SDXL_FILES, ids=[p.stem for p in SDXL_FILES])
def test_sdxl_workflow_runs_on_the_sdxl_layout(path, host, runner):
    """The SDXL workflows also run on the Demo Model's SDXL layout (two text encoders, pooled
    output, size conditioning), which the toy model (SD1.x layout) does not exercise."""
    workflow = json.loads(path.read_text(encoding="utf-8"))
    prompt, size = sdxl_layout_prompt(path, workflow, host, runner)
    elapsed = _run_and_check(path, prompt, workflow, host, runner, size=size, check_pictures=False)
    print(f"{path.name}: executed on the SDXL demo model (10 steps) in {elapsed:.2f}s")


def test_checkpoint_workflows_are_set_for_their_family(host, runner, tmp_path):
    """As shipped (no swap): Load Checkpoint (Qwen-Image: Load Diffusion Model, Load CLIP and Load VAE of
    ComfyUI's Qwen-Image files, ModelSamplingAuraFlow at its examples' shift), Load Image of the host's own
    example.png, Upscale Image to the family's size, a note, the techniques' settings; and the host accepts the
    graph once a checkpoint (the model's files) of that name exists."""
    from workshop import make_workflows

    assert {p.stem for p in CHECKPOINT_FILES} == set(make_workflows.CHECKPOINT_WORKFLOWS)
    names = {p.stem for p in CHECKPOINT_FILES}
    for family, size in (("SD1.5", 512), ("SDXL", 1024)):
        for technique in ("DDIM inversion and edit", "Prompt-to-Prompt edit"):
            assert f"{family} - {technique}" in names
    assert {"SD1.5 - Null-text inversion and edit", "SD1.5 - LEDITS++ edit", "Flux - FlowEdit", "SD3 - FlowEdit"} <= names
    assert {f"{family} - {technique}" for family in ("SD1.5", "SDXL")
            for technique in ("DreamBooth LoRA", "Textual Inversion", "Custom Diffusion")} <= names
    ckpt = tmp_path / "ckpts" / "users-model.safetensors"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"not loaded: the prompt is only validated")
    qwen = families.QWEN
    assert {f"Qwen-Image - {t}" for t in ("FlowEdit", "Prompt-to-Prompt edit", "KV-Edit")} <= names
    _model_files(tmp_path, {"diffusion_models": qwen.unet, "text_encoders": qwen.clip, "vae": qwen.vae})
    kontext, qwen_edit = families.KONTEXT, families.QWEN_EDIT   # the instruction editors' files (issue 81)
    _model_files(tmp_path, {"diffusion_models": kontext.unet, "text_encoders": kontext.clip, "vae": kontext.vae})
    _model_files(tmp_path, {"diffusion_models": qwen_edit.unet, "text_encoders": kontext.clip2})
    assert {f"{f} - Instruction lock" for f in ("Kontext", "Qwen-Image-Edit")} <= names
    for path in CHECKPOINT_FILES:
        if path.name.startswith("Wan 2.1 - ") or "Clip edit" in path.name:   # a clip template (issue 82): test_wan.py,
            continue                                                          # test_clip_edit.py check them
        if path.name.startswith(("SV3D - ", "Hunyuan3D-2 - ")) or "View set edit" in path.name:   # the view sets
            continue                      # (issue 83): test_sv3d.py, test_views_to_3d.py and test_cross_view.py check them
        workflow = json.loads(path.read_text(encoding="utf-8"))
        size = 512 if path.name.startswith("SD1.5") else 1024
        assert path.name.startswith(("SD1.5 - ", "SDXL - ", "Flux - ", "SD3 - ", "Qwen-Image - ", "Kontext - ",
                                     "Qwen-Image-Edit - "))
        family = next(f for f in families.FAMILIES if path.name.startswith(f"{f.name} - "))
        separate = family.separate
        if family in (families.KONTEXT, families.QWEN_EDIT):   # the instruction lock (issue 81): checked apart
            _check_instruction_lock_template(path, runner.prepare_prompt(workflow, host=host), family)
            users = runner.prepare_prompt(workflow, image=runner.SAMPLE_IMAGE, host=host)
            valid, error, _, node_errors = _validate(host, users)
            assert valid and not node_errors, (path.name, error, node_errors)
            continue
        assert any(n["type"] in ("MarkdownNote", "Note") and ("Load Diffusion Model" if separate else "Load Checkpoint")
                   in n["widgets_values"][0] for n in workflow["nodes"]), f"{path.name}: no note on what to set"
        prompt = runner.prepare_prompt(workflow, host=host)
        by_type: dict = {}
        for node in prompt.values():
            by_type.setdefault(node["class_type"], []).append(node["inputs"])
        if separate:   # as ComfyUI's own Qwen-Image examples load it and sample it
            assert CHECKPOINT_LOADER not in by_type
            assert by_type[UNET_LOADER] == [{"unet_name": "qwen_image_fp8_e4m3fn.safetensors", "weight_dtype": "default"}]
            assert by_type["CLIPLoader"] == [{"clip_name": "qwen_2.5_vl_7b_fp8_scaled.safetensors", "type": "qwen_image",
                                              "device": "default"}]
            assert by_type["VAELoader"] == [{"vae_name": "qwen_image_vae.safetensors"}]
            (shift,) = by_type["ModelSamplingAuraFlow"]
            assert shift["shift"] == families.QWEN_SHIFT == 3.1
            # true cfg with the empty negative: Qwen-Image has no distilled guidance (FlowEdit: its own guider, below)
            guiders = by_type.get("CFGGuider", [])
            assert (guiders or "FlowEdit" in path.name) and "FluxGuidance" not in by_type and "BasicGuider" not in by_type
            assert all(g["cfg"] == families.QWEN_CFG == 4.0 for g in guiders)
            empty = {k for k, v in prompt.items() if v["class_type"] == "CLIPTextEncode" and v["inputs"]["text"] == ""}
            assert all(g["negative"][0] in empty for g in guiders)
        else:
            (loader,) = by_type[CHECKPOINT_LOADER]
            assert loader["ckpt_name"] == family.ckpt
        if set(by_type) & set(PERSONALISING):
            _check_personalisation_template(path, by_type, size)
        else:
            assert [i["image"] for i in by_type["LoadImage"]] == ["example.png"]
            # the image keeps its shape at the family's size (issue 79: no centre crop to a square)
            assert by_type["ImageScaleToTotalPixels"] == [{"upscale_method": "lanczos", "megapixels": size * size / 1024 ** 2,
                                                           "image": by_type["ImageScaleToTotalPixels"][0]["image"]}]
            assert "VAEEncode" in by_type
        for inputs in by_type.get("KSamplerAdvanced", []) + by_type.get("InvertEditDDIMInvert", []):
            assert inputs["steps"] == 50
        if "Prompt-to-Prompt" in path.name and family in (families.FLUX, families.SD3, families.QWEN):
            (inject,) = by_type["InvertEditJointAttentionInject"]   # the paper's fractions on joint attention
            assert (inject["mode"], inject["cross_replace"], inject["self_replace"]) == ("replace", 0.8, 0.4)
            assert inject["blend_source_words"] and inject["blend_target_words"]
            assert by_type["InvertEditFlowInvert"][0]["solver"] == "euler"
            assert by_type["KSamplerSelect"] == [{"sampler_name": "euler"}]
        elif "Prompt-to-Prompt" in path.name or "Null-text" in path.name:
            (inject,) = by_type["InvertEditAttentionInject"]
            assert (inject["mode"], inject["cross_replace"], inject["self_replace"]) == ("replace", 0.4, 0.6)
            assert inject["blend_source_words"] and inject["blend_target_words"]
            assert [s["cfg"] for s in by_type["KSamplerAdvanced"]] == [7.5]
        if "Prompt-to-Prompt" in path.name and family in (families.SD15, families.SDXL):
            assert "InvertEditDirectInversion" in by_type
        if "Null-text" in path.name:
            assert by_type["InvertEditNullTextOptimize"][0]["cfg"] == 7.5
        if "LEDITS" in path.name:
            assert by_type["InvertEditDDPMInvert"][0]["steps"] == 50 and "InvertEditLEDITSGuidance" in by_type
        if "FlowEdit" in path.name:   # the authors' configs (fallenshock/FlowEdit: FLUX_exp.yaml, SD3_exp.yaml)
            (edit,) = by_type["InvertEditFlowEdit"]
            (schedule,) = by_type["BasicScheduler"]
            flux = family is families.FLUX
            assert (schedule["steps"], edit["n_max"], edit["source_guidance"], edit["target_guidance"]) == (
                (28, 24, 1.5, 5.5) if flux else (50, 33, 2.0, 7.5) if separate else (50, 33, 3.5, 13.5))
            assert ("ModelSamplingFlux" in by_type) == flux and ("negative" in edit) == (not flux)
            assert by_type["KSamplerSelect"] == [{"sampler_name": "euler"}]
        if "KV-Edit" in path.name:   # the mask painted on Load Image, the cache offloaded as the authors' code does
            assert by_type["InvertEditKVEdit"][0]["skip_steps"] == 4
            assert by_type["InvertEditFlowInvert"][0]["keep_keys_values"] is True
            assert by_type["InvertEditFlowInvert"][0]["keep_values_on"] == "cpu"
        # the user's graph, with a checkpoint (the model's files) and an image of theirs, passes the host's validation
        users = runner.prepare_prompt(workflow, image=runner.SAMPLE_IMAGE, host=host) if separate else \
            runner.prepare_prompt(workflow, ckpt=ckpt, image=runner.SAMPLE_IMAGE, host=host)
        valid, error, _, node_errors = _validate(host, users)
        assert valid and not node_errors, (path.name, error, node_errors)


def _check_instruction_lock_template(path, prompt: dict, family) -> None:
    """An instruction lock template (issue 81) as shipped: the editor's files as ComfyUI's own template loads them
    (Kontext: Load Diffusion Model, DualCLIPLoader of clip_l and t5xxl type flux, Load VAE; Qwen-Image-Edit: Load
    Diffusion Model, Load CLIP, Load VAE, ModelSamplingAuraFlow at the Qwen-Image workflows' shift), the picture at its
    own size (nothing rescales it), every prompt carrying the image's latent as reference (Qwen-Image-Edit's encoder
    with the image and no vae), the inversion with the empty instruction keeping keys and values (Euler, 28 steps),
    KV-Edit with 4 steps skipped, the instruction sampled at the editor's guidance (Kontext 2.5; Qwen-Image-Edit
    true cfg 4, the keep prompt as negative); the automatic one's region from the unlocked run's latent; the ten
    rounds chained through latents."""
    kontext = family is families.KONTEXT
    by_type: dict = {}
    for node in prompt.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    assert by_type[UNET_LOADER] == [{"unet_name": family.unet, "weight_dtype": "default"}]
    if kontext:
        assert by_type["DualCLIPLoader"] == [{"clip_name1": "clip_l.safetensors", "clip_name2":
                                              "t5xxl_fp8_e4m3fn_scaled.safetensors", "type": "flux", "device": "default"}]
        assert "ModelSamplingFlux" not in by_type and "CFGGuider" not in by_type
        assert {g["guidance"] for g in by_type["FluxGuidance"]} == {2.5}
    else:
        assert by_type["CLIPLoader"] == [{"clip_name": families.QWEN.clip, "type": "qwen_image", "device": "default"}]
        assert [m["shift"] for m in by_type["ModelSamplingAuraFlow"]] == [families.QWEN_SHIFT]
        assert "FluxGuidance" not in by_type and "BasicGuider" not in by_type
        assert {g["cfg"] for g in by_type["CFGGuider"]} == {families.QWEN_CFG}
        assert all("vae" not in t and "image" in t for t in by_type["TextEncodeQwenImageEdit"])
    assert by_type["VAELoader"] == [{"vae_name": family.vae}]
    assert CHECKPOINT_LOADER not in by_type and not {"ImageScale", "ImageScaleToTotalPixels", "FluxKontextImageScale"} & set(by_type)
    assert [i["image"] for i in by_type["LoadImage"]] == ["example.png"]
    (encode,) = [k for k, v in prompt.items() if v["class_type"] == "VAEEncode"]
    assert prompt[encode]["inputs"]["pixels"][0] == next(k for k, v in prompt.items() if v["class_type"] == "LoadImage")
    text = {k: v["inputs"].get("text", v["inputs"].get("prompt")) for k, v in prompt.items()
            if v["class_type"] in ("CLIPTextEncode", "TextEncodeQwenImageEdit")}

    def words(key):   # the text a conditioning carries, through ReferenceLatent and FluxGuidance; its reference
        node = prompt[key]
        if node["class_type"] == "FluxGuidance":
            return words(node["inputs"]["conditioning"][0])
        assert node["class_type"] == "ReferenceLatent", (path.name, node)
        typed = node["inputs"]["conditioning"][0]
        value = text[typed]
        value = prompt[value[0]]["inputs"]["value"] if isinstance(value, list) else value
        return value, node["inputs"]["latent"]

    if "Region Lock" in path.name:   # no inversion: Region Lock on the editor's own run, RegionE's settings
        (lock,) = by_type["InvertEditRegionLock"]
        assert (lock["region_cache"], lock["warmup_steps"], lock["refresh_steps"]) == (True, 6, "16")
        assert lock["latent"][0] == encode and "InvertEditFlowInvert" not in by_type
        (sampler,) = [v["inputs"] for v in prompt.values() if v["class_type"] == "SamplerCustomAdvanced"]
        guider = prompt[sampler["guider"][0]]["inputs"]
        assert prompt[guider["model"][0]]["class_type"] == "InvertEditRegionLock"
        instruction, reference = words(guider["conditioning"][0])
        assert instruction and reference == sampler["latent_image"] == lock["latent"]
        return
    inverts, edits = by_type["InvertEditFlowInvert"], by_type["InvertEditKVEdit"]
    assert len(inverts) == len(edits) == (10 if "ten rounds" in path.name else 1)
    for inv in inverts:
        assert (inv["solver"], inv["steps"], inv["scheduler"], inv["keep_keys_values"], inv["keep_values_on"]) == \
            ("euler", 28, "simple", True, "cpu")
        assert inv["guidance"] == (1.5 if kontext else 1.0) and inv.get("keep_reference") is False   # cache off
        typed, reference = words(inv["positive"][0])
        assert typed == "" and reference == inv["latent"], "inverted with the empty instruction, the image as reference"
    for kv in edits:
        assert (kv["skip_steps"], kv["attn_scale"], kv["re_init"], kv["cache_reference"]) == (4, 1.0, False, False)
    samplers = {k: v["inputs"] for k, v in prompt.items() if v["class_type"] == "SamplerCustomAdvanced"}
    for key, sampler in samplers.items():
        guider = prompt[sampler["guider"][0]]["inputs"]
        instruction, reference = words((guider.get("conditioning") or guider["positive"])[0])
        assert instruction and reference == sampler["latent_image"], (path.name, key)
        if not kontext:
            assert words(guider["negative"][0]) == ("", reference)
    if "automatic" in path.name:
        (region,) = by_type["InvertEditChangedRegion"]
        (unlocked,) = [k for k, v in samplers.items() if v["noise"][0] not in prompt or
                       prompt[v["noise"][0]]["class_type"] == "RandomNoise"]
        assert region["image"] == [encode, 0] and region["edited"] == [unlocked, 0]
        assert (region["threshold"], region["grow"]) == (0.3, 1)
    if "ten rounds" in path.name:   # each round's latent is the last one's output: no VAE between rounds
        latents = [s["latent_image"][0] for s in samplers.values()]
        assert latents[0] == encode and all(prompt[k]["class_type"] == "SamplerCustomAdvanced" for k in latents[1:])
        assert len(set(latents)) == 10 and len(by_type["VAEEncode"]) == 1
        assert len({words(i["positive"][0])[1][0] for i in inverts}) == 10


def _model_files(tmp_path, files: dict[str, str]) -> None:
    """Empty files of these names (folder kind: name) in new model folders of those kinds (added first): the
    prompt is only validated, not loaded."""
    import folder_paths

    for kind, name in files.items():
        folder = tmp_path / kind
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"not loaded: the prompt is only validated")
        folder_paths.add_model_folder_path(kind, str(folder), is_default=True)


# The personalisation templates' training nodes with their papers' settings (diffusers' train_dreambooth_lora.py,
# textual_inversion.py and train_custom_diffusion.py and their READMEs; the rows' settings)
PERSONALISING = {
    "InvertEditDreamBoothLoRA": {"steps": 500, "learning_rate": 1e-4, "rank": 4, "prior_loss_weight": 1.0, "batch_size": 1},
    "InvertEditTextualInversion": {"steps": 3000, "learning_rate": 0.002, "batch_size": 4, "num_vectors": 1,
                                   "templates": "object", "caption": ""},
    "InvertEditCustomDiffusion": {"steps": 250, "learning_rate": 4e-5, "batch_size": 2, "prior_loss_weight": 1.0,
                                  "augment": True, "hflip": True, "initializer": "ktn"},
}


def _check_personalisation_template(path, by_type: dict, size: int) -> None:
    """A personalisation template for a checkpoint (issue 79): the subject's photos (Load Images of example.png,
    batched), cropped square at the family's size as the training scripts crop them, the training node with its
    paper's settings, its prior loss on 200 class images the model draws 4 at a time (gathered in one batch), and
    the stock KSampler drawing the subject with the README's inference settings."""
    (node,) = set(by_type) & set(PERSONALISING)
    (teach,) = by_type[node]
    assert {k: teach[k] for k in PERSONALISING[node]} == PERSONALISING[node], path.name
    photos = [i["image"] for i in by_type["LoadImage"]]
    assert 3 <= len(photos) <= 5 and set(photos) == {"example.png"}
    assert len(by_type["ImageBatch"]) == len(photos) - 1
    (scale,) = by_type["ImageScale"]
    assert (scale["width"], scale["height"], scale["crop"]) == (size, size, "center")
    assert "ImageScaleToTotalPixels" not in by_type
    samplers = by_type["KSampler"]
    if node == "InvertEditTextualInversion":
        (sample,) = samplers
        assert "RebatchLatents" not in by_type
    else:
        klass, sample = samplers
        (draw,) = [e for e in by_type["EmptyLatentImage"] if e["batch_size"] != 4]
        assert draw["batch_size"] == 200 and (klass["steps"], klass["cfg"]) == (50, 7.5)
        assert [r["batch_size"] for r in by_type["RebatchLatents"] + by_type.get("RebatchImages", [])] == [4, 4096]
        assert teach["class_images"] and teach["class_prompt"]
    assert (sample["steps"], sample["cfg"], sample["sampler_name"]) == (
        (100, 6.0, "ddpm") if node == "InvertEditCustomDiffusion" else (50, 7.5, "ddim"))
    assert "VAEEncode" in by_type or node == "InvertEditCustomDiffusion"


def test_templates_are_served_by_their_names(host, tmp_path):
    """The host's template routes (app/custom_node_manager.py) list every workflow by its file
    name (the card's title) and serve <name>.json and <name>.jpg at the URL the frontend builds
    (spaces sent as %20), names with spaces, dots and '+' included."""
    import asyncio

    import folder_paths
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from app.custom_node_manager import CustomNodeManager

    pack = tmp_path / "custom_nodes" / "ComfyUI-InvertEdit"
    pack.parent.mkdir()
    pack.symlink_to(REPO, target_is_directory=True)
    saved = folder_paths.folder_names_and_paths["custom_nodes"]
    folder_paths.folder_names_and_paths["custom_nodes"] = ([str(pack.parent)], saved[1])

    async def fetch():
        app = web.Application()
        routes = web.RouteTableDef()
        CustomNodeManager().add_routes(routes, app, [(pack.name, str(pack))])
        app.add_routes(routes)
        async with TestClient(TestServer(app)) as client:
            listed = (await (await client.get("/workflow_templates")).json())[pack.name]
            status = {}
            for name in listed:
                for ext in ("json", "jpg"):
                    url = f"/api/workflow_templates/{pack.name}/{name}.{ext}".replace(" ", "%20")
                    response = await client.get(url)
                    status[f"{name}.{ext}"] = (response.status, len(await response.read()))
            return listed, status

    try:
        listed, status = asyncio.run(fetch())
    finally:
        folder_paths.folder_names_and_paths["custom_nodes"] = saved
    assert sorted(listed) == sorted(p.stem for p in WORKFLOW_FILES)
    bad = {k: v for k, v in status.items() if v[0] != 200 or v[1] == 0}
    assert not bad, bad


# ------------------------------------------------------------------ the runner's replacements

def _main_workflow():
    if not MAIN_WORKFLOW.is_file():
        pytest.fail(f"{MAIN_WORKFLOW} is missing (python -m workshop.make_workflows writes it)")
    return json.loads(MAIN_WORKFLOW.read_text(encoding="utf-8"))


def test_ckpt_replaces_the_built_in_model(host, runner, tmp_path):
    workflow = _main_workflow()
    plain = runner.prepare_prompt(workflow, host=host)
    demo = [k for k, v in plain.items() if v["class_type"] in runner.BUILTIN_MODELS]
    assert demo, "the main workflow should use a built-in model"

    ckpt = tmp_path / "ckpts" / "my-model.safetensors"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"not loaded: the prompt is only validated")
    prompt = runner.prepare_prompt(workflow, ckpt=ckpt, host=host)
    for key in demo:
        assert prompt[key]["class_type"] == "CheckpointLoaderSimple"
        assert prompt[key]["inputs"] == {"ckpt_name": "my-model.safetensors"}
    # everything else, links to the loader's MODEL/CLIP/VAE slots included, is unchanged
    assert {k: v for k, v in prompt.items() if k not in demo} == {k: v for k, v in plain.items() if k not in demo}
    uses = {tuple(v) for n in prompt.values() for v in n["inputs"].values() if isinstance(v, list) and v[0] in demo}
    assert {slot for _, slot in uses} == {0, 1, 2}
    # the host accepts it: the file's folder became a checkpoint folder
    valid, error, _, node_errors = _validate(host, prompt)
    assert valid and not node_errors, (error, node_errors)
    # now also known by name
    assert runner.prepare_prompt(workflow, ckpt="my-model.safetensors", host=host)[demo[0]]["inputs"] == \
        {"ckpt_name": "my-model.safetensors"}
    with pytest.raises(runner.WorkflowError, match="checkpoint 'no-such.safetensors' is neither a file nor a name"):
        runner.prepare_prompt(workflow, ckpt="no-such.safetensors", host=host)


def test_builtin_replaces_load_checkpoint(host, runner):
    """builtin="toy": the reverse of --ckpt, for the workflows built on Load Checkpoint."""
    path = WORKFLOWS / "SD1.5 - Prompt-to-Prompt edit.json"
    workflow = json.loads(path.read_text(encoding="utf-8"))
    plain = runner.prepare_prompt(workflow, image=runner.SAMPLE_IMAGE, host=host)
    loaders = [k for k, v in plain.items() if v["class_type"] == CHECKPOINT_LOADER]
    assert loaders
    prompt = runner.prepare_prompt(workflow, builtin="toy", host=host)
    for key in loaders:
        assert prompt[key]["class_type"] == runner.TOY_MODEL and prompt[key]["inputs"] == {"world": "two objects (512 px)"}
    # the image is the bundled sample, Upscale Image makes the toy world's size (512 px); everything else is unchanged
    scales = [k for k, v in prompt.items() if v["class_type"] == "ImageScaleToTotalPixels"]
    size = runner.BUILTIN_SWAPS["toy"].size
    assert size == 512 and runner.BUILTIN_SWAPS["toy-one-object"].size == 128
    assert scales and all(prompt[k]["inputs"]["megapixels"] == size * size / 1024 ** 2 for k in scales)
    assert all(v["inputs"]["image"] == plain[k]["inputs"]["image"] for k, v in prompt.items()
               if v["class_type"] == "LoadImage")
    for key in scales:
        plain[key]["inputs"].update(megapixels=size * size / 1024 ** 2)
    assert {k: v for k, v in prompt.items() if k not in loaders} == {k: v for k, v in plain.items() if k not in loaders}
    uses = {tuple(v) for n in prompt.values() for v in n["inputs"].values() if isinstance(v, list) and v[0] in loaders}
    assert {slot for _, slot in uses} == {0, 1, 2}
    assert _validate(host, prompt)[0]
    demo = runner.prepare_prompt(workflow, builtin="demo-sd1", host=host)
    assert [demo[k]["inputs"] for k in loaders] == [{"family": "sd1", "seed": 0}]

    with pytest.raises(runner.WorkflowError, match="no CheckpointLoaderSimple"):
        runner.prepare_prompt(_main_workflow(), builtin="toy", host=host)
    with pytest.raises(runner.WorkflowError, match="give one of them"):
        runner.prepare_prompt(workflow, builtin="toy", ckpt="x.safetensors", host=host)
    with pytest.raises(runner.WorkflowError, match="not a built-in model; use one of toy"):
        runner.prepare_prompt(workflow, builtin="sd15", host=host)


def test_builtin_replaces_the_separate_loaders(host, runner):
    """builtin= on a template that loads the model's files separately (Qwen-Image: Load Diffusion Model, Load CLIP,
    Load VAE): one built-in model in the Load Diffusion Model's place (its id, MODEL slot 0), every link from Load
    CLIP taken to its CLIP (slot 1) and from Load VAE to its VAE (slot 2), those loaders gone; the rest unchanged.
    Without a Load Diffusion Model to stand in for, the swap is refused."""
    workflow = json.loads((WORKFLOWS / "Qwen-Image - FlowEdit.json").read_text(encoding="utf-8"))
    plain = runner.prepare_prompt(workflow, image=runner.SAMPLE_IMAGE, host=host)
    ids = {kind: [k for k, v in plain.items() if v["class_type"] == kind] for kind in (UNET_LOADER, "CLIPLoader", "VAELoader")}
    assert all(len(v) == 1 for v in ids.values()), ids
    (unet,), (clip,), (vae,) = ids.values()
    prompt = runner.prepare_prompt(workflow, builtin="demo-qwen-image", host=host)
    assert prompt[unet]["class_type"] == runner.DEMO_MODEL and prompt[unet]["inputs"] == {"family": "qwen-image", "seed": 0}
    assert clip not in prompt and vae not in prompt
    links = {(k, name): v for k, node in prompt.items() for name, v in node["inputs"].items() if isinstance(v, list)}
    for (key, name), value in links.items():
        before = plain[key]["inputs"][name]
        if before[0] in (clip, vae):
            assert value == [unet, {clip: 1, vae: 2}[before[0]]], (key, name, value)
        else:
            assert value == before
    assert {tuple(v) for v in links.values() if v[0] == unet} == {(unet, 0), (unet, 1), (unet, 2)}
    assert _validate(host, prompt)[0]
    with pytest.raises(runner.WorkflowError, match="need one Load Diffusion Model or Load Checkpoint"):
        runner._swap_in_builtin({"1": {"class_type": "CLIPLoader", "inputs": {}},
                                 "2": {"class_type": "VAELoader", "inputs": {}}}, "demo-qwen-image")


def _validate(host, prompt):
    import asyncio

    return asyncio.run(host.execution.validate_prompt("test", json.loads(json.dumps(prompt)), None))


def _png(path: Path, color) -> Path:
    from PIL import Image

    Image.new("RGB", (64, 48), color).save(path)
    return path


def test_image_replaces_every_load_image(host, runner, tmp_path):
    workflow = _main_workflow()
    mine = _png(tmp_path / "photo.png", (0, 200, 0))
    prompt = runner.prepare_prompt(workflow, image=mine, host=host)
    loaders = [k for k, v in prompt.items() if v["class_type"] == "LoadImage"]
    assert loaders and all(prompt[k]["inputs"]["image"] == "photo.png" for k in loaders)
    assert (host.input_dir / "photo.png").read_bytes() == mine.read_bytes()
    # a different file of the same name does not overwrite the first one
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = _png(other_dir / "photo.png", (200, 0, 200))
    name = runner.prepare_prompt(workflow, image=other, host=host)[loaders[0]]["inputs"]["image"]
    assert name != "photo.png" and (host.input_dir / name).read_bytes() == other.read_bytes()
    assert (host.input_dir / "photo.png").read_bytes() == mine.read_bytes()
    assert _validate(host, prompt)[0]


def test_bundled_sample_is_supplied(host, runner):
    bundled = runner.SAMPLE_IMAGE.name   # the main workflow's (two objects)
    assert bundled == "sample_two_objects.png"
    sample = host.input_dir / bundled
    if sample.exists():
        sample.unlink()
    prompt = runner.prepare_prompt(_main_workflow(), host=host)
    assert any(v["class_type"] == "LoadImage" and v["inputs"]["image"] == bundled for v in prompt.values())
    assert sample.read_bytes() == runner.SAMPLE_IMAGE.read_bytes()
    # an input folder holding another file of that name (an older pack's) keeps it; the workflow reads the bundled one
    sample.write_bytes(b"an older sample")
    prompt = runner.prepare_prompt(_main_workflow(), host=host)
    (name,) = [v["inputs"]["image"] for v in prompt.values() if v["class_type"] == "LoadImage"]
    assert name != bundled and (host.input_dir / name).read_bytes() == runner.SAMPLE_IMAGE.read_bytes()
    assert sample.read_bytes() == b"an older sample"
    sample.unlink()


def test_overrides_by_id_type_and_title(host, runner):
    workflow = _main_workflow()
    prompt = runner.prepare_prompt(workflow, overrides={"KSamplerAdvanced": {"steps": 7},
                                                        "Source prompt": {"value": "a cat"}}, host=host)
    assert all(v["inputs"]["steps"] == 7 for v in prompt.values() if v["class_type"] == "KSamplerAdvanced")
    (source,) = [k for k, v in prompt.items() if v["_meta"]["title"] == "Source prompt"]   # the String node
    assert prompt[source]["inputs"]["value"] == "a cat"
    assert any(v["class_type"] == "CLIPTextEncode" and v["inputs"]["text"] == [source, 0] for v in prompt.values())
    with pytest.raises(runner.WorkflowError, match="no node with that id, type or title"):
        runner.prepare_prompt(workflow, overrides={"Nope": {"x": 1}}, host=host)
    # an input the node does not have (the String node's is 'value', not its CLIPTextEncode's 'text'): read by nothing
    with pytest.raises(runner.WorkflowError, match=r"override 'Source prompt': node \d+ \(PrimitiveStringMultiline\) has "
                                                   r"no input 'text'"):
        runner.prepare_prompt(workflow, overrides={"Source prompt": {"text": "a cat"}}, host=host)


# ------------------------------------------------------------------ errors

def test_validation_errors_name_the_node(host, runner):
    prompt = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
              "2": {"class_type": "VAEDecode", "inputs": {"samples": ["1", 0]}},
              "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}}}
    with pytest.raises(runner.WorkflowError) as err:
        runner.execute(prompt, host=host)
    assert "failed validation" in str(err.value) and "node 2 (VAEDecode)" in str(err.value) and "vae" in str(err.value)


def test_execution_errors_name_the_node(host, runner):
    (host.input_dir / "broken.png").write_bytes(b"this is not a png")
    prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": "broken.png"}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    with pytest.raises(runner.WorkflowError, match=r"node 1 \(LoadImage\) failed: .*"):
        runner.execute(prompt, host=host)


def test_unknown_node_type_is_reported(host, runner):
    workflow = _main_workflow()
    workflow["nodes"][0] = dict(workflow["nodes"][0], type="SomeMissingPackNode")
    with pytest.raises(runner.WorkflowError, match=r"unknown node type 'SomeMissingPackNode'"):
        runner.prepare_prompt(workflow, host=host)


# ------------------------------------------------------------------ the CLI

def start_reference_early(request) -> dict:
    """Starts the CLI run of the main workflow (about 25 s, a subprocess of one torch thread) at the
    session's first host test (``early_references``), so that it runs on the machine's second core
    while the other tests run on the first; ``test_cli_runs_the_main_workflow`` waits on it."""
    host = request.getfixturevalue("host")
    tmp = request.getfixturevalue("tmp_path_factory").mktemp("cli")
    env = dict(os.environ, COMFYUI_PATH=str(host.path))
    out, log = tmp / "out", (tmp / "stdout.txt", tmp / "stderr.txt")
    with open(log[0], "wb") as stdout, open(log[1], "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "workshop.run_workflow", str(MAIN_WORKFLOW), "--out", str(out),
                                    "--threads", "1", "--input-directory", str(tmp / "input"),
                                    "--output-directory", str(tmp / "output"), "--temp-directory", str(tmp / "temp")],
                                   stdout=stdout, stderr=stderr, env=env, cwd=REPO, **background())
    return {"process": process, "tmp": tmp, "out": out, "log": log, "started": time.perf_counter()}


def test_cli_runs_the_main_workflow(host, request, early_references):
    _main_workflow()
    env = dict(os.environ, COMFYUI_PATH=str(host.path))
    job = early_references.get(__name__) or start_reference_early(request)
    started, out, tmp_path = job["started"], job["out"], job["tmp"]
    returncode = job["process"].wait(timeout=600)
    done = subprocess.CompletedProcess(job["process"].args, returncode, job["log"][0].read_text(errors="replace"),
                                       job["log"][1].read_text(errors="replace"))
    assert done.returncode == 0, done.stderr[-3000:]
    wrote = [Path(line.removeprefix("wrote ")) for line in done.stdout.splitlines() if line.startswith("wrote ")]
    assert wrote and all(p.is_file() and p.is_relative_to(out) for p in wrote)
    assert [p.name for p in wrote] == ["invert_and_edit_00001_.png"]
    assert (tmp_path / "input" / "sample_two_objects.png").is_file()  # the bundled sample, supplied
    # The saved picture is the pack's edit (the template previews the reconstruction and the naive edit): the
    # circle turned yellow in its place, the square and the background kept (the exact judge), and far closer to
    # the image than a redrawn scene
    import numpy as np
    import torch
    from PIL import Image

    from workshop.toyworld import scenes as S
    from workshop.toyworld.scenes_judge import judge

    edit = torch.from_numpy(np.asarray(Image.open(wrote[0]).convert("RGB"), dtype=np.float32) / 255)
    image = torch.from_numpy(np.asarray(Image.open(tmp_path / "input" / "sample_two_objects.png").convert("RGB"),
                                        dtype=np.float32) / 255)
    reading = judge(edit)
    circle, square = S.SAMPLE.objects
    print(f"the main job's edit: {reading.content()}; {S.psnr(edit, image):.1f} dB from the image")
    assert reading.background == "green" and reading.find("yellow", "circle") is not None
    assert reading.find("blue", "square") is not None and reading.find("blue", "square").matches(square, pos_tol=3.0)
    assert S.psnr(edit, image) > 15
    print(f"CLI: {time.perf_counter() - started:.1f}s")

    bad = subprocess.run([sys.executable, "-m", "workshop.run_workflow", str(MAIN_WORKFLOW), "--image", "missing.png"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert bad.returncode == 1 and "error: image not found: missing.png" in bad.stderr
    both = subprocess.run([sys.executable, "-m", "workshop.run_workflow", str(MAIN_WORKFLOW), "--builtin", "toy",
                           "--ckpt", "x.safetensors"], capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


# ------------------------------------------------------------------ the converter on real editor files

def test_converter_on_the_hosts_templates(host, runner):
    """Workflows saved by the editor (the templates that ship with the host) convert, and every
    widget value lands on an input of its type (a misaligned widgets_values would not)."""
    templates = pytest.importorskip("comfyui_workflow_templates")
    from workshop.headless.canvas import CanvasError, input_specs

    folder = Path(templates.__file__).parent / "templates"
    lookup = _lookup(host, runner)
    checks = {"INT": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "FLOAT": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "BOOLEAN": lambda v: isinstance(v, bool), "STRING": lambda v: isinstance(v, str)}
    converted, problems = 0, []
    for path in sorted(folder.glob("*.json")):
        workflow = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(workflow, dict) or "nodes" not in workflow:
            continue
        try:
            prompt = runner.canvas_to_api(workflow, lookup)
        except CanvasError as e:
            if "unknown node type" in str(e) or "is missing: nothing is connected" in str(e):
                # API nodes, models this host lacks; a node whose source is bypassed and that feeds only bypassed
                # nodes (the frontend sends it unfed, the server never validates it; the converter refuses it)
                continue
            problems.append(f"{path.name}: {e}")
            continue
        converted += 1
        for key, node in prompt.items():
            specs = {s.name: s for s in input_specs(lookup(node["class_type"]))}
            for name, value in node["inputs"].items():
                spec = specs.get(name)
                if spec is not None and spec.is_widget and not isinstance(value, list) and spec.type in checks \
                        and not checks[spec.type](value):
                    problems.append(f"{path.name}: node {key} {node['class_type']}.{name} = {value!r} is not {spec.type}")
    if converted == 0:
        pytest.skip(f"no template in {folder} uses only nodes this host has")
    assert not problems, "\n".join(problems[:20])
    print(f"{converted} templates converted")


def test_the_pack_supplies_its_bundled_inputs_to_the_server(host, tmp_path):
    """On a real server the pack copies its bundled sample image(s) and inversion into the input
    folder when it loads (the example workflows name them), never over a user's file."""
    from invertedit.hostkit import bundled_inputs

    names = [p.name for p in bundled_inputs.bundled_inputs()]
    assert {"sample.png", "sample_inversion.safetensors"} <= set(names)
    (tmp_path / "sample.png").write_bytes(b"the user's own")
    copied = bundled_inputs.supply_bundled_inputs(tmp_path)
    assert sorted(copied) == sorted(n for n in names if n != "sample.png")
    assert (tmp_path / "sample.png").read_bytes() == b"the user's own"
    assert bundled_inputs.supply_bundled_inputs(tmp_path) == []
    assert (host.input_dir / "sample_inversion.safetensors").is_file()   # supplied when the host loaded the pack


@pytest.mark.parametrize("name", ["SD1.5 - Prompt-to-Prompt edit", "Flux - FlowEdit"])
def test_a_checkpoint_template_keeps_the_pictures_shape(name, host, runner, tmp_path):
    """Issue 79: your picture is not cropped to a square: a picture 1.37 times as wide as high comes out of the
    template (run on the built-in model, at the family's number of pixels) with that shape, to the VAE's 8 px."""
    from PIL import Image

    from workshop.make_workflows import builtin_for, toy_overrides

    builtin = builtin_for(name)
    with Image.open(runner.BUILTIN_SWAPS[builtin].image) as im:
        w, h = im.size
        im.convert("RGB").resize((round(w * 1.37), h)).save(tmp_path / "wide.png")
    workflow = runner.load_workflow(WORKFLOWS / f"{name}.json")
    prompt = runner.prepare_prompt(workflow, builtin=builtin, image=tmp_path / "wide.png",
                                   overrides=toy_overrides(name, quick=True), host=host)
    outputs = runner.execute(prompt, host=host)
    (saved,) = [p for p in runner.pictures(prompt, outputs) if p.class_type == "SaveImage"]
    with Image.open(saved.path) as im:
        width, height = im.size
    side = runner.BUILTIN_SWAPS[builtin].size
    print(f"{name}: {round(w * 1.37)} x {h} in, {width} x {height} out (about {side * side} pixels)")
    assert abs(width / height - 1.37) < 0.05 and abs(width * height / side ** 2 - 1) < 0.1

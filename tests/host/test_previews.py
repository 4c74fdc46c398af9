"""Previews during the long optimisations (issue 79): with the host's previews on (``--preview-method``),
Null-Text Optimize, Imagic's two stages, DreamBooth (LoRA and fine-tune), Textual Inversion and Custom
Diffusion report their steps to the host's progress bar with a preview picture of the latent's size, as
the host's samplers do (``hostkit/progress.py``); with previews off (the host's default) no picture is made
and the host's previewer never runs; pictures are made at most every ``PREVIEW_EVERY_S`` seconds (the first
and last step always); Cancel still stops a run at the next step."""
from __future__ import annotations

import pytest
import torch

import test_bad_inputs as tb
from test_bad_inputs import kit  # noqa: F401  (the bad-input table's tiny inputs, a fixture)

STEPS = 3

# (name, run(kit), the latent's (width, height), the steps the progress bar counts)
RUNS = {
    "Null-Text Optimize": (lambda k: tb.null_text(k, inner_steps=2), (8, 8), tb.STEPS),
    "Imagic Optimize Embedding": (lambda k: tb.imagic_embedding(k, steps=STEPS), (8, 8), STEPS),
    "Imagic Fine-Tune": (lambda k: tb.imagic_fine_tune(k, steps=STEPS), (8, 8), STEPS),
    "DreamBooth LoRA": (lambda k: tb.dreambooth(k, steps=STEPS), (8, 8), STEPS),
    "DreamBooth Fine-Tune": (lambda k: tb.dreambooth_full(k, steps=STEPS), (8, 8), STEPS),
    "Textual Inversion": (lambda k: tb.textual_inversion(k, steps=STEPS, name="preview-ti"), (8, 8), STEPS),
    "Custom Diffusion": (lambda k: tb.custom_diffusion(k, steps=STEPS, name="preview-cd"), (16, 16), STEPS),
}


@pytest.fixture
def events(host, monkeypatch):
    """The host's preview method set by ``events.method("latent2rgb" | "none")`` (restored after), and what
    the host's progress bar reports: ``events.seen`` holds (value, total, preview) per update;
    ``events.decoded`` counts the host's previewer's pictures."""
    import comfy.cli_args
    import comfy.utils
    import latent_preview
    from comfy.cli_args import LatentPreviewMethod

    class Events:
        seen: list = []
        decoded = 0

        @staticmethod
        def method(name: str) -> None:
            monkeypatch.setattr(comfy.cli_args.args, "preview_method", LatentPreviewMethod(name))

    def hook(value, total, preview, node_id=None):
        Events.seen.append((value, total, preview))

    decode = latent_preview.Latent2RGBPreviewer.decode_latent_to_preview

    def counted(self, x0):
        Events.decoded += 1
        return decode(self, x0)

    Events.seen = []
    monkeypatch.setattr(latent_preview.Latent2RGBPreviewer, "decode_latent_to_preview", counted)
    before = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        yield Events
    finally:
        comfy.utils.set_progress_bar_global_hook(before)


@pytest.mark.parametrize("run", list(RUNS))
def test_each_optimisation_previews_its_steps_when_the_host_s_previews_are_on(run, kit, events, host,  # noqa: F811
                                                                              monkeypatch):
    from PIL import Image

    monkeypatch.setattr(host.pack.hostkit.progress, "PREVIEW_EVERY_S", 0.0)   # a picture at every step
    events.method("latent2rgb")
    go, size, steps = RUNS[run]
    go(kit)
    assert [(v, t) for v, t, _ in events.seen] == [(i, steps) for i in range(1, steps + 1)]
    pictures = [p for _, _, p in events.seen]
    assert all(p is not None for p in pictures), f"{run}: steps without a preview: {pictures}"
    for kind, image, largest in pictures:
        assert kind == "JPEG" and isinstance(image, Image.Image) and isinstance(largest, int)
        assert image.size == size, f"{run}: a preview of {image.size}, the latent is {size}"
    assert events.decoded == steps
    assert len({p[1].tobytes() for p in pictures}) > 1, \
        f"{run}: every step's preview is the same picture (not the step's prediction)"


@pytest.mark.parametrize("run", list(RUNS))
def test_with_the_host_s_previews_off_no_picture_is_made(run, kit, events, host, monkeypatch):  # noqa: F811
    import latent_preview

    made = []
    get = latent_preview.get_previewer
    monkeypatch.setattr(latent_preview, "get_previewer", lambda *a, **kw: made.append(get(*a, **kw)) or made[-1])
    monkeypatch.setattr(host.pack.hostkit.progress, "PREVIEW_EVERY_S", 0.0)
    events.method("none")
    go, _, steps = RUNS[run]
    go(kit)
    assert [(v, t, p) for v, t, p in events.seen] == [(i, steps, None) for i in range(1, steps + 1)]
    assert events.decoded == 0
    assert all(m is None for m in made) and len(made) <= 1, made   # asked once a run at most, and none made


def test_pictures_are_throttled_the_first_and_last_step_always(kit, events, host, monkeypatch):  # noqa: F811
    monkeypatch.setattr(host.pack.hostkit.progress, "PREVIEW_EVERY_S", 1e9)
    events.method("latent2rgb")
    tb.imagic_embedding(kit, steps=5)
    assert [p is not None for _, _, p in events.seen] == [True, False, False, False, True]
    assert events.decoded == 2


@pytest.mark.parametrize("run", ["Null-Text Optimize", "Imagic Optimize Embedding", "Custom Diffusion"])
def test_cancel_stops_a_previewing_run_at_the_next_step(run, kit, events, host, monkeypatch):  # noqa: F811
    """Cancel pressed at the first step's report (its preview made): the run stops before a second report."""
    import comfy.model_management

    monkeypatch.setattr(host.pack.hostkit.progress, "PREVIEW_EVERY_S", 0.0)
    events.method("latent2rgb")
    import comfy.utils

    def hook(value, total, preview, node_id=None):
        events.seen.append((value, total, preview))
        comfy.model_management.interrupt_current_processing(True)

    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            RUNS[run][0](kit)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert len(events.seen) == 1 and events.seen[0][2] is not None, events.seen


def test_a_preview_shows_the_prediction_not_the_training_latent(kit, events, host, monkeypatch):  # noqa: F811
    """Imagic's preview is the model's denoised prediction of the noised image, not the clean latent it trains on."""
    import latent_preview

    monkeypatch.setattr(host.pack.hostkit.progress, "PREVIEW_EVERY_S", 0.0)
    events.method("latent2rgb")
    tb.imagic_embedding(kit, steps=1)
    model = kit.model
    clean = model.model.process_latent_in(kit.src["samples"])
    previewer = latent_preview.get_previewer(torch.device("cpu"), model.model.latent_format)
    of_clean = previewer.decode_latent_to_preview_image("JPEG", clean)[1]
    assert events.seen[0][2][1].tobytes() != of_clean.tobytes()

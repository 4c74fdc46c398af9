"""Long inversion loops honour the host's interrupt within one UNet evaluation (issue 23): an
interrupt raised during the first UNet pass of Fixed-Point Invert (several passes a step) or
Pix2Pix-Zero Invert stops the node before a second pass, and leaves the input model as it was; and every
training node's set-up stops at Cancel within one model evaluation (issue 78)."""
from __future__ import annotations

import pytest
import torch

import test_bad_inputs as tb
from test_bad_inputs import kit  # noqa: F401  (the bad-input table's tiny inputs, a fixture)
from workshop.headless.calls import call, encode


def _interrupting(model, call_number: int = 1):
    """A clone whose ``call_number``-th UNet call raises the host's interrupt flag (as the Cancel
    button does)."""
    import comfy.model_management
    import comfy.patcher_extension as pe

    m, calls = model.clone(), []

    def interrupts(executor, *args, **kwargs):
        calls.append(1)
        if len(calls) == call_number:
            comfy.model_management.interrupt_current_processing(True)
        return executor(*args, **kwargs)

    m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "test_interrupt", interrupts)
    return m, calls


@pytest.mark.parametrize("node", ["InvertEditFixedPointInvert", "InvertEditPix2PixZeroInvert"])
def test_an_interrupt_stops_the_loop_within_one_unet_evaluation(host, tiny, node):
    import comfy.model_management

    model, clip, _ = tiny("sd1")
    latent = {"samples": torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(3)) * 5.0}
    common = dict(latent=latent, positive=encode(host, clip, "a red circle"), steps=6, scheduler="ddim_uniform",
                  start_at_step=0, cfg=1.0)
    extra = (dict(iterations=9, average=1, low_noise_rule=False, anderson=0) if node == "InvertEditFixedPointInvert" else
             dict(lambda_auto_corr=20.0, lambda_kl=20.0, reg_steps=5, auto_corr_rolls=5, seed=0))
    m, calls = _interrupting(model)
    state = repr(model.model_options), repr(model.wrappers)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            call(host, node, model=m, **common, **extra)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert len(calls) == 1, f"{node} ran {len(calls)} UNet evaluations after the interrupt"
    assert (repr(model.model_options), repr(model.wrappers)) == state


# Every training node, at a step count whose set-up alone (Custom Diffusion plans and encodes every step's pictures)
# would take minutes: ``(name, run(kit, steps))`` with test_bad_inputs' helpers and tiny inputs.
TRAINERS = {
    "DreamBooth LoRA": lambda k, steps: tb.dreambooth(k, steps=steps),
    "DreamBooth Fine-Tune": lambda k, steps: tb.dreambooth_full(k, steps=steps),
    "Custom Diffusion": lambda k, steps: tb.custom_diffusion(k, steps=steps, name="interrupt-cd"),
    "Textual Inversion": lambda k, steps: tb.textual_inversion(k, steps=steps, name="interrupt-ti"),
    "Imagic Optimize Embedding": lambda k, steps: tb.imagic_embedding(k, steps=steps),
    "Imagic Fine-Tune": lambda k, steps: tb.imagic_fine_tune(k, steps=steps),
}


@pytest.fixture
def counted_models(monkeypatch):
    """Counts of the UNet and VAE Encode calls made while a test runs (the host's own classes, wrapped)."""
    import comfy.model_base
    import comfy.sd

    counts = {"unet": 0, "vae": 0}
    apply_model, encode_ = comfy.model_base.BaseModel._apply_model, comfy.sd.VAE.encode

    def unet(self, *args, **kwargs):
        counts["unet"] += 1
        return apply_model(self, *args, **kwargs)

    def vae(self, *args, **kwargs):
        counts["vae"] += 1
        return encode_(self, *args, **kwargs)

    monkeypatch.setattr(comfy.model_base.BaseModel, "_apply_model", unet)
    monkeypatch.setattr(comfy.sd.VAE, "encode", vae)
    return counts


@pytest.mark.parametrize("trainer", list(TRAINERS))
def test_cancel_during_a_training_node_s_set_up(trainer, kit, counted_models):  # noqa: F811 (the fixture)
    """Cancel pressed while a training node sets up (the host's interrupt flag raised before it starts, at 20,000
    steps): the node stops at its first check, after at most one UNet or VAE Encode call, and leaves nothing
    running. Custom Diffusion's set-up planned and encoded every step's pictures before its first check (issue 78:
    about 2 minutes at 20,000 steps, the interrupt ignored)."""
    import comfy.model_management

    comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            TRAINERS[trainer](kit, 20_000)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert counted_models["unet"] + counted_models["vae"] <= 1, counted_models

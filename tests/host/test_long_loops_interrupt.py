"""Long inversion loops honour the host's interrupt within one UNet evaluation (issue 23): an
interrupt raised during the first UNet pass of Fixed-Point Invert (several passes a step) or
Pix2Pix-Zero Invert stops the node before a second pass, and leaves the input model as it was."""
from __future__ import annotations

import pytest
import torch

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

"""DDIM Invert through the host: reconstruction with the stock samplers, partial inversion,
Apply Inversion's refusals, Save/Load, and the UNet call count."""
from __future__ import annotations

import os

import pytest
import torch

from workshop.headless.calls import call, encode, reconstruct, rel_err

FAMILIES = ["sd1", "sd2-v", "sdxl"]
PROMPT = "a red circle on a blue background"


def source_latent(seed=0, size=8):
    g = torch.Generator().manual_seed(seed)
    return {"samples": torch.randn(1, 4, size, size, generator=g) * 5.0}   # about SD's unscaled latent spread


def invert(host, model, latent, positive, **kw):
    args = dict(steps=50, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    args.update(kw)
    return call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=positive, **args)


@pytest.mark.parametrize("family", FAMILIES)
def test_stock_sampler_reconstructs_and_error_falls_with_steps(host, tiny, family):
    model, clip, _ = tiny(family)
    pos = encode(host, clip, PROMPT)
    src = source_latent()
    errs = {}
    for steps in (10, 25, 50):
        inv, lat, _ = invert(host, model, src, pos, steps=steps)
        assert inv.trajectory.shape[0] == steps + 1
        out = reconstruct(host, model, lat, pos, steps=steps)
        errs[steps] = rel_err(out, src["samples"])
    assert errs[10] > errs[25] > errs[50], errs
    assert errs[50] < 0.6 * errs[10] and errs[50] < 0.15, errs


@pytest.mark.parametrize("family", FAMILIES)
def test_custom_sampler_path_equals_ksampler_advanced(host, tiny, family):
    model, clip, _ = tiny(family)
    pos = encode(host, clip, PROMPT)
    inv, lat, sigmas = invert(host, model, source_latent(), pos, steps=20)
    a = reconstruct(host, call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0], lat, pos, steps=20)
    b = reconstruct(host, model, lat, pos, steps=20)
    guider = call(host, "CFGGuider", model=model, positive=pos, negative=pos, cfg=1.0)[0]
    sampler = call(host, "KSamplerSelect", sampler_name="ddim")[0]
    noise = call(host, "DisableNoise")[0]
    c = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas, latent_image=lat)[1]["samples"]
    d = reconstruct(host, model, lat, pos, steps=20, sampler_name="euler")   # the host's ddim is its euler step
    assert torch.equal(a, b) and torch.equal(b, d)
    assert torch.allclose(b, c, rtol=0, atol=1e-5)


def test_partial_inversion_reconstructs_from_its_start_step(host, tiny):
    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    src = source_latent()
    inv, lat, sigmas = invert(host, model, src, pos, steps=25, start_at_step=10)
    assert len(sigmas) == 25 - 10 + 1 and inv.trajectory.shape[0] == 16
    out = reconstruct(host, model, lat, pos, steps=25, start_at_step=10)
    full_inv, full_lat, _ = invert(host, model, src, pos, steps=25)
    full = reconstruct(host, model, full_lat, pos, steps=25)
    assert rel_err(out, src["samples"]) < 0.1
    assert rel_err(out, src["samples"]) <= rel_err(full, src["samples"])
    # the partial inversion is the full inversion's trajectory cut at the same step
    assert torch.allclose(inv.trajectory, full_inv.trajectory[10:], rtol=0, atol=1e-5)


def test_guidance_during_inversion_needs_negative_and_changes_result(host, tiny):
    model, clip, _ = tiny("sd1")
    pos, neg = encode(host, clip, PROMPT), encode(host, clip, "")
    with pytest.raises(ValueError, match="DDIM Invert: cfg is 3, which needs a 'negative'"):
        invert(host, model, source_latent(), pos, cfg=3.0, steps=5)
    a = invert(host, model, source_latent(), pos, steps=5)[1]["samples"]
    b = call(host, "InvertEditDDIMInvert", model=model, latent=source_latent(), positive=pos, steps=5,
             scheduler="ddim_uniform", start_at_step=0, cfg=3.0, negative=neg)[1]["samples"]
    assert not torch.allclose(a, b)


def test_bad_inputs_are_refused_by_name(host, tiny):
    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    with pytest.raises(ValueError, match=r"DDIM Invert: start_at_step \(10\) must be smaller than steps \(10\)"):
        invert(host, model, source_latent(), pos, steps=10, start_at_step=10)
    flow = call(host, "ModelSamplingSD3", model=model, shift=3.0)[0]
    with pytest.raises(ValueError, match="DDIM Invert: input 'model' .* For Flux.1, SD3 and Qwen-Image use the pack's flow nodes"):
        invert(host, flow, source_latent(), pos, steps=5)


class TestApplyInversion:
    @pytest.fixture(scope="class")
    def setup(self, host, tiny):
        model, clip, _ = tiny("sd1")
        pos = encode(host, clip, PROMPT)
        inv, lat, _ = invert(host, model, source_latent(), pos, steps=20, start_at_step=2)
        guarded = call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0]
        return model, pos, inv, lat, guarded

    def test_input_model_is_unchanged(self, setup):
        model, _, _, _, guarded = setup
        assert guarded is not model
        assert "invertedit_inversion" not in str(model.wrappers)

    def test_matching_run_passes(self, host, setup):
        model, pos, inv, lat, guarded = setup
        out = reconstruct(host, guarded, lat, pos, steps=20, start_at_step=2)
        assert torch.equal(out, reconstruct(host, model, lat, pos, steps=20, start_at_step=2))

    @pytest.mark.parametrize("change, message", [
        (dict(steps=25), r"steps=20, scheduler=ddim_uniform and start_at_step=2"),
        (dict(scheduler="karras"), r"steps=20, scheduler=ddim_uniform and start_at_step=2"),
        (dict(start_at_step=0), r"start_at_step=2"),
        (dict(add_noise="enable"), r"Set add_noise to 'disable'"),
        (dict(sampler_name="euler_ancestral"), r"sampler 'euler_ancestral' adds fresh noise"),
        (dict(sampler_name="dpmpp_2m_sde"), r"adds fresh noise"),
    ])
    def test_mismatched_runs_are_refused(self, host, setup, change, message):
        _, pos, _, lat, guarded = setup
        kw = dict(steps=20, start_at_step=2)
        kw.update(change)
        with pytest.raises(ValueError, match="Apply Inversion: .*" + message):
            reconstruct(host, guarded, lat, pos, **kw)

    def test_other_latent_size_is_refused(self, host, setup):
        _, pos, _, _, guarded = setup
        with pytest.raises(ValueError, match=r"Apply Inversion: the latent being sampled is \(4, 16, 16\)"):
            reconstruct(host, guarded, source_latent(size=16), pos, steps=20, start_at_step=2)

    def test_other_model_is_refused(self, host, tiny, setup):
        _, pos, inv, lat, _ = setup
        other = tiny("sd1", seed=1)[0]
        with pytest.raises(ValueError, match=r"Apply Inversion: input 'model' is not the model the inversion was made "
                                             r"with \(weights differ: "):
            call(host, "InvertEditApplyInversion", model=other, inversion=inv)


def test_save_and_load_reproduce_bit_for_bit(host, tiny):
    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    inv, lat, sigmas = invert(host, model, source_latent(), pos, steps=10, start_at_step=1)
    call(host, "InvertEditSaveInversion", inversion=inv, filename_prefix="inversions/test_roundtrip")
    listed = host.nodes.NODE_CLASS_MAPPINGS["InvertEditLoadInversion"].define_schema().inputs[0].options
    name = [n for n in listed if "test_roundtrip" in n][-1]
    assert name.endswith(" [output]")
    inv2, lat2, sigmas2 = call(host, "InvertEditLoadInversion", inversion=name)
    assert torch.equal(lat2["samples"], lat["samples"]) and torch.equal(sigmas2, sigmas)
    assert torch.equal(inv2.trajectory, inv.trajectory) and inv2.fingerprint == inv.fingerprint
    g1 = call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0]
    g2 = call(host, "InvertEditApplyInversion", model=model, inversion=inv2)[0]
    assert torch.equal(reconstruct(host, g1, lat, pos, steps=10, start_at_step=1),
                       reconstruct(host, g2, lat2, pos, steps=10, start_at_step=1))


def test_files_outside_the_folders_are_refused(host, tiny):
    model, clip, _ = tiny("sd1")
    inv = invert(host, model, source_latent(), encode(host, clip, PROMPT), steps=2)[0]
    with pytest.raises(ValueError, match="Save Inversion: filename_prefix '../../escape' points outside the output folder"):
        call(host, "InvertEditSaveInversion", inversion=inv, filename_prefix="../../escape")
    load = host.nodes.NODE_CLASS_MAPPINGS["InvertEditLoadInversion"]
    assert "outside the input and output folders" in load.validate_inputs(inversion="../../etc/passwd.safetensors")
    assert "only .safetensors" in load.validate_inputs(inversion="x.ckpt")
    bogus = os.path.join(host.input_dir, "not_an_inversion.safetensors")
    import safetensors.torch
    safetensors.torch.save_file({"a": torch.zeros(1)}, bogus)
    with pytest.raises(ValueError, match="'not_an_inversion.safetensors' is not a valid InvertEdit inversion file"):
        call(host, "InvertEditLoadInversion", inversion="not_an_inversion.safetensors")


def test_inversion_costs_the_same_unet_calls_as_sampling(host, tiny):
    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    calls = []
    counted = model.clone()
    counted.set_model_unet_function_wrapper(lambda apply, args: (calls.append(args["input"].shape[0]), apply(args["input"], args["timestep"], **args["c"]))[1])
    _, lat, _ = invert(host, counted, source_latent(), pos, steps=20)
    n_invert = len(calls)
    calls.clear()
    reconstruct(host, counted, lat, pos, steps=20)
    assert n_invert == len(calls) == 20


def test_progress_is_reported_per_step_and_interrupt_stops_the_loop(host, tiny):
    import comfy.model_management
    import comfy.utils

    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    seen = []
    previous = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        invert(host, model, source_latent(), pos, steps=10)
        assert seen == [(i, 10) for i in range(1, 11)]
        seen.clear()
        comfy.model_management.interrupt_current_processing(True)
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            invert(host, model, source_latent(), pos, steps=10)
        assert len(seen) == 0          # stopped at the first step, before reporting it
    finally:
        comfy.model_management.interrupt_current_processing(False)
        comfy.utils.set_progress_bar_global_hook(previous)


def test_lora_patched_model_inverts_and_base_fingerprint_survives_in_place_patching(host, tiny, caplog):
    import comfy.model_management

    model, clip, _ = tiny("sd1")
    pos = encode(host, clip, PROMPT)
    fingerprint = host.pack.hostkit.fingerprint.model_fingerprint
    before = fingerprint(model)
    lora = model.clone()   # a weight patch on every UNet weight, as a LoRA stack would be
    lora.add_patches({k: (torch.full_like(v, 0.01),) for k, v in model.model_state_dict().items()
                      if k.startswith("diffusion_model.") and v.ndim >= 2}, 1.0)
    try:
        inv, lat, _ = invert(host, lora, source_latent(), pos, steps=20)
        assert model.model.current_weight_patches_uuid is not None      # the patches sit in the weights now
        after = fingerprint(model)
        assert after == before                                           # read from the patcher's backup
        assert fingerprint(lora)["weights"] == before["weights"] and fingerprint(lora)["patches"] != "none"
        out = reconstruct(host, call(host, "InvertEditApplyInversion", model=lora, inversion=inv)[0], lat, pos, steps=20)
        assert rel_err(out, source_latent()["samples"]) < 0.15
        # the same checkpoint without the LoRA: allowed (a style LoRA may be dropped on purpose), with a warning
        with caplog.at_level("WARNING"):
            reconstruct(host, call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0], lat, pos, steps=20)
        assert "weight patches (LoRA) differ" in caplog.text
    finally:
        comfy.model_management.load_models_gpu([model])   # restore the shared tiny model's weights

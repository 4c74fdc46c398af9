"""FlowEdit (``InvertEditFlowEdit``) on the tiny random Flux.1 and SD3 models: what it costs (one
batched model call per acting step, none for skipped ones), exact properties (the same prompt
twice gives the source back), and parity with the authors' code
(``fallenshock/FlowEdit``'s ``FlowEditFLUX`` / ``FlowEditSD3``, fetched at test time and run
unchanged by ``tests/reference/flowedit_runner.py`` on the same weights, converted to diffusers).
Its refusals are cases of the bad-input table (``tests/host/test_bad_inputs.py``, ``flowedit-*``)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from workshop.benchmarks.dispatch_count import counted_model
from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "flowedit_runner.py"
TOLERANCE = 5e-4   # relative: max |ours - reference| / max |reference|


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def raw_latent(seed: int = 0, size: int = 8) -> torch.Tensor:
    return torch.randn(1, 16, size, size, generator=torch.Generator().manual_seed(seed))


def flow_edit(host, model, clip, family, source=SOURCE, target=TARGET, **change):
    flux = family.startswith("flux")
    kw = dict(source_guidance=1.5 if flux else 3.5, target_guidance=5.5 if flux else 13.5, n_max=4, n_min=0, n_avg=1)
    kw.update(change)
    if not flux and "negative" not in kw:
        kw["negative"] = encode(host, clip, "")
    return call(host, "InvertEditFlowEdit", model=model, source=encode(host, clip, source),
                target=encode(host, clip, target), **kw)[0]


def run(host, model, guider, latent, steps=5, seed=7, sigmas=None, sampler="euler"):
    if sigmas is None:
        sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    noise = call(host, "RandomNoise", noise_seed=seed)[0]
    sampler = call(host, "KSamplerSelect", sampler_name=sampler)[0]
    return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


@pytest.mark.parametrize("family", ["flux-dev", "flux-schnell", "sd3", "qwen-image"])
def test_one_batched_call_per_acting_step_and_the_source_back_from_the_same_prompt_twice(host, tiny, family):
    model, clip, _ = tiny(family)
    m, rows = counted_model(model, "APPLY_MODEL")
    latent = raw_latent()
    out = run(host, m, flow_edit(host, m, clip, family, n_max=3, n_avg=2), latent, steps=5)
    per_row = 2 * 2 * (1 if family.startswith("flux") else 2)   # source + target, 2 noises, SD3's CFG doubles
    assert rows == [per_row] * 3, rows
    assert torch.isfinite(out).all() and not torch.allclose(out, latent, atol=1e-3)
    same = flow_edit(host, model, clip, family, target=SOURCE, target_guidance=1.5 if family.startswith("flux") else 3.5)
    same = run(host, model, same, latent, steps=5)
    assert torch.allclose(same, latent, atol=1e-5), (same - latent).abs().max()


def test_n_min_samples_the_target_alone_in_its_last_steps(host, tiny):
    model, clip, _ = tiny("flux-dev")
    m, rows = counted_model(model, "APPLY_MODEL")
    out = run(host, m, flow_edit(host, m, clip, "flux-dev", n_max=4, n_min=2), raw_latent(), steps=5)
    assert rows == [2, 2, 1, 1], rows
    assert torch.isfinite(out).all()


# ------------------------------------------------------------------ parity with the authors' code

@pytest.fixture(scope="module")
def reference(tmp_path_factory, skip_loudly, reference_copy):
    tmp = tmp_path_factory.mktemp("flowedit")
    checkout = reference_copy(tmp / "code", "FLOWEDIT", "fallenshock/FlowEdit", ("FlowEdit_utils.py",),
                              "FlowEdit_utils.py")
    if checkout is None:
        skip_loudly("FLOWEDIT PARITY SKIPPED: the FlowEdit code was not found (set FLOWEDIT_PATH to a checkout of "
                    "github.com/fallenshock/FlowEdit, or fetch it)")

    def run_reference(job: dict) -> dict:
        import os
        import subprocess

        path = tmp / f"job_{job['family']}.pt"
        torch.save(job, path)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(RUNNER.parent)]))
        done = subprocess.run([sys.executable, str(RUNNER), str(path), str(tmp / "out.pt")], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
        return torch.load(tmp / "out.pt")
    return run_reference


@pytest.mark.parametrize("family,settings", [
    ("flux-dev", dict(T_steps=8, n_avg=2, src_guidance_scale=1.5, tar_guidance_scale=5.5, n_min=0, n_max=6)),
    ("sd3", dict(T_steps=8, n_avg=1, src_guidance_scale=3.5, tar_guidance_scale=13.5, n_min=0, n_max=6)),
])
def test_flowedit_matches_the_authors_code(host, tiny, reference, family, settings):
    sys.path.insert(0, str(RUNNER.parent))
    from flow_diffusers import diffusers_transformer

    model, clip, _ = tiny(family)
    flux = family.startswith("flux")
    prompts = [SOURCE, TARGET] + ([] if flux else [""])
    conds = {p: encode(host, clip, p) for p in prompts}
    embeddings = {p: (c[0][0].float(), c[0][1]["pooled_output"].float()) for p, c in conds.items()}
    raw = raw_latent(seed=3, size=8)
    x_src = model.model.process_latent_in(raw)
    job = {"family": "flux" if flux else "sd3", "transformer": diffusers_transformer(model), "x_src": x_src,
           "embeddings": embeddings, "source": SOURCE, "target": TARGET, "negative": "", "settings": settings,
           "seed": 11}
    ref = reference(job)
    kw = dict(source_guidance=settings["src_guidance_scale"], target_guidance=settings["tar_guidance_scale"],
              n_max=settings["n_max"], n_min=settings["n_min"], n_avg=settings["n_avg"])
    if not flux:
        kw["negative"] = conds[""]
    guider = call(host, "InvertEditFlowEdit", model=model, source=conds[SOURCE], target=conds[TARGET], **kw)[0]
    ours = run(host, model, guider, raw, seed=11, sigmas=ref["sigmas"].float())
    ours = model.model.process_latent_in(ours)
    theirs = ref["latent"]
    moved = (theirs - x_src).abs().max() / x_src.abs().max()
    err = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    print(f"\nFlowEdit {family} vs fallenshock/FlowEdit, {settings}: relative error {err:.2e} "
          f"(the edit moved the latent by {moved:.2f} of its range)")
    assert moved > 1e-2
    assert err <= TOLERANCE


def test_the_workflows_schedulers_give_the_authors_schedules(host, tiny):
    """What the FlowEdit workflows' BasicScheduler gives against the schedules of the authors' pipelines
    (diffusers' FlowMatchEulerDiscreteScheduler as FluxPipeline and StableDiffusion3Pipeline set it)."""
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler

    from workshop.make_workflows import SCHEDULES

    sd3 = tiny("sd3")[0]
    ours = call(host, "BasicScheduler", model=sd3, scheduler=SCHEDULES["SD3"], steps=50, denoise=1.0)[0]
    theirs = FlowMatchEulerDiscreteScheduler(shift=3.0)
    theirs.set_timesteps(50)
    assert torch.allclose(ours, theirs.sigmas.to(ours), atol=1e-6), (ours - theirs.sigmas).abs().max()

    flux = call(host, "ModelSamplingFlux", model=tiny("flux-dev")[0], max_shift=1.15, base_shift=0.5, width=1024,
                height=1024)[0]
    theirs = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                             base_image_seq_len=256, max_image_seq_len=4096)
    for steps, tolerance in ((25, 1e-6), (28, 2e-3)):
        ours = call(host, "BasicScheduler", model=flux, scheduler=SCHEDULES["Flux"], steps=steps, denoise=1.0)[0]
        theirs.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=1.15)   # 1024 px: 4096 tokens, mu = max_shift
        err = (ours - theirs.sigmas.to(ours)).abs().max().item()
        print(f"\nFlux at {steps} steps: host 'simple' vs the authors' schedule: {err:.1e}")
        assert err <= tolerance

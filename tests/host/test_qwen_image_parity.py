"""Parity of the pack's flow editing on Qwen-Image with the authors' code, run unchanged in a subprocess by
adapters (``tests/reference/qwen_image_runner.py``) on diffusers' ``QwenImageTransformer2DModel`` carrying
the tiny Qwen-Image's weights (``tests/reference/flow_diffusers.py``; equal to the host's model to 2e-7,
``tests/host/test_tiny_flow_models.py``):

- FlowEdit (``InvertEditFlowEdit`` through the host's SamplerCustomAdvanced, as ``test_flow_edit.py``
  runs it on Flux and SD3) against ``fallenshock/FlowEdit``'s ``FlowEditSD3``: Qwen-Image is guided as
  SD3 is (classifier-free guidance with a negative, a scale per prompt), with an empty negative shorter
  than the prompts (padded and masked in the reference, as diffusers' Qwen-Image pipeline batches
  prompts; separate calls on the host) and with a negative of the prompts' length (one batched call);
- Euler, RF-Solver and FireFlow (``InvertEditFlowInvert`` + ``InvertEditFlowSampler``) against
  ``HolmesShuan/FireFlow-...``'s ``denoise`` / ``denoise_rf_solver`` / ``denoise_fireflow`` and
  ``wangjiangshan0725/RF-Solver-Edit``'s ``denoise``, as ``test_flow_invert_parity.py`` runs them on
  Flux: invert with the source prompt, sample back with the target.

The authors' loops read nothing of the model but its velocity, so the adapters change only how the model is
called (Qwen-Image's packing, timestep, rope and text mask, no pooled vector, no guidance embedding). Each
test compares the result in the model's space and prints its error; the reference code is fetched at test
time (never committed); where it is absent the test is skipped with a loud line."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"   # 12 tokens each
SAME_LENGTH_NEGATIVE = "a blurry and ugly picture of it"   # 12 tokens too (checked below)
REFERENCE = Path(__file__).resolve().parents[1] / "reference"
RUNNER = REFERENCE / "qwen_image_runner.py"
TOLERANCE = 5e-4   # relative: max |ours - reference| / max |reference|, as the Flux and SD3 parity tests


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def context(cond: list) -> torch.Tensor:
    return cond[0][0].float().clone()


def raw_latent(seed: int, size: int) -> torch.Tensor:
    """A latent as VAE Encode gives Qwen-Image's: (1, 16, 1, H, W), the Wan VAE's frame axis."""
    return torch.randn(1, 16, 1, size, size, generator=torch.Generator().manual_seed(seed))


def rel(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours.float() - theirs.float()).abs().max() / theirs.float().abs().max()).item()


def run_reference(paths: list[Path], tmp: Path, name: str, job: dict) -> dict:
    job_path, out_path = tmp / f"job_{name}.pt", tmp / f"out_{name}.pt"
    torch.save(job, job_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(p) for p in paths] + [str(REFERENCE)]))
    done = subprocess.run([sys.executable, str(RUNNER), str(job_path), str(out_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
    return torch.load(out_path, weights_only=False)


@pytest.fixture(scope="module")
def qwen(tiny):
    return tiny("qwen-image")


@pytest.fixture(scope="module")
def transformer(host, qwen):
    sys.path.insert(0, str(REFERENCE))
    from flow_diffusers import diffusers_transformer

    return diffusers_transformer(qwen[0])


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory, reference_copy):
    """Copies of the reference code, or None each where it is absent."""
    tmp = tmp_path_factory.mktemp("qwen_image_parity")
    flowedit = reference_copy(tmp / "flowedit", "FLOWEDIT", "fallenshock/FlowEdit", ("FlowEdit_utils.py",),
                              "FlowEdit_utils.py")
    fireflow = reference_copy(tmp / "fireflow", "FIREFLOW",
                              "HolmesShuan/FireFlow-Fast-Inversion-of-Rectified-Flow-for-Image-Semantic-Editing",
                              ("src/flux",), "src/flux/sampling.py")
    rf_solver = reference_copy(tmp / "rf_solver", "RFSOLVER", "wangjiangshan0725/RF-Solver-Edit",
                               ("FLUX_Image_Edit/src/flux",), "FLUX_Image_Edit/src/flux/sampling.py")
    return {"tmp": tmp, "flowedit": flowedit,
            "fireflow": fireflow and fireflow / "src",
            "rf-solver": rf_solver and rf_solver / "FLUX_Image_Edit" / "src"}


# ------------------------------------------------------------------ FlowEdit

FLOWEDIT = dict(T_steps=8, n_avg=2, src_guidance_scale=2.0, tar_guidance_scale=7.5, n_min=0, n_max=6)


@pytest.mark.parametrize("negative", ["", SAME_LENGTH_NEGATIVE], ids=["empty-negative", "same-length-negative"])
def test_flowedit_matches_the_authors_sd3_loop_on_qwen_image(host, qwen, transformer, checkouts, skip_loudly, negative):
    if checkouts["flowedit"] is None:
        skip_loudly("QWEN-IMAGE FLOWEDIT PARITY SKIPPED: the FlowEdit code was not found (set FLOWEDIT_PATH to a "
                    "checkout of github.com/fallenshock/FlowEdit, or fetch it)")
    model, clip, _ = qwen
    conds = {p: encode(host, clip, p) for p in (SOURCE, TARGET, negative)}
    lengths = {p: c[0][0].shape[1] for p, c in conds.items()}
    assert lengths[SOURCE] == lengths[TARGET] == 12
    assert (lengths[negative] == 12) == (negative == SAME_LENGTH_NEGATIVE)   # the empty one is shorter: 5 tokens
    raw = raw_latent(seed=3, size=8)
    x_src = model.model.process_latent_in(raw)
    job = {"mode": "flowedit", "transformer": transformer, "x_src": x_src.float().clone(),
           "embeddings": {p: context(c) for p, c in conds.items()}, "source": SOURCE, "target": TARGET,
           "negative": negative, "settings": FLOWEDIT, "seed": 11, "shift": 3.0}
    ref = run_reference([checkouts["flowedit"]], checkouts["tmp"], "flowedit", job)

    s = FLOWEDIT
    guider = call(host, "InvertEditFlowEdit", model=model, source=conds[SOURCE], target=conds[TARGET],
                  negative=conds[negative], source_guidance=s["src_guidance_scale"],
                  target_guidance=s["tar_guidance_scale"], n_max=s["n_max"], n_min=s["n_min"], n_avg=s["n_avg"])[0]
    noise = call(host, "RandomNoise", noise_seed=11)[0]
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=euler, sigmas=ref["sigmas"].float(),
               latent_image={"samples": raw})[0]["samples"]
    ours = model.model.process_latent_in(out)
    theirs = ref["latent"]
    assert ours.shape == theirs.shape == raw.shape
    moved = rel(theirs, x_src)
    err = rel(ours, theirs)
    print(f"\nFlowEdit qwen-image vs fallenshock/FlowEdit's FlowEditSD3 (adapted), negative {negative!r} "
          f"({lengths[negative]} tokens, prompts 12), {FLOWEDIT}: relative error {err:.2e} (the edit moved the "
          f"latent by {moved:.2f} of its range)")
    assert moved > 1e-2
    assert err <= TOLERANCE


# ------------------------------------------------------------------ Euler, RF-Solver, FireFlow

SIZE, STEPS = 16, 8
SOLVERS = {"euler": "denoise", "rf-solver": "denoise_rf_solver", "fireflow": "denoise_fireflow"}


@pytest.fixture(scope="module")
def solver_runs(host, qwen, transformer):
    """The pack's runs (inverted latent and edited sample, model space, per solver) and the reference's job on
    the same weights, schedule, latent and prompts."""
    model, clip, _ = qwen
    raw = raw_latent(seed=5, size=SIZE)
    x_src = model.model.process_latent_in(raw)
    source, target = encode(host, clip, SOURCE), encode(host, clip, TARGET)
    ours, schedules = {}, []
    for solver in SOLVERS:
        inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw}, positive=source,
                                  solver=solver, steps=STEPS, scheduler="simple", guidance=1.0)
        guider = call(host, "BasicGuider", model=model, conditioning=target)[0]
        sampler = call(host, "InvertEditFlowSampler", solver=solver)[0]
        out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                   latent_image={"samples": raw})[0]["samples"]
        ours[solver] = {"inverted": inv.trajectory[0].float().reshape(1, 16, SIZE, SIZE).clone(),
                        "sample": model.model.process_latent_in(out).float().reshape(1, 16, SIZE, SIZE).clone()}
        schedules.append(sigmas.float().clone())
    assert all(torch.equal(s, schedules[0]) for s in schedules)
    sys.path.insert(0, str(REFERENCE))
    from flow_diffusers import pack_latents

    job = {"mode": "solvers", "transformer": transformer, "img": pack_latents(x_src.float().reshape(1, 16, SIZE, SIZE)),
           "height": SIZE, "width": SIZE, "source": context(source), "target": context(target),
           "timesteps": schedules[0].tolist()}
    return {"ours": ours, "job": job, "x_src": x_src.float().reshape(1, 16, SIZE, SIZE)}


def test_flow_solvers_match_the_fireflow_code_on_qwen_image(solver_runs, checkouts, skip_loudly):
    if checkouts["fireflow"] is None:
        skip_loudly("QWEN-IMAGE FLOW SOLVER PARITY SKIPPED: the FireFlow code was not found (set FIREFLOW_PATH to a "
                    "checkout of github.com/HolmesShuan/FireFlow-Fast-Inversion-of-Rectified-Flow-for-Image-Semantic-"
                    "Editing, or fetch it)")
    from flow_diffusers import unpack_latents

    theirs = run_reference([checkouts["fireflow"]], checkouts["tmp"], "fireflow",
                           dict(solver_runs["job"], functions=SOLVERS))
    x_src, errors = solver_runs["x_src"], {}
    for solver, function in SOLVERS.items():
        ours, ref = solver_runs["ours"][solver], theirs[solver]
        inverted, sample = unpack_latents(ref["inverted"], SIZE, SIZE), unpack_latents(ref["sample"], SIZE, SIZE)
        errors[solver] = (rel(ours["inverted"], inverted), rel(ours["sample"], sample), rel(sample, x_src))
        print(f"\nqwen-image {solver} vs FireFlow's {function} (adapted), {STEPS} steps, {SIZE}x{SIZE}: inverted latent "
              f"{errors[solver][0]:.2e}, edited sample {errors[solver][1]:.2e} (relative; the edit moved the latent "
              f"by {errors[solver][2]:.2f} of its range)")
    for solver, (inverted, sample, moved) in errors.items():
        assert moved > 1e-2, solver
        assert inverted <= TOLERANCE and sample <= TOLERANCE, (solver, inverted, sample)
    # the solvers are told apart: parity with each is not parity with any (the tiny Qwen-Image's flow is smoother
    # than the tiny Flux's: RF-Solver and FireFlow end 0.4 % apart here, against parity errors of about 3e-7)
    worst = max(max(inverted, sample) for inverted, sample, _ in errors.values())
    for a, b in (("euler", "rf-solver"), ("euler", "fireflow"), ("rf-solver", "fireflow")):
        apart = rel(theirs[a]["sample"], theirs[b]["sample"])
        assert apart > 1e-3 and apart > 1000 * worst, (a, b, apart, worst)


def test_rf_solver_matches_rf_solver_edits_own_code_on_qwen_image(solver_runs, checkouts, skip_loudly):
    if checkouts["rf-solver"] is None:
        skip_loudly("QWEN-IMAGE RF-SOLVER PARITY SKIPPED: the RF-Solver-Edit code was not found (set RFSOLVER_PATH "
                    "to a checkout of github.com/wangjiangshan0725/RF-Solver-Edit, or fetch it)")
    from flow_diffusers import unpack_latents

    theirs = run_reference([checkouts["rf-solver"]], checkouts["tmp"], "rf_solver_edit",
                           dict(solver_runs["job"], functions={"rf-solver": "denoise"}))["rf-solver"]
    ours = solver_runs["ours"]["rf-solver"]
    inverted = rel(ours["inverted"], unpack_latents(theirs["inverted"], SIZE, SIZE))
    sample = rel(ours["sample"], unpack_latents(theirs["sample"], SIZE, SIZE))
    print(f"\nqwen-image rf-solver vs RF-Solver-Edit's denoise (adapted), {STEPS} steps, {SIZE}x{SIZE}: inverted "
          f"latent {inverted:.2e}, edited sample {sample:.2e} (relative)")
    assert inverted <= TOLERANCE and sample <= TOLERANCE

"""Parity of the flow inversions (``InvertEditFlowInvert`` + ``InvertEditFlowSampler``,
``InvertEditRFInversionInvert`` + ``InvertEditRFInversion``) with the authors' code, run unchanged in
a subprocess on the same tiny random Flux dev weights:

- Euler, RF-Solver and FireFlow against ``HolmesShuan/FireFlow-Fast-Inversion-of-Rectified-Flow-for-
  Image-Semantic-Editing``'s ``src/flux/sampling.py`` (``denoise``, ``denoise_rf_solver``,
  ``denoise_fireflow``, on BFL's ``Flux`` loaded with the host's weights), and RF-Solver's step against
  ``wangjiangshan0725/RF-Solver-Edit``'s own ``denoise`` (``FLUX_Image_Edit/src/flux``), by
  ``tests/reference/rf_solver_runner.py``;
- RF-Inversion against diffusers' community ``examples/community/pipeline_flux_rf_inversion.py``
  (``invert`` then ``__call__``), by ``tests/reference/rf_inversion_runner.py``;
- on the tiny Qwen-Image, for which the authors wrote no code, the RF-Inversion community pipeline run unchanged
  in this process on the host's Qwen-Image called as it calls its Flux (``QwenImageAsDiffusersFlux``); the solvers
  on Qwen-Image are ``test_qwen_image_parity.py``'s (the authors' code on diffusers' own Qwen-Image transformer).

Each compares the inverted latent and the edited sample (the target prompt, Flux guidance 3.5), in
the model's space; the errors are printed. The reference code is fetched at test time (never
committed); where it is absent the test is skipped with a loud line."""
from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"
REFERENCE = Path(__file__).resolve().parents[1] / "reference"
TOLERANCE = 5e-4   # relative: max |ours - reference| / max |reference|
SIZE, STEPS = 16, 8   # latent 16x16 (64 tokens), 8 steps (divides the host's 10000-entry Flux table)
SOLVERS = {"euler": "denoise", "rf-solver": "denoise_rf_solver", "fireflow": "denoise_fireflow"}


@pytest.fixture(scope="module")
def flux(host):
    return host.pack.demo.tiny_flow_models.build_tiny_flow_models("flux-dev", seed=0)


def encode(host, clip, text: str, guidance: float | None = None) -> list:
    cond = call(host, "CLIPTextEncode", clip=clip, text=text)[0]
    return cond if guidance is None else call(host, "FluxGuidance", conditioning=cond, guidance=guidance)[0]


def embedding(cond: list) -> tuple[torch.Tensor, torch.Tensor]:
    return cond[0][0].float().clone(), cond[0][1]["pooled_output"].float().clone()


def raw_latent(seed: int) -> torch.Tensor:
    return torch.randn(1, 16, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def rel(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours.float() - theirs.float()).abs().max() / theirs.float().abs().max()).item()


def run_reference(runner: str, paths: list[Path], tmp: Path, name: str, job: dict) -> dict:
    job_path, out_path = tmp / f"job_{name}.pt", tmp / f"out_{name}.pt"
    torch.save(job, job_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(p) for p in paths] + [str(REFERENCE)]))
    done = subprocess.run([sys.executable, str(REFERENCE / runner), str(job_path), str(out_path)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
    return torch.load(out_path, weights_only=False)


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory, reference_copy):
    """Copies of the reference code, or None each where it is absent."""
    tmp = tmp_path_factory.mktemp("flow_invert_parity")
    fireflow = reference_copy(tmp / "fireflow", "FIREFLOW",
                              "HolmesShuan/FireFlow-Fast-Inversion-of-Rectified-Flow-for-Image-Semantic-Editing",
                              ("src/flux",), "src/flux/sampling.py")
    rf_solver = reference_copy(tmp / "rf_solver", "RFSOLVER", "wangjiangshan0725/RF-Solver-Edit",
                               ("FLUX_Image_Edit/src/flux",), "FLUX_Image_Edit/src/flux/sampling.py")
    rf_inversion = reference_copy(tmp / "diffusers", "DIFFUSERS", "huggingface/diffusers",
                                  ("examples/community/pipeline_flux_rf_inversion.py",),
                                  "examples/community/pipeline_flux_rf_inversion.py")
    return {"tmp": tmp,
            "fireflow": fireflow and fireflow / "src",
            "rf-solver": rf_solver and rf_solver / "FLUX_Image_Edit" / "src",
            "rf-inversion": rf_inversion and rf_inversion / "examples" / "community"}


def flux_job(net, x_src: torch.Tensor, source: list, target: list, sigmas: torch.Tensor) -> dict:
    """The reference runner's job (``rf_solver_runner.py``): the weights, latent, embeddings and schedule."""
    sys.path.insert(0, str(REFERENCE))
    from flow_diffusers import bfl_flux_params, flux_ids, pack_latents

    img_ids, txt_ids = flux_ids(SIZE, SIZE, source[0][0].shape[1])
    return {"state_dict": {k: v.detach().float().clone() for k, v in net.state_dict().items()},
            "params": bfl_flux_params(net),
            "img": pack_latents(x_src.float()), "img_ids": img_ids[None], "txt_ids": txt_ids[None],
            "source": embedding(source), "target": embedding(target), "timesteps": sigmas.float().tolist(),
            "inversion_guidance": 1.0, "guidance": 3.5}


# ------------------------------------------------------------------ Euler, RF-Solver, FireFlow

@pytest.fixture(scope="module")
def solver_runs(host, flux):
    """The pack's runs (inverted latent and edited sample, model space, per solver) and the job for
    the reference on the same weights, schedule, latent and embeddings."""
    import comfy.ldm.flux.model

    model, clip, _ = flux
    net = model.model.diffusion_model
    assert isinstance(net, comfy.ldm.flux.model.Flux)
    raw = raw_latent(seed=5)
    x_src = model.model.process_latent_in(raw)
    source, target = encode(host, clip, SOURCE), encode(host, clip, TARGET)
    ours, schedules = {}, []
    for solver in SOLVERS:
        inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw}, positive=source,
                                  solver=solver, steps=STEPS, scheduler="simple", guidance=1.0)
        guider = call(host, "BasicGuider", model=model, conditioning=encode(host, clip, TARGET, guidance=3.5))[0]
        sampler = call(host, "InvertEditFlowSampler", solver=solver)[0]
        out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                   latent_image={"samples": raw})[0]["samples"]
        ours[solver] = {"inverted": inv.trajectory[0].float().clone(),
                        "sample": model.model.process_latent_in(out).float().clone()}
        schedules.append(sigmas.float().clone())
    assert all(torch.equal(s, schedules[0]) for s in schedules)

    job = flux_job(net, x_src, source, target, schedules[0])
    return {"ours": ours, "job": job, "x_src": x_src}


def test_flow_solvers_match_the_fireflow_code(solver_runs, checkouts, skip_loudly):
    if checkouts["fireflow"] is None:
        skip_loudly("FLOW SOLVER PARITY SKIPPED: the FireFlow code was not found (set FIREFLOW_PATH to a checkout of "
                    "github.com/HolmesShuan/FireFlow-Fast-Inversion-of-Rectified-Flow-for-Image-Semantic-Editing, "
                    "or fetch it)")
    from flow_diffusers import unpack_latents

    theirs = run_reference("rf_solver_runner.py", [checkouts["fireflow"]], checkouts["tmp"], "fireflow",
                           dict(solver_runs["job"], functions=SOLVERS))
    x_src, errors = solver_runs["x_src"], {}
    for solver, function in SOLVERS.items():
        ours, ref = solver_runs["ours"][solver], theirs[solver]
        inverted, sample = unpack_latents(ref["inverted"], SIZE, SIZE), unpack_latents(ref["sample"], SIZE, SIZE)
        errors[solver] = (rel(ours["inverted"], inverted), rel(ours["sample"], sample),
                          rel(sample, x_src))
        print(f"\n{solver} vs FireFlow's {function}, {STEPS} steps, {SIZE}x{SIZE}: inverted latent "
              f"{errors[solver][0]:.2e}, edited sample {errors[solver][1]:.2e} (relative; the edit moved the latent "
              f"by {errors[solver][2]:.2f} of its range)")
    # the solvers are told apart at this size: parity with each is not parity with any
    for a, b in (("euler", "rf-solver"), ("euler", "fireflow"), ("rf-solver", "fireflow")):
        assert rel(theirs[a]["sample"], theirs[b]["sample"]) > 10 * TOLERANCE, (a, b)
    for solver, (inverted, sample, moved) in errors.items():
        assert moved > 1e-2, solver
        assert inverted <= TOLERANCE and sample <= TOLERANCE, (solver, inverted, sample)


def test_rf_solver_matches_rf_solver_edits_own_code(solver_runs, checkouts, skip_loudly):
    if checkouts["rf-solver"] is None:
        skip_loudly("RF-SOLVER PARITY SKIPPED: the RF-Solver-Edit code was not found (set RFSOLVER_PATH to a checkout "
                    "of github.com/wangjiangshan0725/RF-Solver-Edit, or fetch it)")
    from flow_diffusers import unpack_latents

    theirs = run_reference("rf_solver_runner.py", [checkouts["rf-solver"]], checkouts["tmp"], "rf_solver_edit",
                           dict(solver_runs["job"], functions={"rf-solver": "denoise"}))["rf-solver"]
    ours = solver_runs["ours"]["rf-solver"]
    inverted = rel(ours["inverted"], unpack_latents(theirs["inverted"], SIZE, SIZE))
    sample = rel(ours["sample"], unpack_latents(theirs["sample"], SIZE, SIZE))
    print(f"\nrf-solver vs RF-Solver-Edit's denoise, {STEPS} steps, {SIZE}x{SIZE}: inverted latent {inverted:.2e}, "
          f"edited sample {sample:.2e} (relative)")
    assert inverted <= TOLERANCE and sample <= TOLERANCE


# ------------------------------------------------------------------ RF-Solver-Edit's feature sharing

SHARE_STEPS, SINGLE_BLOCKS = 3, 22   # their single blocks after the 19th: 20 and 21 of 22


def test_shared_values_match_rf_solver_edits_own_code(host, checkouts, skip_loudly):
    """Flow Invert with share_steps, then Share Values, against their ``denoise`` with ``--inject``:
    the values of single blocks 20 and 21 kept while inverting and used in the first 3 of 8 steps,
    both evaluations of each (a Flux with 22 single blocks, so that their ``id > 19`` picks blocks)."""
    if checkouts["rf-solver"] is None:
        skip_loudly("RF-SOLVER-EDIT SHARING PARITY SKIPPED: the RF-Solver-Edit code was not found (set RFSOLVER_PATH "
                    "to a checkout of github.com/wangjiangshan0725/RF-Solver-Edit, or fetch it)")
    sys.path.insert(0, str(REFERENCE))   # run alone, no earlier test has put it there
    from flow_diffusers import unpack_latents

    model, clip, _ = host.pack.demo.tiny_flow_models.build_tiny_flow_models("flux-dev", seed=0,
                                                                             single_blocks=SINGLE_BLOCKS)
    raw = raw_latent(seed=7)
    source, target = encode(host, clip, SOURCE), encode(host, clip, TARGET)
    inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw}, positive=source,
                              solver="rf-solver", steps=STEPS, scheduler="simple", guidance=1.0,
                              share_steps=SHARE_STEPS, share_from_block=20, keep_values_on="cpu")
    assert len([n for n in inv.clues if n.startswith("share.v.")]) == SHARE_STEPS * 2 * 2   # steps x evaluations x blocks
    on_device = call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw}, positive=source,
                     solver="rf-solver", steps=STEPS, scheduler="simple", guidance=1.0, share_steps=SHARE_STEPS,
                     share_from_block=20, keep_values_on="device")[0]
    sampler = call(host, "InvertEditFlowSampler", solver="rf-solver")[0]
    samples = {}
    for name, m in (("shared", call(host, "InvertEditShareValues", model=model, inversion=inv)[0]),
                    ("shared on the device", call(host, "InvertEditShareValues", model=model, inversion=on_device)[0]),
                    ("plain", model)):
        guider = call(host, "BasicGuider", model=m, conditioning=encode(host, clip, TARGET, guidance=3.5))[0]
        out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                   latent_image={"samples": raw})[0]["samples"]
        samples[name] = model.model.process_latent_in(out).float()
    x_src = model.model.process_latent_in(raw)
    job = dict(flux_job(model.model.diffusion_model, x_src, source, target, sigmas), inject_step=SHARE_STEPS,
               functions={"rf-solver-edit": "denoise"})
    theirs = run_reference("rf_solver_runner.py", [checkouts["rf-solver"]], checkouts["tmp"], "rf_solver_sharing",
                           job)["rf-solver-edit"]
    theirs = unpack_latents(theirs["sample"], SIZE, SIZE)
    error, moved = rel(samples["shared"], theirs), rel(samples["plain"], theirs)
    print(f"\nShare Values vs RF-Solver-Edit's denoise with inject {SHARE_STEPS}, {STEPS} steps, {SIZE}x{SIZE}, "
          f"{SINGLE_BLOCKS} single blocks: edited sample {error:.2e} (relative; without sharing {moved:.2e})")
    assert torch.equal(samples["shared on the device"], samples["shared"])   # where the values wait changes nothing
    assert moved > 10 * TOLERANCE      # the sharing changes the edit at this size: parity with it is not parity without
    assert error <= TOLERANCE


# ------------------------------------------------------------------ RF-Inversion

def test_rf_inversion_matches_the_diffusers_community_pipeline(host, flux, checkouts, skip_loudly):
    if checkouts["rf-inversion"] is None:
        skip_loudly("RF-INVERSION PARITY SKIPPED: diffusers' examples/community/pipeline_flux_rf_inversion.py was not "
                    "found (set DIFFUSERS_PATH to a checkout of github.com/huggingface/diffusers, or fetch it)")
    sys.path.insert(0, str(REFERENCE))
    from flow_diffusers import diffusers_transformer, unpack_latents

    model, clip, _ = flux
    settings = dict(steps=STEPS, gamma=0.5, eta=0.9, start=0.0, stop=0.25, source_guidance=0.0, guidance=3.5)
    # the authors' schedule: Flux's dynamic shift at the image's size (8 pixels a latent cell)
    shifted = call(host, "ModelSamplingFlux", model=model, max_shift=1.15, base_shift=0.5, width=SIZE * 8,
                   height=SIZE * 8)[0]
    raw = raw_latent(seed=6)
    source = encode(host, clip, "")
    inv, noise, sigmas = call(host, "InvertEditRFInversionInvert", model=shifted, latent={"samples": raw},
                              positive=source, steps=STEPS, scheduler="simple", gamma=settings["gamma"],
                              guidance=settings["source_guidance"], seed=4)
    edit = call(host, "InvertEditRFInversion", model=shifted, inversion=inv, eta=settings["eta"],
                start=settings["start"], stop=settings["stop"], eta_decay=0.0)[0]
    guider = call(host, "BasicGuider", model=edit, conditioning=encode(host, clip, TARGET, guidance=3.5))[0]
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=euler, sigmas=sigmas,
               latent_image={"samples": raw})[0]["samples"]
    guider = call(host, "BasicGuider", model=shifted, conditioning=encode(host, clip, TARGET, guidance=3.5))[0]
    uncontrolled = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=euler, sigmas=sigmas,
                        latent_image={"samples": raw})[0]["samples"]
    x_src = model.model.process_latent_in(raw).float()

    job = {"transformer": diffusers_transformer(model), "x0": x_src.clone(), "y1": inv.clues["rf.y1"].float().clone(),
           "embeddings": {"": embedding(source), TARGET: embedding(encode(host, clip, TARGET))},
           "source": "", "target": TARGET, **settings}
    theirs = run_reference("rf_inversion_runner.py", [checkouts["rf-inversion"]], checkouts["tmp"], "rf_inversion", job)

    schedule = max((sigmas.float() - theirs["inversion_sigmas"].float()).abs().max().item(),
                   (sigmas.float() - theirs["sigmas"].float()).abs().max().item())
    image = rel(x_src, unpack_latents(theirs["image_latents"], SIZE, SIZE))
    inverted = rel(inv.trajectory[0], unpack_latents(theirs["inverted"], SIZE, SIZE))
    ref_sample = unpack_latents(theirs["latent"], SIZE, SIZE)
    sample = rel(model.model.process_latent_in(out), ref_sample)
    moved = rel(ref_sample, x_src)
    print(f"\nRF-Inversion vs diffusers' community pipeline, {STEPS} steps, {SIZE}x{SIZE}, gamma {settings['gamma']}, "
          f"eta {settings['eta']} over [{settings['start']}, {settings['stop']}): schedule {schedule:.1e} (absolute), "
          f"inverted latent {inverted:.2e}, edited sample {sample:.2e} (relative; the edit moved the latent by "
          f"{moved:.2f} of its range)")
    controlled = rel(model.model.process_latent_in(uncontrolled), ref_sample)   # eta's pull is seen
    assert controlled > 20 * TOLERANCE, controlled
    assert image == 0.0
    assert schedule <= 1e-6
    assert moved > 1e-2
    assert inverted <= TOLERANCE and sample <= TOLERANCE


class QwenImageAsDiffusersFlux(torch.nn.Module):
    """The host's tiny Qwen-Image as diffusers' Flux pipelines call their transformer: ``(hidden_states=packed
    latent, timestep=sigma, encoder_hidden_states=the prompt's embedding, ...) -> (velocity,)``, packed 2x2 as the
    pipeline packs and unpacked for Qwen-Image (its frame axis added); the ids, pooled vector and guidance are
    Flux's, and Qwen-Image takes none. ``config`` says what the pipeline reads (no guidance embedder)."""

    def __init__(self, model, h: int, w: int):
        super().__init__()
        self.net, self.h, self.w = model.model.diffusion_model, h, w
        self.config = types.SimpleNamespace(in_channels=64, guidance_embeds=False)

    @property
    def device(self):
        return torch.device("cpu")

    @property
    def dtype(self):
        return torch.float32

    def forward(self, hidden_states, timestep, encoder_hidden_states, **kwargs):
        from einops import rearrange

        x = rearrange(hidden_states, "b (h w) (c ph pw) -> b c (h ph) (w pw)", h=self.h // 2, w=self.w // 2, ph=2, pw=2)
        v = self.net(x.unsqueeze(2), timestep, context=encoder_hidden_states).squeeze(2)
        return (rearrange(v, "b c (h ph) (w pw) -> b (h w) (c ph pw)", ph=2, pw=2),)


def test_rf_inversion_on_qwen_image_matches_the_diffusers_community_pipeline_run_on_it(host, tiny, checkouts,
                                                                                     skip_loudly):
    """The community pipeline is Flux's but calls its transformer as a function of the packed latent, the prompt
    and the time (``QwenImageAsDiffusersFlux``): its ``invert`` and controlled ``__call__``, unchanged, in this
    process on the host's tiny Qwen-Image against RF-Inversion Invert and RF-Inversion (the schedule the pipeline's
    dynamic shift gives, through ModelSamplingFlux at the image's size, as on Flux; the pack's fixed noise handed to
    the pipeline packed: ``rf_inversion_runner.run_rf_inversion``, the Flux runner's own body)."""
    if checkouts["rf-inversion"] is None:
        skip_loudly("RF-INVERSION PARITY ON QWEN-IMAGE SKIPPED: diffusers' examples/community/"
                    "pipeline_flux_rf_inversion.py was not found (set DIFFUSERS_PATH, or fetch it)")
    import importlib

    sys.path.insert(0, str(checkouts["rf-inversion"]))
    try:
        pipeline = importlib.import_module("pipeline_flux_rf_inversion")
    finally:
        sys.path.remove(str(checkouts["rf-inversion"]))
    model, clip, _ = tiny("qwen-image")
    settings = dict(steps=STEPS, gamma=0.5, eta=0.9, start=0.0, stop=0.25)
    shifted = call(host, "ModelSamplingFlux", model=model, max_shift=1.15, base_shift=0.5, width=SIZE * 8,
                   height=SIZE * 8)[0]
    raw = raw_latent(seed=6).unsqueeze(2)
    source, target = encode(host, clip, ""), encode(host, clip, TARGET)
    inv, noise, sigmas = call(host, "InvertEditRFInversionInvert", model=shifted, latent={"samples": raw},
                              positive=source, steps=STEPS, scheduler="simple", gamma=settings["gamma"], guidance=0.0,
                              seed=4)
    edit = call(host, "InvertEditRFInversion", model=shifted, inversion=inv, eta=settings["eta"],
                start=settings["start"], stop=settings["stop"], eta_decay=0.0)[0]
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    guider = call(host, "BasicGuider", model=edit, conditioning=target)[0]
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=euler, sigmas=sigmas,
               latent_image={"samples": raw})[0]["samples"]
    x_src = model.model.process_latent_in(raw).float()

    job = {"x0": x_src.squeeze(2), "y1": inv.clues["rf.y1"].float().squeeze(2), "source": "", "source_guidance": 0.0,
           "target": TARGET, "guidance": 3.5, "embeddings": {"": (source[0][0].float(), torch.zeros(1, 1)),
                                                             TARGET: (target[0][0].float(), torch.zeros(1, 1))},
           **settings}
    sys.path.insert(0, str(REFERENCE))
    try:
        from rf_inversion_runner import run_rf_inversion
    finally:
        sys.path.remove(str(REFERENCE))
    theirs = run_rf_inversion(pipeline.RFInversionFluxPipeline, QwenImageAsDiffusersFlux(model, SIZE, SIZE), job)
    inverted, edited, their_sigmas = theirs["inverted"], theirs["latent"], theirs["sigmas"]

    def unpacked(x):
        return theirs["unpack"](x).unsqueeze(2)

    schedule = (sigmas.float() - their_sigmas.float()).abs().max().item()
    inverted_error = rel(inv.trajectory[0], unpacked(inverted))
    sample_error, moved = rel(model.model.process_latent_in(out), unpacked(edited)), rel(unpacked(edited), x_src)
    print(f"\n[qwen-image] RF-Inversion vs the community pipeline run on it, {STEPS} steps, {SIZE}x{SIZE}: schedule "
          f"{schedule:.1e}, inverted latent {inverted_error:.2e}, edited sample {sample_error:.2e} (relative; the edit "
          f"moved the latent by {moved:.2f})")
    assert schedule <= 1e-6 and moved > 1e-2
    assert inverted_error <= TOLERANCE and sample_error <= TOLERANCE

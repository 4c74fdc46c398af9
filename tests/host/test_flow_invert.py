"""Flow Invert (Euler, RF-Solver, FireFlow), the Flow Sampler and RF-Inversion on the tiny random
Flux dev and SD3: reconstruction through the host's SamplerCustomAdvanced from the inversion's
NOISE, the published ordering (the second-order solvers reconstruct better than Euler at the same
steps), the evaluations each makes, RF-Inversion's controlled reverse (eta 1 over the whole run
gives the image back; eta 0 is plain sampling), and the records' round trip through a file."""
from __future__ import annotations

import pytest
import torch

from workshop.benchmarks.dispatch_count import counted_model
from workshop.headless.calls import call

SOURCE = "a red circle on a green field"


def encode(host, clip, text: str, guidance: float | None = None) -> list:
    cond = call(host, "CLIPTextEncode", clip=clip, text=text)[0]
    return cond if guidance is None else call(host, "FluxGuidance", conditioning=cond, guidance=guidance)[0]


def raw_latent(seed: int = 0, size: int = 8) -> torch.Tensor:
    return torch.randn(1, 16, size, size, generator=torch.Generator().manual_seed(seed))


def sample(host, model, positive, noise, sigmas, latent, sampler):
    guider = call(host, "BasicGuider", model=model, conditioning=positive)[0]
    return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


def rel(a, b) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("family", ["flux-dev", "sd3", "qwen-image"])
def test_each_solver_reconstructs_and_the_second_order_ones_better_than_euler(host, tiny, family):
    model, clip, _ = tiny(family)
    flux = family == "flux-dev"
    positive = encode(host, clip, SOURCE, guidance=1.0 if flux else None)
    latent = raw_latent(seed=1)
    errors, nfe = {}, {}
    for solver in ("euler", "rf-solver", "fireflow"):
        m, rows = counted_model(model, "APPLY_MODEL")
        inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=m, latent={"samples": latent},
                                  positive=encode(host, clip, SOURCE), solver=solver, steps=8, scheduler="simple",
                                  guidance=1.0)
        inverting = len(rows)
        out = sample(host, m, positive, noise, sigmas, latent, call(host, "InvertEditFlowSampler", solver=solver)[0])
        nfe[solver] = (inverting, len(rows) - inverting)
        errors[solver] = rel(out, latent)
        assert inv.method == {"euler": "flow-euler"}.get(solver, solver) and inv.trajectory.shape[0] == 9
        assert torch.allclose(inv.trajectory[-1], model.model.process_latent_in(latent), atol=1e-6)
    print(f"\n[{family}] 8 steps, reconstruction error (relative): "
          + ", ".join(f"{s} {e:.2e} (NFE {nfe[s][0]} + {nfe[s][1]})" for s, e in errors.items()))
    assert nfe == {"euler": (8, 8), "rf-solver": (16, 16), "fireflow": (9, 9)}
    assert errors["rf-solver"] < errors["euler"] / 3 and errors["fireflow"] < errors["euler"] / 2
    assert errors["rf-solver"] < 0.02


def test_the_stock_euler_sampler_is_the_flow_samplers_euler(host, tiny):
    model, clip, _ = tiny("flux-dev")
    positive = encode(host, clip, SOURCE, guidance=1.0)
    latent = raw_latent(seed=2)
    _, noise, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent},
                            positive=encode(host, clip, SOURCE), solver="euler", steps=6, scheduler="simple",
                            guidance=1.0)
    ours = sample(host, model, positive, noise, sigmas, latent, call(host, "InvertEditFlowSampler", solver="euler")[0])
    stock = sample(host, model, positive, noise, sigmas, latent, call(host, "KSamplerSelect", sampler_name="euler")[0])
    assert torch.allclose(ours, stock, atol=1e-5)


@pytest.mark.parametrize("family", ["flux-dev", "sd3", "qwen-image"])
def test_rf_inversion_eta_1_keeps_the_image_and_eta_0_is_plain_sampling(host, tiny, family):
    model, clip, _ = tiny(family)
    flux = family == "flux-dev"
    latent = raw_latent(seed=3)
    inv, noise, sigmas = call(host, "InvertEditRFInversionInvert", model=model, latent={"samples": latent},
                              positive=encode(host, clip, ""), steps=6, scheduler="simple", gamma=0.5, guidance=0.0,
                              seed=4)
    assert inv.method == "rf-inversion" and "rf.y1" in inv.clues
    target = encode(host, clip, "a yellow circle on a green field", guidance=3.5 if flux else None)
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    kept = call(host, "InvertEditRFInversion", model=model, inversion=inv, eta=1.0, start=0.0, stop=1.0, eta_decay=0.0)[0]
    out = sample(host, kept, target, noise, sigmas, latent, euler)
    assert torch.allclose(out, latent, atol=1e-4), rel(out, latent)
    free = call(host, "InvertEditRFInversion", model=model, inversion=inv, eta=0.0, start=0.0, stop=0.25, eta_decay=0.0)[0]
    assert torch.allclose(sample(host, free, target, noise, sigmas, latent, euler),
                          sample(host, model, target, noise, sigmas, latent, euler), atol=1e-6)
    edit = call(host, "InvertEditRFInversion", model=model, inversion=inv, eta=0.9, start=0.0, stop=0.25,
                eta_decay=0.0)[0]
    edited = sample(host, edit, target, noise, sigmas, latent, euler)
    assert torch.isfinite(edited).all() and 0 < rel(edited, latent)


def test_flow_inversions_round_trip_through_a_file(host, tiny, tmp_path):
    model, clip, _ = tiny("flux-dev")
    inv = call(host, "InvertEditRFInversionInvert", model=model, latent={"samples": raw_latent()},
               positive=encode(host, clip, ""), steps=4, scheduler="simple", gamma=0.5, guidance=0.0, seed=0)[0]
    call(host, "InvertEditSaveInversion", inversion=inv, filename_prefix="inversions/test_rf")
    files = sorted((host.output_dir / "inversions").glob("test_rf*.safetensors"))
    loaded = call(host, "InvertEditLoadInversion", inversion=f"inversions/{files[-1].name} [output]")[0]
    assert loaded.method == "rf-inversion" and torch.equal(loaded.trajectory, inv.trajectory)
    assert torch.equal(loaded.clues["rf.y1"], inv.clues["rf.y1"])

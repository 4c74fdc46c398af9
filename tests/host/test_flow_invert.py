"""Flow Invert (Euler, RF-Solver, FireFlow), the Flow Sampler and RF-Inversion on the tiny random
Flux dev, SD3 and Qwen-Image: reconstruction through the host's SamplerCustomAdvanced from the inversion's
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


def raw_latent(seed: int = 0, size: int = 8, family: str = "flux-dev") -> torch.Tensor:
    """An image's latent as the family's VAE Encode gives it: Qwen-Image's (its Wan VAE) with a frame axis of 1."""
    latent = torch.randn(1, 16, size, size, generator=torch.Generator().manual_seed(seed))
    return latent.unsqueeze(2) if family == "qwen-image" else latent


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
    latent = raw_latent(seed=1, family=family)
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


def test_qwen_image_takes_a_latent_without_its_frame_axis_as_the_host_takes_it(host, tiny):
    """Qwen-Image's latents carry a frame axis (its Wan VAE's); a 4-dimensional latent (an image latent from
    elsewhere) gets one frame added, as the host's samplers add it: the same inversion, and the sampler's
    reconstruction of it from the 4-dimensional latent."""
    model, clip, _ = tiny("qwen-image")
    positive = encode(host, clip, SOURCE)
    flat = raw_latent(seed=5)
    runs = [call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=positive,
                 solver="rf-solver", steps=6, scheduler="simple", guidance=1.0) for latent in (flat, flat.unsqueeze(2))]
    (inv4, noise, sigmas), (inv5, _, _) = runs
    assert inv4.latent_shape == inv5.latent_shape == (1, 16, 1, 8, 8)
    assert torch.equal(inv4.trajectory, inv5.trajectory)
    out = sample(host, model, positive, noise, sigmas, flat, call(host, "InvertEditFlowSampler", solver="rf-solver")[0])
    assert out.shape == (1, 16, 1, 8, 8) and rel(out, flat.unsqueeze(2)) < 0.02


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
    latent = raw_latent(seed=3, family=family)
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


# ------------------------------------------------------------------ RF-Solver-Edit's value sharing on Qwen-Image

def test_share_values_on_qwen_image_shares_the_image_tokens_values_of_its_joint_blocks(host, tiny):
    """Qwen-Image has joint blocks only: Flow Invert keeps, from share_from_block on, the image tokens' values
    ([1, heads, image tokens, head width]), and Share Values makes those blocks attend with them in the kept steps,
    the target's text with its own values; so a target of another token count than the source's shares all the
    same (and under classifier-free guidance, whose negative runs in a call of its own, in every call). Where the
    values wait changes nothing; a first block past the model's is refused, naming its joint blocks."""
    model, clip, _ = tiny("qwen-image")
    latent = raw_latent(seed=7, family="qwen-image")
    source = encode(host, clip, SOURCE)
    kept = {place: call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=source,
                        solver="rf-solver", steps=6, scheduler="simple", guidance=1.0, share_steps=2,
                        share_from_block=1, keep_values_on=place) for place in ("device", "cpu")}
    inv, noise, sigmas = kept["device"]
    values = {name: t for name, t in inv.clues.items() if name.startswith("share.v.")}
    assert sorted(values) == [f"share.v.{step}.{half}.1" for step in (0, 1) for half in (0, 1)]   # block 1 of 2
    assert all(t.shape == (1, 2, 16, 32) for t in values.values())   # 2 heads of 32, the 4x4 patches of 8x8
    assert inv.settings["share_from_block"] == 1 and inv.settings["share_steps"] == 2
    rf_solver = call(host, "InvertEditFlowSampler", solver="rf-solver")[0]
    target = encode(host, clip, "a cat")   # 7 tokens to the source's 12
    assert target[0][0].shape[1] != source[0][0].shape[1]
    out = {}
    for name, m in (("device", call(host, "InvertEditShareValues", model=model, inversion=inv)[0]),
                    ("cpu", call(host, "InvertEditShareValues", model=model, inversion=kept["cpu"][0])[0]),
                    ("plain", model)):
        out[name] = sample(host, m, target, noise, sigmas, latent, rf_solver)
        cfg = call(host, "CFGGuider", model=m, positive=target, negative=encode(host, clip, ""), cfg=4.0)[0]
        out[name + ", cfg"] = call(host, "SamplerCustomAdvanced", noise=noise, guider=cfg, sampler=rf_solver,
                                   sigmas=sigmas, latent_image={"samples": latent})[0]["samples"]
    assert torch.equal(out["cpu"], out["device"]) and torch.equal(out["cpu, cfg"], out["device, cfg"])
    shared, plain, moved = rel(out["device"], latent), rel(out["plain"], latent), rel(out["device"], out["plain"])
    print(f"\n[qwen-image] Share Values (2 of 6 steps, block 1), target of another length: edit to the image "
          f"{shared:.4f} (relative), without sharing {plain:.4f}; shared to plain {moved:.2e}")
    assert moved > 1e-4 and shared < plain   # the source's values keep the edit nearer the image
    assert not torch.allclose(out["device, cfg"], out["plain, cfg"], atol=1e-4)
    # a prompt with a reference image (Qwen-Image-Edit's way): its tokens join the image's, the values cannot line up
    referenced = call(host, "ReferenceLatent", conditioning=target, latent={"samples": latent})[0]
    with pytest.raises(ValueError, match=r"Share Values: the run's prompt carries reference images"):
        sample(host, call(host, "InvertEditShareValues", model=model, inversion=inv)[0], referenced, noise, sigmas,
               latent, rf_solver)
    with pytest.raises(ValueError, match=r"Flow Invert: input 'share_from_block' is 2, but the model has 2 joint blocks "
                                             r"\(0 to 1\) \(Qwen-Image shares the image tokens' values"):
        call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=source, solver="euler",
             steps=6, scheduler="simple", guidance=1.0, share_steps=2, share_from_block=2)


def test_flow_inversions_round_trip_through_a_file(host, tiny, tmp_path):
    model, clip, _ = tiny("flux-dev")
    inv = call(host, "InvertEditRFInversionInvert", model=model, latent={"samples": raw_latent()},
               positive=encode(host, clip, ""), steps=4, scheduler="simple", gamma=0.5, guidance=0.0, seed=0)[0]
    call(host, "InvertEditSaveInversion", inversion=inv, filename_prefix="inversions/test_rf")
    files = sorted((host.output_dir / "inversions").glob("test_rf*.safetensors"))
    loaded = call(host, "InvertEditLoadInversion", inversion=f"inversions/{files[-1].name} [output]")[0]
    assert loaded.method == "rf-inversion" and torch.equal(loaded.trajectory, inv.trajectory)
    assert torch.equal(loaded.clues["rf.y1"], inv.clues["rf.y1"])

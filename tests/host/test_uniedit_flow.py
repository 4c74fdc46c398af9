"""UniEdit-Flow (``InvertEditUniInv`` + ``InvertEditUniEditFlow``; Jiao et al., ICLR'26) on the tiny random Flux.1 and
SD3 models: the math's exact properties (Uni-Inv on a field Euler integrates exactly; the same prompt twice gives the
plain step; the mask's cells), what it costs (Uni-Inv: floor(alpha N) + 1 evaluations; Uni-Edit: one batched call of
the two prompts a step), the Flow Invert/Flow Sampler solver ``uni-inv`` (sampled back with Euler), and parity with
the authors' code (``DSL-Lab/UniEdit-Flow``'s diffusers schedulers and ``demo_edit.py``'s calls, fetched at test time
and run unchanged by ``tests/reference/uniedit_runner.py`` on the same weights). Refusals: the bad-input table
(``tests/host/bad_inputs_uniedit_flow.py``)."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from invertedit.inversion import flow as FL
from invertedit.techniques.uniedit_flow import fusion as F
from workshop.benchmarks.dispatch_count import counted_model
from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "uniedit_runner.py"
TOLERANCE = 5e-4   # relative: max |ours - reference| / max |reference|


# ------------------------------------------------------------------ the math, pure

def test_uni_inv_is_exact_where_euler_is_and_retraced_by_euler_better_than_euler_inversion():
    times = torch.linspace(0, 1, 7)
    const = torch.randn(1, 4, 2, 2)
    calls = []

    def constant(x, t):
        calls.append(1)
        return const

    out = FL.uni_inv(constant, torch.zeros_like(const), times)[-1]
    assert torch.allclose(out, const, atol=1e-6) and len(calls) == 7          # N + 1 evaluations
    calls.clear()
    FL.uni_inv(constant, torch.zeros_like(const), times, zero_initial=True)
    assert len(calls) == 6                                                     # zero_initial: N

    def curl(x, t):   # a field whose Euler steps do not commute with their inverse
        return torch.stack([-x[:, 1], x[:, 0]], 1) * (1 + t.reshape(-1, 1))

    x0 = torch.tensor([[1.0, 0.5]])

    def back(x):   # Euler down the same schedule
        return FL.solve(curl, x, times.flip(0), "euler")[-1]

    err_uni = (back(FL.uni_inv(curl, x0, times)[-1]) - x0).abs().max()
    err_euler = (back(FL.solve(curl, x0, times, "euler")[-1]) - x0).abs().max()
    assert err_uni < 0.5 * err_euler, (err_uni, err_euler)


def test_uni_edit_velocity_is_the_source_step_for_one_prompt_and_its_mask_has_a_value_per_token():
    v = torch.randn(2, 16, 4, 6)
    assert torch.equal(F.edit_velocity(v, v, 5.0), v)                            # no difference: no edit
    g = torch.randn(2, 16, 4, 6)
    mask = F.edit_mask(g, patch=2)
    assert mask.shape == (2, 1, 4, 6)
    assert torch.equal(mask[..., ::2, ::2], mask[..., 1::2, 1::2])                # one value per 2x2 token
    flat = mask.flatten(1)
    assert torch.allclose(flat.amin(1), torch.zeros(2)) and torch.allclose(flat.amax(1), torch.ones(2), atol=1e-5)
    v_src, v_trg = torch.randn(2, 16, 4, 6), torch.randn(2, 16, 4, 6)
    m = F.edit_mask(v_trg - v_src)
    want = 3.0 * (1 + m) * (v_trg - v_src) + m * v_trg + (1 - m) * v_src
    assert torch.allclose(F.edit_velocity(v_src, v_trg, 3.0), want, atol=1e-6)
    x, sigma = torch.randn(2, 16, 4, 6), torch.tensor([0.7, 0.3])
    s = sigma.reshape(-1, 1, 1, 1)
    for patch in (1, 2):
        for mode in F.MASKS:
            want = x - s * F.edit_velocity(v_src, v_trg, 3.0, patch, mode)
            got = F.edit_denoised(x - s * v_src, x - s * v_trg, sigma, 3.0, patch, mode)
            assert torch.allclose(got, want, atol=1e-5), (patch, mode, (got - want).abs().max())
    assert math.isclose(F.start_step(0.6, 15), 6) and F.start_step(1.0, 15) == 0 and F.start_step(0.75, 10) == 3


# ------------------------------------------------------------------ on the host

def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def raw_latent(seed: int = 0, size: int = 8) -> torch.Tensor:
    return torch.randn(1, 16, size, size, generator=torch.Generator().manual_seed(seed))


def uni_inv(host, model, clip, latent, steps=10, alpha=0.6, zero_initial=False, prompt=""):
    return call(host, "InvertEditUniInv", model=model, latent={"samples": latent}, positive=encode(host, clip, prompt),
                steps=steps, scheduler="simple", guidance=1.0, alpha=alpha, zero_initial=zero_initial)


def uni_edit(host, model, clip, source=SOURCE, target=TARGET, omega=5.0, guidance=1.0, mask="mean", negative=None):
    kw = {} if negative is None else {"negative": encode(host, clip, negative)}
    return call(host, "InvertEditUniEditFlow", model=model, source=encode(host, clip, source),
                target=encode(host, clip, target), omega=omega, guidance=guidance, mask=mask, **kw)[0]


def sample(host, guider, noise, sigmas, latent, sampler="euler"):
    sampler = call(host, "KSamplerSelect", sampler_name=sampler)[0]
    return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


@pytest.mark.parametrize("family", ["flux-dev", "sd3"])
def test_uni_inv_evaluations_and_one_batched_call_a_step_that_retraces_the_image(host, tiny, family):
    model, clip, _ = tiny(family)
    latent = raw_latent()
    for zero_initial, nfe in ((False, 7), (True, 6)):              # 10 steps at alpha 0.6: the last 6, + 1
        m, rows = counted_model(model, "APPLY_MODEL")
        inv, noise, sigmas = uni_inv(host, m, clip, latent, zero_initial=zero_initial)
        assert len(rows) == nfe and inv.start_step == 4 and len(sigmas) == 7 and inv.trajectory.shape[0] == 7
    m, rows = counted_model(model, "APPLY_MODEL")
    same = sample(host, uni_edit(host, m, clip, source="", target=""), noise, sigmas, latent)   # the inversion's prompt
    assert rows == [2] * 6, rows
    assert (same - latent).abs().max() < 0.05 * latent.abs().max(), (same - latent).abs().max()
    edit = sample(host, uni_edit(host, m, clip), noise, sigmas, latent)
    assert torch.isfinite(edit).all() and (edit - latent).abs().max() > 0.1
    if family == "sd3":   # classifier-free guidance with a negative: the negative once, in the same call
        m, rows = counted_model(model, "APPLY_MODEL")
        sample(host, uni_edit(host, m, clip, guidance=3.5, negative=""), noise, sigmas, latent)
        assert rows == [3] * 6, rows


def test_omega_turns_the_edit_up_and_alpha_turns_it_down(host, tiny):
    """The tooltips' directions, measured on the tiny Flux: the edit's distance from the image grows with omega (at
    alpha 0.6) and with alpha (at omega 5)."""
    model, clip, _ = tiny("flux-dev")
    latent = raw_latent(seed=2)

    def moved(alpha, omega):
        _, noise, sigmas = uni_inv(host, model, clip, latent, steps=10, alpha=alpha)
        return (sample(host, uni_edit(host, model, clip, omega=omega), noise, sigmas, latent) - latent).norm().item()

    by_omega = [moved(0.6, w) for w in (0.0, 2.0, 5.0)]
    by_alpha = [moved(a, 5.0) for a in (0.3, 0.6, 0.9)]
    print(f"\nUniEdit-Flow on the tiny Flux, |edit - image|: omega 0/2/5 {by_omega}; alpha 0.3/0.6/0.9 {by_alpha}")
    assert by_omega == sorted(by_omega) and by_alpha == sorted(by_alpha)


def test_flow_invert_uni_inv_is_uni_inv_at_alpha_1_and_the_flow_sampler_samples_it_with_euler(host, tiny):
    model, clip, _ = tiny("flux-dev")
    latent = raw_latent(seed=1)
    ours = uni_inv(host, model, clip, latent, steps=6, alpha=1.0, prompt=SOURCE)[0]
    inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent},
                              positive=encode(host, clip, SOURCE), solver="uni-inv", steps=6, scheduler="simple",
                              guidance=1.0)
    assert inv.method == ours.method == "uni-inv" and torch.equal(inv.trajectory, ours.trajectory)
    guider = call(host, "BasicGuider", model=model,
                  conditioning=call(host, "FluxGuidance", conditioning=encode(host, clip, SOURCE), guidance=1.0)[0])[0]
    flow = call(host, "InvertEditFlowSampler", solver="uni-inv")[0]
    by_flow = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=flow, sigmas=sigmas,
                   latent_image={"samples": latent})[0]["samples"]
    by_euler = sample(host, guider, noise, sigmas, latent)
    assert torch.allclose(by_flow, by_euler, atol=1e-5)
    assert (by_euler - latent).abs().max() < 0.05 * latent.abs().max()


# ------------------------------------------------------------------ parity with the authors' code

PARITY = {"flux-dev": dict(steps=10, alpha=0.6, zero_initial=False), "sd3": dict(steps=10, alpha=0.75, zero_initial=True)}
SIZE = 8


@pytest.fixture(scope="module")
def parity(host, tiny, tmp_path_factory, skip_loudly, reference_copy):
    """Per family of ``PARITY``: our Uni-Inv and Uni-Edit run (the inverted latent, the edit, the image; the model's
    space) and the authors' code's on the same weights, schedule, latent and embeddings, all of the reference's in
    one process."""
    tmp = tmp_path_factory.mktemp("uniedit")
    parts = ("UniEdit-Flow_diffusers/schedulers", "UniEdit-Flow_diffusers/utils.py")
    checkout = reference_copy(tmp / "code", "UNIEDIT", "DSL-Lab/UniEdit-Flow", parts,
                              "UniEdit-Flow_diffusers/schedulers/UniEditEulerScheduler.py")
    if checkout is None:
        skip_loudly("UNIEDIT-FLOW PARITY SKIPPED: the UniEdit-Flow code was not found (set UNIEDIT_PATH to a checkout "
                    "of github.com/DSL-Lab/UniEdit-Flow, or fetch it)")
    sys.path.insert(0, str(RUNNER.parent))
    from flow_diffusers import diffusers_transformer, pack_latents

    ours, jobs = {}, []
    for family, s in PARITY.items():
        model, clip, _ = tiny(family)
        flux = family.startswith("flux")
        raw = raw_latent(seed=3, size=SIZE)
        inv, noise, sigmas = uni_inv(host, model, clip, raw, **s)
        edited = sample(host, uni_edit(host, model, clip), noise, sigmas, raw)
        x_src = model.model.process_latent_in(raw)
        ours[family] = (inv.trajectory[0], model.model.process_latent_in(edited), x_src)
        embeddings = {p: (c[0][0].float(), c[0][1]["pooled_output"].float())
                      for p, c in ((p, encode(host, clip, p)) for p in ("", SOURCE, TARGET))}
        jobs.append({"family": "flux" if flux else "sd3", "transformer": diffusers_transformer(model),
                     "x_src": pack_latents(x_src) if flux else x_src, "embeddings": embeddings, "inversion": "",
                     "source": SOURCE, "target": TARGET, "sigmas": inv.sigmas[:-1].float().tolist(), "omega": 5.0,
                     "guidance": 1.0, "height": SIZE, "width": SIZE, **s})
    path, out = tmp / "jobs.pt", tmp / "out.pt"
    torch.save(jobs, path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout / "UniEdit-Flow_diffusers"), str(RUNNER.parent)]))
    done = subprocess.run([sys.executable, str(RUNNER), str(path), str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
    return {family: (ours[family], ref) for family, ref in zip(PARITY, torch.load(out, weights_only=False))}


@pytest.mark.parametrize("family", list(PARITY))
def test_uniedit_flow_matches_the_authors_code(parity, family):
    from flow_diffusers import unpack_latents

    (ours_inv, ours_edit, x_src), ref = parity[family]
    theirs_inv, theirs_edit = ref["inverted"], ref["edited"]
    if family.startswith("flux"):
        theirs_inv, theirs_edit = unpack_latents(theirs_inv, SIZE, SIZE), unpack_latents(theirs_edit, SIZE, SIZE)
    assert torch.equal(theirs_edit[0], theirs_edit[1])             # the authors' two rows: one edit
    err_inv = ((ours_inv - theirs_inv).abs().max() / theirs_inv.abs().max()).item()
    err_edit = ((ours_edit - theirs_edit[1:]).abs().max() / theirs_edit.abs().max()).item()
    moved = ((theirs_edit[1:] - x_src).abs().max() / x_src.abs().max()).item()
    print(f"\nUniEdit-Flow {family} vs DSL-Lab/UniEdit-Flow ({PARITY[family]}): inversion max abs "
          f"{(ours_inv - theirs_inv).abs().max():.2e} (relative {err_inv:.2e}), edit max abs "
          f"{(ours_edit - theirs_edit[1:]).abs().max():.2e} (relative {err_edit:.2e}); the edit moved the latent by "
          f"{moved:.2f} of its range")
    assert moved > 1e-2
    assert err_inv <= TOLERANCE and err_edit <= TOLERANCE


# ------------------------------------------------------------------ cost per step

def uniedit_dispatch_rows(host, family: str, steps: int = 3, real_depth: bool = False) -> list[dict]:
    """Per step, operations dispatched by Uni-Edit's guider (one latent; the source and target in one call: 2 rows)
    and by the stock SamplerCustomAdvanced with CFGGuider at cfg 1 on a batch of 2 (2 rows), both with euler
    (``workshop/benchmarks/dispatch_count.py``'s ``custom_per_step``)."""
    from workshop.benchmarks.dispatch_count import custom_per_step, flow_models

    model, clip = flow_models(host, family, real_depth)
    source, target = encode(host, clip, SOURCE), encode(host, clip, TARGET)
    latent = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    stock = custom_per_step(host, model, lambda m, n: (call(host, "CFGGuider", model=m, positive=target,
                                                            negative=source, cfg=1.0)[0], euler),
                            latent.repeat(2, 1, 1, 1), steps, "stock euler, CFGGuider cfg 1, batch 2")
    ours = custom_per_step(host, model, lambda m, n: (call(host, "InvertEditUniEditFlow", model=m, source=source,
                                                           target=target, omega=5.0, guidance=1.0, mask="mean")[0],
                                                      euler), latent, steps, "UniEdit-Flow guider + euler")
    for row in (stock, ours):
        row["ratio"] = row["ops"] / stock["ops"]
    return [stock, ours]


@pytest.mark.parametrize("family,bound", [("flux-dev", 1.10), ("sd3", 1.10)])
def test_uni_edit_costs_one_call_of_two_rows_and_little_more_than_a_stock_step(host, family, bound):
    """Counted at the tiny models' depth (2 blocks, where the guider's ~30 operations weigh most); at the real
    models' depth the figures are in the row's docs (``uniedit_dispatch_rows(..., real_depth=True)``)."""
    stock, ours = uniedit_dispatch_rows(host, family)
    print(f"\n{family}: stock {stock['ops']:.0f} ops/step, UniEdit-Flow {ours['ops']:.0f} ({ours['ratio']:.3f}x)")
    assert ours["calls"] == stock["calls"] == 1.0 and ours["rows"] == stock["rows"] == [2]
    assert ours["ratio"] <= bound, ours
    assert ours["syncs"] <= stock["syncs"] + 1.0, ours

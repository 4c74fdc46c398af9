"""FlowAlign (``InvertEditFlowAlign``) on the tiny random SD3, Flux.1 and Qwen-Image models: what it costs (one
batched model call a step: 3 rows, 2 at guidance 1), exact properties (the same prompt twice gives the source back;
the host's Euler step of the guider's denoised prediction is the authors' update; the regulariser keeps more), and
parity with the authors' code (``FlowAlign/FlowAlign``'s ``SD3FlowAlign``, fetched at test time and run unchanged by
``tests/reference/flowalign_runner.py`` on the same weights, converted to diffusers). Its refusals are cases of the
bad-input table (``tests/host/bad_inputs_flowalign.py``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from invertedit.techniques.flow_align import align as A
from workshop.benchmarks.dispatch_count import counted_model
from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "flowalign_runner.py"
TOLERANCE = 5e-4   # relative: max |ours - reference| / max |reference|


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def raw_latent(seed: int = 0, family: str = "sd3") -> torch.Tensor:
    latent = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(seed))
    return latent.unsqueeze(2) if family == "qwen-image" else latent


def flow_align(host, model, clip, source=SOURCE, target=TARGET, guidance=13.5, regularization=0.01):
    return call(host, "InvertEditFlowAlign", model=model, source=encode(host, clip, source),
                target=encode(host, clip, target), guidance=guidance, regularization=regularization)[0]


def run(host, model, guider, latent, steps=4, seed=7, sigmas=None):
    if sigmas is None:
        sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    return call(host, "SamplerCustomAdvanced", noise=call(host, "RandomNoise", noise_seed=seed)[0], guider=guider,
                sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


def test_the_host_euler_step_of_the_denoised_prediction_is_the_authors_update():
    """``edit_denoised``'s Euler step ``x + (t' - t)(x - D) / t`` against the authors' line (sd3_edit.py):
    ``xt + (t' - t)(vp - vq) + 0.01 (qt - t vq - pt + t vp)``, the last step (to 0) included."""
    g = torch.Generator().manual_seed(0)
    x, x_src, eps, v_p, v_q = (torch.randn(1, 4, 3, 3, generator=g) for _ in range(5))
    for t, t_next, zeta in ((0.9, 0.8, 0.01), (0.31, 0.0, 0.01), (0.5, 0.45, 0.2)):
        q = A.noised_source(x_src, eps, torch.tensor(t))
        p = A.edit_input(x, q, x_src)
        theirs = x + (t_next - t) * (v_p - v_q) + zeta * (q - t * v_q - p + t * v_p)
        d = A.edit_denoised(x_src, p - t * v_p, q - t * v_q, torch.tensor(t), torch.tensor(t_next), zeta)
        ours = x + (t_next - t) * (x - d) / t
        assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()
    assert A.check_schedule(torch.tensor([1.0, 0.5, 0.5, 0.0])) is not None
    assert A.check_schedule(torch.tensor([1.0, 0.5, 0.0])) is None


@pytest.mark.parametrize("family", ["sd3", "flux-dev", "qwen-image"])
def test_one_batched_call_a_step_and_the_source_back_from_the_same_prompt_twice(host, tiny, family):
    model, clip, _ = tiny(family)
    latent = raw_latent(family=family)
    for guidance, width in ((13.5, 3), (1.0, 2)):   # target and source at p, source at q; at guidance 1 no source at p
        m, rows = counted_model(model, "APPLY_MODEL")
        out = run(host, m, flow_align(host, m, clip, guidance=guidance), latent)
        assert rows == [width] * 4, rows
        assert torch.isfinite(out).all() and not torch.allclose(out, latent, atol=1e-3)
    same = run(host, model, flow_align(host, model, clip, target=SOURCE), latent)
    assert torch.allclose(same, latent, atol=1e-5), (same - latent).abs().max()
    if family == "qwen-image":   # unpadded prompts of other token counts: a call each, the same 3 rows (as FlowEdit)
        m, rows = counted_model(model, "APPLY_MODEL")
        assert torch.isfinite(run(host, m, flow_align(host, m, clip, target="a cat"), latent)).all()
        assert rows == [1, 2] * 4, rows


def test_more_regularization_keeps_more_of_the_source(host, tiny):
    """The tooltip's direction: the regulariser pulls the edit's clean estimate to the source's (tiny SD3, 8
    steps)."""
    model, clip, _ = tiny("sd3")
    latent = raw_latent()
    moved = [(run(host, model, flow_align(host, model, clip, regularization=r), latent, steps=8) - latent).norm()
             for r in (0.0, 0.01, 0.1)]
    assert moved[0] > moved[1] > moved[2], moved


# ------------------------------------------------------------------ parity with the authors' code

@pytest.fixture(scope="module")
def reference(tmp_path_factory, skip_loudly, reference_copy):
    tmp = tmp_path_factory.mktemp("flowalign")
    checkout = reference_copy(tmp / "code", "FLOWALIGN", "FlowAlign/FlowAlign", ("diffusion",),
                              "diffusion/editing/sd3_edit.py")
    if checkout is None:
        skip_loudly("FLOWALIGN PARITY SKIPPED: the FlowAlign code was not found (set FLOWALIGN_PATH to a checkout of "
                    "github.com/FlowAlign/FlowAlign, or fetch it)")

    def run_reference(job: dict) -> dict:
        path = tmp / "job.pt"
        torch.save(job, path)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(RUNNER.parent)]))
        done = subprocess.run([sys.executable, str(RUNNER), str(path), str(tmp / "out.pt")], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
        return torch.load(tmp / "out.pt")
    return run_reference


def test_flowalign_matches_the_authors_code(host, tiny, reference):
    """SD3 (the authors' model), their run_edit.py's cfg 13.5 and their code's regulariser 0.01, 8 steps of SD3's
    schedule (shift 3)."""
    sys.path.insert(0, str(RUNNER.parent))
    from flow_diffusers import diffusers_transformer

    model, clip, _ = tiny("sd3")
    conds = {p: encode(host, clip, p) for p in (SOURCE, TARGET, "")}
    embeddings = {p: (c[0][0].float(), c[0][1]["pooled_output"].float()) for p, c in conds.items()}
    raw = raw_latent(seed=3)
    x_src = model.model.process_latent_in(raw)
    ref = reference({"transformer": diffusers_transformer(model), "x_src": x_src, "embeddings": embeddings,
                     "source": SOURCE, "target": TARGET, "NFE": 8, "cfg_scale": 13.5, "seed": 11})
    guider = call(host, "InvertEditFlowAlign", model=model, source=conds[SOURCE], target=conds[TARGET],
                  guidance=13.5, regularization=0.01)[0]
    ours = model.model.process_latent_in(run(host, model, guider, raw, seed=11, sigmas=ref["sigmas"].float()))
    theirs = ref["latent"]
    moved = (theirs - x_src).abs().max() / x_src.abs().max()
    err = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    print(f"\nFlowAlign sd3 vs FlowAlign/FlowAlign (NFE 8, cfg 13.5): max abs difference "
          f"{(ours - theirs).abs().max().item():.2e}, relative {err:.2e} (the edit moved the latent by {moved:.2f} of "
          f"its range)")
    assert moved > 1e-2
    assert err <= TOLERANCE


# ------------------------------------------------------------------ cost per step

def test_a_flowalign_step_costs_about_a_stock_step_on_the_same_rows(host):
    """Dispatched operations per step (``workshop/benchmarks/dispatch_count.py``) on the tiny SD3: FlowAlign at the
    authors' guidance (3 rows in one call) against the stock euler step on a batch of 3 under BasicGuider. Its own
    work is a fixed ~40 operations a step (the noisy copies, the guidance, the step's denoised prediction), so the
    tiny model's 2 blocks overstate the ratio (measured 277 against 236 operations, 1.17x, here; at SD3 medium's depth
    of 24 blocks 2081 against 2040, 1.02x, and 0.997x a FlowEdit step acting at every step, which runs 4 rows)."""
    from workshop.benchmarks import dispatch_count as D

    model, clip = D.flow_models(host, "sd3")
    source, target = encode(host, clip, SOURCE), encode(host, clip, TARGET)
    latent = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]

    def per_step(make, batch: int, label: str) -> dict:
        return D.custom_per_step(host, model, lambda m, n: (make(m, n), euler), latent.repeat(batch, 1, 1, 1), 2,
                                 label)

    stock = per_step(lambda m, n: call(host, "BasicGuider", model=m, conditioning=target)[0], 3, "stock")
    ours = per_step(lambda m, n: call(host, "InvertEditFlowAlign", model=m, source=source, target=target,
                                      guidance=13.5, regularization=0.01)[0], 1, "FlowAlign")
    ratio = ours["ops"] / stock["ops"]
    print(f"\nFlowAlign on the tiny SD3: {ours['ops']:.0f} ops a step, {ratio:.3f}x the stock step on 3 rows "
          f"({stock['ops']:.0f}); syncs {ours['syncs']:.1f} (stock {stock['syncs']:.1f})")
    assert ours["calls"] == stock["calls"] == 1.0 and ours["rows"] == stock["rows"] == [3]
    assert ratio <= BOUND_TINY_SD3, ratio
    assert ours["syncs"] <= stock["syncs"] + 1.0


#: FlowAlign's ops a step over stock's on the same rows, tiny SD3 (see the test's docstring for the measurement)
BOUND_TINY_SD3 = 1.20

"""Stable Flow (``InvertEditStableFlowInvert`` + ``InvertEditStableFlow``) on the tiny random Flux dev:

- parity with the authors' code (``snap-research/stable-flow``'s vendored diffusers: their
  ``FluxPipeline`` inverting with ``invert_image`` and editing with ``inverted_latent_list`` and the
  copy blocks, run unchanged by ``tests/reference/stable_flow_runner.py`` on the same weights):
  the inverted latent and the edit;
- where the source row stands at each step (``source_state``) is their loop's;
- the edit's cost per evaluation against a stock Euler evaluation of the same batch.
The reference code is fetched at test time (never committed); where absent the test skips loudly."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
SIZE, STEPS, TEXT = 16, 8, 512    # latent 16x16 (a 128 px image), 8 steps; their code takes 512 text tokens
TOLERANCE = 5e-4                  # relative: max |ours - theirs| / max |theirs|


@pytest.fixture(scope="module")
def flux(host):
    model, clip, vae = host.pack.demo.tiny_flow_models.build_tiny_flow_models("flux-dev", seed=0)
    # the authors' schedule: Flux's shift for the image's tokens, as ModelSamplingFlux sets it
    return call(host, "ModelSamplingFlux", model=model, max_shift=1.15, base_shift=0.5, width=SIZE * 8,
                height=SIZE * 8)[0]


def conditioning(net, seed: int, guidance: float) -> list:
    """A one-prompt CONDITIONING: a random 512-token T5 text and pooled vector (the encoders are not the method)."""
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(1, TEXT, net.params.context_in_dim, generator=g)
    return [[text, {"pooled_output": torch.randn(1, net.params.vec_in_dim, generator=g), "guidance": guidance}]]


def edit(host, model, raw, double: str, single: str):
    """Stable Flow Invert, Stable Flow, SamplerCustomAdvanced (euler) on the pair: (inversion, pair output)."""
    net = model.model.diffusion_model
    source, target = conditioning(net, 1, 1.0), conditioning(net, 2, 3.0)
    inv, sigmas = call(host, "InvertEditStableFlowInvert", model=model, latent={"samples": raw}, positive=source,
                       steps=STEPS, scheduler="simple", guidance=1.0, nudge=1.15)
    patched, pair, noise = call(host, "InvertEditStableFlow", model=model, inversion=inv, source=source, target=target,
                                double_blocks=double, single_blocks=single)
    guider = call(host, "BasicGuider", model=patched, conditioning=pair)[0]
    latent = call(host, "RepeatLatentBatch", samples={"samples": raw}, amount=2)[0]
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider,
               sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas, latent_image=latent)[0]
    return inv, model.model.process_latent_in(out["samples"]).float()


def test_the_source_row_follows_their_loop(host):
    """Their loop sets the source row after step i to ``inverted_latent_list[-i]``; the list holds the
    inversion's states from the image up (``[k]`` at sampling point ``steps - 1 - k``)."""
    source_state = host.pack.techniques.stable_flow.policy.source_state
    steps = 6
    listed = list(range(steps - 1, -1, -1))          # their list: the sampling point of each entry
    rows = [listed[-1]]                               # step 0: the last inverted latent, both rows
    for i in range(steps - 1):
        rows.append(listed[-i])                       # set after step i, seen by step i + 1
    assert [source_state(s, steps) for s in range(steps)] == rows


@pytest.fixture(scope="module")
def checkout(tmp_path_factory, reference_copy):
    tmp = tmp_path_factory.mktemp("stable_flow_parity")
    return reference_copy(tmp, "STABLEFLOW", "snap-research/stable-flow", ("src",), "run_stable_flow.py")


@pytest.fixture
def code(checkout, skip_loudly) -> Path:
    """Their code's copy, or a loud skip where it is absent."""
    if checkout is None:
        skip_loudly("STABLE FLOW PARITY SKIPPED: the Stable Flow code was not found (set STABLEFLOW_PATH to a checkout "
                    "of github.com/snap-research/stable-flow, or fetch it)")
    return checkout


def run_reference(checkout, name: str, job: dict) -> dict:
    runs = checkout / "runs"
    runs.mkdir(exist_ok=True)
    torch.save(job, runs / f"job_{name}.pt")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout / "src"), str(REFERENCE)]))
    done = subprocess.run([sys.executable, str(REFERENCE / "stable_flow_runner.py"), str(runs / f"job_{name}.pt"),
                           str(runs / f"out_{name}.pt")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
    return torch.load(runs / f"out_{name}.pt", weights_only=False)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def reference_job(model, source: list, target: list, **job) -> dict:
    sys.path.insert(0, str(REFERENCE))
    from flow_diffusers import diffusers_transformer

    transformer = diffusers_transformer(model)
    return {"state_dict": {k: v.detach().float().clone() for k, v in transformer.state_dict().items()},
            "config": dict(transformer.config), "size": SIZE * 8, "steps": STEPS,
            "source": (source[0][0], source[0][1]["pooled_output"]),
            "target": (target[0][0], target[0][1]["pooled_output"]), **job}


def test_a_generated_pair_matches_the_authors_code(host, flux, code):
    """Without an inversion (their ``infer_and_save``): one seeded noise in both rows, guidance 3.5."""
    model = flux
    net = model.model.diffusion_model
    source, target = conditioning(net, 1, 3.5), conditioning(net, 2, 3.5)
    outs = {}
    for blocks in (("0", "1"), ("1", "0")):
        patched, pair, noise = call(host, "InvertEditStableFlow", model=model, source=source, target=target,
                                    double_blocks=blocks[0], single_blocks=blocks[1], seed=42)
        empty = {"samples": torch.zeros(2, 16, SIZE, SIZE)}
        sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=STEPS, denoise=1.0)[0]
        out = call(host, "SamplerCustomAdvanced", noise=noise, guider=call(host, "BasicGuider", model=patched,
                                                                           conditioning=pair)[0],
                   sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas, latent_image=empty)[0]
        outs[blocks] = model.model.process_latent_in(out["samples"]).float()
        start = noise.generate_noise(empty)
    assert torch.equal(start[0], start[1])
    theirs = run_reference(code, "generated", reference_job(
        model, source, target, noise=start[:1].float(), guidance=(3.5, 3.5), mm_copy_blocks=[0],
        single_copy_blocks=[1]))["edit"].float()
    error, moved = rel(outs[("0", "1")], theirs), rel(outs[("1", "0")], theirs)
    print(f"\nStable Flow, a generated pair, vs their FluxPipeline ({STEPS} steps): {error:.2e} (copying double 1 and "
          f"single 0 instead: {moved:.2e})")
    assert moved > 10 * TOLERANCE and error <= TOLERANCE


def test_stable_flow_matches_the_authors_code(host, flux, code):
    model = flux
    net = model.model.diffusion_model
    raw = torch.randn(1, 16, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    inv, ours = edit(host, model, raw, "0", "1")
    other = edit(host, model, raw, "1", "0")[1]
    theirs = run_reference(code, "inverted", reference_job(
        model, conditioning(net, 1, 1.0), conditioning(net, 2, 3.0), latent=model.model.process_latent_in(raw).float(),
        guidance=(1.0, 3.0), mm_copy_blocks=[0], single_copy_blocks=[1], nudge=1.15))

    from flow_diffusers import unpack_latents
    inverted = rel(inv.trajectory[0].float(), unpack_latents(theirs["inverted"][-1].float(), SIZE, SIZE))
    error, moved = rel(ours[1], theirs["edit"][1].float()), rel(other[1], theirs["edit"][1].float())
    print(f"\nStable Flow vs their FluxPipeline ({STEPS} steps, {SIZE}x{SIZE}, copy blocks double 0 and single 1): "
          f"inverted latent {inverted:.2e}, edit {error:.2e} (relative; copying double 1 and single 0 instead: "
          f"{moved:.2e})")
    assert moved > 10 * TOLERANCE
    assert inverted <= TOLERANCE and error <= TOLERANCE


def test_the_source_guidance_is_chosen_on_the_guidance_s_device(host):
    """The host moves Flux's guidance to the latent's device after the APPLY_MODEL wrappers
    (``BaseModel._apply_model``): on a GPU run the wrapper gets it on the CPU, beside a latent on
    CUDA (the H100 lane: Flux Stable Flow and joint Prompt-to-Prompt crashed there). Here the
    guidance on the meta device stands for the other device."""
    kit = host.pack.hostkit
    row = kit.flow_pair.SourceRow(None, 1.0, "Stable Flow")
    options = {kit.run_state.RUN_KEY: kit.run_state.RunStates(), "cond_or_uncond": [0]}
    x = torch.zeros(2, 16, 4, 4)
    guidance = torch.full((2,), 3.0, device="meta")
    seen = row(lambda *args, **kwargs: kwargs["guidance"], x, torch.ones(2), transformer_options=options,
               guidance=guidance)
    assert seen.device.type == "meta" and seen.shape == (2,)
    cpu = row(lambda *args, **kwargs: kwargs["guidance"], x, torch.ones(2), transformer_options=options,
              guidance=torch.full((2,), 3.0))
    assert cpu.tolist() == [1.0, 3.0]   # the source row takes the source's guidance, the target keeps its own

"""TokenFlow parity with the authors' code (omerbt/TokenFlow: ``run_tokenflow_pnp.py``,
``tokenflow_utils.py``), run unchanged on the same tiny weights.

The reference is taken from its public repository at test time (``TOKENFLOW_PATH``: a checkout;
else the snapshot the ``fetch`` tool leaves at ``TOKENFLOW_MIRROR``, default
/work/.mirror/omerbt+TokenFlow/repo), never committed, and run in a subprocess
(``tests/reference/tokenflow_runner.py``); without it the test is skipped with one loud line.

The model is a tiny UNet of Stable Diffusion 1.5's own block layout (attention in the first three
levels, none in the lowest: the reference's ``register_time`` and PnP layers name those blocks by
index) at a 16x16 latent, 4 frames in batches of 2, 4 DDIM steps at cfg 7.5. The pack's side is its
nodes through the host's stock KSamplerAdvanced: DDIM Invert of the 4 frames (empty prompt), the
TokenFlow node, the sampler on the inverted LATENT; the reference gets the inversion's trajectory as
its per-timestep source latents (``preprocess.py``'s files) and the same start. The whole run is
compared: every step's keyframes drawn from the same seed, extended attention, Plug-and-Play's
query/key injection (2 of 4 steps), its feature injection (3 of 4 steps), the
nearest-neighbour propagation and the blend.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call, encode

pytest.importorskip("diffusers")

STEPS, FRAMES, BATCH, CFG, SEED = 4, 4, 2, 7.5, 3
TARGET = "a red square on a blue background"
TOLERANCE = 5e-4   # relative: max |ours - reference| / max |reference|
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "tokenflow_runner.py"


def sd15_blocks(host):
    """A tiny UNet with SD1.5's block layout (the reference indexes its blocks), and the sd1-layout text encoder."""
    tiny_models = host.pack.demo.tiny_models
    spec = tiny_models.SPECS["sd1-layout"]
    config = {**tiny_models._unet_base(4, [1, 1, 1, 1, 1, 1, 0, 0], 1, context_dim=64, linear=False),
              "channel_mult": [1, 2, 4, 4], "image_size": 64}
    return tiny_models.build_unet(dataclasses.replace(spec, name="sd15-blocks", unet_config=config), seed=0)


@pytest.fixture(scope="module")
def setup(host, tiny):
    model = sd15_blocks(host)
    _, clip, _ = tiny("sd1-layout")
    latent = torch.randn(FRAMES, 4, 16, 16, generator=torch.Generator().manual_seed(0)) * 5.0
    source = encode(host, clip, "")
    inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent={"samples": latent}, positive=source,
                       steps=STEPS, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    return model, clip, source, inv, lat


def ours(host, setup, features: float) -> torch.Tensor:
    model, clip, source, inv, lat = setup
    m = call(host, "InvertEditTokenFlow", model=model, inversion=inv, source=source, batch_size=BATCH,
             self_attention_injection=0.5, feature_injection=features, seed=SEED)[0]
    return call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=STEPS, cfg=CFG,
                sampler_name="ddim", scheduler="ddim_uniform", positive=encode(host, clip, TARGET),
                negative=encode(host, clip, ""), latent_image=lat, start_at_step=0, end_at_step=10000,
                return_with_leftover_noise="disable")[0]["samples"]


def reference(setup, bridge, reference_copy, skip_loudly, tmp: Path, features: float) -> dict:
    import subprocess
    import sys
    import os

    checkout = reference_copy(tmp / "code", "TOKENFLOW", "omerbt/TokenFlow",
                              ("run_tokenflow_pnp.py", "tokenflow_utils.py", "util.py"), "tokenflow_utils.py")
    if checkout is None:
        skip_loudly("TOKENFLOW PARITY SKIPPED: omerbt/TokenFlow's code was not found (set TOKENFLOW_PATH to a "
                    "checkout, or fetch github:omerbt/TokenFlow into /work/.mirror).")
    model, clip, source, inv, _ = setup
    sigmas = inv.sigmas.float()
    scale = model.model.latent_format.scale_factor
    to_ddpm = (1 + sigmas[:STEPS, None, None, None, None] ** 2).rsqrt()   # z_t = x / sqrt(1 + sigma^2)
    trajectory = inv.trajectory[:STEPS].float() * to_ddpm
    job = {"unet": bridge.diffusers_unet(model), "source": trajectory, "x": trajectory[0].clone(),
           "source_emb": source[0][0], "uncond_emb": source[0][0], "cond_emb": encode_emb(clip, TARGET),
           "steps": STEPS, "batch_size": BATCH, "guidance": CFG, "pnp_attn_t": 0.5, "pnp_f_t": features, "seed": SEED}
    tmp.mkdir(parents=True, exist_ok=True)
    torch.save(job, tmp / "job.pt")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(RUNNER.parent)]))
    done = subprocess.run([sys.executable, str(RUNNER), str(tmp / "job.pt"), str(tmp / "out.pt")], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, f"the reference run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    out = torch.load(tmp / "out.pt")
    out["scale"] = scale
    return out


def encode_emb(clip, text: str) -> torch.Tensor:
    return clip.encode_from_tokens_scheduled(clip.tokenize(text))[0][0]


def test_tokenflow_matches_the_authors_code(host, setup, bridge, reference_copy, skip_loudly, tmp_path):
    features = 0.8   # the paper's; feature injection at 3 of the 4 steps
    ref = reference(setup, bridge, reference_copy, skip_loudly, tmp_path / "ref", features)
    draws = host.pack.techniques.tokenflow.propagation.keyframe_draws(SEED, STEPS, FRAMES, BATCH)
    assert torch.equal(torch.stack(ref["keyframes"]) + torch.arange(0, FRAMES, BATCH), draws)
    got = ours(host, setup, features).float() * ref["scale"]
    want = ref["final"].float()
    error = float((got - want).abs().max() / want.abs().max())
    print(f"TokenFlow parity, feature_injection {features:g}: max relative error {error:.2e}")
    assert error < TOLERANCE

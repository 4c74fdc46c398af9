"""Imagic Optimize Embedding against the reference code, diffusers' community Imagic pipeline
(``examples/community/imagic_stable_diffusion.py``, ``ImagicStableDiffusionPipeline.train``), on
the same tiny SD1 weights.

The reference is not in the diffusers package: it is read at test time from a copy
(``IMAGIC_REFERENCE_PATH``) or from the diffusers snapshot the ``fetch`` tool leaves at
``DIFFUSERS_MIRROR`` (default /work/.mirror/huggingface+diffusers/repo), imported from a
temporary folder, never committed, and run unchanged. It imports ``accelerate`` (its
``Accelerator(mixed_precision="fp16")`` computes in float32 on a CPU); without either the test
is skipped with one loud line.

Both sides start from the same image latent (the reference's ``latent_dist.sample`` with the
same generator; the node gets it unscaled, as VAE Encode gives it), the same prompt and seed:
the reference draws its noise and timestep of each step from the global generator seeded with
the seed, the node from its own generator with that seed, in the same order (``randn``, then
``randint(1000)``), so both see the same noised latents. Compared: the noised latents the UNet
sees, each step's loss, and the optimised embedding after the steps.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call, encode

pytest.importorskip("diffusers")

PROMPT = "a red square on a blue background"
STEPS, LR, SEED, LATENT_SEED = 10, 1e-3, 1234, 7
REFERENCE = "examples/community/imagic_stable_diffusion.py"


def reference_source() -> str | None:
    path = os.environ.get("IMAGIC_REFERENCE_PATH")
    if path:
        return Path(path).read_text(encoding="utf-8") if Path(path).is_file() else None
    mirror = os.environ.get("DIFFUSERS_MIRROR", "/work/.mirror/huggingface+diffusers/repo")
    if not Path(mirror).is_dir():
        return None
    shown = subprocess.run(["git", "--git-dir", mirror, "show", f"HEAD:{REFERENCE}"], capture_output=True, text=True,
                           check=False)
    return shown.stdout if shown.returncode == 0 else None


@pytest.fixture(scope="module")
def reference(tmp_path_factory, skip_loudly):
    source = reference_source()
    if source is None:
        skip_loudly("IMAGIC PARITY SKIPPED: diffusers' community imagic_stable_diffusion.py not found (set "
                    "IMAGIC_REFERENCE_PATH to a copy, or DIFFUSERS_MIRROR to a diffusers git snapshot).")
    try:
        import accelerate  # noqa: F401  (the reference imports it)
    except ImportError:
        skip_loudly("IMAGIC PARITY SKIPPED: the reference imports accelerate, which is not installed "
                    "(pip install accelerate).")
    path = tmp_path_factory.mktemp("imagic_reference") / "imagic_reference.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("imagic_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["imagic_reference"] = module
    spec.loader.exec_module(module)
    return module


def test_embedding_optimisation_matches_the_reference(host, tiny, bridge, reference):
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer

    model, clip, vae = tiny("sd1")
    tokenizer = CLIPTokenizer.from_pretrained(str(host.path / "comfy" / "sd1_tokenizer"))
    tokenizer.model_max_length = 77
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False)
    dvae = bridge.diffusers_vae(vae)
    pipe = reference.ImagicStableDiffusionPipeline(
        vae=dvae, text_encoder=bridge.diffusers_text_encoder(clip), tokenizer=tokenizer,
        unet=bridge.diffusers_unet(model), scheduler=scheduler, safety_checker=None, feature_extractor=None)
    pipe.set_progress_bar_config(disable=True)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    seen = []
    pipe.unet.register_forward_hook(lambda m, args, out: seen.append((args[0].detach().clone(), int(args[1]),
                                                                      out.sample.detach().clone())))
    with torch.enable_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        pipe.train(PROMPT, image, generator=torch.Generator().manual_seed(LATENT_SEED), embedding_learning_rate=LR,
                   text_embedding_optimization_steps=STEPS, model_fine_tuning_optimization_steps=0)
    with torch.no_grad():
        latent = dvae.encode(image).latent_dist.sample(generator=torch.Generator().manual_seed(LATENT_SEED)) * 0.18215
    ref_orig, ref_opt = pipe.text_embeddings_orig.detach(), pipe.text_embeddings.detach()

    target = encode(host, clip, PROMPT)
    optimized, _, losses = call(host, "InvertEditImagicOptimizeEmbedding", model=model,
                                latent={"samples": latent / 0.18215}, target=target, steps=STEPS, learning_rate=LR,
                                seed=SEED)
    ours = optimized[0][0]

    # the same draws: the node's (noise, timestep) of each step, as the UNet sees them (DDPM latents)
    imagic = host.pack.techniques.imagic.losses
    g = torch.Generator().manual_seed(SEED)
    sigmas = host.pack.hostkit.lora_training.training_sigmas(model)
    assert len(seen) == STEPS
    ref_losses, latent_err = [], 0.0
    for noisy, t, eps in seen:
        noise, t_ours = imagic.draw(latent, g)
        assert t_ours == t
        s = sigmas[t]
        ddpm = (latent + s * noise) / torch.sqrt(1 + s ** 2)
        latent_err = max(latent_err, float((ddpm - noisy).abs().max() / noisy.abs().max()))
        ref_losses.append(float(torch.nn.functional.mse_loss(eps, noise)))
    loss_err = max(abs(a - b) / b for a, b in zip(losses["loss"], ref_losses))
    start_err = float((target[0][0] - ref_orig).abs().max() / ref_orig.abs().max())
    moved = float((ref_opt - ref_orig).abs().max())
    opt_err = float((ours - ref_opt).abs().max()) / moved
    opt_l2 = float((ours - ref_opt).norm() / (ref_opt - ref_orig).norm())
    print(f"\nImagic embedding, {STEPS} Adam steps at lr {LR:g}, timesteps {[t for _, t, _ in seen]}: start embedding "
          f"{start_err:.1e}, noised latents {latent_err:.1e}, per-step loss {loss_err:.1e} (relative); optimised "
          f"embedding: {opt_l2:.1e} (L2) and {opt_err:.1e} (max) of the reference's change (max {moved:.2e})")
    assert start_err < 1e-5 and latent_err < 1e-5
    assert loss_err < 1e-5
    assert moved > 0.5 * STEPS * LR   # the embedding did move: Adam's steps are about lr each
    # Adam divides by the gradient's running size, so a coordinate whose gradient is near zero turns
    # float32 noise into a visible difference: the L2 error is float noise, the worst coordinate more
    assert opt_l2 < 1e-4 and opt_err < 2e-3

"""DragDiffusion inside the host: the identity LoRA, the optimisation of the inverted latent, and the MODEL
for the final denoising (the math: ``drag.py``; the final denoising's attention: ``reference.py``).

- **Identity LoRA** (``train_lora``; the authors' ``utils/lora_utils.py``'s ``train_lora``): a rank-16 LoRA on
  the attention projections (to_q, to_k, to_v, to_out.0 of every self- and cross-attention layer; diffusers'
  ``LoRALinearLayer`` init: down normal with std 1 / rank, up zero, scale 1), 80 AdamW steps (lr 5e-4, weight
  decay 1e-2, no gradient clipping) on batches of 4 copies of the image's latent, each row its own noise and
  DDPM timestep uniform in [0, 1000), the noise-prediction loss with the image's prompt. Through the host's
  sampling path (``sampling.run_loop``), the pack's LoRA machinery (``hostkit/lora_training.py``) and training
  loop (``personalisation/training.py``). The code encodes the image through the VAE at each step and samples
  its posterior; here the LATENT is VAE Encode's once.
- **The drag** (``drag``; the code's ``run_drag`` and ``drag_diffusion_update``): the latent a DDIM inversion left
  at its start step (the code: step 15 of 50, inversion strength 0.7) is optimised in DDPM space
  (``z_t = x / sqrt(1 + sigma^2)``, the space the code's Adam steps in) with the decoder's features from a
  model call with gradients (``hostkit/gradients.with_weight_copies``; the features read by
  ``hostkit/decoder_features.py``), one call a step, in float32 where the model is (the code runs its UNet in
  float32 under fp16 autocast with a gradient scaler; here the host's dtype with the same scaler's loss scaling
  on a float32 latent). Prompt: the positive only, no guidance (the code's guidance scale 1).
- **The final denoising**: a clone of the MODEL whose self-attention, from a start layer (10 of SD1.5's 16),
  gives the dragged row the original row's keys and values (``reference.py``); the LATENT pair (original,
  dragged) goes into a stock sampler from the inversion's start step.
"""
from __future__ import annotations

import logging
import math

import torch

from ...hostkit.decoder_features import DecoderFeatures, decoder_entries, pixels_per_latent
from ...hostkit.errors import NodeInputError
from ...hostkit.fingerprint import conditioning_fingerprint
from ...hostkit.gradients import with_weight_copies
from ...hostkit.lora_training import (check_converged, lora_adapters, lora_state_dict, trainable, trainee,
                                      training_sigmas, with_lora)
from ...hostkit.sampling import check_interrupt, run_loop
from ...personalisation.denoising_loss import draw, step_loss
from ...personalisation.training import optimize
from .drag import (DragSettings, ddim_prev, grid_mask, mask_loss, motion_loss, reached, supervision_features,
                   supervision_points, supervision_size, track_points)

NODE = "DragDiffusion"
LORA_NODE = "DragDiffusion LoRA"
WEIGHT_DECAY = 1e-2          # the code's AdamW (utils/lora_utils.py)
LOSS_SCALE = 2.0 ** 16       # torch's GradScaler's initial scale (the code's drag loop runs under it)


def train_lora(model, latent: torch.Tensor, positive: list, steps: int, learning_rate: float, rank: int,
               batch_size: int, seed: int, v_prediction: bool):
    """The identity LoRA: returns (the input MODEL with it, the LoRA in the host's format, each step's loss)."""
    adapters = lora_adapters(model, rank, seed, attention_only=True)
    if steps == 0:
        lora = lora_state_dict(adapters)
        return with_lora(model, lora), lora, []
    found: dict = {}

    def loop(denoise, x, sigmas, step_callback):
        with torch.inference_mode(False), torch.enable_grad():
            x0 = x[:1].detach().clone()
            table = sigmas.detach().clone()
            params = trainable(adapters, x.device)
            generator = torch.Generator().manual_seed(seed)

            def loss(step: int) -> torch.Tensor:
                clean = x0.expand(batch_size, *x0.shape[1:])
                noise, t = draw(tuple(clean.shape), generator, len(table))

                def eps_fn(xt: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
                    denoised = denoise.part("positive", xt, sigma)
                    return (xt - step_callback.saw(denoised)) / sigma.reshape(-1, 1, 1, 1)

                return step_loss(eps_fn, clean, noise, table[t.to(table.device)], batch_size, 0.0, v_prediction)[0]

            found["losses"] = optimize(params, loss, steps, learning_rate, before_step=check_interrupt,
                                       after_step=lambda done, total, value: step_callback(done - 1, total, x0),
                                       weight_decay=WEIGHT_DECAY)
        return x

    run_loop(trainee(model, adapters), positive, None, 1.0, latent[:1], training_sigmas(model), loop)
    for adapter in adapters.values():
        adapter.requires_grad_(False)
    lora = lora_state_dict(adapters)
    check_converged(LORA_NODE, found["losses"], lora.values(), learning_rate, "0.0005")
    return with_lora(model, lora), lora, found["losses"]


def feature_entry(model, feature_idx: int) -> int:
    """The output block the decoder level ``feature_idx`` enters (``decoder_entries``), or a refusal naming
    the levels this UNet has."""
    entries = decoder_entries(model)
    if not 0 <= feature_idx < len(entries):
        raise NodeInputError(NODE, f"input 'feature_idx' is {feature_idx}, but this UNet's decoder can give levels 0 "
                                   f"to {len(entries) - 1} (0: the middle block; k: the k-th up block's output; its "
                                   f"last up block feeds no further block); the code's 3 is SD1.5's third of four "
                                   f"(640 channels at the latent's size): give {len(entries) - 1} for the level at the "
                                   f"latent's size.")
    return entries[feature_idx]


def drag(model, positive: list, inversion, pairs: list, editable: torch.Tensor | None, settings: DragSettings):
    """The code's ``drag_diffusion_update`` on ``inversion``'s latent: returns (the dragged LATENT tensor, the
    handles where tracking left them in the grid, the steps taken, the model calls made)."""
    latent = inversion.latent
    scale = pixels_per_latent(model)
    height, width = latent.shape[-2] * scale, latent.shape[-1] * scale
    size = supervision_size(height, width)
    handles, targets = supervision_points(pairs, height, width)
    m = with_weight_copies(model)
    m = m.clone() if m is model else m
    features = DecoderFeatures(feature_entry(model, settings.feature_idx))
    features.install(m)
    sigma, sigma_prev = (float(s) for s in inversion.sigmas[inversion.start_step:inversion.start_step + 2])
    found: dict = {}

    def loop(denoise, x, sigmas, step_callback):
        lift = math.sqrt(1 + sigma ** 2)   # sampler space x = z_t * lift
        sig = sigmas[:1]

        def call(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            xin = z * lift
            denoised = denoise.part("positive", xin.to(x.dtype), sig)
            eps = (xin - denoised.float()) / sigma
            return eps, supervision_features(features.features, size)

        with torch.inference_mode(False):
            z0 = (x.detach().float() / lift).clone()
            mask = None if editable is None else grid_mask(editable.to(x.device), size, tuple(x.shape[-2:]))
            if mask is not None and not bool(mask.any()):   # sampling-path-ok: once, the code's using_mask
                mask = None
            with torch.no_grad():
                eps0, feat0 = call(z0)
                prev0 = ddim_prev(eps0, z0, sigma, sigma_prev)
            z = z0.clone().requires_grad_(True)
            optimizer = torch.optim.Adam([z], lr=settings.lr)
            points, start, scaler, calls, done = [list(p) for p in handles], [list(p) for p in handles], LOSS_SCALE, 1, 0
            with torch.enable_grad():
                for step in range(settings.n_pix_step):
                    eps, feat = call(z)
                    calls += 1
                    if step != 0:
                        points = track_points(feat0, feat, points, start, settings.r_p)
                    if reached(points, targets, settings.reach):
                        break
                    loss = motion_loss(feat, points, targets, settings.r_m, settings.reach)
                    if mask is not None:
                        loss = loss + mask_loss(ddim_prev(eps, z, sigma, sigma_prev), prev0, mask, settings.lam)
                    optimizer.zero_grad()
                    (loss * scaler).backward()
                    if bool(torch.isfinite(z.grad).all()):   # sampling-path-ok: once per optimisation step (GradScaler)
                        z.grad.div_(scaler)
                        optimizer.step()  # sampling-path-ok: Adam's step count is a CPU tensor (no device wait)
                    else:
                        scaler *= 0.5   # GradScaler's back-off: the step is skipped
                    done = step + 1
                    step_callback(step, settings.n_pix_step, x,
                                  preview=lambda: (z.detach() * lift - sigma * eps.detach()).to(x.dtype))
            found.update(points=points, steps=done, calls=calls)
            return ((z.detach() - z0) * lift).to(x.dtype)   # the change (the SD families' latent scale is linear)

    change = run_loop(m, positive, None, 1.0, latent, inversion.sigmas[inversion.start_step:inversion.start_step + 2],
                      loop)
    dragged = latent + change.to(latent)   # the inverted latent itself where nothing moved
    if not bool(torch.isfinite(dragged).all()):   # sampling-path-ok: once, after the loop
        raise NodeInputError(NODE, f"the optimisation diverged (NaN or inf in the latent) with lr {settings.lr:g}; "
                                   f"lower 'lr' (the code's 0.01).")
    return dragged, found["points"], found["steps"], found["calls"]


def warn_other_prompt(positive: list, inversion) -> None:
    """Log where ``positive`` is not the prompt the inversion was made with (the code uses one prompt for both)."""
    made = inversion.fingerprint.get("positive")
    if made is not None and made != conditioning_fingerprint(positive):
        logging.warning("%s: 'positive' is not the prompt the inversion was made with; the code inverts, drags and "
                        "denoises with one prompt, so the reconstruction row may drift from the image.", NODE)

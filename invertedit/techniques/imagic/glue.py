"""Imagic inside the host (Kawar et al., CVPR 2023; the math is in ``losses.py``).

Both optimisations run through the host's own sampling path (``sampling.run_loop``: a
``CFGGuider`` whose sampler function is the optimisation loop), so the model is loaded, patched
and conditioned as for a KSampler run: LoRAs already on the MODEL, ControlNets in the
conditioning and SDXL's pooled and size conditioning all apply. ``HostDenoiser.part`` gives the
positive prediction; the noise prediction is ``(x - denoised) / sigma`` (for a v-prediction
model the eps that its v implies). Gradients run with inference mode off, on a clone whose
layers copy their weights at each forward (``gradients.with_weight_copies``).

The fine-tuning is a LoRA, not the paper's full fine-tune: one ``LoraDiff`` (the host's own
training adapter, ``comfy.weight_adapter.lora``, as ``comfy_extras/nodes_train.py`` uses it) on
every weight of two or more dimensions of the UNet (linear and convolution layers), the up
matrix Kaiming-initialised from the seed and the down matrix zero, so the LoRA starts as the
identity; alpha 1 (scale 1 / rank, the host's Train LoRA convention). The trained matrices are written in the host's LoRA format (``<module>.lora_up.weight``,
``<module>.lora_down.weight``, ``<module>.alpha``, what Train LoRA outputs and Save LoRA Weights /
Load LoRA read) and put on a clone of the input MODEL with ``add_patches`` (``comfy.lora``), as
LoraLoader does: stock samplers, further LoRAs and ControlNets work on it.

Why not the host's Train LoRA node: it minimises the error of the denoised latent (the eps loss
weighted by sigma^2, not the paper's), trains biases and norms too, reports through tqdm only,
cannot be interrupted between steps, and returns its training wrappers instead of patches.
"""
from __future__ import annotations

from typing import Callable

import torch

from ...hostkit.errors import NodeInputError, check_at_least, check_conditioning, check_finite, check_finite_tensor, check_made_with
from ...hostkit.fingerprint import model_stamp, tensor_fingerprint
from ...hostkit.gradients import with_weight_copies
from ...hostkit.lora_training import (check_converged, lora_adapters, lora_state_dict, trainable, trainee, training_sigmas,
                                      with_lora)
from ...hostkit.patches import wrap_runs
from ...hostkit.sampling import (HostDenoiser, ModelPatcher, check_interrupt, check_latent_size, check_model_family,
                                 run_loop, to_output)
from ...personalisation.training import optimize
from .losses import fixed_draws, mean_loss, random_timestep_loss


def check_inputs(node: str, model: ModelPatcher, samples: torch.Tensor, conditioning: list, name: str,
                 steps: int, learning_rate: float) -> torch.Tensor:
    """The checks both optimisations make; returns the embedding tensor of ``conditioning``."""
    check_model_family(model, node)
    check_finite(node, learning_rate=learning_rate)
    check_at_least(node, 0, steps=steps)
    if learning_rate < 0:
        raise NodeInputError(node, f"input 'learning_rate' is {learning_rate}; give 0 or more.")
    if samples.ndim != 4 or samples.shape[0] != 1:
        raise NodeInputError(node, f"input 'latent' has shape {tuple(samples.shape)}; Imagic edits one image: connect "
                                   f"the latent of a single image from VAE Encode (batch 1).")
    check_finite_tensor(node, "input 'latent'", samples,
                        "connect the image's latent from VAE Encode (a latent with NaN trains on noise).")
    check_latent_size(node, "latent", samples, model)
    embedding = conditioning_embedding(node, conditioning, name)
    check_conditioning(node, name, conditioning, model)
    return embedding


# The key, in an Imagic conditioning's entry, of what made it: Imagic Optimize Embedding's model
# stamp and its image latent's fingerprint. Fine-Tune, Interpolate and the fine-tuned model's
# sampling runs check it; the host's samplers ignore keys they do not know.
STAMP = "invertedit_imagic"
OPTIMIZE = "Imagic Optimize Embedding"


def imagic_stamp(model: ModelPatcher, samples: torch.Tensor) -> dict:
    return {**model_stamp(model), "latent": tensor_fingerprint(samples)}


def stamped(conditioning: list, stamp: dict) -> list:
    """``conditioning`` (one entry) marked as made from ``stamp``."""
    return [[conditioning[0][0], {**conditioning[0][1], STAMP: stamp}]]


def check_stamp(node: str, conditioning: list, name: str, model: ModelPatcher, samples: torch.Tensor) -> None:
    """An embedding Imagic Optimize Embedding made must be used with its model and image (one
    from CLIP Text Encode has no stamp: nothing to check)."""
    stamp = conditioning[0][1].get(STAMP)
    if stamp is None:
        return
    check_made_with(node, stamp, model, f"input 'model' is not the model input '{name}' was optimised with",
                    f"Connect the MODEL {OPTIMIZE} was given, or optimise the embedding again with this model.")
    if stamp.get("latent") != tensor_fingerprint(samples):
        raise NodeInputError(node, f"input 'latent' is not the image input '{name}' was optimised on; connect the "
                                   f"LATENT {OPTIMIZE} was given.")


def same_source(node: str, target: list, optimized: list) -> dict | None:
    """The stamp two Imagic conditionings share; refuses two from different optimisations."""
    a, b = target[0][1].get(STAMP), optimized[0][1].get(STAMP)
    if a is not None and b is not None and a != b:
        raise NodeInputError(node, f"inputs 'target' and 'optimized' come from different {OPTIMIZE} runs (another "
                                   f"model or image); connect the two outputs of one {OPTIMIZE}.")
    return b if b is not None else a


class StampGuard:
    """OUTER_SAMPLE wrapper of the fine-tuned model: a run whose conditioning carries an Imagic
    stamp must carry the one the model was fine-tuned with (Interpolate from the same optimisation)."""

    def __init__(self, stamp: dict):
        self.stamp = stamp

    def __call__(self, executor, *args, **kwargs):
        for conds in executor.class_obj.conds.values():
            for cond in conds:
                stamp = cond.get(STAMP)
                if stamp is not None and stamp != self.stamp:
                    raise NodeInputError("Imagic Fine-Tune", f"the run's conditioning comes from another {OPTIMIZE} "
                                         f"(another model or image) than the one this model was fine-tuned on; sample "
                                         f"Imagic Interpolate's output made from the same {OPTIMIZE}.")
        return executor(*args, **kwargs)


def conditioning_embedding(node: str, conditioning, name: str) -> torch.Tensor:
    """The one cross-attention embedding of a CONDITIONING of one prompt, checked."""
    if not isinstance(conditioning, list) or not all(isinstance(c, (list, tuple)) and len(c) == 2
                                                     and isinstance(c[0], torch.Tensor) for c in conditioning):
        raise NodeInputError(node, f"input '{name}' is a {type(conditioning).__name__}, not a CONDITIONING; connect "
                                   f"CLIP Text Encode or an Imagic node's conditioning output.")
    if len(conditioning) != 1:
        raise NodeInputError(node, f"input '{name}' holds {len(conditioning)} conditioning entries; Imagic optimises one "
                                   f"prompt's embedding: connect one CLIP Text Encode (not a Conditioning Combine).")
    embedding = conditioning[0][0]
    if embedding.ndim != 3 or embedding.shape[0] != 1:
        raise NodeInputError(node, f"input '{name}' is an embedding of shape {tuple(embedding.shape)}; one prompt's "
                                   f"[1, tokens, width] from CLIP Text Encode is needed.")
    check_finite_tensor(node, f"input '{name}'", embedding, "encode the prompt again.")
    return embedding


def _progress(step_callback: Callable, x: torch.Tensor) -> Callable[[int, int, float], None]:
    """After each step: the host's interrupt check and the progress bar, with the host's preview of the
    step's denoised prediction when its previews are on (``run_loop``'s callback; ``_eps`` shows it)."""
    return lambda done, total, loss: step_callback(done - 1, total, x)


def _eps(denoise: HostDenoiser, context: torch.Tensor | None = None, show: Callable = lambda d: d):
    """The noise prediction; ``show`` sees the model's denoised prediction (the progress' preview)."""
    def eps(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return (x - show(denoise.part("positive", x, sigma, context))) / sigma.reshape(-1, 1, 1, 1)
    return eps


def optimize_embedding(model: ModelPatcher, samples: torch.Tensor, target: list, steps: int, learning_rate: float,
                       seed: int) -> tuple[list, list[float]]:
    """Imagic's first stage: the target prompt's embedding optimised so that the frozen model
    reconstructs ``samples`` (a LATENT tensor). Returns the optimised CONDITIONING (the target's
    entry with its cross-attention embedding replaced, float32; SDXL's pooled output is kept) and
    the loss of each step. Each step is one UNet forward and one backward."""
    embedding = target[0][0]
    stamp = imagic_stamp(model, samples)
    if steps == 0:   # nothing to optimise: the target's embedding as it is (no model load)
        return stamped([[embedding.detach().clone(), dict(target[0][1])]], stamp), []
    found: dict = {}

    def loop(denoise, x, sigmas, step_callback):
        with torch.inference_mode(False), torch.enable_grad():
            x0 = x.detach().clone()
            table = sigmas.detach().clone()
            e = embedding.detach().to(device=x.device, dtype=torch.float32).clone().requires_grad_(True)
            loss = random_timestep_loss(_eps(denoise, e, step_callback.saw), x0, table,
                                        torch.Generator().manual_seed(seed))
            found["losses"] = optimize([e], loss, steps, learning_rate, before_step=check_interrupt,
                                       after_step=_progress(step_callback, x0))
            found["embedding"] = to_output(e.detach().clone())
        return x

    run_loop(with_weight_copies(model), target, None, 1.0, samples, training_sigmas(model), loop)
    check_converged(OPTIMIZE, found["losses"], [found["embedding"]], learning_rate, "0.001")
    return stamped([[found["embedding"], dict(target[0][1])]], stamp), found["losses"]


def reconstruction_loss(model: ModelPatcher, samples: torch.Tensor, conditioning: list, count: int = 32,
                        seed: int = 12345) -> float:
    """The Imagic loss of ``conditioning`` on ``samples`` averaged over ``count`` fixed draws
    (noise, timestep) from ``seed``: how well the model and embedding reconstruct the image (for
    tests and benchmarks; ``count`` UNet forwards, no gradients)."""
    found: dict = {}

    def loop(denoise, x, sigmas, step_callback):
        draws = fixed_draws(tuple(x.shape), count, seed, len(sigmas))
        found["loss"] = mean_loss(_eps(denoise), x, sigmas, draws)
        return x

    run_loop(model, conditioning, None, 1.0, samples, training_sigmas(model), loop)
    return found["loss"]


def fine_tune_lora(model: ModelPatcher, samples: torch.Tensor, optimized: list, steps: int, learning_rate: float,
                   rank: int, seed: int) -> tuple[ModelPatcher, dict[str, torch.Tensor], list[float]]:
    """Imagic's second stage as a LoRA: the model fine-tuned so that the fixed ``optimized``
    embedding reconstructs ``samples``. Returns (the input MODEL patched with the LoRA, the LoRA
    in the host's format, the loss of each step). Each step is one UNet forward and one backward;
    the draws (noise, timestep) come from ``seed`` as in the embedding optimisation."""
    adapters = lora_adapters(model, rank, seed)
    if steps == 0:   # the LoRA at its start (down zero): nothing to train
        lora = lora_state_dict(adapters)
        return with_lora(model, lora), lora, []
    training = trainee(model, adapters)
    found: dict = {}

    def loop(denoise, x, sigmas, step_callback):
        with torch.inference_mode(False), torch.enable_grad():
            x0 = x.detach().clone()
            table = sigmas.detach().clone()
            params = trainable(adapters, x.device)
            loss = random_timestep_loss(_eps(denoise, show=step_callback.saw), x0, table,
                                        torch.Generator().manual_seed(seed))
            found["losses"] = optimize(params, loss, steps, learning_rate, before_step=check_interrupt,
                                       after_step=_progress(step_callback, x0))
        return x

    run_loop(training, optimized, None, 1.0, samples, training_sigmas(model), loop)
    for adapter in adapters.values():
        adapter.requires_grad_(False)
    lora = lora_state_dict(adapters)
    check_converged("Imagic Fine-Tune", found["losses"], lora.values(), learning_rate, "0.0005")
    return guarded(with_lora(model, lora), optimized), lora, found["losses"]


def guarded(model: ModelPatcher, optimized: list) -> ModelPatcher:
    """The fine-tuned model, checking its runs' conditioning against ``optimized``'s stamp."""
    stamp = optimized[0][1].get(STAMP)
    if stamp is not None:
        wrap_runs(model, STAMP, StampGuard(stamp))
    return model

"""Textual Inversion inside the host (Gal et al., ICLR 2023; the math is in
``templates.py`` and ``personalisation/denoising_loss.py``'s loss).

The placeholder's vectors go into the host's own text encoder as the host puts an embedding file's
vectors there ("embedding:name" in a prompt: a tensor in the token list, ``SDClipModel.process_tokens``),
so the encoder sees them exactly as it will when the saved file is used. Each step encodes the
batch's captions with gradients (the encoder's weights copied at each forward, as the UNet's: both
may be inference tensors) and runs the UNet through the host's sampling path (a ``CFGGuider`` whose
sampler function is the optimisation loop) with that encoding swapped in.

The result is written as ``<name>.safetensors`` into the host's first embeddings folder, keyed by
the encoder (``clip_l`` for SD1.x, ``clip_h`` for SD2.x, ``clip_l`` and ``clip_g`` for SDXL: the keys
``load_embed`` looks for), so that "embedding:<name>" in any CLIP Text Encode prompt reads it. A file
of that name that this node did not write is never replaced.

SDXL, as diffusers' ``textual_inversion_sdxl.py`` trains it: the placeholder gets vectors in both
encoders' tables (each started from the initializer's row of its own table, both in one AdamW), the
UNet's context is both encoders' penultimate states side by side and its pooled vector is clip_g's
projected output of the same caption (so the new word also reaches the pooled conditioning, as the
script's ``text_embeds``), with the size conditioning of the images' own size (original and target
the image, crop at 0: the script's center-cropped images at their resolution).
"""
from __future__ import annotations

import torch

from ...hostkit.errors import NodeInputError, check_at_least, check_finite
from ...hostkit.fingerprint import model_fingerprint, tensor_fingerprint
from ...hostkit.gradients import with_weight_copies
from ...hostkit.learned_words import check_word, initializer_id, template_rows, with_vectors
from ...hostkit.lora_training import check_converged, training_sigmas
from ...hostkit.sampling import HostDenoiser, ModelPatcher, check_interrupt, check_latents, check_model_family, run_loop
from ...hostkit.text_encoders import encode_prompt, encoder_for_gradients, takes_pooled, text_encoders
from ...hostkit.training_state import KEEP_EVERY, resume_into, resumable_run
from ...personalisation.denoising_loss import batch_order, draw, step_loss
from ...personalisation.training import optimize
from .templates import flip_rows, item_draws

NODE = "Textual Inversion"
WEIGHT_DECAY = 1e-2   # textual_inversion.py's AdamW (no gradient clipping)


def check_inputs(model: ModelPatcher, clip, images, name: str, initializer: str, steps: int, learning_rate: float,
                 num_vectors: int, batch_size: int, caption: str = "") -> tuple[torch.Tensor, bool]:
    """Every check the node makes before training; returns (the images' latents, whether the model
    predicts v)."""
    family = check_model_family(model, NODE)
    check_finite(NODE, learning_rate=learning_rate)
    check_at_least(NODE, 0, steps=steps)
    check_at_least(NODE, 1, num_vectors=num_vectors, batch_size=batch_size)
    if learning_rate < 0:
        raise NodeInputError(NODE, f"input 'learning_rate' is {learning_rate}; give 0 or more (default 0.002).")
    encoders = text_encoders(clip, NODE)
    check_word(NODE, model, clip, name, encoders)
    for key, _ in encoders:
        initializer_id(clip, key, initializer, NODE)
    if caption and caption.count("{}") != 1:
        raise NodeInputError(NODE, f"input 'caption' is {caption!r}; give one caption with {{}} once, where the new "
                                   f"word goes (\"a red {{}} on a white background\"), or leave it empty for the "
                                   f"templates.")
    samples = check_latents(NODE, "images", images, model, "connect VAE Encode of the subject's 3-5 images (one batch, "
                                                           "all the same size).")
    return samples, family.parameterisation == "v"


def train_embedding(model: ModelPatcher, clip, images: torch.Tensor, initializer: str, steps: int, learning_rate: float,
                    num_vectors: int, batch_size: int, templates: tuple[str, ...], seed: int,
                    v_prediction: bool, state_name: str = "") -> tuple[dict[str, torch.Tensor], list[float]]:
    """The placeholder's ``[num_vectors, width]`` vectors in each text encoder (by tokenizer key)
    after ``steps`` AdamW steps on batches of ``batch_size`` images (each with a random one of
    ``templates`` and a random flip), and each step's loss. ``state_name``: the run's state file
    (``training_state.py``): kept while training, gone on from where it exists."""
    encoders = text_encoders(clip, NODE)
    rows, starts = [], []
    for key, encoder in encoders:
        token = initializer_id(clip, key, initializer, NODE)
        rows.append(template_rows(clip, key, templates, initializer, token, NODE))
        table = encoder.transformer.get_input_embeddings().weight
        starts.append(table[token].detach().float().expand(num_vectors, -1).clone())
    keys = [key for key, _ in encoders]
    state = resumable_run(NODE, state_name, lambda: dict(
        model=model_fingerprint(model)["weights.bf16"], images=tensor_fingerprint(images),
        text_encoders=[tensor_fingerprint(encoder.transformer.get_input_embeddings().weight) for _, encoder in encoders],
        initializer=initializer, templates=list(templates), num_vectors=num_vectors, learning_rate=learning_rate,
        batch_size=batch_size, seed=seed))
    start, moments = resume_into(state, {f"clip_{key}": v for key, v in zip(keys, starts)}, steps)
    if steps == start:
        return dict(zip(keys, starts)), []
    trainee = encoder_for_gradients(clip)
    trainee_encoders = text_encoders(trainee, NODE)
    pooled_in = takes_pooled(model)
    cond, pooled = trainee.encode_from_tokens(clip.tokenize(templates[0].format(initializer)),
                                              return_pooled=True)
    extra = {"pooled_output": pooled}
    if pooled_in:   # the script's size conditioning: the images' own size, original and target, crop at 0
        height, width = (8 * s for s in images.shape[-2:])
        extra.update(width=width, height=height, target_width=width, target_height=height, crop_w=0, crop_h=0)
    positive = [[cond, extra]]   # the guider's conditioning: each step swaps its encoding in
    found: dict = {}

    def loop(denoise: HostDenoiser, x, sigmas, step_callback):
        with torch.inference_mode(False), torch.enable_grad():
            x0 = x.detach().clone()
            sigma_table = sigmas.detach().clone()
            vectors = [start.to(x.device, copy=True).requires_grad_(True) for start in starts]
            generator = torch.Generator().manual_seed(seed)
            order = batch_order(x0.shape[0], 0, batch_size, generator)

            def draws() -> tuple[list[int], list[int], torch.Tensor, torch.Tensor, torch.Tensor]:
                picked = [i for i, _ in next(order)]
                chosen, flips = item_draws(len(picked), len(templates), generator)
                noise, t = draw((len(picked),) + tuple(x0.shape[1:]), generator, len(sigma_table))
                return picked, chosen, flips, noise, t

            for _ in range(start):   # the draws of the steps an earlier run did, without the model
                draws()
            if state is not None:
                state.track([f"clip_{key}" for key in keys], vectors)

            def loss(step: int) -> torch.Tensor:
                picked, chosen, flips, noise, t = draws()
                clean = flip_rows(x0[picked], flips)
                context, pooled = encode_prompt(trainee, trainee_encoders, [
                    [with_vectors(encoder_rows[c], v) for c in chosen] for encoder_rows, v in zip(rows, vectors)])
                swap = dict(context=context, pooled=pooled if pooled_in else None)

                def eps_fn(xt: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
                    # the prediction is the progress' preview when the host's previews are on
                    return (xt - step_callback.saw(denoise.part("positive", xt, sigma, **swap))
                            ) / sigma.reshape(-1, 1, 1, 1)

                return step_loss(eps_fn, clean, noise, sigma_table[t.to(sigma_table.device)], len(picked), 0.0,
                                 v_prediction)[0]

            found["losses"] = optimize(vectors, loss, steps, learning_rate, before_step=check_interrupt,
                                       after_step=lambda done, total, value: step_callback(done - 1, total, x0),
                                       weight_decay=WEIGHT_DECAY, start=start, moments=moments,
                                       keep=None if state is None else state.keep, keep_every=KEEP_EVERY)
            found["vectors"] = {key: v.detach().clone() for key, v in zip(keys, vectors)}
        return x

    run_loop(with_weight_copies(model), positive, None, 1.0, images, training_sigmas(model), loop)
    check_converged(NODE, found["losses"], list(found["vectors"].values()), learning_rate, "0.002")
    return found["vectors"], found["losses"]

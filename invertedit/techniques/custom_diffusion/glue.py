"""Custom Diffusion inside the host (Kumari et al., CVPR 2023; the math is in ``training.py``, the new
word's machinery in ``hostkit/learned_words.py``, the loss's draws in
``personalisation/denoising_loss.py``).

What is trained: the key and value projections of every cross-attention layer (``attn2.to_k``,
``attn2.to_v``: the script's default ``--freeze_model crossattn_kv``) as whole-matrix changes, and
the modifier word's vector. Where it goes, in forms the host reads:

- the changes as a LoRA of whole-weight differences (``diffusion_model.<module>.diff``, the host's
  "diff" patch): Save LoRA Weights writes it, LoraLoader / Load LoRA Model apply it, and the node's
  MODEL output already has it (``lora_training.with_lora``); the script's own
  ``pytorch_custom_diffusion_weights.bin`` holds the same matrices whole, for diffusers' processors;
- the word as ``models/embeddings/<name>.safetensors`` (Textual Inversion's file), read by
  "embedding:<name>" in any CLIP Text Encode prompt.

The augmented instance images are drawn for every step before the training starts and encoded by
the host's VAE in chunks (the script encodes each step's batch; the draws are the same ones, made
earlier, so the VAE is never loaded inside the sampling run); the class images are encoded once
each way round (flipped and not). VAE Encode's latents are the posterior's mean, as DreamBooth LoRA's
(the script samples the posterior). Each step is one UNet forward of the instance and class rows
together (their prompts stacked) and one backward, through the host's sampling path with the
encoding swapped in, the first token's key and value cut from the gradient by an ``attn2`` replace
patch on the trained clone only.
"""
from __future__ import annotations

from typing import Optional

import torch

from ...hostkit.attention_maps import host_attention
from ...hostkit.devices import intermediate_device
from ...hostkit.errors import NodeInputError, check_at_least, check_finite, check_finite_tensor
from ...hostkit.fingerprint import model_fingerprint, tensor_fingerprint
from ...hostkit.gradients import with_weight_copies
from ...hostkit.layout import transformer_blocks
from ...hostkit.learned_words import check_word, save_embedding, template_rows, with_vectors
from ...hostkit.lora_training import check_converged, training_sigmas, with_lora
from ...hostkit.patches import replace_attention
from ...hostkit.quantised import check_trainable
from ...hostkit.sampling import (HostDenoiser, ModelPatcher, check_interrupt, check_latent_size, check_model_family,
                                run_loop)
from ...hostkit.text_encoders import encode_prompt, encoder_for_gradients, takes_pooled, text_encoders
from ...hostkit.training_state import KEEP_EVERY, resume_into, resumable_run
from ...personalisation.denoising_loss import batch_order, draw, noised, v_weight
from ...personalisation.training import optimize
from .training import (PREFIXES, Placement, draw_placement, first_token_detached,
                       full_matrix_decay, masked_loss, place, smallest_mask)

NODE = "Custom Diffusion"
# train_custom_diffusion.py: AdamW weight decay, gradient-norm clipping, the trained projections
WEIGHT_DECAY, MAX_GRAD_NORM = 1e-2, 1.0
PROJECTIONS = ("attn2.to_k", "attn2.to_v")
ENCODE_CHUNK = 8   # images per VAE Encode call while preparing


def kv_modules(model: ModelPatcher) -> dict[str, torch.Size]:
    """The cross-attention key / value projections, ``diffusion_model.<module>`` -> weight shape."""
    out = {}
    for name, module in model.model.diffusion_model.named_modules():
        if name.endswith(PROJECTIONS) and getattr(module, "weight", None) is not None:
            out[f"diffusion_model.{name}"] = module.weight.shape
    return out


class KVChange:
    """Weight wrapper of one projection: its weight plus the trained change ``delta`` (none before
    the loop sets it). The first call keeps the weight it sees (float32) for the weight decay of the
    whole matrix. A plain callable, so the host moves none of it when it loads the model."""

    def __init__(self) -> None:
        self.delta: Optional[torch.Tensor] = None
        self.base: Optional[torch.Tensor] = None

    def __call__(self, weight: torch.Tensor) -> torch.Tensor:
        if self.delta is None:
            return weight
        if self.base is None:
            self.base = weight.detach().float().clone()
        return weight + self.delta.to(weight.dtype)


def _detaching_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, extra_options: dict) -> torch.Tensor:
    return host_attention(q, first_token_detached(k), first_token_detached(v), extra_options)


def check_images(name: str, images, fix: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] < 1 or images.shape[-1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise NodeInputError(NODE, f"input '{name}' is {shape}, not an IMAGE batch of RGB pictures; {fix}")
    if images.shape[1] != images.shape[2]:
        raise NodeInputError(NODE, f"input '{name}' is {images.shape[2]}x{images.shape[1]} px; the scale "
                                   f"augmentation works on square images (the script's 512x512): crop them square "
                                   f"(ImageCrop, or Upscale Image with crop 'center').")
    check_finite_tensor(NODE, f"input '{name}'", images, fix)
    return images


def check_inputs(model: ModelPatcher, clip, vae, instance_images, instance_prompt: str, name: str, initializer: str,
                 steps: int, learning_rate: float, prior_loss_weight: float, batch_size: int, augment: bool,
                 class_images, class_prompt: str) -> tuple[bool, torch.Tensor, Optional[torch.Tensor]]:
    """Every check the node makes before training; returns (whether the model predicts v, the
    instance images, the class images or None without the prior loss)."""
    family = check_model_family(model, NODE)
    check_trainable(NODE, model)
    check_finite(NODE, learning_rate=learning_rate, prior_loss_weight=prior_loss_weight)
    check_at_least(NODE, 0, steps=steps)
    check_at_least(NODE, 1, batch_size=batch_size)
    if learning_rate < 0 or prior_loss_weight < 0:
        raise NodeInputError(NODE, "inputs 'learning_rate' and 'prior_loss_weight' must be 0 or more (script: "
                                   "lambda 1; the README's learning rate 1e-5 x batch 2 x 2 with the prior = 4e-5).")
    encoders = text_encoders(clip, NODE)
    check_word(NODE, model, clip, name, encoders)
    for key, _ in encoders:
        initializer_token(clip, key, initializer)
    if not callable(getattr(vae, "encode", None)) or not hasattr(vae, "latent_channels"):
        raise NodeInputError(NODE, f"input 'vae' is a {type(vae).__name__}; connect the checkpoint's VAE.")
    channels = model.model.latent_format.latent_channels
    if vae.latent_channels != channels:
        raise NodeInputError(NODE, f"input 'vae' makes {vae.latent_channels}-channel latents; the model takes "
                                   f"{channels}: connect this checkpoint's VAE.")
    if not isinstance(instance_prompt, str) or instance_prompt.count("{}") != 1:
        raise NodeInputError(NODE, f"input 'instance_prompt' is {instance_prompt!r}; write {{}} once where the new "
                                   f"word goes, before the class noun (\"photo of a {{}} cat\": the script's "
                                   f"\"photo of a <new1> cat\").")
    instance = check_images("instance_images", instance_images, "connect Load Image of the subject's 3-5 photos "
                                                                "(one batch, square, all the same size).")
    size, factor = instance.shape[1], int(vae.downscale_ratio)
    if size % factor:
        raise NodeInputError(NODE, f"input 'instance_images' is {size} px, not a multiple of the VAE's {factor}; "
                                   f"resize to {size // factor * factor} or {(size // factor + 1) * factor} px.")
    if augment and smallest_mask(size, factor) == 0:
        side = next(s for s in range(factor, 1 << 13, factor) if smallest_mask(s, factor) > 0)
        raise NodeInputError(NODE, f"input 'instance_images' is {size} px: the scale augmentation shrinks a photo to a "
                                   f"third, which leaves no latent cell to learn from; give photos of at least {side} "
                                   f"px (the script's 512), or turn 'augment' off.")
    check_latent_size(NODE, "instance_images", instance.new_zeros(1, 1, size // factor, size // factor), model)
    if prior_loss_weight == 0:
        return family.parameterisation == "v", instance, None
    if class_images is None or not (class_prompt or "").strip():
        missing = "class_images" if class_images is None else "class_prompt"
        raise NodeInputError(NODE, f"input '{missing}' is empty and prior_loss_weight is {prior_loss_weight:g}; prior "
                                   f"preservation needs pictures of the subject's class and their prompt: draw them "
                                   f"with KSampler from the class prompt (\"cat\") on this model and VAE Decode them "
                                   f"(script: 200), or set prior_loss_weight to 0.")
    classes = check_images("class_images", class_images, "connect VAE Decode of the class pictures KSampler drew.")
    if classes.shape[1:] != instance.shape[1:]:
        raise NodeInputError(NODE, f"inputs 'instance_images' ({size} px) and 'class_images' ({classes.shape[1]}x"
                                   f"{classes.shape[2]} px) differ in size; draw the class pictures at the photos' size.")
    return family.parameterisation == "v", instance, classes


def initializer_token(clip, key: str, word: str) -> int:
    """The token the new word starts from: ``word``'s one token, or else the vocabulary entry spelt
    ``word`` (the script looks its initializer up as a token, ``tokenizer.encode([word])`` in the
    transformers it was written for: its default "ktn" is the piece "ktn", not "k" + "tn</w>")."""
    tokenizer = (getattr(clip.tokenizer, f"clip_{key}", None)   # SDXL's clip_l / clip_g
                 or getattr(clip.tokenizer, getattr(clip.tokenizer, "clip", ""), None))
    vocabulary = tokenizer.tokenizer.get_vocab() if tokenizer is not None else {}
    tokens = [t for t, _, w in clip.tokenize(word or "", return_word_ids=True)[key][0] if w > 0]
    if word and len(word.split()) == 1 and len(tokens) == 1:
        return int(tokens[0])
    if word in vocabulary:
        return int(vocabulary[word])
    raise NodeInputError(NODE, f"input 'initializer' is {word!r}, {len(tokens)} tokens and no entry of this "
                               f"tokenizer's vocabulary; give one rare word of one token (the script's \"ktn\").")


STAND_IN = "a"   # a one-token word that holds the new word's place while a prompt is tokenized


def _prompt_rows(clip, key: str, texts: tuple[str, ...]) -> list[tuple[list, int]]:
    """Each caption's token ids with a stand-in in the new word's place, and that place."""
    (token,) = [t for t, _, w in clip.tokenize(STAND_IN, return_word_ids=True)[key][0] if w > 0]
    for text in texts:
        if len(clip.tokenize(text.format(STAND_IN))[key]) != 1:
            raise NodeInputError(NODE, f"input 'instance_prompt' {text!r} is longer than one 75-token chunk; shorten it.")
    return template_rows(clip, key, texts, STAND_IN, token, NODE, "instance_prompt")


def _class_context(clip, encoders: list[tuple[str, torch.nn.Module]], prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The class prompt's context and pooled output (``encode_prompt``), without gradients."""
    rows = []
    for key, _ in encoders:
        tokens = clip.tokenize(prompt, return_word_ids=True)[key]
        if len(tokens) != 1:
            raise NodeInputError(NODE, "input 'class_prompt' is longer than one 75-token chunk; shorten it.")
        rows.append([[int(t) for t, _, _ in tokens[0]]])
    with torch.no_grad():
        context, pooled = encode_prompt(clip, encoders, rows)
    return context.detach(), pooled.detach()


def _encode(vae, images: torch.Tensor) -> torch.Tensor:
    """VAE Encode of ``images`` in chunks (raw latents, on the host's intermediate device)."""
    out = []
    for i in range(0, images.shape[0], ENCODE_CHUNK):
        check_interrupt()   # the set-up encodes every step's pictures: Cancel stops it within one VAE call
        out.append(vae.encode(images[i:i + ENCODE_CHUNK]).to(intermediate_device()).float())
    return torch.cat(out)


def _checked(steps: list):
    """``steps`` one by one, the host's interrupt checked before each (a set-up that grows with the steps)."""
    for items in steps:
        check_interrupt()
        yield items


def plan(instances: int, classes: int, steps: int, batch_size: int, size: int, augment: bool, hflip: bool,
         generator: torch.Generator) -> list[list[tuple[int, Placement, int, bool]]]:
    """Each step's items (instance index, its placement, class index or -1, class image flipped),
    drawn from ``generator``: the batches as the script's shuffled dataset gives them."""
    order = batch_order(instances, classes, batch_size, generator)
    steps_out = []
    for _ in range(steps):
        check_interrupt()
        items = []
        for i, c in next(order):
            placement = draw_placement(size, generator, augment, hflip)
            flip = classes > 0 and hflip and bool(torch.rand(1, generator=generator) < 0.5)  # sampling-path-ok: CPU draws, before training
            items.append((i, placement, c, flip))
        steps_out.append(items)
    return steps_out


def custom_diffusion(model: ModelPatcher, clip, vae, instance: torch.Tensor, instance_prompt: str, name: str,
                     initializer: str, classes: Optional[torch.Tensor], class_prompt: str, steps: int,
                     learning_rate: float, prior_loss_weight: float, batch_size: int, augment: bool, hflip: bool,
                     seed: int, v_prediction: bool, state_name: str = "",
                     ) -> tuple[ModelPatcher, dict[str, torch.Tensor], torch.Tensor, list[float]]:
    """Custom Diffusion as ``train_custom_diffusion.py`` trains it: ``steps`` AdamW steps (weight
    decay 1e-2 on the whole matrices, gradient norm clipped to 1) on the cross-attention keys and
    values and the modifier word's vector. Returns (the MODEL with the changes, the changes as a
    host LoRA of ``.diff`` keys, the word's vector ``[1, width]`` in each text encoder by tokenizer key,
    each step's loss). ``state_name``: the run's state file (``training_state.py``): kept while
    training, gone on from where it exists.

    On SDXL (not in the script, which trains SD1.x / SD2.x: this pack's extension, as diffusers'
    textual_inversion_sdxl.py extends Textual Inversion) the word has a vector in each of the two
    encoders, their states side by side make the context, clip_g's pooled output goes into the
    UNet's vector with the photos' size as the size conditioning."""
    encoders = text_encoders(clip, NODE)
    texts = tuple(prefix + instance_prompt for prefix in PREFIXES)
    rows = [_prompt_rows(clip, key, texts) for key, _ in encoders]
    # the word's start on its token table's device, as Textual Inversion keeps its vectors: the host's encoder
    # moves a prompt's embedding vectors to its device itself, and the file is moved to the CPU only to be written
    starts = {key: encoder.transformer.get_input_embeddings().weight[initializer_token(clip, key, initializer)]
              .detach().float().clone()[None] for key, encoder in encoders}
    pooled_in = takes_pooled(model)
    shapes = kv_modules(model)
    state = resumable_run(NODE, state_name, lambda: dict(
        model=model_fingerprint(model)["weights.bf16"], text_encoders=[tensor_fingerprint(
            encoder.transformer.get_input_embeddings().weight) for _, encoder in encoders],
        instance_images=tensor_fingerprint(instance),
        instance_prompt=instance_prompt, initializer=initializer,
        class_images=tensor_fingerprint(classes) if classes is not None else "none",
        class_prompt=class_prompt if classes is not None else "none", learning_rate=learning_rate,
        prior_loss_weight=prior_loss_weight, batch_size=batch_size, augment=augment, hflip=hflip, seed=seed))
    begun = {f"{k}.diff": torch.zeros(shape) for k, shape in shapes.items()} | {
        f"vectors.{key}": start for key, start in starts.items()}
    done, moments = resume_into(state, begun, steps)
    if steps == done:
        diff = {k: v for k, v in begun.items() if not k.startswith("vectors.")}
        return with_lora(model, diff), diff, starts, []
    size, factor = instance.shape[1], int(vae.downscale_ratio)
    prior = classes is not None
    generator = torch.Generator().manual_seed(seed)
    schedule = plan(instance.shape[0], classes.shape[0] if prior else 0, steps, batch_size, size, augment, hflip,
                    generator)
    pictures, masks = zip(*(place(instance[i], p, size, factor) for items in _checked(schedule) for i, p, _, _ in items))
    instance_latents, masks = _encode(vae, torch.stack(pictures)), torch.stack(masks)
    offsets = [0]
    for items in schedule:
        offsets.append(offsets[-1] + len(items))
    class_latents = _encode(vae, torch.cat([classes, classes.flip(2)])) if prior else None
    class_context, class_pooled = _class_context(clip, encoders, class_prompt) if prior else (None, None)

    changes = {k: KVChange() for k in shapes}
    trainee_model = with_weight_copies(model)
    trainee_model = trainee_model.clone() if trainee_model is model else trainee_model
    for k, change in changes.items():
        trainee_model.add_weight_wrapper(f"{k}.weight", change)
    for block, number in transformer_blocks(model):
        replace_attention(trainee_model, _detaching_attention, "attn2", block, number)
    trainee_clip = encoder_for_gradients(clip)
    trainee_encoders = text_encoders(trainee_clip, NODE)
    with torch.no_grad():   # the guider's conditioning: each step swaps its encoding in
        context, pooled = encode_prompt(clip, encoders, [[with_vectors(r[0], starts[key])]
                                                         for r, (key, _) in zip(rows, encoders)])
    extra = {}
    if pooled_in:   # the size conditioning of the photos' own size, original and target, crop at 0
        extra = dict(pooled_output=pooled.detach(), width=size, height=size, target_width=size, target_height=size,
                     crop_w=0, crop_h=0)
    positive = [[context.detach(), extra]]
    found: dict = {}

    def loop(denoise: HostDenoiser, x, sigmas, step_callback):
        with torch.inference_mode(False), torch.enable_grad():
            device = x.device
            table = sigmas.detach().clone()
            for k, change in changes.items():
                change.delta = begun[f"{k}.diff"].to(device, copy=True).requires_grad_(True)
            vectors = [starts[key].to(device, copy=True).requires_grad_(True) for key, _ in encoders]
            # made under the node's inference mode: normal tensors for the autograd graph
            # every step's pictures in the model's space on its device, once (the per-step work is indexing)
            pool = trainee_model.model.process_latent_in(instance_latents.clone()).to(device=device, dtype=x.dtype)
            valid = masks.clone().to(device)
            class_pool = (trainee_model.model.process_latent_in(class_latents.clone()).to(device=device, dtype=x.dtype)
                          if prior else None)
            class_picks = [torch.tensor([c + (classes.shape[0] if flip else 0) for _, _, c, flip in items],
                                        device=device) for items in schedule] if prior else None
            class_rows = class_context.clone() if prior else None
            class_vector = class_pooled.clone() if prior else None
            for step in range(done):   # the draws of the steps an earlier run did, without the model
                draw((len(schedule[step]) * (2 if prior else 1),) + tuple(pool.shape[1:]), generator, len(table))
            params = [change.delta for change in changes.values()] + vectors
            if state is not None:
                state.track(list(begun), params)

            def loss(step: int) -> torch.Tensor:
                items = schedule[step]
                count = len(items)
                rows_at = slice(offsets[step], offsets[step] + count)
                clean = pool[rows_at]
                if prior:
                    clean = torch.cat([clean, class_pool[class_picks[step]]])
                noise, t = draw(tuple(clean.shape), generator, len(table))
                sigma = table[t.to(table.device)].to(device=device, dtype=clean.dtype)
                context, pooled = encode_prompt(trainee_clip, trainee_encoders, [
                    [with_vectors(r[p.prefix], v) for _, p, _, _ in items] for r, v in zip(rows, vectors)])
                if prior:
                    context = torch.cat([context, class_rows.to(context).expand(count, -1, -1)])
                    pooled = torch.cat([pooled, class_vector.to(pooled).expand(count, -1)])
                xt = noised(clean, noise, sigma)
                # the prediction is the progress' preview (the first photo's) when the host's previews are on
                eps = (xt - step_callback.saw(denoise.part("positive", xt, sigma, context,
                                                           pooled=pooled if pooled_in else None))
                       ) / sigma.reshape(-1, 1, 1, 1)
                return masked_loss(eps, noise.to(eps.device), valid[rows_at], count, prior_loss_weight,
                                   v_weight(sigma) if v_prediction else None)[0]

            def after(done_steps: int, total: int, value: float) -> None:
                for change in changes.values():
                    full_matrix_decay(change.delta, change.base, learning_rate, WEIGHT_DECAY)
                step_callback(done_steps - 1, total, x)

            found["losses"] = optimize(params, loss, steps, learning_rate, before_step=check_interrupt,
                                       after_step=after, weight_decay=WEIGHT_DECAY, max_grad_norm=MAX_GRAD_NORM,
                                       start=done, moments=moments, keep=None if state is None else state.keep,
                                       keep_every=KEEP_EVERY)
            found["diff"] = {f"{k}.diff": change.delta.detach().float().cpu().clone()  # sampling-path-ok: the result, once
                             for k, change in changes.items()}
            found["vectors"] = {key: v.detach().clone() for (key, _), v in zip(encoders, vectors)}
        return x

    # the run's latent: one step's batch, so that the host loads the model for that much work
    seed_latent = torch.zeros(batch_size * (2 if prior else 1), model.model.latent_format.latent_channels,
                              size // factor, size // factor)
    run_loop(trainee_model, positive, None, 1.0, seed_latent, training_sigmas(model), loop)
    check_converged(NODE, found["losses"], list(found["diff"].values()) + list(found["vectors"].values()),
                    learning_rate, "4e-05")
    return with_lora(model, found["diff"]), found["diff"], found["vectors"], found["losses"]


def save_word(clip, name: str, vectors: dict[str, torch.Tensor], initializer: str):
    return save_embedding(clip, name, vectors, initializer, NODE)

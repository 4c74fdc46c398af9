"""DreamBooth LoRA and DreamBooth Fine-Tune inside the host (Ruiz et al., CVPR 2023; the loss with its prior
preservation is ``personalisation/denoising_loss.py``, the LoRA machinery ``hostkit/lora_training.py``, the
full fine-tune's differences ``hostkit/weight_diffs.py``). Both run one optimisation loop (``_fit``), as diffusers'
``train_dreambooth_lora.py`` and ``train_dreambooth.py`` share theirs.

The training runs through the host's own sampling path (``sampling.run_loop``: a ``CFGGuider``
whose sampler function is the optimisation loop) with the instance prompt as the positive and
the class prompt as the negative conditioning, so LoRAs already on the MODEL, ControlNets in the
conditioning and SDXL's pooled and size conditioning all apply to each branch as in a KSampler
run. The instance and class latents go in as one batch, so the host scales both into the model's
space alike. Each step is one forward of the instance rows (positive) and the class rows (negative)
together, the class rows taking the class prompt's context and pooled vector
(``HostDenoiser.pair``; two forwards where the two conditionings differ in more than their prompts:
areas, masks, ControlNet, hooks), and one backward.

With a CLIP and the prompts' texts, both train the text encoder too (the scripts'
``--train_text_encoder``: DreamBooth LoRA a LoRA of the same rank on the encoder's attention
projections, DreamBooth Fine-Tune every weight of its text model, in the same AdamW and
gradient-norm clipping): each step encodes the instance and class texts through the
adapted encoder (``TextEncoderTraining``) and gives the UNet their contexts, the instance rows the
instance text's and the class rows the class text's, in one forward.

The class images come in as a LATENT: draw them with the stock KSampler from the class prompt on
the same model (the reference script's ``num_class_images`` drawn by the frozen model), or encode
your own. The instance latents are VAE Encode's (the posterior mean; the reference samples the
posterior at each step, a small difference it documents nowhere as mattering).
"""
from __future__ import annotations

import torch

from ...hostkit import weight_diffs as full
from ...hostkit.errors import NodeInputError, check_at_least, check_conditioning, check_finite
from ...hostkit.fingerprint import conditioning_fingerprint, model_fingerprint, tensor_fingerprint
from ...hostkit.lora_training import (TEXT_PREFIX, check_converged, load_into, lora_adapters, lora_state_dict,
                                      text_lora_adapters, trainable, trainee, training_sigmas, with_lora, with_text_lora)
from ...hostkit.quantised import check_trainable
from ...hostkit.sampling import HostDenoiser, ModelPatcher, check_interrupt, check_latents, check_model_family, run_loop
from ...hostkit.text_encoders import (check_clip_width, encode_prompt, encoder_for_gradients, takes_pooled,
                                      text_encoders)
from ...hostkit.training_state import KEEP_EVERY, TrainingState, resume_into, resumable_run
from ...hostkit.weight_diffs import check_memory
from ...personalisation.denoising_loss import batch_order, draw, step_loss
from ...personalisation.training import optimize

NODE = "DreamBooth LoRA"
FULL_NODE = "DreamBooth Fine-Tune"
# diffusers' train_dreambooth_lora.py: AdamW weight decay and gradient-norm clipping
WEIGHT_DECAY, MAX_GRAD_NORM = 1e-2, 1.0


def check_inputs(model: ModelPatcher, instance_images, instance_prompt, class_images, class_prompt, steps: int,
                 learning_rate: float, rank: int | None, prior_loss_weight: float, batch_size: int, node: str = NODE,
                 clip=None):
    """Every check the node makes before loading the model; returns (instance, class) latents
    (class None when the prior loss is off). ``rank`` None: the full fine-tune (``node``
    FULL_NODE), which also checks the device's memory (with ``clip``, for its text model too)."""
    family = check_model_family(model, node)
    check_trainable(node, model)
    check_finite(node, learning_rate=learning_rate, prior_loss_weight=prior_loss_weight)
    check_at_least(node, 0, steps=steps)
    check_at_least(node, 1, batch_size=batch_size)
    if rank is not None:
        check_at_least(node, 1, rank=rank)
    if learning_rate < 0 or prior_loss_weight < 0:
        raise NodeInputError(node, "inputs 'learning_rate' and 'prior_loss_weight' must be 0 or more "
                                   "(paper: lambda 1; diffusers' READMEs: learning rate 1e-4 for the LoRA, 5e-6 for "
                                   "the full fine-tune).")
    if rank is None:
        check_memory(node, model, clip, instead="DreamBooth LoRA (rank 4 trains a few MB)")   # with a CLIP, its text model's too
    instance = check_latents(node, "instance_images", instance_images, model,
                             "connect VAE Encode of the subject's 3-5 photos (one batch, all the same size).")
    check_conditioning(node, "instance_prompt", instance_prompt, model)
    if prior_loss_weight == 0:
        return family, instance, None
    if class_images is None or class_prompt is None:
        missing = "class_images" if class_images is None else "class_prompt"
        raise NodeInputError(node, f"input '{missing}' is not connected and prior_loss_weight is {prior_loss_weight:g}; "
                                   f"prior preservation needs images of the subject's class and their prompt: draw "
                                   f"them with KSampler from the class prompt (\"a dog\") on this model, batch 100-200 "
                                   f"(paper), and connect both, or set prior_loss_weight to 0 to train without it.")
    classes = check_latents(node, "class_images", class_images, model,
                            "connect the LATENT KSampler drew from the class prompt on this model (or VAE Encode of "
                            "class photos).")
    if classes.shape[1:] != instance.shape[1:]:
        raise NodeInputError(node, f"inputs 'instance_images' {tuple(instance.shape[1:])} and 'class_images' "
                                   f"{tuple(classes.shape[1:])} differ in size; draw the class images at the instance "
                                   f"images' size (Empty Latent Image of the same width and height).")
    check_conditioning(node, "class_prompt", class_prompt, model)
    return family, instance, classes


class TextEncoderTraining:
    """The text encoder's side of DreamBooth with ``--train_text_encoder`` (diffusers'
    ``train_dreambooth_lora.py``: a LoRA; ``train_dreambooth.py``: every weight): ``wrappers`` (the
    CLIP's parameter name -> a weight wrapper: ``text_lora_adapters``' adapters or
    ``weight_diffs.text_weight_diffs``' differences) on a clone of ``clip`` that takes gradients,
    ``parameters(device)`` their trainable tensors, and the instance and class texts' token rows,
    encoded at every step through it (``contexts``) as CLIP Text Encode encodes them (SDXL: both
    encoders, clip_g's pooled output into the conditioning vector, as the SDXL script's ``text_embeds``)."""

    def __init__(self, clip, wrappers: dict, parameters, instance_text: str, class_text: str | None, pooled_in: bool):
        self.parameters, self.pooled_in = parameters, pooled_in
        self.index: dict = {}
        self.trainee = encoder_for_gradients(clip)
        for name, wrapper in wrappers.items():
            self.trainee.patcher.add_weight_wrapper(name, wrapper)
        self.encoders = text_encoders(self.trainee, NODE)
        texts = [instance_text] + ([class_text] if class_text is not None else [])
        self.rows = [[[int(t) for t, _, _ in clip.tokenize(text, return_word_ids=True)[key][0]] for text in texts]
                     for key, _ in self.encoders]

    def params(self) -> list[torch.nn.Parameter]:
        """The trained tensors as parameters on the encoder's device (after its load)."""
        self.trainee.load_model()
        return self.parameters(self.trainee.patcher.load_device)

    def contexts(self, instances: int, classes: int) -> dict:
        """``part``'s swap for a batch of ``instances`` instance rows then ``classes`` class rows: each
        row's context (and SDXL's pooled vector) from one differentiable encoding of the two texts."""
        context, pooled = encode_prompt(self.trainee, self.encoders, self.rows)
        key = (instances, classes, context.device)
        if key not in self.index:   # made once per batch layout, not per step
            self.index[key] = torch.tensor([0] * instances + [1] * classes, device=context.device)
        index = self.index[key]
        return dict(context=context.index_select(0, index),
                    pooled=pooled.index_select(0, index.to(pooled.device)) if self.pooled_in else None)


def check_text_inputs(model: ModelPatcher, clip, instance_text: str, class_text: str, instance_prompt: list,
                      class_prompt: list | None, node: str = NODE) -> tuple[str, str | None] | None:
    """The DreamBooth nodes' text-encoder inputs: None without a CLIP (the texts must then be empty);
    with one, (instance text, class text or None without the prior loss), each one chunk of tokens
    and encoding, with this CLIP, to the CONDITIONING given for it (so that the run trains the
    encoder that made the prompts)."""
    if clip is None:
        given = [name for name, text in (("instance_text", instance_text), ("class_text", class_text)) if text]
        if given:
            raise NodeInputError(node, f"input '{given[0]}' is given but 'clip' is not connected; connect the "
                                       f"checkpoint's CLIP to train its text encoder too (the script's "
                                       f"--train_text_encoder), or leave the texts empty.")
        return None
    encoders = text_encoders(clip, node)
    check_clip_width(node, model, encoders)
    texts = [("instance_text", instance_text, "instance_prompt", instance_prompt)]
    if class_prompt is not None:
        texts.append(("class_text", class_text, "class_prompt", class_prompt))
    for name, text, prompt_name, prompt in texts:
        if not (text or "").strip():
            raise NodeInputError(node, f"input '{name}' is empty and 'clip' is connected; give the text "
                                       f"'{prompt_name}' was encoded from (\"a sks dog\" / \"a dog\"): the run "
                                       f"encodes it at every step through the text encoder it trains.")
        tokens = clip.tokenize(text)
        if any(len(chunks) != 1 for chunks in tokens.values()):
            raise NodeInputError(node, f"input '{name}' is longer than one chunk of 77 tokens; give a shorter prompt.")
        made = clip.encode_from_tokens(tokens, return_pooled=True)[0]
        emb = prompt[0][0]
        if len(prompt) != 1 or emb.shape[1:] != made.shape[1:] or not torch.allclose(
                emb.to(made), made, rtol=1e-3, atol=1e-3 * float(made.abs().max())):  # sampling-path-ok: once, a check
            raise NodeInputError(node, f"input '{prompt_name}' is not CLIP Text Encode of '{name}' ({text!r}) with "
                                       f"the connected CLIP; encode {name} with this CLIP and connect it as "
                                       f"{prompt_name}.")
    return instance_text, class_text if class_prompt is not None else None


def _text_settings(clip, texts: tuple[str, str | None] | None) -> dict:
    """What a run's state must match when it trains the text encoder too: the encoders' token tables
    and the two texts (nothing without)."""
    if texts is None:
        return {}
    return {"text_encoder": dict(tables=[tensor_fingerprint(encoder.transformer.get_input_embeddings().weight)
                                         for _, encoder in text_encoders(clip, NODE)],
                                 instance_text=texts[0], class_text=texts[1] or "")}


def _state(node: str, name: str, model: ModelPatcher, instance: torch.Tensor, instance_prompt: list,
           classes: torch.Tensor | None, class_prompt: list | None, resume: dict | None = None,
           **settings) -> TrainingState | None:
    """The run's state file (``training_state.py``) where ``name`` is given: what must match for a
    run to resume from it (the model's weights, the images, the prompts, the LoRA the run started
    from and ``settings``)."""
    def made() -> dict:
        weights = model_fingerprint(model)
        start = "none" if resume is None else tensor_fingerprint(
            torch.cat([resume[k].reshape(-1).float() for k in sorted(resume)]))
        return dict(settings, model=weights["weights.bf16"], patches=weights["patches"], resume=start,
                    instance_images=tensor_fingerprint(instance),
                    instance_prompt=conditioning_fingerprint(instance_prompt),
                    class_images=tensor_fingerprint(classes) if classes is not None else "none",
                    class_prompt=conditioning_fingerprint(class_prompt) if classes is not None else "none")

    return resumable_run(node, name, made)


def _fit(trained: ModelPatcher, params, instance: torch.Tensor, instance_prompt: list, classes: torch.Tensor | None,
         class_prompt: list | None, steps: int, learning_rate: float, prior_loss_weight: float, batch_size: int,
         seed: int, v_prediction: bool, base=None, state: TrainingState | None = None, keys: list[str] = (),
         start: int = 0, moments: list | None = None, text: TextEncoderTraining | None = None) -> list[float]:
    """DreamBooth's optimisation (both scripts' loop): ``steps`` AdamW steps (weight decay 1e-2,
    gradient norm clipped to 1) of ``params(device)``, the parameters ``trained`` runs with, on batches
    of ``batch_size`` instance latents (and as many class latents with the prior loss); returns each
    step's loss. ``base(device)``: the frozen weights the parameters are differences from (the full
    fine-tune's decay acts on the whole weight). ``state``: the run's state file, written under
    ``keys`` (one per parameter); ``start`` steps were done by the run that wrote it, with Adam's
    ``moments``: their draws are replayed and the run goes on from there. ``text``: the text encoder
    trained too (its parameters after ``params``'; each step's contexts from it)."""
    count = instance.shape[0]
    prior = classes is not None
    batch = instance if not prior else torch.cat([instance, classes.to(instance)])
    found: dict = {}

    def loop(denoise: HostDenoiser, x, sigmas, step_callback):
        with torch.inference_mode(False), torch.enable_grad():
            x0 = x.detach().clone()
            table = sigmas.detach().clone()
            trained_params = params(x.device) + ([] if text is None else text.params())
            frozen = None if base is None else base(x.device)   # once per run, after the host's load
            generator = torch.Generator().manual_seed(seed)
            order = batch_order(count, classes.shape[0] if prior else 0, batch_size, generator)
            for _ in range(start):   # the draws of the steps an earlier run did, without the model
                pairs = next(order)
                draw((len(pairs) * (2 if prior else 1),) + tuple(x0.shape[1:]), generator, len(table))
            if state is not None:
                state.track(keys, trained_params)

            def loss(step: int) -> torch.Tensor:
                pairs = next(order)
                rows = [i for i, _ in pairs] + ([count + c for _, c in pairs] if prior else [])
                clean = x0[rows]
                noise, t = draw(tuple(clean.shape), generator, len(table))
                swap = None if text is None else text.contexts(len(pairs), len(rows) - len(pairs))

                def eps_fn(xt: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
                    if swap is not None:   # every row its text's context, from the encoder being trained
                        denoised = denoise.part("positive", xt, sigma, **swap)
                    else:
                        denoised = (denoise.pair(xt, sigma, xt.shape[0] // 2) if prior
                                    else denoise.part("positive", xt, sigma))
                    # the prediction is the progress' preview (the first instance row) when the host's are on
                    return (xt - step_callback.saw(denoised)) / sigma.reshape(-1, 1, 1, 1)

                return step_loss(eps_fn, clean, noise, table[t.to(table.device)], len(pairs), prior_loss_weight,
                                 v_prediction)[0]

            found["losses"] = optimize(trained_params, loss, steps, learning_rate, before_step=check_interrupt,
                                       after_step=lambda done, total, value: step_callback(done - 1, total, x0),
                                       weight_decay=WEIGHT_DECAY, max_grad_norm=MAX_GRAD_NORM,
                                       base=None if frozen is None else (lambda: frozen), start=start,
                                       moments=moments, keep=None if state is None else state.keep,
                                       keep_every=KEEP_EVERY)
        return x

    run_loop(trained, instance_prompt, class_prompt if prior else None, 1.0, batch, training_sigmas(trained), loop)
    return found["losses"]


def dreambooth_lora(model: ModelPatcher, instance: torch.Tensor, instance_prompt: list, classes: torch.Tensor | None,
                    class_prompt: list | None, steps: int, learning_rate: float, rank: int, prior_loss_weight: float,
                    batch_size: int, seed: int, v_prediction: bool, resume: dict | None = None,
                    state_name: str = "", clip=None, texts: tuple[str, str | None] | None = None,
                    ) -> tuple[ModelPatcher, dict[str, torch.Tensor], list[float], object]:
    """DreamBooth as a LoRA on the attention projections (diffusers' ``train_dreambooth_lora.py``):
    ``steps`` AdamW steps (weight decay 1e-2, gradient norm clipped to 1) on batches of
    ``batch_size`` instance latents (and as many class latents with the prior loss). Returns (the
    input MODEL with the LoRA, the LoRA in the host's format, each step's loss, the CLIP: ``clip``
    with the text encoder's LoRA, as given, or None). ``resume``: a LoRA of an earlier run to start
    from (the optimiser's moments start afresh). ``state_name``: the run's state file
    (``training_state.py``): kept while training, resumed from where it exists (the moments too:
    the run ends as an unbroken one would). ``clip`` and ``texts`` (the instance and class texts,
    ``check_text_inputs``): the text encoder trained too (the script's ``--train_text_encoder``),
    its LoRA's keys ``text_encoders.…`` in the same LoRA, after the UNet's."""
    generator = torch.Generator().manual_seed(seed)
    unet_adapters = lora_adapters(model, rank, seed, attention_only=True, generator=generator)
    text_adapters = {} if texts is None else text_lora_adapters(clip, NODE, rank, generator)
    adapters = {**unet_adapters, **text_adapters}
    if resume is not None:
        load_into(NODE, adapters, resume, "resume")
    state = _state(NODE, state_name, model, instance, instance_prompt, classes, class_prompt, resume, rank=rank,
                   learning_rate=learning_rate, prior_loss_weight=prior_loss_weight, batch_size=batch_size, seed=seed,
                   **_text_settings(clip, texts))
    tensors = {f"{name}.lora_{part}.weight": getattr(adapter, f"lora_{part}").weight
               for name, adapter in adapters.items() for part in ("up", "down")}
    start, moments = resume_into(state, tensors, steps)

    def result(lora: dict, losses: list[float]):
        return with_lora(model, lora), lora, losses, (None if clip is None else
                                                       with_text_lora(clip, lora) if texts is not None else clip)

    if steps == start:
        return result(lora_state_dict(adapters), [])
    text = None if texts is None else TextEncoderTraining(
        clip, {f"{name[len(TEXT_PREFIX):]}.weight": adapter for name, adapter in text_adapters.items()},
        lambda device: trainable(text_adapters, device), texts[0], texts[1], takes_pooled(model))
    losses = _fit(trainee(model, unet_adapters), lambda device: trainable(unet_adapters, device), instance,
                  instance_prompt, classes, class_prompt, steps, learning_rate, prior_loss_weight, batch_size, seed,
                  v_prediction, state=state, keys=list(tensors), start=start, moments=moments, text=text)
    for adapter in adapters.values():
        adapter.requires_grad_(False)
    lora = lora_state_dict(adapters)
    check_converged(NODE, losses, lora.values(), learning_rate, "0.0001")
    return result(lora, losses)


def dreambooth_full(model: ModelPatcher, instance: torch.Tensor, instance_prompt: list, classes: torch.Tensor | None,
                    class_prompt: list | None, steps: int, learning_rate: float, prior_loss_weight: float,
                    batch_size: int, seed: int, v_prediction: bool, state_name: str = "", clip=None,
                    texts: tuple[str, str | None] | None = None,
                    ) -> tuple[ModelPatcher, dict[str, torch.Tensor], list[float], object]:
    """DreamBooth as a full fine-tune of the UNet (diffusers' ``train_dreambooth.py``: every UNet
    parameter, AdamW weight decay 1e-2 on the whole weight, gradient norm clipped to 1), kept as a
    difference from the frozen weights (``hostkit/weight_diffs.py``). Returns (the input MODEL with the
    difference, the difference in the host's "diff" patch format, each step's loss, the CLIP as
    ``dreambooth_lora``'s). ``state_name``: as ``dreambooth_lora``'s (the file holds the UNet's size
    three times over, float32). ``clip`` and ``texts``: every weight of the text encoder trained too
    (the script's ``--train_text_encoder``), its differences under ``text_encoders.…`` in the patch."""
    diffs = full.weight_diffs(model)
    text_diffs = {} if texts is None else full.text_weight_diffs(clip, FULL_NODE)
    state = _state(FULL_NODE, state_name, model, instance, instance_prompt, classes, class_prompt,
                   learning_rate=learning_rate, prior_loss_weight=prior_loss_weight, batch_size=batch_size, seed=seed,
                   **_text_settings(clip, texts))
    every = {**diffs, **text_diffs}
    start, moments = resume_into(state, {key: diff.diff for key, diff in every.items()}, steps)

    def result(patch: dict, losses: list[float]):
        return with_lora(model, patch), patch, losses, (None if clip is None else
                                                         with_text_lora(clip, patch) if texts is not None else clip)

    if steps == start:
        return result(full.diff_state_dict(every), [])
    text = None if texts is None else TextEncoderTraining(
        clip, {key[len(TEXT_PREFIX):]: diff for key, diff in text_diffs.items()},
        lambda device: full.trainable(text_diffs, device), texts[0], texts[1], takes_pooled(model))
    losses = _fit(full.trainee(model, diffs), lambda device: full.trainable(diffs, device), instance, instance_prompt,
                  classes, class_prompt, steps, learning_rate, prior_loss_weight, batch_size, seed, v_prediction,
                  base=lambda device: full.frozen(model, diffs) + full.text_frozen(clip, text_diffs, FULL_NODE) if texts else
                  full.frozen(model, diffs), state=state, keys=list(every), start=start, moments=moments, text=text)
    patch = full.diff_state_dict(every)
    check_converged(FULL_NODE, losses, patch.values(), learning_rate, "5e-06")
    return result(patch, losses)

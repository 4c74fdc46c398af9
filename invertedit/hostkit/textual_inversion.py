"""Textual Inversion inside the host (Gal et al., ICLR 2023; the math is in
``personalisation/textual_inversion.py`` and ``personalisation/dreambooth.py``'s loss).

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

import re
from pathlib import Path

import torch
from comfy.model_patcher import ModelPatcher

from ..personalisation.dreambooth import batch_order, draw, step_loss
from ..personalisation.textual_inversion import flip_rows, item_draws
from ..personalisation.training import optimize
from .errors import NodeInputError, check_at_least, check_finite
from .dreambooth import check_latents
from .lora_training import check_converged, training_sigmas
from .gradients import with_weight_copies
from .fingerprint import model_fingerprint, tensor_fingerprint
from .sampling import HostDenoiser, check_interrupt, check_model_family, run_loop
from .text_encoders import (check_clip_width, encode_prompt, encoder_for_gradients, takes_pooled, text_encoder,
                            text_encoders)
from .training_state import KEEP_EVERY, resume_into, run_state

NODE = "Textual Inversion"
WEIGHT_DECAY = 1e-2   # textual_inversion.py's AdamW (no gradient clipping)
MARK = "invertedit-textual-inversion"   # the metadata key of the files this node writes
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


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
        initializer_id(clip, key, initializer)
    if caption and caption.count("{}") != 1:
        raise NodeInputError(NODE, f"input 'caption' is {caption!r}; give one caption with {{}} once, where the new "
                                   f"word goes (\"a red {{}} on a white background\"), or leave it empty for the "
                                   f"templates.")
    samples = check_latents(NODE, "images", images, model, "connect VAE Encode of the subject's 3-5 images (one batch, "
                                                           "all the same size).")
    return samples, family.parameterisation == "v"


def check_word(node: str, model: ModelPatcher, clip, name: str,
               encoders: list[tuple[str, torch.nn.Module]] | None = None) -> None:
    """A new word's checks: a CLIP (its ``encoders``, default the one of SD1.x / SD2.x) of this model's
    width, a file name prompts can name."""
    encoders = encoders or [text_encoder(clip, node)]
    if not NAME.match(name or ""):
        raise NodeInputError(node, f"input 'name' is {name!r}; give a file name of letters, digits, '_', '-' or '.' "
                                   f"(no spaces: prompts name it as embedding:<name>).")
    check_clip_width(node, model, encoders)


def initializer_id(clip, key: str, word: str, node: str = NODE) -> int:
    """The one token of ``word`` (the script requires a single token)."""
    tokens = [t for t, _, w in clip.tokenize(word or "", return_word_ids=True)[key][0] if w > 0]
    if len(word.split()) != 1 or len(tokens) != 1:
        raise NodeInputError(node, f"input 'initializer' is {word!r}, {len(tokens)} tokens for this tokenizer; give one "
                                   f"word of one token that names the subject's class (\"dog\", \"sculpture\").")
    return int(tokens[0])


def template_rows(clip, key: str, templates: tuple[str, ...], initializer: str, token: int,
                  node: str = NODE, what: str = "template") -> list[tuple[list, int]]:
    """Each template's token ids with the initializer in the placeholder's place, and that place."""
    rows = []
    for template in templates:
        prefix = template.split("{}")[0].strip()
        before = [t for t, _, w in clip.tokenize(prefix, return_word_ids=True)[key][0] if w > 0] if prefix else []
        tokens = clip.tokenize(template.format(initializer), return_word_ids=True)[key][0]
        at = [1 + len(before)]   # after the start token and the words before the placeholder
        if at[0] >= len(tokens) or tokens[at[0]][0] != token:   # a template the initializer does not fit
            raise NodeInputError(node, f"input 'initializer' {initializer!r} does not stand as one token in the "
                                       f"{what} {template!r}; give a plain word.")
        rows.append(([int(t) for t, _, _ in tokens], at[0]))
    return rows


def with_vectors(row: tuple[list, int], vectors: torch.Tensor) -> list:
    """A row of token ids with the placeholder's vectors in the initializer's place (as the host's
    tokenizer puts an embedding file's vectors), its length kept by dropping trailing pads."""
    ids, at = row
    out = ids[:at] + list(vectors.unbind(0)) + ids[at + 1:]
    return out[:len(ids)]


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
        token = initializer_id(clip, key, initializer)
        rows.append(template_rows(clip, key, templates, initializer, token))
        table = encoder.transformer.get_input_embeddings().weight
        starts.append(table[token].detach().float().expand(num_vectors, -1).clone())
    keys = [key for key, _ in encoders]
    state = run_state(NODE, state_name, lambda: dict(
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
                    return (xt - denoise.part("positive", xt, sigma, **swap)) / sigma.reshape(-1, 1, 1, 1)

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


def embedding_path(name: str) -> Path:
    import folder_paths

    return Path(folder_paths.get_folder_paths("embeddings")[0]) / f"{name}.safetensors"


def save_embedding(clip, name: str, vectors: torch.Tensor | dict[str, torch.Tensor], initializer: str,
                   node: str = NODE) -> Path:
    """Write the vectors (one encoder's, or each encoder's by tokenizer key) where "embedding:<name>"
    finds them, keyed as the host's loader looks them up for each encoder; refuses to replace a file
    this node did not write."""
    import safetensors
    import safetensors.torch

    if torch.is_tensor(vectors):
        vectors = {text_encoder(clip, node)[0]: vectors}
    path = embedding_path(name)
    if path.exists():
        try:
            with safetensors.safe_open(str(path), "pt") as f:
                ours = (f.metadata() or {}).get(MARK) is not None
        except Exception:   # not a safetensors file: not ours
            ours = False
        if not ours:
            raise NodeInputError(node, f"input 'name': {path} exists and was not written by this node; give another "
                                       f"name (this node never replaces an embedding it did not make).")
    path.parent.mkdir(parents=True, exist_ok=True)
    count = next(iter(vectors.values())).shape[0]
    safetensors.torch.save_file({f"clip_{key}": v.float().contiguous().cpu()   # sampling-path-ok: the file written, once
                                 for key, v in vectors.items()}, str(path),
                                metadata={MARK: "1", "initializer": initializer, "vectors": str(count)})
    return path

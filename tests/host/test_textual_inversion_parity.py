"""Textual Inversion against diffusers' ``examples/textual_inversion/textual_inversion.py`` on the
same tiny SD1 weights and batches.

As for DreamBooth (test_dreambooth_parity.py), the script imports torchvision and cannot run here;
its training step is rebuilt from the parts it composes, its settings read from the fetched script
(``ast``), its templates too: the tokenizer with the placeholder tokens added (``<sks>``,
``<sks>_1``, ...), their rows of the text encoder's token table set to the initializer's, captions
"template.format(placeholder string)" tokenized to 77, ``text_encoder(ids)[0]`` as the UNet's
context, ``DDPMScheduler.add_noise``, the eps MSE loss, AdamW over the whole token table with the
script's betas, weight decay and epsilon, and after each step every row but the placeholder's
restored. The draws (images, templates, flips, noises, timesteps) are the node's, given to both.
Compared: each step's loss and the learned vectors. Skipped loudly without the script.
"""
from __future__ import annotations

import ast

import pytest
import torch

from test_dreambooth_parity import script_settings, script_source
from workshop.headless.calls import call

SCRIPT = "examples/textual_inversion/textual_inversion.py"
STEPS, LR, BATCH, SEED, VECTORS = 3, 0.01, 2, 4, 2


def script_templates(source: str, name: str) -> tuple[str, ...]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise KeyError(name)


@pytest.fixture(scope="module")
def source(skip_loudly):
    text = script_source(SCRIPT, "TEXTUAL_INVERSION_SCRIPT")
    if text is None:
        skip_loudly("TEXTUAL INVERSION PARITY SKIPPED: diffusers' examples/textual_inversion/textual_inversion.py not "
                    "found (set TEXTUAL_INVERSION_SCRIPT to a copy, or DIFFUSERS_MIRROR to a diffusers git snapshot).")
    return text


def test_the_templates_and_settings_are_the_scripts(host, source):
    pure = host.pack.techniques.textual_inversion.templates
    assert pure.OBJECT_TEMPLATES == script_templates(source, "imagenet_templates_small")
    assert pure.STYLE_TEMPLATES == script_templates(source, "imagenet_style_templates_small")
    settings = script_settings(source)
    assert host.pack.techniques.textual_inversion.glue.WEIGHT_DECAY == settings["adam_weight_decay"]
    assert (settings["adam_beta1"], settings["adam_beta2"], settings["adam_epsilon"]) == (0.9, 0.999, 1e-8)   # AdamW's
    assert settings["num_vectors"] == 1 and settings["scale_lr"] is False and "clip_grad_norm_" not in source


def test_training_steps_match_the_script(host, tiny, bridge, source):
    import safetensors.torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from transformers import CLIPTokenizer

    pure_ti, pure_db = host.pack.techniques.textual_inversion.templates, host.pack.personalisation.denoising_loss
    settings = script_settings(source)
    model, clip, _ = tiny("sd1")
    images = {"samples": torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 3.0}
    _, _, losses = call(host, "InvertEditTextualInversion", model=model, clip=clip, images=images, name="ti-parity",
                        initializer="square", steps=STEPS, learning_rate=LR, batch_size=BATCH, num_vectors=VECTORS,
                        templates="object", seed=SEED)
    learned = safetensors.torch.load_file(str(host.pack.hostkit.learned_words.embedding_path("ti-parity")))["clip_l"]

    # the script's step, on the node's draws
    tokenizer = CLIPTokenizer.from_pretrained(str(host.path / "comfy" / "sd1_tokenizer"))
    placeholders = ["<sks>"] + [f"<sks>_{i}" for i in range(1, VECTORS)]
    assert tokenizer.add_tokens(placeholders) == VECTORS
    ids = tokenizer.convert_tokens_to_ids(placeholders)
    (init,) = tokenizer.encode("square", add_special_tokens=False)
    text_encoder = bridge.diffusers_text_encoder(clip)
    text_encoder.resize_token_embeddings(len(tokenizer))
    table = text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        for i in ids:
            table[i] = table[init].clone()
    original = table.data.clone()
    unet = bridge.diffusers_unet(model).requires_grad_(False)
    text_encoder.requires_grad_(False)   # the script freezes all but the token table
    text_encoder.get_input_embeddings().requires_grad_(True)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    optimizer = torch.optim.AdamW(text_encoder.get_input_embeddings().parameters(), lr=LR,
                                  betas=(settings["adam_beta1"], settings["adam_beta2"]),
                                  weight_decay=settings["adam_weight_decay"], eps=settings["adam_epsilon"])
    latents = model.model.process_latent_in(images["samples"])
    g = torch.Generator().manual_seed(SEED)
    order = pure_db.batch_order(3, 0, BATCH, g)
    reference = []
    with torch.enable_grad():
        for _ in range(STEPS):
            picked = [i for i, _ in next(order)]
            chosen, flips = pure_ti.item_draws(len(picked), len(pure_ti.OBJECT_TEMPLATES), g)
            x0 = pure_ti.flip_rows(latents[picked], flips)
            noise, t = pure_db.draw(tuple(x0.shape), g)
            texts = [pure_ti.OBJECT_TEMPLATES[c].format(" ".join(placeholders)) for c in chosen]
            input_ids = tokenizer(texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt").input_ids
            noisy = scheduler.add_noise(x0, noise, t)
            context = text_encoder(input_ids)[0]
            pred = unet(noisy, t, context).sample
            loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            keep = torch.ones(len(tokenizer), dtype=torch.bool)
            keep[min(ids):max(ids) + 1] = False
            with torch.no_grad():
                text_encoder.get_input_embeddings().weight[keep] = original[keep]
            reference.append(float(loss.detach()))
    theirs = text_encoder.get_input_embeddings().weight[min(ids):max(ids) + 1].detach()
    start = original[ids[0]]
    update = float((learned - theirs).norm() / (theirs - start).norm())
    print(f"\nlosses: node {[round(v, 6) for v in losses['loss']]}, script {[round(v, 6) for v in reference]}; "
          f"the vectors' update differs by {update:.2e} of its norm")
    assert losses["loss"] == pytest.approx(reference, rel=1e-4)
    assert update < 1e-3 and float((theirs - start).abs().max()) > LR / 2


SDXL_SCRIPT = "examples/textual_inversion/textual_inversion_sdxl.py"


@pytest.fixture(scope="module")
def sdxl_source(skip_loudly):
    text = script_source(SDXL_SCRIPT, "TEXTUAL_INVERSION_SDXL_SCRIPT")
    if text is None:
        skip_loudly("TEXTUAL INVERSION SDXL PARITY SKIPPED: diffusers' examples/textual_inversion/textual_inversion_sdxl.py "
                    "not found (set TEXTUAL_INVERSION_SDXL_SCRIPT to a copy, or DIFFUSERS_MIRROR to a diffusers git "
                    "snapshot).")
    return text


def test_sdxl_training_steps_match_the_script(host, tiny, bridge, sdxl_source):
    """SDXL, as ``textual_inversion_sdxl.py`` trains it: the placeholders added to both tokenizers (the
    second pads with "!", id 0, as SDXL's), each encoder's rows started from its own initializer row,
    one AdamW over both token tables with the script's settings, the UNet's context both encoders'
    ``hidden_states[-2]`` side by side, ``text_embeds`` clip_g's projected output, ``time_ids`` the
    image's size (original and target) and crop 0 (the node's size conditioning), every row but the
    placeholders' restored after each step. The learned vectors of both encoders and each step's
    loss are compared. The script's templates are the SD1 script's (checked)."""
    import safetensors.torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from transformers import CLIPTokenizer

    pure_ti, pure_db = host.pack.techniques.textual_inversion.templates, host.pack.personalisation.denoising_loss
    settings = script_settings(sdxl_source)
    assert pure_ti.OBJECT_TEMPLATES == script_templates(sdxl_source, "imagenet_templates_small")
    assert host.pack.techniques.textual_inversion.glue.WEIGHT_DECAY == settings["adam_weight_decay"]
    model, clip, _ = tiny("sdxl")
    images = {"samples": torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 3.0}
    _, _, losses = call(host, "InvertEditTextualInversion", model=model, clip=clip, images=images,
                        name="ti-sdxl-parity", initializer="square", steps=STEPS, learning_rate=LR, batch_size=BATCH,
                        num_vectors=VECTORS, templates="object", seed=SEED)
    learned = safetensors.torch.load_file(str(host.pack.hostkit.learned_words.embedding_path("ti-sdxl-parity")))

    path = str(host.path / "comfy" / "sd1_tokenizer")
    tokenizers = (CLIPTokenizer.from_pretrained(path), CLIPTokenizer.from_pretrained(path, pad_token="!"))
    encoders = bridge.diffusers_text_encoders_sdxl(clip)
    placeholders = ["<sks>"] + [f"<sks>_{i}" for i in range(1, VECTORS)]
    ids, originals = [], []
    for tokenizer, encoder in zip(tokenizers, encoders):
        assert tokenizer.add_tokens(placeholders) == VECTORS
        ids.append(tokenizer.convert_tokens_to_ids(placeholders))
        (init,) = tokenizer.encode("square", add_special_tokens=False)
        encoder.resize_token_embeddings(len(tokenizer))
        encoder.requires_grad_(False)
        table = encoder.get_input_embeddings().weight
        with torch.no_grad():
            for i in ids[-1]:
                table[i] = table[init].clone()
        originals.append(table.data.clone())
        encoder.get_input_embeddings().requires_grad_(True)
    unet = bridge.diffusers_unet(model).requires_grad_(False)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    optimizer = torch.optim.AdamW([e.get_input_embeddings().weight for e in encoders], lr=LR,
                                  betas=(settings["adam_beta1"], settings["adam_beta2"]),
                                  weight_decay=settings["adam_weight_decay"], eps=settings["adam_epsilon"])
    latents = model.model.process_latent_in(images["samples"])
    side = 8 * latents.shape[-1]
    g = torch.Generator().manual_seed(SEED)
    order = pure_db.batch_order(3, 0, BATCH, g)
    reference = []
    with torch.enable_grad():
        for _ in range(STEPS):
            picked = [i for i, _ in next(order)]
            chosen, flips = pure_ti.item_draws(len(picked), len(pure_ti.OBJECT_TEMPLATES), g)
            x0 = pure_ti.flip_rows(latents[picked], flips)
            noise, t = pure_db.draw(tuple(x0.shape), g)
            texts = [pure_ti.OBJECT_TEMPLATES[c].format(" ".join(placeholders)) for c in chosen]
            input_ids = [tok(texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt").input_ids
                         for tok in tokenizers]
            noisy = scheduler.add_noise(x0, noise, t)
            hidden_1 = encoders[0](input_ids[0], output_hidden_states=True).hidden_states[-2]
            output_2 = encoders[1](input_ids[1], output_hidden_states=True)
            time_ids = torch.tensor([[side, side, 0, 0, side, side]] * len(picked), dtype=torch.float32)
            context = torch.cat([hidden_1, output_2.hidden_states[-2]], dim=-1)
            pred = unet(noisy, t, context, added_cond_kwargs={"text_embeds": output_2[0], "time_ids": time_ids}).sample
            loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            with torch.no_grad():
                for encoder, placeholder_ids, original in zip(encoders, ids, originals):
                    keep = torch.ones(len(original), dtype=torch.bool)
                    keep[min(placeholder_ids):max(placeholder_ids) + 1] = False
                    encoder.get_input_embeddings().weight[keep] = original[keep]
            reference.append(float(loss.detach()))
    print(f"\nlosses: node {[round(v, 6) for v in losses['loss']]}, script {[round(v, 6) for v in reference]}")
    assert losses["loss"] == pytest.approx(reference, rel=1e-4)
    for key, encoder, placeholder_ids, original in zip(("clip_l", "clip_g"), encoders, ids, originals):
        theirs = encoder.get_input_embeddings().weight[min(placeholder_ids):max(placeholder_ids) + 1].detach()
        start = original[placeholder_ids[0]]
        update = float((learned[key] - theirs).norm() / (theirs - start).norm())
        print(f"{key}: the vectors' update differs by {update:.2e} of its norm")
        assert learned[key].shape == theirs.shape and update < 1e-3 and float((theirs - start).abs().max()) > LR / 2

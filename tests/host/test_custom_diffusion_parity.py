"""Custom Diffusion against diffusers' ``examples/custom_diffusion/train_custom_diffusion.py`` on the
same tiny SD1 / SD2-v weights and batches.

As for DreamBooth (test_dreambooth_parity.py) the script imports torchvision and cannot run here.
Its parts run unchanged where they can be cut out: the dataset's ``preprocess`` (the scaled photo on
its canvas and the validity mask) is taken from the script's text (``ast``) and run with numpy and
PIL on the node's draws. Its training step is rebuilt from the parts it composes, settings read from
the script: diffusers' ``UNet2DConditionModel`` holding the host UNet's weights with
``CustomDiffusionAttnProcessor2_0`` on every attention layer (keys and values trained on the
cross-attention ones, loaded from the UNet's weights, as the script sets them), the text encoder
with the modifier token added and its row set to the initializer's, ``DDPMScheduler.add_noise``,
the prediction on instance then class rows, the masked instance loss and the prior loss as the
script writes them, backward, every token row's gradient but the modifier's zeroed, the norm
clipped over the text encoder's and the processors' parameters, AdamW over the token table and the
processors. The draws (batches, augmentation, noise, timesteps) and the encoded pictures are the
node's, given to both. Compared: each step's loss, the key / value changes, the word's vector.
Skipped loudly without the script.
"""
from __future__ import annotations

import ast
import itertools

import numpy as np
import pytest
import torch

from test_dreambooth_parity import script_settings, script_source
from workshop.headless.calls import call

SCRIPT = "examples/custom_diffusion/train_custom_diffusion.py"
STEPS, LR, BATCH, SEED, SIZE = 3, 1e-3, 2, 3, 128


@pytest.fixture(scope="module")
def source(skip_loudly):
    text = script_source(SCRIPT, "CUSTOM_DIFFUSION_SCRIPT")
    if text is None:
        skip_loudly("CUSTOM DIFFUSION PARITY SKIPPED: diffusers' examples/custom_diffusion/train_custom_diffusion.py "
                    "not found (set CUSTOM_DIFFUSION_SCRIPT to a copy, or DIFFUSERS_MIRROR to a diffusers git snapshot).")
    return text


def script_preprocess(source: str):
    """The script's ``CustomDiffusionDataset.preprocess``, unchanged, as a function of (self, image,
    scale, resample)."""
    tree = ast.parse(source)
    dataset = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "CustomDiffusionDataset")
    method = next(n for n in dataset.body if isinstance(n, ast.FunctionDef) and n.name == "preprocess")
    namespace: dict = {}
    exec(compile(ast.Module(body=[method], type_ignores=[]), SCRIPT, "exec"), namespace)
    return namespace["preprocess"]


def script_choices(source: str) -> list[tuple[str, ...]]:
    """The caption prefixes of the script's ``np.random.choice([...])`` calls."""
    return [tuple(ast.literal_eval(node.args[0])) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "choice"
            and node.args and isinstance(node.args[0], ast.List)]


def test_the_settings_and_prefixes_are_the_scripts(host, source):
    kit, pure = host.pack.techniques.custom_diffusion.glue, host.pack.techniques.custom_diffusion.training
    settings = script_settings(source)
    assert kit.WEIGHT_DECAY == settings["adam_weight_decay"] and kit.MAX_GRAD_NORM == settings["max_grad_norm"]
    assert (settings["adam_beta1"], settings["adam_beta2"], settings["adam_epsilon"]) == (0.9, 0.999, 1e-8)
    assert settings["freeze_model"] == "crossattn_kv" and settings["prior_loss_weight"] == 1.0
    assert settings["initializer_token"].split("+")[0] == "ktn"
    assert script_choices(source) == [pure.SMALL_PREFIXES, pure.LARGE_PREFIXES]
    assert "< 0.66" in source and "0.6 * self.size" in source and "int(1.2 * self.size), int(1.4 * self.size)" in source


class _Draws:
    """numpy.random for the script's ``preprocess``: its two ``randint`` calls return the node's
    top and left."""

    def __init__(self, top: int, left: int):
        self.values = [top, left]

    def randint(self, low, high):
        value = self.values.pop(0)
        assert low <= value < high
        return value


def test_the_scaled_photo_and_its_mask_are_the_scripts(host, source):
    """Each placement the node draws, through the script's own ``preprocess`` (PIL's bilinear
    resize, uint8) and the node's ``place`` (torch's antialiased bilinear, rounded to 8 bits): the
    masks are equal, the pictures within 3/255 (the two resizers' rounding) and equal in the mean."""
    from PIL import Image

    pure = host.pack.techniques.custom_diffusion.training
    preprocess = script_preprocess(source)
    image = torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(0))
    image = torch.nn.functional.avg_pool2d(image.permute(2, 0, 1)[None], 5, 1, 2)[0].permute(1, 2, 0)  # photo-smooth
    pil = Image.fromarray((image.numpy() * 255).round().astype(np.uint8))
    g = torch.Generator().manual_seed(7)
    seen = set()
    for _ in range(40):
        p = pure.draw_placement(SIZE, g, augment=True, hflip=False)
        seen.add(p.scale > SIZE)
        theirs = type("Dataset", (), {"size": SIZE, "mask_size": SIZE // 8})()
        preprocess.__globals__["np"] = type("np", (), {"random": _Draws(p.top, p.left), "zeros": np.zeros,
                                                      "ones": np.ones, "array": np.array, "uint8": np.uint8,
                                                      "float32": np.float32})
        their_image, their_mask = preprocess(theirs, pil, p.scale, Image.BILINEAR)
        ours, mask = pure.place(image, p, SIZE, 8)
        assert np.array_equal(mask.numpy(), their_mask), p
        diff = np.abs((ours.numpy() * 2 - 1) - their_image)
        assert diff.max() <= 3 * 2 / 255 + 1e-6 and abs(float(((ours.numpy() * 2 - 1) - their_image).mean())) < 2e-3, p
    assert seen == {True, False}


def reference_run(unet, text_encoder, tokenizer, modifier: int, latents, masks, input_ids, draws, settings,
                  v_prediction: bool) -> tuple[list[float], dict, torch.Tensor]:
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from diffusers.loaders import AttnProcsLayers
    from diffusers.models.attention_processor import CustomDiffusionAttnProcessor2_0

    st = unet.state_dict()
    procs = {}
    for name in unet.attn_processors:
        cross = None if name.endswith("attn1.processor") else unet.config.cross_attention_dim
        layer = name.split(".processor")[0]
        if cross is not None:
            # the script's hidden size is the block's channels: the projection's output width
            procs[name] = CustomDiffusionAttnProcessor2_0(train_kv=True, train_q_out=False,
                                                          hidden_size=st[layer + ".to_k.weight"].shape[0],
                                                          cross_attention_dim=cross)
            procs[name].load_state_dict({"to_k_custom_diffusion.weight": st[layer + ".to_k.weight"],
                                         "to_v_custom_diffusion.weight": st[layer + ".to_v.weight"]})
        else:
            procs[name] = CustomDiffusionAttnProcessor2_0(train_kv=False, train_q_out=False, hidden_size=None,
                                                          cross_attention_dim=None)
    unet.set_attn_processor(procs)   # (it empties the dict)
    procs = dict(unet.attn_processors)
    layers = AttnProcsLayers(unet.attn_processors)
    unet.requires_grad_(False)
    layers.requires_grad_(True)
    text_encoder.requires_grad_(False)
    text_encoder.get_input_embeddings().requires_grad_(True)
    optimizer = torch.optim.AdamW(itertools.chain(text_encoder.get_input_embeddings().parameters(), layers.parameters()),
                                  lr=LR, betas=(settings["adam_beta1"], settings["adam_beta2"]),
                                  weight_decay=settings["adam_weight_decay"], eps=settings["adam_epsilon"])
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              prediction_type="v_prediction" if v_prediction else "epsilon")
    start = {name: (p.to_k_custom_diffusion.weight.detach().clone(), p.to_v_custom_diffusion.weight.detach().clone())
             for name, p in procs.items() if p.train_kv}
    losses = []
    with torch.enable_grad():
        for (rows, noise, t), mask, ids in zip(draws, masks, input_ids):
            x0 = latents[rows]
            noisy = scheduler.add_noise(x0, noise, t)
            context = text_encoder(ids)[0]
            pred = unet(noisy, t, context).sample
            target = scheduler.get_velocity(x0, noise, t) if v_prediction else noise
            # the script's loss, with prior preservation
            pred, pred_prior = torch.chunk(pred, 2, dim=0)
            target, target_prior = torch.chunk(target, 2, dim=0)
            loss = F.mse_loss(pred.float(), target.float(), reduction="none")
            loss = ((loss * mask).sum([1, 2, 3]) / mask.sum([1, 2, 3])).mean()
            loss = loss + settings["prior_loss_weight"] * F.mse_loss(pred_prior.float(), target_prior.float(),
                                                                     reduction="mean")
            loss.backward()
            grads = text_encoder.get_input_embeddings().weight.grad
            zero = torch.arange(len(tokenizer)) != modifier
            grads.data[zero, :] = grads.data[zero, :].fill_(0)
            torch.nn.utils.clip_grad_norm_(itertools.chain(text_encoder.parameters(), layers.parameters()),
                                           settings["max_grad_norm"])
            optimizer.step()
            optimizer.zero_grad()
            losses.append(float(loss.detach()))
    changes = {}
    for name, p in procs.items():
        if p.train_kv:
            layer = name.split(".processor")[0]
            changes[layer + ".to_k.weight"] = p.to_k_custom_diffusion.weight.detach() - start[name][0]
            changes[layer + ".to_v.weight"] = p.to_v_custom_diffusion.weight.detach() - start[name][1]
    return losses, changes, text_encoder.get_input_embeddings().weight[modifier].detach().clone()


@pytest.mark.parametrize("family", ["sd1", "sd2-v"])
def test_training_steps_match_the_script(host, tiny, bridge, source, family):
    import comfy.utils
    from transformers import CLIPTokenizer

    kit, pure = host.pack.techniques.custom_diffusion.glue, host.pack.techniques.custom_diffusion.training
    db = host.pack.personalisation.denoising_loss
    settings = script_settings(source)
    model, clip, vae = tiny(family)
    g = torch.Generator().manual_seed(1)
    photos, pictures = torch.rand(3, SIZE, SIZE, 3, generator=g), torch.rand(4, SIZE, SIZE, 3, generator=g)
    prompt, class_prompt = "photo of a {} square", "square"
    _, _, word, diff, losses = call(host, "InvertEditCustomDiffusion", model=model, clip=clip, vae=vae,
                                    instance_images=photos, instance_prompt=prompt, name=f"cd-parity-{family}",
                                    initializer="ktn", steps=STEPS, learning_rate=LR, batch_size=BATCH,
                                    prior_loss_weight=settings["prior_loss_weight"], augment=True, hflip=True, seed=SEED,
                                    class_images=pictures, class_prompt=class_prompt)
    import safetensors.torch
    learned = safetensors.torch.load_file(str(host.pack.hostkit.learned_words.embedding_path(f"cd-parity-{family}")))
    learned = next(iter(learned.values()))[0]

    # the node's draws and pictures
    g = torch.Generator().manual_seed(SEED)
    schedule = kit.plan(3, 4, STEPS, BATCH, SIZE, True, True, g)
    placed = [[pure.place(photos[i], p, SIZE, 8) for i, p, _, _ in items] for items in schedule]
    classes = model.model.process_latent_in(kit._encode(vae, torch.cat([pictures, pictures.flip(2)])))
    latents, draws, masks, input_ids = [], [], [], []
    tokenizer = CLIPTokenizer.from_pretrained(str(host.path / "comfy" / "sd1_tokenizer"))
    if family == "sd2-v":
        tokenizer.pad_token = "!"   # SD2's tokenizer pads with "!" (id 0), as the host's does
    assert tokenizer.add_tokens("<new1>") == 1
    modifier = tokenizer.convert_tokens_to_ids("<new1>")
    for items, pics in zip(schedule, placed):
        inst = model.model.process_latent_in(kit._encode(vae, torch.stack([p for p, _ in pics])))
        cls = classes[[c + (4 if flip else 0) for _, _, c, flip in items]]
        x0 = torch.cat([inst, cls])
        rows = list(range(len(latents), len(latents) + x0.shape[0]))
        latents.extend(x0)
        noise, t = db.draw(tuple(x0.shape), g)
        draws.append((rows, noise, t))
        masks.append(torch.stack([m for _, m in pics])[:, None].float())
        texts = [pure.PREFIXES[p.prefix] + prompt.format("<new1>") for _, p, _, _ in items] + [class_prompt] * len(items)
        input_ids.append(tokenizer(texts, padding="max_length", truncation=True, max_length=77,
                                   return_tensors="pt").input_ids)
    text_encoder = bridge.diffusers_text_encoder(clip)
    if family == "sd2-v":   # SD2's encoder as diffusers ships it: one layer fewer (the host's penultimate, layer-normed)
        inner = getattr(text_encoder, "text_model", text_encoder)
        inner.encoder.layers = inner.encoder.layers[:-1]
    text_encoder.resize_token_embeddings(len(tokenizer))
    with torch.no_grad():
        table = text_encoder.get_input_embeddings().weight
        table[modifier] = table[tokenizer.get_vocab()["ktn"]].clone()
        start = table[modifier].clone()
    ref_losses, ref_changes, ref_vector = reference_run(bridge.diffusers_unet(model), text_encoder, tokenizer, modifier,
                                                        torch.stack(latents), masks, input_ids, draws, settings,
                                                        family == "sd2-v")

    key_map = comfy.utils.unet_to_diffusers(model.model.model_config.unet_config)
    ours = {k: diff["diffusion_model." + key_map[k][:-len(".weight")] + ".diff"] for k in ref_changes}
    errors = {k: float((ours[k] - ref_changes[k]).norm() / ref_changes[k].norm()) for k in ref_changes}
    worst = max(errors, key=errors.get)
    vector = float((learned - ref_vector).norm() / (ref_vector - start).norm())
    print(f"\n{family} losses: node {[round(v, 6) for v in losses['loss']]}, script {[round(v, 6) for v in ref_losses]}; "
          f"largest key/value change difference {errors[worst]:.2e} of its norm ({worst}, {len(errors)} matrices); "
          f"the word's update differs by {vector:.2e}")
    assert word == f"embedding:cd-parity-{family}"
    assert losses["loss"] == pytest.approx(ref_losses, rel=1e-4)
    assert errors[worst] < 1e-3 and vector < 1e-3
    assert float(min(c.abs().max() for c in ref_changes.values())) > LR / 2

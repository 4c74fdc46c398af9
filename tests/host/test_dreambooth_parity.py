"""DreamBooth LoRA against diffusers' ``examples/dreambooth/train_dreambooth_lora.py`` on the same
tiny SD1 / SD2-v weights and batches.

The script itself cannot run on this machine: it imports torchvision at its top (its image
transforms), which this project may not install (it pulls a CUDA torch). What is compared is its
training step, rebuilt from the parts it composes, with its settings read from the fetched
script (``ast``: the argparse defaults and the ``LoraConfig`` it builds), never typed here:

- the UNet: diffusers' ``UNet2DConditionModel`` holding the host UNet's weights, with peft's LoRA
  added by ``unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
  target_modules=...))`` as the script does, its matrices set to the node's initial ones;
- a step: ``DDPMScheduler.add_noise``, the UNet's prediction on the batch (instance rows, then
  class rows), the target (the noise, or ``get_velocity`` for a v model), the mean squared error on
  each half, ``instance + prior_loss_weight * prior``, backward, ``clip_grad_norm_`` to the
  script's ``max_grad_norm``, ``AdamW`` with the script's betas, weight decay and epsilon;
- the draws (the batches' order, the noise, the timesteps) are the node's, given to both.

Compared: each step's loss and every LoRA matrix after the steps. The script's text comes from the
diffusers snapshot the ``fetch`` tool leaves (``DIFFUSERS_MIRROR``) or a copy
(``DREAMBOOTH_LORA_SCRIPT``); without it, or without peft, the test is skipped with one loud line.
"""
from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest
import torch

from workshop.headless.calls import call, encode

SCRIPT = "examples/dreambooth/train_dreambooth_lora.py"
STEPS, LR, RANK, BATCH, SEED = 3, 1e-3, 4, 2, 5


def script_source(script: str = SCRIPT, env: str = "DREAMBOOTH_LORA_SCRIPT") -> str | None:
    """The text of diffusers' ``script`` (a path in its repository): from the copy ``$env`` names,
    else from the diffusers snapshot the ``fetch`` tool leaves (``DIFFUSERS_MIRROR``); None without."""
    path = os.environ.get(env)
    if path:
        return Path(path).read_text(encoding="utf-8") if Path(path).is_file() else None
    mirror = os.environ.get("DIFFUSERS_MIRROR", "/work/.mirror/huggingface+diffusers/repo")
    if not Path(mirror).is_dir():
        return None
    shown = subprocess.run(["git", "--git-dir", mirror, "show", f"HEAD:{script}"], capture_output=True, text=True,
                           check=False)
    return shown.stdout if shown.returncode == 0 else None


def script_settings(source: str) -> dict:
    """The script's argparse defaults ({"adam_weight_decay": 0.01, ...}) and its UNet LoraConfig's
    keywords (under "lora_config", values as source text where not literals), and its text
    encoder's (``--train_text_encoder``, the second LoraConfig: "text_lora_config")."""
    settings: dict = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        if name == "add_argument" and node.args and isinstance(node.args[0], ast.Constant):
            for kw in node.keywords:
                if kw.arg == "default":
                    try:
                        settings[node.args[0].value.lstrip("-")] = ast.literal_eval(kw.value)
                    except ValueError:
                        pass
        if name == "LoraConfig" and "text_lora_config" not in settings:   # the UNet's, then the text encoder's
            config = {}
            for kw in node.keywords:
                try:
                    config[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    config[kw.arg] = ast.unparse(kw.value)
            settings["text_lora_config" if "lora_config" in settings else "lora_config"] = config
    return settings


@pytest.fixture(scope="module")
def settings(skip_loudly):
    source = script_source()
    if source is None:
        skip_loudly("DREAMBOOTH PARITY SKIPPED: diffusers' examples/dreambooth/train_dreambooth_lora.py not found (set "
                    "DREAMBOOTH_LORA_SCRIPT to a copy, or DIFFUSERS_MIRROR to a diffusers git snapshot).")
    try:
        import peft  # noqa: F401  (the script's LoRA)
    except ImportError:
        skip_loudly("DREAMBOOTH PARITY SKIPPED: the script's LoRA is peft's, which is not installed (pip install peft).")
    return script_settings(source)


def test_the_nodes_settings_are_the_scripts(host, settings):
    """The node's optimiser constants and defaults are the script's (its LoRA README's learning
    rate, batch size and steps are the node's defaults: checked against the README in the docs)."""
    dreambooth = host.pack.techniques.dreambooth.glue
    lora = settings["lora_config"]
    assert dreambooth.WEIGHT_DECAY == settings["adam_weight_decay"]
    assert dreambooth.MAX_GRAD_NORM == settings["max_grad_norm"]
    assert (settings["adam_beta1"], settings["adam_beta2"], settings["adam_epsilon"]) == (0.9, 0.999, 1e-8)  # AdamW's
    assert settings["prior_loss_weight"] == 1.0 and settings["rank"] == 4
    assert lora["r"] == "args.rank" and lora["lora_alpha"] == "args.rank" and lora["init_lora_weights"] == "gaussian"
    ours = host.pack.hostkit.lora_training.ATTENTION_PROJECTIONS
    assert set(ours) <= set(lora["target_modules"])
    assert set(lora["target_modules"]) - set(ours) == {"add_k_proj", "add_v_proj"}   # in no SD UNet
    schema = host.nodes.NODE_CLASS_MAPPINGS["InvertEditDreamBoothLoRA"].define_schema()
    defaults = {i.id: i.default for i in schema.inputs if hasattr(i, "default")}
    assert defaults["rank"] == settings["rank"] and defaults["prior_loss_weight"] == settings["prior_loss_weight"]


def reference_steps(unet, lora: dict, key_map: dict, x0: torch.Tensor, contexts, draws: list,
                    instances: int, settings: dict, v_prediction: bool,
                    text_encoder=None) -> tuple[list[float], dict]:
    """The script's steps on ``unet`` (diffusers) starting from the host-format LoRA ``lora``;
    returns each step's loss and the final LoRA in the host's format. ``contexts``: each row's
    context, or with ``text_encoder`` (``--train_text_encoder``: a transformers CLIP text model that
    gets the script's text LoRA, started from ``lora``'s ``text_encoders.clip_l.…`` matrices) each
    row's token ids, encoded at every step."""
    from diffusers import DDPMScheduler
    from peft import LoraConfig

    config = settings["lora_config"]
    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=RANK, lora_dropout=settings.get("lora_dropout", 0.0),
                                init_lora_weights=config["init_lora_weights"], target_modules=config["target_modules"]))
    modules = {}
    for name, module in unet.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            host_key = "diffusion_model." + key_map[f"{name}.weight"][:-len(".weight")]
            module.lora_A["default"].weight.data.copy_(lora[f"{host_key}.lora_down.weight"])
            module.lora_B["default"].weight.data.copy_(lora[f"{host_key}.lora_up.weight"])
            modules[host_key] = module
    if text_encoder is not None:
        text_config = settings["text_lora_config"]
        from peft import inject_adapter_in_model

        # the script's text_encoder.add_adapter(config): transformers' add_adapter injects peft's layers with
        # this call (transformers 5.24's own asks for a peft newer than PyPI's 0.21.2)
        inject_adapter_in_model(LoraConfig(r=RANK, lora_alpha=RANK, lora_dropout=settings.get("lora_dropout", 0.0),
                                           init_lora_weights=text_config["init_lora_weights"],
                                           target_modules=text_config["target_modules"]), text_encoder)
        for name, module in text_encoder.named_modules():
            if hasattr(module, "lora_A") and "default" in module.lora_A:
                path = name if name.startswith("text_model.") else f"text_model.{name}"   # transformers 4 / 5
                host_key = f"text_encoders.clip_l.transformer.{path}"
                module.lora_A["default"].weight.data.copy_(lora[f"{host_key}.lora_down.weight"])
                module.lora_B["default"].weight.data.copy_(lora[f"{host_key}.lora_up.weight"])
                modules[host_key] = module
        text_encoder.train()
        ids = contexts
        contexts = lambda rows: text_encoder(ids[rows], return_dict=False)[0]  # noqa: E731  (the script's encode_prompt)
    assert set(modules) == {k[:-len(".alpha")] for k in lora if k.endswith(".alpha")}
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              prediction_type="v_prediction" if v_prediction else "epsilon")
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    if text_encoder is not None:
        params += [p for p in text_encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=LR, betas=(settings["adam_beta1"], settings["adam_beta2"]),
                                  weight_decay=settings["adam_weight_decay"], eps=settings["adam_epsilon"])
    losses = []
    with torch.enable_grad():
        return _steps(unet, scheduler, optimizer, params, modules, x0, contexts, draws, settings, v_prediction, losses)


def _steps(unet, scheduler, optimizer, params, modules, x0, contexts, draws, settings, v_prediction, losses):
    import torch.nn.functional as F

    for rows, noise, timesteps in draws:
        model_input = x0[rows]
        noisy = scheduler.add_noise(model_input, noise, timesteps)
        context = contexts(rows) if callable(contexts) else contexts[rows]
        pred = unet(noisy, timesteps, context, return_dict=False)[0]
        target = scheduler.get_velocity(model_input, noise, timesteps) if v_prediction else noise
        pred, pred_prior = torch.chunk(pred, 2, dim=0)
        target, target_prior = torch.chunk(target, 2, dim=0)
        loss = F.mse_loss(pred.float(), target.float(), reduction="mean")
        loss = loss + settings["prior_loss_weight"] * F.mse_loss(pred_prior.float(), target_prior.float(), reduction="mean")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings["max_grad_norm"])
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    out = {}
    for key, module in modules.items():
        out[f"{key}.lora_down.weight"] = module.lora_A["default"].weight.detach().clone()
        out[f"{key}.lora_up.weight"] = module.lora_B["default"].weight.detach().clone()
    return losses, out


def node_draws(pure, model, instance: dict, classes: dict, prompts: tuple) -> tuple[list, torch.Tensor, torch.Tensor]:
    """The node's draws from its seed, as its loop makes them (each step's rows, noise and
    timesteps), the batch in the model's space, and each row's context."""
    g = torch.Generator().manual_seed(SEED)
    order = pure.batch_order(3, 5, BATCH, g)
    draws = []
    for _ in range(STEPS):
        pairs = next(order)
        rows = [i for i, _ in pairs] + [3 + c for _, c in pairs]
        noise, t = pure.draw((len(rows), 4, 8, 8), g)
        draws.append((rows, noise, t))
    x0 = model.model.process_latent_in(torch.cat([instance["samples"], classes["samples"]]))
    contexts = torch.cat([prompts[0][0][0].expand(3, -1, -1), prompts[1][0][0].expand(5, -1, -1)]).float()
    return draws, x0, contexts


@pytest.mark.parametrize("family, text", [("sd1", False), ("sd2-v", False), ("sd1", True)])
def test_training_steps_match_the_script(host, tiny, bridge, settings, family, text):
    """``text``: with the script's ``--train_text_encoder`` (the node given the CLIP and the texts):
    the UNet's and the text encoder's LoRA in one AdamW, each step's context encoded from the rows'
    token ids (the host's SD1 tokenizer in transformers, padded to 77 as the script's
    ``tokenize_prompt``) through the adapted encoder."""
    import comfy.utils

    pure = host.pack.personalisation.denoising_loss
    model, clip, _ = tiny(family)
    instance = {"samples": torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 4.0}
    classes = {"samples": torch.randn(5, 4, 8, 8, generator=torch.Generator().manual_seed(2)) * 4.0}
    prompts = encode(host, clip, "a sks square"), encode(host, clip, "a square")
    kwargs = dict(model=model, instance_images=instance, instance_prompt=prompts[0], learning_rate=LR, rank=RANK,
                  prior_loss_weight=settings["prior_loss_weight"], batch_size=BATCH, seed=SEED, class_images=classes,
                  class_prompt=prompts[1])
    if text:
        kwargs.update(clip=clip, instance_text="a sks square", class_text="a square")
    _, start, _, _ = call(host, "InvertEditDreamBoothLoRA", steps=0, **kwargs)
    _, trained, losses, _ = call(host, "InvertEditDreamBoothLoRA", steps=STEPS, **kwargs)

    draws, x0, contexts = node_draws(pure, model, instance, classes, prompts)
    text_encoder = None
    if text:
        contexts = script_ids(host, list(range(8)))   # each row's ids, as the script's batch
        text_encoder = bridge.diffusers_text_encoder(clip)
        assert any(k.startswith("text_encoders.") for k in start)
    key_map = comfy.utils.unet_to_diffusers(model.model.model_config.unet_config)
    ref_losses, ref_lora = reference_steps(bridge.diffusers_unet(model), start, key_map, x0, contexts, draws, BATCH,
                                           settings, family == "sd2-v", text_encoder)

    print(f"\n{family}{' with the text encoder' if text else ''} losses: node {[round(v, 6) for v in losses['loss']]}, script {[round(v, 6) for v in ref_losses]}")
    assert losses["loss"] == pytest.approx(ref_losses, rel=1e-4)
    # each matrix's update (what the steps changed), node against script, in norm
    errors = {k: float((trained[k] - ref_lora[k]).norm() / (ref_lora[k] - start[k]).norm().clamp_min(1e-12))
              for k in ref_lora}
    worst = max(errors, key=errors.get)
    moved = max(float((trained[k] - start[k]).abs().max()) for k in ref_lora)
    print(f"{family}: largest update difference {errors[worst]:.2e} of the update's norm ({worst}; {len(ref_lora)} "
          f"matrices; moved up to {moved:.2e})")
    assert moved > LR / 2 and errors[worst] < 1e-3
    if text:   # the text encoder's matrices were trained, as the script's
        assert max(float((trained[k] - start[k]).abs().max()) for k in ref_lora if k.startswith("text_encoders.")) > LR / 2


FULL_SCRIPT = "examples/dreambooth/train_dreambooth.py"


@pytest.fixture(scope="module")
def full_settings(skip_loudly):
    source = script_source(FULL_SCRIPT, "DREAMBOOTH_SCRIPT")
    if source is None:
        skip_loudly("DREAMBOOTH FINE-TUNE PARITY SKIPPED: diffusers' examples/dreambooth/train_dreambooth.py not found "
                    "(set DREAMBOOTH_SCRIPT to a copy, or DIFFUSERS_MIRROR to a diffusers git snapshot).")
    assert "unet.parameters()" in source and "clip_grad_norm_" in source   # what the script trains and clips
    return script_settings(source)


def test_full_fine_tune_settings_are_the_scripts(host, full_settings):
    """DreamBooth Fine-Tune's optimiser constants are train_dreambooth.py's (the same as the LoRA script's)."""
    dreambooth = host.pack.techniques.dreambooth.glue
    assert dreambooth.WEIGHT_DECAY == full_settings["adam_weight_decay"]
    assert dreambooth.MAX_GRAD_NORM == full_settings["max_grad_norm"]
    assert (full_settings["adam_beta1"], full_settings["adam_beta2"], full_settings["adam_epsilon"]) == (0.9, 0.999, 1e-8)
    assert full_settings["prior_loss_weight"] == 1.0


def script_ids(host, rows: list[int]) -> torch.Tensor:
    """Each row's token ids of "a sks square" (the 3 instance latents) or "a square" (the 5 class
    latents) from the host's SD1 tokenizer in transformers, padded to 77 as the scripts'
    ``tokenize_prompt`` (SD1.5's tokenizer's model_max_length; the host's copy says 8192)."""
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(host.path / "comfy" / "sd1_tokenizer"))
    ids = [tokenizer(p, truncation=True, padding="max_length", max_length=77, return_tensors="pt").input_ids
           for p in ("a sks square", "a square")]
    return torch.cat([ids[0].expand(3, -1), ids[1].expand(5, -1)])


@pytest.mark.parametrize("family, text", [("sd1", False), ("sd2-v", False), ("sd1", True)])
def test_full_fine_tune_steps_match_the_script(host, tiny, bridge, full_settings, family, text):
    """train_dreambooth.py's step (every UNet parameter in one AdamW, weight decay on the whole weight,
    the gradients' norm clipped over all of them) against DreamBooth Fine-Tune on the same draws: each
    step's loss, and every weight and bias after the steps (the node's frozen weight plus its
    difference), compared by their update. ``text``: with ``--train_text_encoder`` (every parameter
    of a transformers ``CLIPTextModel`` holding the tiny text encoder's weights in the same AdamW,
    each step's context encoded from the rows' token ids): the text encoder's tensors compared too."""
    import comfy.utils
    from diffusers import DDPMScheduler

    pure = host.pack.personalisation.denoising_loss
    model, clip, _ = tiny(family)
    instance = {"samples": torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1)) * 4.0}
    classes = {"samples": torch.randn(5, 4, 8, 8, generator=torch.Generator().manual_seed(2)) * 4.0}
    prompts = encode(host, clip, "a sks square"), encode(host, clip, "a square")
    extra = dict(clip=clip, instance_text="a sks square", class_text="a square") if text else {}
    _, patch, losses, _ = call(host, "InvertEditDreamBoothFineTune", model=model, instance_images=instance,
                               instance_prompt=prompts[0], steps=STEPS, learning_rate=LR,
                               prior_loss_weight=full_settings["prior_loss_weight"], batch_size=BATCH, seed=SEED,
                               class_images=classes, class_prompt=prompts[1], **extra)

    draws, x0, contexts = node_draws(pure, model, instance, classes, prompts)
    unet = bridge.diffusers_unet(model)
    start = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              prediction_type="v_prediction" if family == "sd2-v" else "epsilon")
    unet.train()
    params = list(unet.parameters())
    text_encoder = None
    if text:
        text_encoder = bridge.diffusers_text_encoder(clip)
        text_start = {k: v.detach().clone() for k, v in text_encoder.state_dict().items()}
        text_encoder.train()
        # the one documented difference: the node keeps the position table frozen (the host reads it past
        # weight wrappers); the script trains it, which moves the later steps' text updates by about 1e-2
        for name, param in text_encoder.named_parameters():
            if name.endswith("position_embedding.weight"):
                param.requires_grad_(False)
        params += [p for p in text_encoder.parameters() if p.requires_grad]   # the script's chain(unet, text_encoder)
        ids = script_ids(host, list(range(8)))
        contexts = lambda rows: text_encoder(ids[rows], return_dict=False)[0]  # noqa: E731  (the script's encode_prompt)
    optimizer = torch.optim.AdamW(params, lr=LR, betas=(full_settings["adam_beta1"], full_settings["adam_beta2"]),
                                  weight_decay=full_settings["adam_weight_decay"], eps=full_settings["adam_epsilon"])
    with torch.enable_grad():
        ref_losses, _ = _steps(unet, scheduler, optimizer, params, {}, x0, contexts, draws, full_settings,
                               family == "sd2-v", [])
    print(f"\n{family}{' with the text encoder' if text else ''} losses: node {[round(v, 6) for v in losses['loss']]}, "
          f"script {[round(v, 6) for v in ref_losses]}")
    assert losses["loss"] == pytest.approx(ref_losses, rel=1e-4)

    # Tensors whose gradient is round-off: on the tiny UNets every GroupNorm group is one channel, so a
    # per-channel constant before it (a convolution's bias, the time embedding's projection) cancels
    # exactly; Adam scales round-off up to a full step, differently in each implementation. Left out.
    # So is a key projection's bias in attention (it adds the same q.b to every key of a query: softmax
    # cancels it): in the text encoder, left out likewise.
    probe = bridge.diffusers_unet(model)
    text_probe = bridge.diffusers_text_encoder(clip) if text else None
    rows, noise, timesteps = draws[0]
    with torch.enable_grad():
        context = (text_probe(script_ids(host, [])[rows], return_dict=False)[0] if text
                   else node_draws(pure, model, instance, classes, prompts)[2][rows])
        pred = probe(scheduler.add_noise(x0[rows], noise, timesteps), timesteps, context, return_dict=False)[0]
        target = scheduler.get_velocity(x0[rows], noise, timesteps) if family == "sd2-v" else noise
        torch.nn.functional.mse_loss(pred.float(), target.float()).backward()
    tiny_grad = 1e-7 * float(noise.abs().max())
    round_off = {k for k, v in probe.named_parameters() if float(v.grad.abs().max()) < tiny_grad}
    text_round_off = set() if not text else {
        k for k, v in text_probe.named_parameters() if v.grad is None or float(v.grad.abs().max()) < tiny_grad}

    key_map = comfy.utils.unet_to_diffusers(model.model.model_config.unet_config)
    trained = unet.state_dict()
    unet_patch = [k for k in patch if not k.startswith("text_encoders.")]
    assert len(unet_patch) == len(trained)   # every weight and bias has its difference
    errors, moved = {}, 0.0
    for k, ref in trained.items():
        if k in round_off:
            continue
        module, kind = key_map[k].rsplit(".", 1)
        diff = patch[f"diffusion_model.{module}.diff" if kind == "weight" else f"diffusion_model.{module}.diff_b"]
        ours = start[k] + diff
        errors[k] = float((ours - ref).norm() / (ref - start[k]).norm().clamp_min(1e-12))
        moved = max(moved, float((ref - start[k]).abs().max()))
    if text:   # every text-model tensor (the script's CLIPTextModel: no projection), by its update
        name = "clip_l" if family == "sd1" else "clip_h"
        # the position table stays frozen in the node (the host reads it past weight wrappers): left out
        text_trained = {k: v for k, v in text_encoder.state_dict().items()
                        if not k.endswith(("position_ids", "position_embedding.weight"))}
        assert len([k for k in patch if k.startswith("text_encoders.")]) == len(text_trained)
        assert not any("position_embedding" in k for k in patch)
        for k, ref in text_trained.items():
            if k in text_round_off:
                continue
            path = k if k.startswith("text_model.") else f"text_model.{k}"   # transformers 4 / 5
            module, kind = path.rsplit(".", 1)
            diff = patch[f"text_encoders.{name}.transformer.{module}.{'diff' if kind == 'weight' else 'diff_b'}"]
            ours = text_start[k] + diff
            if "token_embedding" in k:
                # the rows of tokens no prompt uses move by weight decay alone (1e-5 of the weight a step), which
                # the script computes on the float32 weight itself: its rounding (6e-8 of the weight) is a few
                # thousandths of that move. Those rows: equal to the weight's float32 resolution; the prompts'
                # rows (their gradient's update): by their update, as every other tensor
                used = script_ids(host, []).unique()
                rest = torch.ones(ref.shape[0], dtype=torch.bool)
                rest[used] = False
                assert float((ours[rest] - ref[rest]).abs().max()) <= 1e-6 * float(ref.abs().max())
                ours, ref, begun = ours[used], ref[used], text_start[k][used]
            else:
                begun = text_start[k]
            errors[f"text: {k}"] = float((ours - ref).norm() / (ref - begun).norm().clamp_min(1e-12))
    worst = max(errors, key=errors.get)
    print(f"{family}: largest update difference {errors[worst]:.2e} of the update's norm ({worst}; {len(errors)} "
          f"tensors; moved up to {moved:.2e}; {len(round_off) + len(text_round_off)} with a round-off gradient left "
          f"out: {sorted(text_round_off)})")
    assert moved > LR / 2 and errors[worst] < 1e-3 and len(round_off) < len(trained) // 10
    assert len(text_round_off) <= len(text_trained if text else []) // 10

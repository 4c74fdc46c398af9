"""DreamBooth LoRA through the host, on the tiny SD1 / SD2-v / SDXL models: training lowers the
instance images' loss, and the prior loss the class images'; the prior off ignores the class
inputs; zero steps change nothing; the LoRA is the host's (patches on a clone, saved and reloaded
by the stock nodes); a run resumes from an earlier one's LoRA; weights loaded under inference mode
train; progress counts the steps and an interrupt stops within one UNet evaluation; with a CLIP the
text encoder trains too (both nodes) and the stock LoraLoader applies both parts. (Parity with
diffusers' script: test_dreambooth_parity.py; the toy world: the DreamBooth workflows' checks in test_workflows.py.)"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from test_long_loops_interrupt import _interrupting
from workshop.headless.calls import call, encode

INSTANCE, CLASS = "a sks square", "a square"


def latents(count: int, seed: int, shift: float = 0.0) -> dict:
    return {"samples": torch.randn(count, 4, 8, 8, generator=torch.Generator().manual_seed(seed)) * 3.0 + shift}


def teach(host, model, clip, steps=20, learning_rate=3e-3, rank=4, prior_loss_weight=1.0, batch_size=2, seed=0,
          **extra):
    args = dict(model=model, instance_images=latents(3, 1, 2.0), instance_prompt=encode(host, clip, INSTANCE),
                steps=steps, learning_rate=learning_rate, rank=rank, prior_loss_weight=prior_loss_weight,
                batch_size=batch_size, seed=seed, class_images=latents(6, 2), class_prompt=encode(host, clip, CLASS))
    args.update(extra)
    return call(host, "InvertEditDreamBoothLoRA", **args)[:3]


def loss_of(host, model, samples, conditioning) -> float:
    with torch.inference_mode():
        return host.pack.techniques.imagic.glue.reconstruction_loss(model, samples, conditioning, count=16)


def generate(host, model, clip, seed=0):
    return call(host, "KSampler", model=model, seed=seed, steps=4, cfg=3.0, sampler_name="ddim", scheduler="ddim_uniform",
                positive=encode(host, clip, INSTANCE), negative=encode(host, clip, ""),
                latent_image={"samples": torch.zeros(1, 4, 8, 8)}, denoise=1.0)[0]["samples"]


@pytest.fixture(scope="module")
def taught(host, tiny):
    """Per family and prior weight: (model, clip, node outputs), trained once."""
    out = {}

    def get(family, prior_loss_weight=1.0):
        key = family, prior_loss_weight
        if key not in out:
            model, clip, _ = tiny(family)
            out[key] = model, clip, teach(host, model, clip, steps=40, prior_loss_weight=prior_loss_weight)
        return out[key]

    return get


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_training_lowers_the_instance_loss(host, taught, family):
    model, clip, (tuned, lora, losses) = taught(family)
    inst = latents(3, 1, 2.0)["samples"]
    before, after = loss_of(host, model, inst, encode(host, clip, INSTANCE)), loss_of(host, tuned, inst, encode(host, clip, INSTANCE))
    print(f"\n{family}: instance loss {before:.4f} -> {after:.4f} ({len(lora) // 3} LoRA layers)")
    assert len(losses["loss"]) == 40 and after < before   # (an eps loss: for SD2-v the training weights it by 1 + sigma^2)


def test_the_prior_loss_trains_on_the_class_images_and_off_ignores_them(host, taught, tiny):
    """With lambda 1 the class images' loss under the class prompt ends lower than with lambda 0 (which
    trains on the instances alone); lambda 0 gives bit for bit what a run without class inputs gives."""
    model, clip, (with_prior, _, _) = taught("sd1", 1.0)
    _, _, (without, lora_off, _) = taught("sd1", 0.0)
    classes = latents(6, 2)["samples"]
    base, on, off = (loss_of(host, m, classes, encode(host, clip, CLASS)) for m in (model, with_prior, without))
    print(f"\nclass images' loss: untouched {base:.4f}, prior on {on:.4f}, prior off {off:.4f}")
    assert on < off
    _, alone, _ = teach(host, model, clip, steps=40, prior_loss_weight=0.0, class_images=None, class_prompt=None)
    assert all(torch.equal(alone[k], lora_off[k]) for k in alone)


def test_zero_steps_change_nothing_and_the_lora_is_the_hosts(host, taught, tiny):
    """Zero steps: the LoRA at its start (up zero) samples bit for bit as the input model. Trained:
    a clone with one weight patch per attention projection (the input untouched); Save LoRA Weights
    writes it and the stock Load LoRA Model applies the file to sample bit for bit the same."""
    import comfy.utils

    model, clip, _ = tiny("sd1")
    same, start, losses = teach(host, model, clip, steps=0)
    assert losses["loss"] == [] and all(not v.any() for k, v in start.items() if k.endswith("lora_up.weight"))
    assert torch.equal(generate(host, same, clip), generate(host, model, clip))

    _, _, (tuned, lora, _) = taught("sd1")
    layers = [k[:-len(".alpha")] for k in lora if k.endswith(".alpha")]
    assert tuned is not model and not model.patches and set(tuned.patches) == {f"{n}.weight" for n in layers}
    assert all(n.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v") or n.endswith("to_out.0") for n in layers)
    assert all(float(lora[f"{n}.alpha"]) == 4.0 for n in layers)   # alpha = rank: scale 1, as the script
    call(host, "SaveLoRANode", lora=lora, prefix="loras/dreambooth_test")
    saved = sorted((host.output_dir / "loras").glob("dreambooth_test_*.safetensors"))
    loaded = comfy.utils.load_torch_file(str(saved[-1]), safe_load=True)
    reloaded = call(host, "LoraModelLoader", model=model, lora=loaded, strength_model=1.0)[0]
    ours = generate(host, tuned, clip)
    assert torch.equal(generate(host, reloaded, clip), ours) and not torch.equal(ours, generate(host, model, clip))


def test_a_run_resumes_from_an_earlier_runs_lora(host, tiny):
    model, clip, _ = tiny("sd1")
    _, first, _ = teach(host, model, clip, steps=3)
    _, kept, _ = teach(host, model, clip, steps=0, resume=first)
    assert all(torch.equal(kept[k], first[k]) for k in first)
    _, more, _ = teach(host, model, clip, steps=3, resume=first)
    assert any(not torch.equal(more[k], first[k]) for k in first)


def test_weights_loaded_under_inference_mode_train_alike(host, tiny):
    """The model's weights made under inference mode (as the host loads a checkpoint) train as
    plain ones do."""
    model, clip, _ = tiny("sd1")
    with torch.inference_mode():
        frozen = host.pack.demo.tiny_models.build_tiny_unet("sd1", 0)
    assert all(p.is_inference() for p in frozen.model.diffusion_model.parameters())
    plain, moved = teach(host, model, clip, steps=3)[1], teach(host, frozen, clip, steps=3)[1]
    assert all(torch.equal(plain[k], moved[k]) for k in plain) and any(v.any() for k, v in plain.items() if "up" in k)


def test_progress_and_interrupt_within_one_unet_evaluation(host, tiny):
    import comfy.model_management
    import comfy.utils

    model, clip, _ = tiny("sd1")
    seen = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        teach(host, model, clip, steps=3)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert [s for s in seen if s[1] == 3] == [(1, 3), (2, 3), (3, 3)]
    counted, calls = _interrupting(model)   # its first UNet call raises the host's interrupt flag
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            teach(host, counted, clip, steps=100)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert len(calls) == 1


def _counting(model):
    """A clone that counts its UNet calls and the rows of each."""
    import comfy.patcher_extension as pe

    m, rows = model.clone(), []

    def count(executor, x, *args, **kwargs):
        rows.append(x.shape[0])
        return executor(x, *args, **kwargs)

    m.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, "test_count", count)
    return m, rows


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_a_step_is_one_unet_call_of_the_instance_and_class_rows(host, tiny, family):
    """With the prior loss each step is one UNet call of the batch's instance and class rows together
    (batch 2: 4 rows), the class rows under the class prompt (``HostDenoiser.pair``), as the reference
    script's one forward of the stacked batch; a class prompt with an area cannot share the call (the
    host also adds an entry to the positive for it), and each step falls back to two calls, with the
    same losses where the area is the whole picture."""
    model, clip, _ = tiny(family)
    counted, rows = _counting(model)
    _, _, losses = teach(host, counted, clip, steps=3)
    assert rows == [4, 4, 4]
    whole = call(host, "ConditioningSetArea", conditioning=encode(host, clip, CLASS), width=64, height=64, x=0, y=0,
                 strength=1.0)[0]
    counted, rows = _counting(model)
    _, _, apart = teach(host, counted, clip, steps=3, class_prompt=whole)
    assert len(rows) == 6 and rows[1::2] == [2, 2, 2]
    assert apart["loss"] == pytest.approx(losses["loss"], rel=1e-4)


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_full_fine_tune_trains_every_weight_and_the_patch_is_the_hosts(host, tiny, family):
    """DreamBooth Fine-Tune: training lowers the instance loss; every UNet weight and bias has its
    difference (zero steps: all zero, sampling bit for bit as the input model); the MODEL output is a
    clone patched with them (the input untouched); Save LoRA Weights writes the patch and the stock
    Load LoRA Model applies the file to sample bit for bit the same."""
    import comfy.utils

    model, clip, _ = tiny(family)
    args = dict(model=model, instance_images=latents(3, 1, 2.0), instance_prompt=encode(host, clip, INSTANCE),
                learning_rate=3e-4, prior_loss_weight=1.0, batch_size=2, seed=0, class_images=latents(6, 2),
                class_prompt=encode(host, clip, CLASS))
    same, start, losses = call(host, "InvertEditDreamBoothFineTune", steps=0, **args)[:3]
    unet = model.model.diffusion_model
    assert losses["loss"] == [] and len(start) == len(list(unet.parameters())) and not any(v.any() for v in start.values())
    assert torch.equal(generate(host, same, clip), generate(host, model, clip))

    tuned, patch, losses = call(host, "InvertEditDreamBoothFineTune", steps=30, **args)[:3]
    inst = latents(3, 1, 2.0)["samples"]
    before, after = (loss_of(host, m, inst, encode(host, clip, INSTANCE)) for m in (model, tuned))
    moved = sum(bool(v.any()) for v in patch.values())
    print(f"\n{family}: instance loss {before:.4f} -> {after:.4f}; {moved} of {len(patch)} tensors changed")
    assert len(losses["loss"]) == 30 and after < before and moved > 0.9 * len(patch)
    assert tuned is not model and not model.patches and len(tuned.patches) == len(patch)
    call(host, "SaveLoRANode", lora=patch, prefix=f"loras/dreambooth_full_{family}")
    saved = sorted((host.output_dir / "loras").glob(f"dreambooth_full_{family}_*.safetensors"))
    loaded = comfy.utils.load_torch_file(str(saved[-1]), safe_load=True)
    reloaded = call(host, "LoraModelLoader", model=model, lora=loaded, strength_model=1.0)[0]
    ours = generate(host, tuned, clip)
    assert torch.equal(generate(host, reloaded, clip), ours) and not torch.equal(ours, generate(host, model, clip))


def test_full_fine_tune_refuses_a_model_its_device_has_not_the_memory_for(host, skip_loudly):
    """DreamBooth Fine-Tune refuses, before anything is loaded or trained, a UNet whose 16 bytes per
    parameter (float32 differences, gradients, AdamW's two moments) exceed the free memory of its
    load device: the real-size SDXL UNet (2.57 G parameters: 38.3 GiB), the host's own model class
    built on the meta device (no memory, no weights), on the host's device. The message names the
    node, the input, both figures and DreamBooth LoRA as what works."""
    import comfy.model_base
    import comfy.model_management as mm
    import comfy.model_patcher

    from workshop.benchmarks.real_size_cost import real_specs

    spec, _ = real_specs(host.pack.demo.tiny_models)["sdxl"]
    config = host.pack.hostkit.loaders.model_config(spec.config_class, spec.unet_config, spec.unet_overrides)
    config.set_inference_dtype(torch.float32, None)
    unet = comfy.model_base.SDXL(config, model_type=spec.model_type, device=torch.device("meta"))
    count = sum(p.numel() for p in unet.diffusion_model.parameters())
    device = mm.get_torch_device()
    if 16 * count <= mm.get_free_memory(device):
        skip_loudly(f"FINE-TUNE MEMORY REFUSAL NOT EXERCISED: {device} has more than the real SDXL UNet's "
                    f"{16 * count / 2 ** 30:.1f} GiB free")
    model = comfy.model_patcher.ModelPatcher(unet, load_device=device, offload_device=mm.unet_offload_device())
    conditioning = [[torch.zeros(1, 77, 2048), {"pooled_output": torch.zeros(1, 1280)}]]
    with pytest.raises(host.pack.hostkit.errors.NodeInputError) as refused:
        call(host, "InvertEditDreamBoothFineTune", model=model, instance_images={"samples": torch.zeros(2, 4, 128, 128)},
             instance_prompt=conditioning, steps=1, learning_rate=5e-6, prior_loss_weight=0.0, batch_size=1, seed=0)
    message = str(refused.value)
    print(message)
    assert message.startswith("DreamBooth Fine-Tune: input 'model'") and "2567 M" in message
    assert "38.3 GiB" in message and "DreamBooth LoRA" in message
    assert all(p.device.type == "meta" for p in unet.parameters()), "the refused model was loaded"


@pytest.mark.parametrize("node, text", [("InvertEditDreamBoothLoRA", False), ("InvertEditDreamBoothFineTune", False),
                                        ("InvertEditDreamBoothLoRA", True), ("InvertEditDreamBoothFineTune", True)])
def test_a_cancelled_run_goes_on_from_its_state_file_as_an_unbroken_run(host, tiny, node, text):
    """With a state_name, a run cancelled after 4 of 7 steps leaves its state file (weights and
    AdamW's moments after step 4); the same run again goes on from step 5 and ends with the weights
    and losses of an unbroken 7-step run (the earlier steps' draws replayed, the moments restored);
    resuming from the LoRA alone (the 'resume' input: the moments and the draws afresh) does not. A finished
    state asked for the same steps returns its weights without training. ``text``: the text encoder
    trained too (its tensors kept and restored with the UNet's)."""
    import comfy.model_management

    model, clip, _ = tiny("sd1")
    args = dict(instance_images=latents(3, 1, 2.0), instance_prompt=encode(host, clip, INSTANCE), learning_rate=3e-3,
                prior_loss_weight=1.0, batch_size=2, seed=0, class_images=latents(6, 2),
                class_prompt=encode(host, clip, CLASS), **({"rank": 4} if node.endswith("LoRA") else {}))
    if node.endswith("FineTune"):
        args["learning_rate"] = 3e-4
    if text:
        args.update(clip=clip, instance_text=INSTANCE, class_text=CLASS)
    _, whole, losses = call(host, node, model=model, steps=7, **args)[:3]
    assert any(k.startswith("text_encoders.") for k in whole) == text
    name = f"test-resume-{node}{'-text' if text else ''}"
    cancelling, calls = _interrupting(model, 4)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            call(host, node, model=cancelling, steps=7, state_name=name, **args)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    path = host.output_dir / "invertedit" / "training" / f"{name}.safetensors"
    import safetensors

    with safetensors.safe_open(str(path), framework="pt") as f:
        assert f.metadata()["steps_done"] == "4" and any(k.startswith("exp_avg_sq.") for k in f.keys())
    _, resumed, rest = call(host, node, model=model, steps=7, state_name=name, **args)[:3]
    print(f"\n{node}: losses {losses['loss']}; resumed {rest['loss']}; "
          f"largest difference {max(float((resumed[k] - whole[k]).abs().max()) for k in whole):.2e}")
    assert rest["loss"] == pytest.approx(losses["loss"][4:], rel=1e-5)
    assert all(torch.allclose(resumed[k], whole[k], rtol=1e-5, atol=1e-7) for k in whole)
    _, again, none = call(host, node, model=model, steps=7, state_name=name, **args)[:3]
    assert none["loss"] == [] and all(torch.equal(again[k], resumed[k]) for k in whole)
    if node.endswith("LoRA"):   # the weights alone, the moments afresh: not the unbroken run
        _, first, _ = call(host, node, model=model, steps=4, **args)[:3]
        _, fresh, _ = call(host, node, model=model, steps=3, resume=first, **args)[:3]
        assert not all(torch.allclose(fresh[k], whole[k], rtol=1e-5, atol=1e-7) for k in whole)


@pytest.mark.parametrize("node, family", [("LoRA", "sd1"), ("LoRA", "sdxl"), ("FineTune", "sd1")])
def test_the_text_encoder_trains_too_and_loraloader_applies_both(host, tiny, node, family):
    """With a CLIP and the prompts' texts (the scripts' --train_text_encoder): DreamBooth LoRA's LoRA
    holds the UNet's matrices and, under ``text_encoders.``, one pair per attention projection of
    each text encoder (SDXL: both), all moved by training; DreamBooth Fine-Tune's patch a difference
    per text-model weight and bias (the position table, which the host reads past weight wrappers,
    left frozen). The node's CLIP encodes the instance prompt differently from the input CLIP; Save
    LoRA Weights' file through the stock LoraLoader gives a MODEL and a CLIP that sample bit for bit
    as the node's outputs."""
    import shutil

    import comfy.utils
    import folder_paths

    model, clip, _ = tiny(family)
    size = 8 if family == "sd1" else 16
    images = {"samples": torch.randn(3, 4, size, size, generator=torch.Generator().manual_seed(1)) * 3.0}
    classes = {"samples": torch.randn(4, 4, size, size, generator=torch.Generator().manual_seed(2)) * 3.0}
    args = dict(model=model, instance_images=images, instance_prompt=encode(host, clip, INSTANCE), learning_rate=3e-3,
                prior_loss_weight=1.0, batch_size=2, seed=0, class_images=classes,
                class_prompt=encode(host, clip, CLASS), clip=clip, instance_text=INSTANCE, class_text=CLASS)
    name = f"InvertEditDreamBooth{node}"
    if node == "LoRA":
        args["rank"] = 4
    else:
        args["learning_rate"] = 3e-4
    _, start, _, _ = call(host, name, steps=0, **args)
    tuned, lora, losses, tuned_clip = call(host, name, steps=6, **args)
    encoders = host.pack.hostkit.text_encoders.text_encoders(clip, name)
    if node == "FineTune":
        text_model = {f"text_encoders.clip_l.transformer.text_model.{k}" for k, _ in
                      encoders[0][1].transformer.text_model.named_parameters() if "position_embedding" not in k}
        ours = {k.replace(".diff_b", ".bias").replace(".diff", ".weight") for k in lora if k.startswith("text_encoders.")}
        assert ours == text_model and all(lora[k].abs().max() > 0 for k in lora if k.startswith("text_encoders."))
    else:
        text = sorted(k[:-len(".alpha")] for k in lora if k.startswith("text_encoders.") and k.endswith(".alpha"))
        assert {k.split(".")[1] for k in text} == ({"clip_l"} if family == "sd1" else {"clip_l", "clip_g"})
        blocks = sum(len(e.transformer.text_model.encoder.layers) for _, e in encoders)
        assert len(text) == 4 * blocks and all(k.rsplit(".", 1)[-1] in ("q_proj", "k_proj", "v_proj", "out_proj")
                                               for k in text)
        still = [k for k in text if (lora[f"{k}.lora_up.weight"] - start[f"{k}.lora_up.weight"]).eq(0).all()]
        # SDXL's context is clip_l's and clip_g's penultimate states: clip_l's last block gets no gradient
        # (clip_g's does, through the pooled vector), as in diffusers' SDXL script
        last = len(clip.cond_stage_model.clip_l.transformer.text_model.encoder.layers) - 1 if family == "sdxl" else None
        assert still == ([] if last is None else [f"text_encoders.clip_l.transformer.text_model.encoder.layers.{last}."
                                                  f"self_attn.{p}" for p in ("k_proj", "out_proj", "q_proj", "v_proj")])
    def prompt(c):
        return encode(host, c, INSTANCE)[0][0]

    assert not torch.allclose(prompt(tuned_clip), prompt(clip))
    call(host, "SaveLoRANode", lora=lora, prefix=f"loras/dreambooth_te_{node}_{family}")
    saved = sorted((host.output_dir / "loras").glob(f"dreambooth_te_{node}_{family}_*.safetensors"))[-1]
    folder = Path(folder_paths.get_folder_paths("loras")[0])
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(saved, folder / saved.name)
    assert set(comfy.utils.load_torch_file(str(saved), safe_load=True)) == set(lora)
    loaded_model, loaded_clip = call(host, "LoraLoader", model=model, clip=clip, lora_name=saved.name,
                                     strength_model=1.0, strength_clip=1.0)
    assert torch.equal(prompt(loaded_clip), prompt(tuned_clip))

    def sample(m, c):
        return call(host, "KSampler", model=m, seed=0, steps=4, cfg=3.0, sampler_name="ddim", scheduler="ddim_uniform",
                    positive=encode(host, c, INSTANCE), negative=encode(host, c, ""),
                    latent_image={"samples": torch.zeros(1, 4, size, size)}, denoise=1.0)[0]["samples"]

    assert torch.equal(sample(loaded_model, loaded_clip), sample(tuned, tuned_clip))

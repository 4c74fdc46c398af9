"""Custom Diffusion through the host, on the tiny SD1 / SD2-v models: only the cross-attention keys and
values change; the LoRA output, saved and read back by the stock LoraLoader, gives the node's MODEL
to the bit; the word is read by "embedding:<name>"; zero steps change nothing and start the word at
the script's "ktn"; weights loaded under inference mode train alike; progress per step and an
interrupt within one UNet evaluation. (Parity with diffusers' script: test_custom_diffusion_parity.py;
refusals: the bad-input table's ``custom-diffusion-*`` cases.)"""
from __future__ import annotations

import pytest
import torch

from test_long_loops_interrupt import _interrupting
from workshop.headless.calls import call, encode

SIZE = 128


def photos(count: int = 3, seed: int = 1) -> torch.Tensor:
    return torch.rand(count, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(seed))


def teach(host, model, clip, vae, name, steps=3, learning_rate=1e-3, prior_loss_weight=1.0, seed=0, **extra):
    args = dict(model=model, clip=clip, vae=vae, instance_images=photos(), instance_prompt="photo of a {} square",
                name=name, initializer="ktn", steps=steps, learning_rate=learning_rate, batch_size=2,
                prior_loss_weight=prior_loss_weight, augment=True, hflip=True, seed=seed,
                class_images=photos(4, 2), class_prompt="square")
    args.update(extra)
    return call(host, "InvertEditCustomDiffusion", **args)


def prediction(model, latent: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    import comfy.model_management

    comfy.model_management.load_models_gpu([model])
    sigma = torch.tensor([3.0])
    with torch.inference_mode():
        return model.model.apply_model(latent, sigma, c_crossattn=context)


@pytest.mark.parametrize("family", ["sd1", "sd2-v"])
def test_the_stock_loader_reads_what_the_node_made(host, tiny, family):
    """Only attn2.to_k / to_v change (two per transformer block); Save LoRA Weights' file through
    the stock LoraLoader predicts exactly as the node's MODEL; "embedding:<name>" in the stock CLIP
    Text Encode is the word's encoding as trained."""
    import comfy.utils
    import folder_paths
    import safetensors.torch

    kit = host.pack.hostkit
    model, clip, vae = tiny(family)
    name = f"cd-load-{family}"
    taught, out_clip, word, lora, loss = teach(host, model, clip, vae, name)
    assert word == f"embedding:{name}" and len(loss["loss"]) == 3
    assert all(k.endswith((".attn2.to_k.diff", ".attn2.to_v.diff")) for k in lora)
    assert len(lora) == 2 * sum(1 for n, _ in model.model.diffusion_model.named_modules() if n.endswith(".attn2"))
    assert all(float(v.abs().max()) > 0 for v in lora.values())
    path = folder_paths.get_folder_paths("loras")[0] + f"/{name}.safetensors"
    comfy.utils.save_torch_file(lora, path)
    stock, _ = call(host, "LoraLoader", model=model, clip=clip, lora_name=f"{name}.safetensors", strength_model=1.0,
                    strength_clip=1.0)
    context = encode(host, out_clip, f"a photo of a {word} square")[0][0]
    latent = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(5))
    ours, theirs, plain = (prediction(m, latent, context) for m in (taught, stock, model))
    assert torch.equal(ours, theirs) and not torch.equal(ours, plain)
    # the word as trained: the vector from the file in the prompt's place
    learned = next(iter(safetensors.torch.load_file(str(kit.learned_words.embedding_path(name))).values()))
    key, encoder = kit.text_encoders.text_encoder(clip, "Custom Diffusion")
    (row,) = host.pack.techniques.custom_diffusion.glue._prompt_rows(clip, key, ("a photo of a {} square",))
    trained = kit.text_encoders.encode_rows(clip, encoder, [kit.learned_words.with_vectors(row, learned)])
    assert torch.equal(context, trained.to(context))


def test_on_sdxl_both_encoders_learn_the_word_and_the_stock_nodes_read_it(host, tiny):
    """SDXL (the pack's extension: the script trains SD1.x / SD2.x): the word gets a vector in clip_l
    and in clip_g, both moved from "ktn"; the stock CLIP Text Encode of a prompt naming it is, bit for
    bit, the encoding training computes (context side by side and clip_g's pooled vector); Save LoRA
    Weights' file through the stock LoraLoader samples exactly as the node's MODEL, which samples
    otherwise than the untouched model."""
    import comfy.utils
    import folder_paths
    import safetensors.torch

    kit = host.pack.hostkit
    model, clip, vae = tiny("sdxl")
    name = "cd-load-sdxl"
    taught, out_clip, word, lora, loss = teach(host, model, clip, vae, name)
    assert len(loss["loss"]) == 3 and all(k.endswith((".attn2.to_k.diff", ".attn2.to_v.diff")) for k in lora)
    assert all(float(v.abs().max()) > 0 for v in lora.values())
    file = safetensors.torch.load_file(str(kit.learned_words.embedding_path(name)))
    assert sorted(file) == ["clip_g", "clip_l"]
    encoders = kit.text_encoders.text_encoders(clip, "Custom Diffusion")
    rows = []
    for key, encoder in encoders:
        table = encoder.transformer.get_input_embeddings().weight
        start = table[host.pack.techniques.custom_diffusion.glue.initializer_token(clip, key, "ktn")].float()
        assert file[f"clip_{key}"].shape == (1, table.shape[-1]) and not torch.equal(file[f"clip_{key}"][0], start)
        (row,) = host.pack.techniques.custom_diffusion.glue._prompt_rows(clip, key, ("a photo of a {} square",))
        rows.append([kit.learned_words.with_vectors(row, file[f"clip_{key}"])])
    positive = encode(host, out_clip, f"a photo of a {word} square")
    ((stock, extra),) = positive
    ours, pooled = kit.text_encoders.encode_prompt(clip, encoders, rows)
    assert torch.equal(stock, ours.to(stock)) and torch.equal(extra["pooled_output"], pooled.to(extra["pooled_output"]))
    path = folder_paths.get_folder_paths("loras")[0] + f"/{name}.safetensors"
    comfy.utils.save_torch_file(lora, path)
    loaded, _ = call(host, "LoraLoader", model=model, clip=clip, lora_name=f"{name}.safetensors", strength_model=1.0,
                     strength_clip=1.0)

    def sample(m):
        return call(host, "KSampler", model=m, seed=0, steps=3, cfg=3.0, sampler_name="ddim", scheduler="ddim_uniform",
                    positive=positive, negative=encode(host, clip, ""), latent_image={"samples": torch.zeros(1, 4, 16, 16)},
                    denoise=1.0)[0]["samples"]

    ours_sample = sample(taught)
    assert torch.equal(sample(loaded), ours_sample) and not torch.equal(sample(model), ours_sample)


def test_zero_steps_change_nothing_and_start_at_ktn(host, tiny):
    model, clip, vae = tiny("sd1")
    taught, out_clip, word, lora, loss = teach(host, model, clip, vae, "cd-zero", steps=0)
    assert loss["loss"] == [] and all(float(v.abs().max()) == 0 for v in lora.values())
    latent = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(5))
    context = encode(host, clip, "a photo of a square")[0][0]
    assert torch.equal(prediction(taught, latent, context), prediction(model, latent, context))
    import safetensors.torch

    vector = next(iter(safetensors.torch.load_file(
        str(host.pack.hostkit.learned_words.embedding_path("cd-zero"))).values()))
    table = clip.cond_stage_model.clip_l.transformer.get_input_embeddings().weight
    vocabulary = clip.tokenizer.clip_l.tokenizer.get_vocab()
    assert torch.equal(vector[0], table[vocabulary["ktn"]].float())   # the script's piece "ktn", not "k" + "tn</w>"


def test_without_the_prior_and_augmentation(host, tiny):
    """prior_loss_weight 0 needs no class pictures; augment off trains on the whole photo."""
    model, clip, vae = tiny("sd1")
    _, _, _, lora, loss = teach(host, model, clip, vae, "cd-plain", prior_loss_weight=0.0, augment=False,
                                class_images=None)
    assert len(loss["loss"]) == 3 and all(float(v.abs().max()) > 0 for v in lora.values())


def test_weights_loaded_under_inference_mode_train_alike(host, tiny):
    model, clip, vae = tiny("sd1")
    with torch.inference_mode():
        frozen_model = host.pack.demo.tiny_models.build_tiny_unet("sd1", 0)
        frozen_clip = host.pack.demo.tiny_models.build_tiny_clip("sd1", 0)
    _, _, _, a, _ = teach(host, model, clip, vae, "cd-plain-weights")
    _, _, _, b, _ = teach(host, frozen_model, frozen_clip, vae, "cd-frozen-weights")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_progress_and_interrupt_within_one_unet_evaluation(host, tiny):
    import comfy.model_management
    import comfy.utils

    model, clip, vae = tiny("sd1")
    seen = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        teach(host, model, clip, vae, "cd-progress", steps=3)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert [s for s in seen if s[1] == 3] == [(1, 3), (2, 3), (3, 3)]
    counted, calls = _interrupting(model)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            teach(host, counted, clip, vae, "cd-interrupted", steps=10)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert len(calls) == 1


def test_a_cancelled_run_goes_on_from_its_state_file_as_an_unbroken_run(host, tiny):
    """With a state_name, a run cancelled after 2 of 5 steps goes on from its state file and ends with
    the keys' and values' changes, the word and the losses of an unbroken 5-step run (the
    augmentation's plan and each step's draws replayed)."""
    import comfy.model_management
    import safetensors.torch

    model, clip, vae = tiny("sd1")
    _, _, _, whole, losses = teach(host, model, clip, vae, "cd-unbroken", steps=5)
    cancelling, _ = _interrupting(model, 2)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            teach(host, cancelling, clip, vae, "cd-resumed", steps=5, state_name="cd-resume-test")
    finally:
        comfy.model_management.interrupt_current_processing(False)
    _, _, _, resumed, rest = teach(host, model, clip, vae, "cd-resumed", steps=5, state_name="cd-resume-test")
    words = [safetensors.torch.load_file(str(host.pack.hostkit.learned_words.embedding_path(n)))
             for n in ("cd-unbroken", "cd-resumed")]
    assert rest["loss"] == pytest.approx(losses["loss"][2:], rel=1e-5)
    assert all(torch.allclose(resumed[k], whole[k], rtol=1e-5, atol=1e-7) for k in whole)
    assert all(torch.allclose(words[1][k], words[0][k], rtol=1e-5, atol=1e-7) for k in words[0])

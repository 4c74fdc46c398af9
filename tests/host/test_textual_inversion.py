"""Textual Inversion through the host, on the tiny SD1 / SD2-v / SDXL models: the saved file is read by
the stock CLIP Text Encode ("embedding:<name>") to exactly the encoding the training used; zero
steps give the initializer's embedding; training lowers the images' loss under the new word; a file
the node did not write is never replaced; weights loaded under inference mode train alike; progress
per step and an interrupt within one UNet evaluation. (Parity with diffusers' script:
test_textual_inversion_parity.py; refusals: the bad-input table's ``textual-inversion-*`` cases.)"""
from __future__ import annotations

import pytest
import torch

from test_long_loops_interrupt import _interrupting
from workshop.headless.calls import call, encode


def images(count: int = 3, seed: int = 1) -> dict:
    return {"samples": torch.randn(count, 4, 8, 8, generator=torch.Generator().manual_seed(seed)) * 3.0 + 1.0}


def learn(host, model, clip, name, steps=20, learning_rate=0.01, batch_size=2, num_vectors=1, seed=0, **extra):
    args = dict(model=model, clip=clip, images=images(), name=name, initializer="square", steps=steps,
                learning_rate=learning_rate, batch_size=batch_size, num_vectors=num_vectors, templates="object", seed=seed)
    args.update(extra)
    return call(host, "InvertEditTextualInversion", **args)


def saved(host, name):
    import safetensors.torch

    return safetensors.torch.load_file(str(host.pack.hostkit.learned_words.embedding_path(name)))


@pytest.mark.parametrize("family,keys", [("sd1", ["clip_l"]), ("sd2-v", ["clip_h"]), ("sdxl", ["clip_g", "clip_l"])])
def test_the_stock_prompt_reads_the_saved_word_as_trained(host, tiny, family, keys):
    """"a photo of a embedding:<name>" through the stock CLIP Text Encode is, bit for bit, the encoding
    the training computes from the vectors (the host's tokenizer puts the file's vectors where the
    training put them), for 1 and 3 vectors; the file holds them under each encoder's key. SDXL: both
    encoders' vectors, the context side by side and the pooled vector (clip_g's) alike."""
    kit, encoding = host.pack.techniques.textual_inversion.glue, host.pack.hostkit.text_encoders
    words = host.pack.hostkit.learned_words
    model, clip, _ = tiny(family)
    for vectors in (1, 3):
        name = f"ti-read-{family}-{vectors}"
        out_clip, word, loss = learn(host, model, clip, name, steps=3, num_vectors=vectors)
        assert word == f"embedding:{name}" and len(loss["loss"]) == 3
        file = saved(host, name)
        assert sorted(file) == keys
        ((stock, extra),) = encode(host, out_clip, f"a photo of a {word}")
        encoders = encoding.text_encoders(clip, kit.NODE)
        rows = []
        for k, encoder in encoders:
            token = words.initializer_id(clip, k, "square", kit.NODE)
            (row,) = words.template_rows(clip, k, ("a photo of a {}",), "square", token, kit.NODE)
            rows.append([words.with_vectors(row, file[f"clip_{k}"])])
            assert file[f"clip_{k}"].shape == (vectors, encoder.transformer.get_input_embeddings().weight.shape[-1])
        ours, pooled = encoding.encode_prompt(clip, encoders, rows)
        assert torch.equal(stock, ours.to(stock)), float((stock - ours).abs().max())
        if family == "sdxl":
            assert torch.equal(extra["pooled_output"], pooled.to(extra["pooled_output"]))
            assert not torch.equal(pooled, encode(host, clip, "a photo of a square")[0][1]["pooled_output"])


def test_zero_steps_give_the_initializers_word(host, tiny):
    model, clip, _ = tiny("sd1")
    out_clip, word, _ = learn(host, model, clip, "ti-zero", steps=0)
    assert torch.equal(encode(host, out_clip, f"a photo of a {word}")[0][0], encode(host, clip, "a photo of a square")[0][0])


def test_training_lowers_the_images_loss_under_the_new_word(host, tiny):
    model, clip, _ = tiny("sd1")
    out_clip, word, loss = learn(host, model, clip, "ti-loss", steps=40, learning_rate=0.05)
    reconstruction = host.pack.techniques.imagic.glue.reconstruction_loss
    with torch.inference_mode():
        before = reconstruction(model, images()["samples"], encode(host, clip, "a photo of a square"), count=16)
        after = reconstruction(model, images()["samples"], encode(host, out_clip, f"a photo of a {word}"), count=16)
    print(f"\nloss under 'a photo of a square' {before:.4f}, under the learned word {after:.4f}")
    assert after < before


def test_a_file_the_node_did_not_write_is_never_replaced(host, tiny):
    import safetensors.torch

    model, clip, _ = tiny("sd1")
    path = host.pack.hostkit.learned_words.embedding_path("ti-foreign")
    path.parent.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file({"emb_params": torch.ones(1, 64)}, str(path))
    with pytest.raises(Exception, match=r"Textual Inversion: input 'name': .*ti-foreign.safetensors exists and was not "
                                        r"written by this node; give another name"):
        learn(host, model, clip, "ti-foreign", steps=1)
    assert torch.equal(safetensors.torch.load_file(str(path))["emb_params"], torch.ones(1, 64))
    learn(host, model, clip, "ti-ours", steps=1)
    learn(host, model, clip, "ti-ours", steps=2)   # its own file: replaced


def test_weights_loaded_under_inference_mode_train_alike(host, tiny):
    model, clip, _ = tiny("sd1")
    with torch.inference_mode():
        frozen_model = host.pack.demo.tiny_models.build_tiny_unet("sd1", 0)
        frozen_clip = host.pack.demo.tiny_models.build_tiny_clip("sd1", 0)
    assert all(p.is_inference() for p in frozen_clip.cond_stage_model.parameters())
    learn(host, model, clip, "ti-plain", steps=3)
    learn(host, frozen_model, frozen_clip, "ti-frozen", steps=3)
    a, b = saved(host, "ti-plain")["clip_l"], saved(host, "ti-frozen")["clip_l"]
    assert torch.equal(a, b)


def test_progress_and_interrupt_within_one_unet_evaluation(host, tiny):
    import comfy.model_management
    import comfy.utils

    model, clip, _ = tiny("sd1")
    seen = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        learn(host, model, clip, "ti-progress", steps=3)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert [s for s in seen if s[1] == 3] == [(1, 3), (2, 3), (3, 3)]
    counted, calls = _interrupting(model)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            learn(host, counted, clip, "ti-interrupted", steps=100)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert len(calls) == 1


def test_a_cancelled_run_goes_on_from_its_state_file_as_an_unbroken_run(host, tiny):
    """With a state_name, a run cancelled after 3 of 6 steps goes on from its state file and writes
    the word an unbroken 6-step run writes, with the same losses (SDXL: both encoders' vectors)."""
    import comfy.model_management

    model, clip, _ = tiny("sdxl")
    _, _, losses = learn(host, model, clip, "ti-unbroken", steps=6)
    whole = saved(host, "ti-unbroken")
    cancelling, _ = _interrupting(model, 3)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            learn(host, cancelling, clip, "ti-resumed", steps=6, state_name="ti-resume-test")
    finally:
        comfy.model_management.interrupt_current_processing(False)
    _, _, rest = learn(host, model, clip, "ti-resumed", steps=6, state_name="ti-resume-test")
    resumed = saved(host, "ti-resumed")
    assert sorted(resumed) == sorted(whole) == ["clip_g", "clip_l"]
    assert rest["loss"] == pytest.approx(losses["loss"][3:], rel=1e-5)
    assert all(torch.allclose(resumed[k], whole[k], rtol=1e-5, atol=1e-7) for k in whole)


def test_gradients_through_the_text_encoder_take_the_math_kernel_on_cuda(host):
    """On CUDA the half-precision text encoder's attention with CLIP's 77 x 77 causal bias would go to
    SDPA's memory-efficient kernel, whose backward refuses that bias (found on an H200 and again on
    an H100: Textual Inversion, Custom Diffusion and DreamBooth's text-encoder training crashed).
    While gradients flow through a text encoder on CUDA only the math kernel may run, also inside
    the backend choice the host wraps around every attention call on NVIDIA (``comfy/ops.py``:
    ``sdpa_kernel(priority, set_priority=True)``, which overrode the first fix's choice made around
    the encoder); elsewhere the host's choice stands. The kernels' flags are read at the moment the
    attention is dispatched."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils._python_dispatch import TorchDispatchMode

    class Flags(TorchDispatchMode):
        seen: list = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            b = torch.backends.cuda
            self.seen.append((b.math_sdp_enabled(), b.mem_efficient_sdp_enabled(), b.flash_sdp_enabled(),
                              b.cudnn_sdp_enabled()))
            return func(*args, **(kwargs or {}))

    host_priority = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                     SDPBackend.MATH]   # comfy/ops.py's order on NVIDIA
    q = torch.randn(1, 2, 77, 8)
    bias = torch.full((77, 77), float("-inf")).triu_(1)[None, None]
    choose = host.pack.hostkit.text_encoders.attention_for_gradients
    for device, expected in ((torch.device("cuda", 0), {(True, False, False, False)}),
                             (torch.device("cpu"), {(True, True, True, True)})):
        Flags.seen = []
        with choose(device), Flags(), sdpa_kernel(host_priority, set_priority=True):
            torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=bias)
        assert Flags.seen and set(Flags.seen) == expected, (device, set(Flags.seen))
    assert torch.backends.cuda.mem_efficient_sdp_enabled()

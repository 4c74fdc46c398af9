"""The DiT attention driver (``hostkit/dit_attention.py``) on the tiny random Flux.1 and SD3 models:
a policy that only attends leaves the model's output bit-identical, every block asked for calls it
once per model call with the layout of its joint attention (text tokens, the image's patch grid,
heads, chunks, the run's time), and a policy's change of one block's attention changes the output.
A "dit" patch or an attention override already on the model keeps running under the pack's."""
from __future__ import annotations

import importlib

import pytest
import torch

from workshop.headless.calls import call

FAMILIES = ["flux-dev", "sd3", "qwen-image"]


def driver(host):
    return importlib.import_module(host.pack.__name__ + ".hostkit.dit_attention")


def sample(host, model, clip, latent, steps=3, text="a red circle on a green field"):
    cond = call(host, "CLIPTextEncode", clip=clip, text=text)[0]
    guider = call(host, "BasicGuider", model=model, conditioning=cond)[0]
    sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    noise = call(host, "RandomNoise", noise_seed=3)[0]
    sampler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


def policies(host):
    base = host.pack.attention.policy.AttentionPolicy

    class Recorder(base):
        pair = False

        def __init__(self):
            self.calls = []

        def attention(self, q, k, v, where, state):
            self.calls.append((where.block, where.text, where.grid, where.heads, where.chunks, where.rows,
                               tuple(q.shape), where.step, len(where.schedule)))
            return where.attend(q, k, v)

    class ZeroValues(base):
        pair = False

        def attention(self, q, k, v, where, state):
            return where.attend(q, k, torch.zeros_like(v))

    return Recorder, ZeroValues


@pytest.mark.parametrize("family", FAMILIES)
def test_a_policy_that_only_attends_changes_nothing_and_sees_every_block(host, tiny, family):
    dit = driver(host)
    Recorder, _ = policies(host)
    model, clip, _ = tiny(family)
    latent = torch.randn(1, 16, 8, 12, generator=torch.Generator().manual_seed(0))
    stock = sample(host, model, clip, latent)
    patched, recorder = model.clone(), Recorder()
    blocks = dit.dit_blocks(model)
    kinds = {b[0] for b in blocks}
    assert kinds == ({"double_block", "single_block"} if family.startswith("flux") else {"double_block"})
    dit.install_dit_policy(patched, recorder, blocks, "test")
    out = sample(host, patched, clip, latent)
    assert torch.equal(out, stock)
    assert len(recorder.calls) == 3 * len(blocks)          # 3 model calls (euler, 3 steps), each block once
    # the sampled prompt's text tokens (Flux's T5 and SD3's are padded; Qwen-Image's are the prompt's own)
    text = call(host, "CLIPTextEncode", clip=clip, text="a red circle on a green field")[0][0][0].shape[1]
    for i, (block, n_text, grid, heads, chunks, rows, shape, step, points) in enumerate(recorder.calls):
        assert block == blocks[i % len(blocks)]
        assert (n_text, grid) == (text, (4, 6))           # 8x12 latent, 2x2 patches
        assert shape == (1, heads, text + 24, shape[3]) and chunks == (0,) and rows == 1
        assert (step, points) == (i // len(blocks), 4)


def test_a_patched_sd3_block_runs_as_the_unpatched_one_without_a_checkpoint(host, tiny, monkeypatch):
    """The host's replace path for SD3 (``mmdit.py``'s ``block_wrap``) calls the joint block without
    ``use_checkpoint`` (default True): every patched block would run under ``torch.utils.checkpoint``,
    the same output at a cost in Python a block. The pack's patch runs the block as the unpatched loop
    does, for itself and for a "dit" patch that was there before it."""
    dit = driver(host)
    Recorder, _ = policies(host)
    model, clip, _ = tiny("sd3")
    latent = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    checkpoint, entered = torch.utils.checkpoint.checkpoint, []

    def counting(*args, **kwargs):
        entered.append(1)
        return checkpoint(*args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counting)
    stock = sample(host, model, clip, latent)
    assert not entered
    foreign = model.clone()     # another node's "dit" patch alone: the host's path, checkpointed
    blocks = dit.dit_blocks(model)
    for block in blocks:
        foreign.set_model_patch_replace(lambda args, extra: extra["original_block"](args), "dit", *block)
    assert torch.equal(sample(host, foreign, clip, latent), stock)
    assert len(entered) == 3 * len(blocks)
    entered.clear()
    patched, recorder = foreign.clone(), Recorder()
    dit.install_dit_policy(patched, recorder, blocks, "test")
    assert torch.equal(sample(host, patched, clip, latent), stock)
    assert not entered and len(recorder.calls) == 3 * len(blocks)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_policy_acts_on_its_blocks_only_and_earlier_patches_keep_running(host, tiny, family):
    dit = driver(host)
    Recorder, ZeroValues = policies(host)
    model, clip, _ = tiny(family)
    latent = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(1))
    stock = sample(host, model, clip, latent)
    last = dit.dit_blocks(model)[-1:]
    zeroed = model.clone()
    dit.install_dit_policy(zeroed, ZeroValues(), last, "test")
    changed = sample(host, zeroed, clip, latent)
    assert not torch.allclose(changed, stock, atol=1e-4)

    # an earlier "dit" patch and an attention override stay: the pack's policy runs inside both
    seen = {"block": 0, "override": 0}

    def earlier_block(args, extra):
        seen["block"] += 1
        return extra["original_block"](args)

    def earlier_override(func, *args, **kwargs):
        seen["override"] += 1
        return func(*args, **kwargs)

    chained = model.clone()
    chained.model_options["transformer_options"]["optimized_attention_override"] = earlier_override
    chained.set_model_patch_replace(earlier_block, "dit", last[0][0], last[0][1])
    recorder = Recorder()
    dit.install_dit_policy(chained, recorder, last, "test")
    dit.install_dit_policy(chained, ZeroValues(), last, "test")
    out = sample(host, chained, clip, latent)
    assert torch.equal(out, changed)
    assert seen["block"] == 3 and seen["override"] >= 3 and len(recorder.calls) == 3


def test_joint_text_probs_are_the_full_softmax_on_the_text_keys(host):
    maps = importlib.import_module(host.pack.__name__ + ".attention.maps")
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 10, 8, generator=g), torch.randn(3, 10, 8, generator=g)
    full = torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, dim=-1)
    got = maps.joint_text_probs(q.half(), k.half(), text=4)
    assert got.dtype == torch.float32 and got.shape == (3, 6, 4)
    torch.testing.assert_close(got, full[:, 4:, :4], atol=2e-3, rtol=0)
    torch.testing.assert_close(maps.joint_text_probs(q, k, text=4), full[:, 4:, :4])


@pytest.mark.parametrize("family", ["flux-dev", "sd3", "qwen-image"])
def test_attention_store_reads_word_maps_from_the_joint_attention(host, tiny, family):
    """Attention Store on a flow inversion: per-word heatmaps and a mask at the image's size, each
    word found at its own tokens of the model's text sequence (Flux: T5; SD3: CLIP, then T5). The
    tiny models' random weights attend nowhere in particular: where the maps land is the toy flow
    model's to show (issue 26)."""
    model, clip, _ = tiny(family)
    prompt = "a red circle on a green field"
    latent = torch.randn(1, 16, 8, 12, generator=torch.Generator().manual_seed(2))
    cond = call(host, "CLIPTextEncode", clip=clip, text=prompt)[0]
    inv = call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=cond,
               solver="euler", steps=4, scheduler="simple", guidance=1.0)[0]
    tokens = importlib.import_module(host.pack.__name__ + ".hostkit.tokens")
    sequence = host.pack.hostkit.family.model_family(model).text_sequence
    words = tokens.sequence_words(clip, prompt, "test", sequence, cond[0][0].shape[1])
    assert [w for w, _ in words] == prompt.split()
    circle = dict(words)["circle"]
    if family.startswith("flux"):
        t5 = [t[0] for t in clip.tokenize(prompt)["t5xxl"][0]]
        assert [t5[i] for i in circle] == [t[0] for t in clip.tokenize("circle")["t5xxl"][0]][:len(circle)]
    elif family == "sd3":
        assert circle[0] < 77
    else:   # Qwen2.5-VL: the text after the chat template's "<|im_start|>user\n", the word's token with its space
        tokenizer = clip.tokenizer.qwen25_7b.tokenizer
        assert cond[0][0].shape[1] == len(prompt.split()) + 5 and circle == [2]
        assert tokenizer.convert_ids_to_tokens(tokens.qwen_text_ids(clip, prompt)[0])[2] == "\u0120circle"
    kinds = ("all", "double", "single") if family.startswith("flux") else ("all", "double")
    results = {}
    for kind in kinds:
        heatmaps, mask = call(host, "InvertEditAttentionStore", model=model, clip=clip, inversion=inv, prompt=prompt,
                              words="circle", start=0.0, end=1.0, threshold=0.3, dit_blocks=kind)
        assert heatmaps.shape[0] == len(words) and heatmaps.shape[-1] == 3 and torch.isfinite(heatmaps).all()
        assert mask.shape == (1, 64, 96) and set(mask.unique().tolist()) <= {0.0, 1.0}   # random weights: no place
        results[kind] = heatmaps
    if family.startswith("flux"):   # the blocks chosen are the blocks read
        assert not torch.allclose(results["double"], results["single"])
    else:
        assert torch.equal(results["all"], results["double"])


def test_qwen_words_are_found_at_their_tokens_inside_the_prompt(host, tiny):
    """Qwen-Image's text sequence: the Qwen2.5-VL tokens the host's QwenImageTokenizer makes, after the chat
    template's start that ``QwenImageTEModel.encode_token_weights`` cuts. Qwen2's byte-level BPE keeps a word's
    leading space inside its token ("Ġred", not "red" as the word alone tokenizes) and may split one character
    over several tokens: each word's positions are its tokens as they occur inside the prompt."""
    _, clip, _ = tiny("qwen-image")
    tokens = importlib.import_module(host.pack.__name__ + ".hostkit.tokens")
    tokenizer = clip.tokenizer.qwen25_7b.tokenizer
    prompt = "A Cat, on a café rug (red) 猫 and a cat"
    cond = call(host, "CLIPTextEncode", clip=clip, text=prompt)[0]
    ids, count = tokens.qwen_text_ids(clip, prompt)
    assert len(ids) == cond[0][0].shape[1] == count + 5   # the prompt's tokens, then the template's end
    assert ids[count:] == [151645, 198, 151644, 77091, 198]
    words = tokens.sequence_words(clip, prompt, "test", "qwen25_7b", len(ids))
    assert [w for w, _ in words] == prompt.split()
    flat = [p for _, found in words for p in found]
    assert flat == sorted(flat) and len(set(flat)) == len(flat) and max(flat) < count
    for word, found in words:
        assert tokenizer.convert_tokens_to_string(tokenizer.convert_ids_to_tokens([ids[p] for p in found])).strip() == word
    rug = dict(words)["rug"]
    assert [ids[p] for p in rug] == tokenizer(" rug")["input_ids"] != tokenizer("rug")["input_ids"]
    assert [ids[p] for p in dict(words)["A"]] == tokenizer("A")["input_ids"]   # the first word has no space before it
    assert len(dict(words)["猫"]) > 1                                          # one character, several byte tokens
    cats = [found for w, found in words if w == "cat"]
    assert len(cats) == 1 and cats[0][0] > dict(words)["Cat,"][0]
    # the phrase finder takes a word as written, else as it is but for case and punctuation ("cat" finds "Cat," too)
    assert tokens.sequence_phrase_positions(words, "rug", "test", "words") == rug


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_with_lse_takes_a_padded_rows_mask(host, dtype):
    """``heads_attention_with_lse`` with an additive mask (a padded prompt's keys at -inf, per row: Qwen-Image's
    padded pair): the output is the masked softmax attention and the log-sum-exp the masked logits' (the CPU's
    fused kernel), with keys fewer than the queries as the text maps' calls have them."""
    lse_mod = importlib.import_module(host.pack.__name__ + ".attention.attention_lse")
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 24, 16, generator=g).to(dtype) for _ in range(3))
    keep = torch.ones(2, 24, dtype=torch.bool)
    keep[0, 4:7] = False
    mask = torch.zeros(2, 1, 1, 24, dtype=dtype).masked_fill_(~keep[:, None, None], float("-inf"))
    for keys in (24, 9):
        out, lse = lse_mod.heads_attention_with_lse(q, k[:, :, :keys], v[:, :, :keys], mask[..., :keys])
        logits = (q.float() @ k[:, :, :keys].float().transpose(-1, -2)) / 4 + mask[..., :keys].float()
        torch.testing.assert_close(lse, torch.logsumexp(logits, -1), atol=2e-3 if dtype != torch.float32 else 1e-5,
                                   rtol=0)
        expected = torch.softmax(logits, -1) @ v[:, :, :keys].float()
        torch.testing.assert_close(out.float(), expected, atol=2e-2 if dtype != torch.float32 else 1e-5, rtol=0)
        assert out.dtype == dtype
    # the masked keys take nothing: their values changed, the output is the same
    junk = v.clone()
    junk[0, :, 4:7] = 1e3
    full = lse_mod.heads_attention_with_lse(q, k, v, mask)[0]
    assert torch.isfinite(full).all()
    torch.testing.assert_close(lse_mod.heads_attention_with_lse(q, k, junk, mask)[0], full)

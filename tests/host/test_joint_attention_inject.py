"""Joint Attention Inject (Prompt-to-Prompt on joint attention) on the tiny random Flux dev, SD3 and Qwen-Image:

- the two prompts' tokens aligned over the transformer's text sequence (Flux's T5 tokens, SD3's CLIP window);
- the pair samples through the stock SamplerCustomAdvanced, and the edit acts (it is not the target prompt
  sampled alone, nor the pair with the patch's schedule at 0);
- with the local blend, outside the words' mask the edit's latent is the image's own (the source row's
  trajectory ends on it), whole latent cells at a time; without it, no cell is; the pack's Flow Sampler
  (euler) samples it as the host's euler does;
- Qwen-Image (its text the prompt's own length): a pair of two token counts padded and masked computes each prompt
  as alone, what it is padded with changes nothing, the alignment over unpadded prompts, the edit in half precision;
- the math against the edit written out on explicit maps is ``tests/pure/test_joint_prompt_to_prompt.py``;
  the cost per evaluation ``test_dispatch_count.py``. No authors' code exists for this setting."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode

SOURCE, TARGET = "a red circle on a blue background", "a red square on a blue background"
REFINED = "a red big circle on a blue background"
SIZE, STEPS = 16, 6


@pytest.fixture(scope="module")
def flux(host):
    return host.pack.demo.tiny_flow_models.build_tiny_flow_models("flux-dev", seed=0)


@pytest.fixture(scope="module")
def sd3(host):
    return host.pack.demo.tiny_flow_models.build_tiny_flow_models("sd3", seed=0)


def raw_latent() -> torch.Tensor:
    return torch.randn(1, 16, SIZE, SIZE, generator=torch.Generator().manual_seed(3))


def inverted(host, model, clip, raw):
    return call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw}, positive=encode(host, clip, SOURCE),
                solver="euler", steps=STEPS, scheduler="simple", guidance=1.0)


def edit(host, model, clip, raw, inv, sigmas, *, negative=None, sampler=None, **settings):
    """Joint Attention Inject on the inversion, the pair sampled (euler, or ``sampler``); the output in
    sampler space."""
    args = dict(model=model, clip=clip, inversion=inv, source_prompt=SOURCE, target_prompt=TARGET, mode="replace",
                reweight="", cross_replace=0.8, self_replace=0.4, blocks="all", guidance=3.5,
                local_blend=bool(settings.get("blend_source_words") or settings.get("blend_target_words")))
    args.update(settings)
    patched, pair, noise = call(host, "InvertEditJointAttentionInject", **args)
    if negative is None:
        guider = call(host, "BasicGuider", model=patched, conditioning=pair)[0]
    else:
        guider = call(host, "CFGGuider", model=patched, positive=pair, negative=negative, cfg=3.5)[0]
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider,
               sampler=sampler or call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
               latent_image={"samples": raw.repeat(2, 1, 1, 1)})[0]["samples"]
    return model.model.process_latent_in(out).float()


def test_refine_aligns_the_t5_tokens_of_shared_words(host, flux):
    _, clip, _ = flux
    kit = host.pack.hostkit
    words = {text: kit.tokens.sequence_words(clip, text, "t", "t5xxl", 256) for text in (SOURCE, REFINED)}
    streams = [kit.tokens.stream_words(clip, text, "t", "t5xxl", 256) for text in (SOURCE, REFINED)]
    mapper, alphas = host.pack.techniques.joint_prompt_to_prompt.glue.joint_refine(*streams, 256)
    source = {w: p for w, p in words[SOURCE] if w != "a"}   # the words that are once in the prompt
    for word, positions in words[REFINED]:
        if word == "big":
            assert all(alphas[p] == 0 for p in positions)   # a new word keeps its own attention
        elif word in source:
            assert [mapper[p].item() for p in positions] == source[word] and all(alphas[p] == 1 for p in positions)
    assert mapper[200].item() == 200 and alphas[200] == 1   # padding maps to itself


def test_replace_spreads_a_word_tokenized_differently(host, flux):
    _, clip, _ = flux
    kit = host.pack.hostkit
    # a target word whose T5 token count differs from 'circle''s (found, not assumed)
    count = {w: len(kit.tokens.sequence_words(clip, w, "t", "t5xxl", 256)[0][1])
             for w in ("circle", "square", "hexagon", "rhombus", "parallelogram", "ellipse")}
    other = next(w for w, n in count.items() if n != count["circle"])
    target = SOURCE.replace("circle", other)
    streams = [kit.tokens.stream_words(clip, text, "t", "t5xxl", 256) for text in (SOURCE, target)]
    swap = host.pack.techniques.joint_prompt_to_prompt.glue.joint_swap("t", SOURCE, target, *streams, 256)
    src = dict(kit.tokens.sequence_words(clip, SOURCE, "t", "t5xxl", 256))["circle"]
    tgt = dict(kit.tokens.sequence_words(clip, target, "t", "t5xxl", 256))[other]
    # as the UNet version (the reference's replacement mapper): each target token gets 1/count of every source token
    assert torch.allclose(swap[src][:, tgt], torch.full((len(src), len(tgt)), 1.0 / len(tgt)))
    assert torch.equal(swap[:src[0], :src[0]], torch.eye(src[0]))   # the words before it: token for token


def test_the_edit_acts_on_the_pair(host, flux):
    """The pair's edit row is not the target prompt sampled alone from the same inverted noise (what the
    row would be without the patch: the rows of a batch do not meet elsewhere)."""
    model, clip, _ = flux
    raw = raw_latent()
    inv, noise, sigmas = inverted(host, model, clip, raw)
    edited = edit(host, model, clip, raw, inv, sigmas)
    alone = call(host, "SamplerCustomAdvanced", noise=noise, guider=call(
        host, "BasicGuider", model=model, conditioning=call(host, "FluxGuidance", conditioning=encode(host, clip, TARGET),
                                                            guidance=3.5)[0])[0],
                 sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                 latent_image={"samples": raw})[0]["samples"]
    alone = model.model.process_latent_in(alone).float()[0]
    assert torch.isfinite(edited).all() and edited.shape == (2, 16, SIZE, SIZE)
    assert (edited[1] - alone).abs().max() > 1e-2


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_the_local_blend_keeps_the_image_outside_the_words(host, flux, sd3, family):
    model, clip, _ = flux if family == "flux" else sd3
    raw = raw_latent()
    inv, _, sigmas = inverted(host, model, clip, raw)
    negative = None if family == "flux" else encode(host, clip, "")
    image = inv.trajectory[-1][0].float()   # the inversion's end: the image's latent in sampler space
    # a high threshold: the random model's maps are nearly flat, and at the paper's 0.3 they would cover everything
    blended = edit(host, model, clip, raw, inv, sigmas, negative=negative, blend_source_words="circle",
                   blend_target_words="square", blend_threshold=0.9)[1]
    kept = ((blended - image).abs() < 1e-4).all(0)           # latent cells that are the image's in every channel
    assert 0.05 < kept.float().mean() < 0.95, kept.float().mean()
    unblended = edit(host, model, clip, raw, inv, sigmas, negative=negative)[1]
    assert ((unblended - image).abs() < 1e-4).all(0).float().mean() < 0.01
    # the reference's substruct_words: the subtract words' region (not max-pooled) is kept too (its mask taken out of
    # the blend's: a cell kept without it stays kept); at a lower threshold the blend alone covers most of the image
    threshold, word = {"flux": (0.5, "blue"), "sd3": (0.3, "background")}[family]   # random maps: where one shows
    blend = dict(negative=negative, blend_source_words="circle", blend_target_words="square", blend_threshold=threshold)
    kept = ((edit(host, model, clip, raw, inv, sigmas, **blend)[1] - image).abs() < 1e-4).all(0)
    subtracted = edit(host, model, clip, raw, inv, sigmas, blend_subtract_source_words=word,
                      blend_subtract_target_words=word, **blend)[1]
    kept_too = ((subtracted - image).abs() < 1e-4).all(0)
    assert kept_too.float().mean() > kept.float().mean() + 0.2, (kept_too.float().mean(), kept.float().mean())
    assert not (kept & ~kept_too).any()


def test_empty_blend_words_blend_on_the_words_that_differ(host, flux):
    """Issue 79 on joint attention: blend words left empty, the local blend takes the words that differ
    ('circle', 'square'): the same edit as those words typed; local_blend off: the global edit."""
    model, clip, _ = flux
    raw = raw_latent()
    inv, _, sigmas = inverted(host, model, clip, raw)
    left_empty = edit(host, model, clip, raw, inv, sigmas, blend_threshold=0.9, local_blend=True)
    typed = edit(host, model, clip, raw, inv, sigmas, blend_threshold=0.9, blend_source_words="circle",
                 blend_target_words="square")
    assert torch.equal(left_empty, typed)
    off = edit(host, model, clip, raw, inv, sigmas, blend_threshold=0.9, blend_source_words="circle",
               blend_target_words="square", local_blend=False)
    assert torch.equal(off, edit(host, model, clip, raw, inv, sigmas)) and not torch.equal(off[1], left_empty[1])
    # a word with punctuation after it ("circle,"): the T5 sequence's word is found as written without it, typed or derived
    prompts = dict(source_prompt=SOURCE.replace("circle", "circle,"), target_prompt=TARGET.replace("square", "square,"))
    assert torch.equal(edit(host, model, clip, raw, inv, sigmas, blend_threshold=0.9, local_blend=True, **prompts),
                       edit(host, model, clip, raw, inv, sigmas, blend_threshold=0.9, blend_source_words="circle",
                            blend_target_words="square", **prompts))


def test_the_local_blend_samples_alike_with_the_flow_samplers_euler(host, flux):
    """The pack's Flow Sampler with its euler solver takes the host's Euler step, for which the blend
    makes the blended latent: the same edit as KSamplerSelect's euler (other samplers are refused:
    the bad-input table's ``*-blend-with-*`` cases)."""
    model, clip, _ = flux
    raw = raw_latent()
    inv, _, sigmas = inverted(host, model, clip, raw)
    blend = dict(blend_source_words="circle", blend_target_words="square", blend_threshold=0.9)
    host_euler = edit(host, model, clip, raw, inv, sigmas, **blend)
    flow_euler = edit(host, model, clip, raw, inv, sigmas,
                      sampler=call(host, "InvertEditFlowSampler", solver="euler")[0], **blend)
    assert torch.allclose(flow_euler, host_euler, atol=1e-5), (flow_euler - host_euler).abs().max()


def test_a_generated_pair_starts_both_rows_from_one_noise(host, flux):
    model, clip, _ = flux
    sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=STEPS, denoise=1.0)[0]
    patched, pair, noise = call(host, "InvertEditJointAttentionInject", model=model, clip=clip, source_prompt=SOURCE,
                                target_prompt=TARGET, mode="replace", reweight="square:2", cross_replace=0.8,
                                self_replace=0.4, blocks="double", guidance=3.5, seed=5, local_blend=False)
    made = noise.generate_noise({"samples": torch.zeros(2, 16, SIZE, SIZE)})
    assert torch.equal(made[0], made[1])
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=call(host, "BasicGuider", model=patched,
                                                                        conditioning=pair)[0],
               sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
               latent_image={"samples": torch.zeros(2, 16, SIZE, SIZE)})[0]["samples"]
    assert torch.isfinite(out).all() and not torch.allclose(out[0], out[1])


# ----------------------------------------------------------------------------- Qwen-Image
# Qwen-Image's text is the prompt's own length (no padding): a pair of prompts of different token counts is padded to
# the longer (zeros) and the padding masked out of every attention (``hostkit/dit_attention.py``'s ``PaddedPair``), so
# the pair still runs in one model call, each row computing what its prompt alone computes.

@pytest.fixture(scope="module")
def qwen(host):
    return host.pack.demo.tiny_flow_models.build_tiny_flow_models("qwen-image", seed=0)


def qwen_latent() -> torch.Tensor:
    return torch.randn(1, 16, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(3))


def qwen_edit(host, model, clip, raw, inv, sigmas, *, negative=None, **settings):
    """Joint Attention Inject on the Qwen-Image inversion, the pair sampled (euler); the output in sampler space."""
    args = dict(model=model, clip=clip, inversion=inv, source_prompt=SOURCE, target_prompt=TARGET, mode="replace",
                reweight="", cross_replace=0.8, self_replace=0.4, blocks="all", guidance=1.0,
                local_blend=bool(settings.get("blend_source_words") or settings.get("blend_target_words")))
    args.update(settings)
    patched, pair, noise = call(host, "InvertEditJointAttentionInject", **args)
    guider = (call(host, "BasicGuider", model=patched, conditioning=pair)[0] if negative is None else
              call(host, "CFGGuider", model=patched, positive=pair, negative=encode(host, clip, negative), cfg=2.5)[0])
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider,
               sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
               latent_image={"samples": raw.repeat(2, 1, 1, 1, 1)})[0]["samples"]
    return model.model.process_latent_in(out).float(), pair


def test_a_padded_qwen_pair_computes_each_prompt_as_alone(host, qwen):
    """Two prompts of different token counts, padded to one and masked, sampled as one batch: each row is its prompt
    sampled alone (the rows of a batch do not meet); padded but unmasked, the shorter prompt's row is not."""
    model, clip, _ = qwen
    dit = host.pack.hostkit.dit_attention
    short, long = encode(host, clip, "a red circle"), encode(host, clip, "a red big circle on a blue background")
    padded_short, padded_long, lengths = dit.pad_pair(short, long)
    assert lengths == (8, 13) and padded_short[0][0].shape[1] == padded_long[0][0].shape[1] == 13
    pair = host.pack.hostkit.pair.join_pair(padded_short, padded_long)
    sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=3, denoise=1.0)[0]
    latent = torch.randn(1, 16, 1, 8, 8, generator=torch.Generator().manual_seed(4))   # as noise: sigma 1 first

    def run(m, cond, rows):
        return call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0],   # from the latent itself
                    guider=call(host, "BasicGuider", model=m, conditioning=cond)[0],
                    sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                    latent_image={"samples": latent.repeat(rows, 1, 1, 1, 1)})[0]["samples"]

    masked = model.clone()
    dit.install_padded_pair(masked, lengths, 13, (), "test")
    together = run(masked, pair, 2)
    alone = torch.cat([run(model, short, 1), run(model, long, 1)])
    assert torch.allclose(together, alone, atol=1e-5, rtol=1e-5), (together - alone).abs().max()
    unmasked = run(model, pair, 2)
    assert torch.equal(unmasked[1:], together[1:]) or torch.allclose(unmasked[1:], together[1:], atol=1e-5)
    assert (unmasked[0] - alone[0]).abs().max() > 1e-3


def test_qwen_word_alignment_over_unpadded_prompts(host, qwen):
    """Refine and replace over Qwen2.5-VL's text of two lengths: the template's end after the last word follows it
    one for one (not position for position), and the shorter target's padding takes nothing of the source."""
    _, clip, _ = qwen
    kit, glue = host.pack.hostkit, host.pack.techniques.joint_prompt_to_prompt.glue
    target = "a red parallelogram on a blue background"
    n = {t: len(kit.tokens.qwen_text_ids(clip, t)[0]) for t in (SOURCE, REFINED, target)}
    assert n[REFINED] == n[SOURCE] + 1 and n[target] > n[SOURCE]   # 'parallelogram': several tokens
    length = max(n.values())
    streams = {t: kit.tokens.stream_words(clip, t, "t", "qwen25_7b", length) for t in n}
    # refine, the target shorter than the source: its padding positions take nothing (alpha 0)
    mapper, alphas = glue.joint_refine(streams[REFINED], streams[SOURCE], length, unpadded=True)
    assert alphas[n[SOURCE]:].eq(0).all() and alphas[:n[SOURCE]].eq(1).all()
    assert mapper[:n[SOURCE]].tolist() == [p for p in range(n[REFINED]) if p != 2]   # 'big' (position 2) skipped
    # replace with a word of more tokens: spread over them, and the template's end one for one after it
    swap = glue.joint_swap("t", SOURCE, target, streams[SOURCE], streams[target], length, unpadded=True)
    extra = n[target] - n[SOURCE]
    for i in range(n[SOURCE] - 5, n[SOURCE]):   # the template's end: source i -> target i + extra
        assert swap[i, i + extra] == 1 and swap[i].sum() == 1
    back = glue.joint_swap("t", target, SOURCE, streams[target], streams[SOURCE], length, unpadded=True)
    assert back[:, n[SOURCE]:].eq(0).all()   # the shorter target's padding takes no source column


@pytest.mark.parametrize("case", ["replace-same-length", "replace-longer-word", "refine-longer", "refine-shorter"])
def test_the_edit_acts_on_a_qwen_pair_and_its_source_row_is_the_image(host, qwen, case):
    """Joint Attention Inject on Qwen-Image: the pair samples (one prompt padded where the token counts differ), the
    source row follows the inversion back near the image's latent (Euler's reconstruction error) as it does beside a
    target of its own token count, and the edit row is not the target sampled alone."""
    model, clip, _ = qwen
    raw = qwen_latent()
    inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw},
                              positive=encode(host, clip, SOURCE), solver="euler", steps=STEPS, scheduler="simple",
                              guidance=1.0)
    source, target, mode = {"replace-same-length": (SOURCE, TARGET, "replace"),
                            "replace-longer-word": (SOURCE, "a red parallelogram on a blue background", "replace"),
                            "refine-longer": (SOURCE, REFINED, "refine"),
                            "refine-shorter": (SOURCE, "a red circle", "refine")}[case]
    edited, pair = qwen_edit(host, model, clip, raw, inv, sigmas, source_prompt=source, target_prompt=target, mode=mode)
    lengths = [encode(host, clip, t)[0][0].shape[1] for t in (source, target)]
    assert pair[0][0].shape[:2] == (2, max(lengths))
    assert edited.shape == (2, 16, 1, SIZE, SIZE) and torch.isfinite(edited).all()
    # the source row follows the inversion as it does beside a target of its own length (padded, it is masked)
    same_length = qwen_edit(host, model, clip, raw, inv, sigmas)[0]
    assert torch.allclose(edited[0], same_length[0], atol=1e-5), (edited[0] - same_length[0]).abs().max()
    assert (edited[0] - inv.trajectory[-1][0].float()).abs().max() < 0.1 * inv.trajectory[-1].abs().max()
    alone = call(host, "SamplerCustomAdvanced", noise=noise, guider=call(
        host, "BasicGuider", model=model, conditioning=encode(host, clip, target))[0],
        sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
        latent_image={"samples": raw})[0]["samples"]
    assert (edited[1] - model.model.process_latent_in(alone).float()[0]).abs().max() > 1e-3


AS_LONG = "a blurry dark picture in a low quality"   # as many Qwen2.5-VL tokens as REFINED


@pytest.mark.parametrize("case", ["refine", "refine-shorter", "replace", "blend", "cfg", "cfg-batched"])
def test_what_a_qwen_pair_is_padded_with_changes_nothing(host, qwen, monkeypatch, case):
    """Every attention the edit runs masks the padding: padded with random values instead of zeros, the edit is the
    same (the text maps' edit, the source's self-attention injected, the local blend's maps, a negative prompt's own
    call)."""
    model, clip, _ = qwen
    raw = qwen_latent()
    inv, _, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw},
                          positive=encode(host, clip, SOURCE), solver="euler", steps=STEPS, scheduler="simple",
                          guidance=1.0)
    settings = {"refine": dict(target_prompt=REFINED, mode="refine"),
                "refine-shorter": dict(target_prompt="a red circle", mode="refine"),
                "replace": dict(target_prompt="a red parallelogram on a blue background", reweight="blue:2"),
                "blend": dict(target_prompt=REFINED, mode="refine", blend_source_words="circle",
                              blend_target_words="big circle", blend_threshold=0.9),
                "cfg": dict(target_prompt=REFINED, mode="refine", negative="blurry"),
                # a negative prompt as long as the padded pair: one call of the unconditional rows (unpadded) and the pair
                "cfg-batched": dict(target_prompt=REFINED, mode="refine", negative=AS_LONG)}[case]
    if case == "cfg-batched":
        assert encode(host, clip, AS_LONG)[0][0].shape[1] == encode(host, clip, REFINED)[0][0].shape[1]
    zeros = qwen_edit(host, model, clip, raw, inv, sigmas, **settings)[0]
    glue = host.pack.techniques.joint_prompt_to_prompt.glue
    pad_pair = glue.pad_pair

    def noisy(source, target):
        a, b, lengths = pad_pair(source, target)
        g = torch.Generator().manual_seed(9)
        junk = [[c[0][0].clone(), c[0][1]] for c in (a, b)]
        for row, n in zip(junk, lengths):
            row[0][:, n:] = 10 * torch.randn(row[0][:, n:].shape, generator=g)
        return [junk[0]], [junk[1]], lengths

    monkeypatch.setattr(glue, "pad_pair", noisy)
    junk, pair = qwen_edit(host, model, clip, raw, inv, sigmas, **settings)
    assert pair[0][0][:, -1].abs().max() > 1
    assert torch.allclose(junk, zeros, atol=1e-5, rtol=1e-4), (junk - zeros).abs().max()


def test_the_local_blend_keeps_the_image_outside_the_words_on_qwen(host, qwen):
    model, clip, _ = qwen
    raw = qwen_latent()
    inv, _, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw},
                          positive=encode(host, clip, SOURCE), solver="euler", steps=STEPS, scheduler="simple",
                          guidance=1.0)
    image = inv.trajectory[-1][0].float()
    blended = qwen_edit(host, model, clip, raw, inv, sigmas, target_prompt=REFINED, mode="refine",
                        blend_source_words="circle", blend_target_words="big circle", blend_threshold=0.9)[0][1]
    kept = ((blended - image).abs() < 1e-4).all(0)[0]    # latent cells that are the image's in every channel
    assert 0.05 < kept.float().mean() < 0.95, kept.float().mean()
    unblended = qwen_edit(host, model, clip, raw, inv, sigmas, target_prompt=REFINED, mode="refine")[0][1]
    assert ((unblended - image).abs() < 1e-4).all(0).float().mean() < 0.01


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_a_padded_qwen_pair_edits_in_half_precision(host, dtype):
    """The Qwen-Image model in half precision (the host's --fp16-unet / --bf16-unet on a GPU:
    ``test_half_precision.unet_in``): the padded pair's masks and the edit's text maps in the model's dtype,
    the edit finite and near float32's (the same weights, rounded)."""
    from test_half_precision import unet_in

    raw = qwen_latent()
    settings = dict(target_prompt=REFINED, mode="refine", blend_source_words="circle", blend_target_words="big circle",
                    blend_threshold=0.9, negative="blurry")
    outs = {}
    for name in ("fp32", dtype):
        with unet_in(name):
            model, clip, _ = host.pack.demo.tiny_flow_models.build_tiny_flow_models("qwen-image", seed=0)
            inv, _, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": raw},
                                  positive=encode(host, clip, SOURCE), solver="euler", steps=STEPS,
                                  scheduler="simple", guidance=1.0)
            outs[name] = qwen_edit(host, model, clip, raw, inv, sigmas, **settings)[0]
            assert model.model.get_dtype() == (torch.float32 if name == "fp32" else
                                               {"fp16": torch.float16, "bf16": torch.bfloat16}[name])
    half = outs[dtype]
    assert torch.isfinite(half).all()
    error = ((half - outs["fp32"]).abs().max() / outs["fp32"].abs().max()).item()
    print(f"Joint Attention Inject on Qwen-Image, padded pair, {dtype}: relative error {error:.4f}")
    assert error < 0.05, error


def test_a_generated_qwen_pair_of_two_token_counts_starts_from_one_noise(host, qwen):
    """Without an inversion (the pair generated from the seed), on Qwen-Image's latent with its frame axis and two
    prompts of different token counts (padded, masked): both rows start from one noise and the edit samples."""
    model, clip, _ = qwen
    sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=STEPS, denoise=1.0)[0]
    patched, pair, noise = call(host, "InvertEditJointAttentionInject", model=model, clip=clip, source_prompt=SOURCE,
                                target_prompt=REFINED, mode="refine", reweight="big:2", cross_replace=0.8,
                                self_replace=0.4, blocks="all", guidance=1.0, seed=5, local_blend=True)
    empty = torch.zeros(2, 16, 1, SIZE, SIZE)
    made = noise.generate_noise({"samples": empty})
    assert torch.equal(made[0], made[1]) and pair[0][0].shape[:2] == (2, 13)
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=call(
        host, "CFGGuider", model=patched, positive=pair, negative=encode(host, clip, ""), cfg=2.5)[0],
        sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
        latent_image={"samples": empty})[0]["samples"]
    assert torch.isfinite(out).all() and not torch.allclose(out[0], out[1])

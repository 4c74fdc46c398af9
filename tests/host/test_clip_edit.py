"""A clip (an IMAGE batch of F frames) on the SD family: inverted in one batched run, edited by the
pair editors as 2F rows in blocks (source frames, then target frames), and Cross-Frame Attention."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode, reconstruct, rel_err

SOURCE, TARGET = "a red circle on a blue background", "a red square on a blue background"
FRAMES = 3


def clip_latent(frames: int = FRAMES) -> torch.Tensor:
    return torch.randn(frames, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0


def ddim(host, model, clip, samples, steps=8):
    return call(host, "InvertEditDDIMInvert", model=model, latent={"samples": samples},
                positive=encode(host, clip, SOURCE), steps=steps, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)


def sample(host, model, positive, negative, latent, steps=8, cfg=5.0):
    return call(host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=steps, cfg=cfg,
                sampler_name="ddim", scheduler="ddim_uniform", positive=positive, negative=negative,
                latent_image=latent, start_at_step=0, end_at_step=10000,
                return_with_leftover_noise="disable")[0]["samples"]


def test_a_clip_inverts_in_one_run_and_every_frame_reconstructs(host, tiny, tmp_path):
    model, clip, _ = tiny("sd1")
    x = clip_latent()
    pos, neg = encode(host, clip, SOURCE), encode(host, clip, "")
    inv, lat, _ = ddim(host, model, clip, x)
    assert inv.trajectory.shape[:2] == (9, FRAMES) and lat["samples"].shape[0] == FRAMES
    alone, _, _ = ddim(host, model, clip, x[1:2])   # the batched run is frame by frame
    assert rel_err(inv.latent[1:2], alone.latent) < 1e-5
    plain = reconstruct(host, call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0], lat, pos, steps=8)
    direct = call(host, "InvertEditDirectInversion", inversion=inv)[0]
    exact = reconstruct(host, call(host, "InvertEditApplyInversion", model=model, inversion=direct)[0], lat, pos, neg,
                        steps=8, cfg=7.5)
    npi = call(host, "InvertEditNegativePromptInversion", inversion=inv, positive=pos)[0]
    guided = reconstruct(host, call(host, "InvertEditApplyInversion", model=model, inversion=npi)[0], lat, pos, neg,
                         steps=8, cfg=7.5)
    errors = {name: [rel_err(out[f], x[f]) for f in range(FRAMES)] for name, out in
              (("ddim", plain), ("direct", exact), ("negative-prompt", guided))}
    print(f"\nclip of {FRAMES} frames, 8 steps, tiny sd1: per-frame reconstruction {errors}")
    assert max(errors["direct"]) < 1e-5
    assert max(errors["ddim"]) < 0.3 and max(errors["negative-prompt"]) < 0.3   # a random tiny UNet at 8 DDIM steps
    assert rel_err(plain[1:2], reconstruct(host, call(host, "InvertEditApplyInversion", model=model, inversion=alone)[0],
                                           {"samples": alone.latent}, pos, steps=8)) < 1e-5
    # Save / Load Inversion keep the clip
    name = call(host, "InvertEditSaveInversion", inversion=direct, filename_prefix="inversions/clip_roundtrip")
    files = [f for f in host.pack.hostkit.inversion_files.list_inversion_files() if "clip_roundtrip" in f]
    loaded = call(host, "InvertEditLoadInversion", inversion=files[-1])[0]
    assert name is not None and torch.equal(loaded.trajectory, direct.trajectory.cpu())


def test_null_text_refuses_a_clip(host, tiny):
    model, clip, _ = tiny("sd1")
    inv, _, _ = ddim(host, model, clip, clip_latent(2), steps=4)
    with pytest.raises(ValueError, match="Null-Text Optimize: input 'inversion' is of a clip of 2 frames.*Direct"):
        call(host, "InvertEditNullTextOptimize", model=model, inversion=inv, positive=encode(host, clip, SOURCE),
             negative=encode(host, clip, ""), cfg=7.5, inner_steps=1, learning_rate=0.01, early_stop=1e-5)


EDITORS = {
    "attention-inject": ("InvertEditAttentionInject", dict(mode="replace", reweight="", cross_replace=0.8,
                                                           self_replace=0.4, local_blend=False)),
    "plug-and-play": ("InvertEditPlugAndPlay", dict(feature_injection=0.8, self_attention_injection=0.5)),
    "masactrl": ("InvertEditMasaCtrl", dict(start_step=2, start_layer=3)),
    "masactrl-mask": ("InvertEditMasaCtrl", dict(start_step=2, start_layer=3)),
}


@pytest.mark.parametrize("editor", list(EDITORS))
def test_a_pair_editor_edits_a_clip_frame_by_frame_in_one_run(host, tiny, editor):
    """The blocked 2F LATENT and CONDITIONING: target row F + f takes source row f, so the batched
    clip edit is each frame's own edit."""
    model, clip, _ = tiny("sd1")
    node, args = EDITORS[editor]
    if editor == "masactrl-mask":
        mask = torch.zeros(1, 64, 64)
        mask[:, 16:48, 16:48] = 1.0
        args = dict(args, source_mask=mask)
    inv, lat, _ = ddim(host, model, clip, clip_latent(2))
    neg = encode(host, clip, "")
    m, pair, pair_lat = call(host, node, model=model, clip=clip, latent=lat, source_prompt=SOURCE, target_prompt=TARGET,
                             **args)
    emb = pair[0][0]
    assert pair_lat["samples"].shape[0] == 4 and emb.shape[0] == 4
    assert torch.equal(emb[0], emb[1]) and torch.equal(emb[2], emb[3]) and not torch.equal(emb[1], emb[2])
    out = sample(host, m, pair, neg, pair_lat)
    for f in range(2):
        m1, pair1, lat1 = call(host, node, model=model, clip=clip, latent={"samples": lat["samples"][f:f + 1]},
                               source_prompt=SOURCE, target_prompt=TARGET, **args)
        one = sample(host, m1, pair1, neg, lat1)
        assert rel_err(out[f], one[0]) < 1e-5 and rel_err(out[2 + f], one[1]) < 1e-5, (editor, f)
    assert rel_err(out[2:], out[:2]) > 1e-3   # the target frames are edited


def test_the_local_blend_refuses_a_clip(host, tiny):
    model, clip, _ = tiny("sd1")
    with pytest.raises(ValueError, match="Attention Inject: input 'latent' is a clip of 2 frames.*local_blend off"):
        call(host, "InvertEditAttentionInject", model=model, clip=clip, latent={"samples": clip_latent(2)},
             source_prompt=SOURCE, target_prompt=TARGET, mode="replace", reweight="", cross_replace=0.8,
             self_replace=0.4)


@pytest.fixture(scope="module")
def fatezero(reference_copy, tmp_path_factory, skip_loudly):
    checkout = reference_copy(tmp_path_factory.mktemp("fatezero"), "FATEZERO", "ChenyangQiQi/FateZero",
                              ("video_diffusion",), "video_diffusion/models/attention.py")
    if checkout is None:
        skip_loudly("FATEZERO PARITY SKIPPED: ChenyangQiQi/FateZero is not at $FATEZERO_PATH or its mirror "
                    "(/work/.mirror/ChenyangQiQi+FateZero/repo); fetch it to run the parity tests.")
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "invertedit_tests_fatezero_attention", Path(__file__).resolve().parents[1] / "reference" / "fatezero_attention.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, checkout


@pytest.mark.parametrize("rule,index", [("first and previous", [-1, "first"]), ("middle", ["mid"]),
                                        ("first", ["first"])])
def test_sparse_causal_attention_matches_fatezero(host, fatezero, rule, index):
    """Our attn1_patch on a host self-attention layer against FateZero's ``SparseCausalAttention``
    forward, unchanged, on the same projections: two chunks of a pair of clips (4 blocks of F)."""
    module, checkout = fatezero
    from comfy.ldm.modules.attention import CrossAttention as HostAttention
    frames, heads, dim_head, tokens = 5, 2, 8, 12
    torch.manual_seed(0)
    layer = HostAttention(heads * dim_head, heads=heads, dim_head=dim_head).float()
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.2)
    theirs = module.reference_class(checkout, "SparseCausalAttention")(layer, heads, dim_head)
    hidden = torch.randn(4 * frames, tokens, heads * dim_head)
    anchors = host.pack.attention.cross_frame.frame_anchors(rule, frames)
    patch = host.pack.hostkit.frames.CrossFrameKeys(frames, anchors, "test")
    n, context, value = patch(hidden, hidden, hidden, {"cond_or_uncond": [0, 1]})
    ours = layer(n, context=context, value=value)
    want = theirs.forward(hidden, clip_length=frames, SparseCausalAttention_index=index)
    err = float((ours - want).abs().max())
    print(f"\nsparse-causal parity ({rule}, FateZero index {index}): max abs error {err:.2e}")
    assert err < 1e-5


@pytest.mark.parametrize("editor,before", [("attention-inject", True), ("plug-and-play", False), ("masactrl", True),
                                           ("masactrl-mask", False)])
def test_cross_frame_attention_composes_with_a_pair_editor(host, tiny, editor, before):
    """Applied before or after the editor, every self-attention call reads two frames' keys (the
    editor's policy sees them); frame 0 reads only itself ("first and previous"), so frame 0 of both
    branches is the editor's own frame-by-frame result, and the later frames change."""
    model, clip, _ = tiny("sd1")
    node, args = EDITORS[editor]
    if editor == "masactrl-mask":
        mask = torch.zeros(1, 64, 64)
        mask[:, 16:48, 16:48] = 1.0
        args = dict(args, source_mask=mask)
    inv, lat, _ = ddim(host, model, clip, clip_latent())
    neg = encode(host, clip, "")

    def cross(m):
        return call(host, "InvertEditCrossFrameAttention", model=m, latent=lat, anchors="first and previous")[0]

    m, pair, pair_lat = call(host, node, model=cross(model) if before else model, clip=clip, latent=lat,
                             source_prompt=SOURCE, target_prompt=TARGET, **args)
    m = m if before else cross(m)
    seen = set()

    def record(n, context, value, extra_options):   # after the pack's patch: sees the keys the policy gets
        seen.add(context.shape[1] // n.shape[1])
        return n, context, value

    m = m.clone()
    m.set_model_attn1_patch(record)
    plain, pair0, lat0 = call(host, node, model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                              target_prompt=TARGET, **args)
    out, alone = sample(host, m, pair, neg, pair_lat), sample(host, plain, pair0, neg, lat0)
    assert seen == {2}
    first = [0, FRAMES]
    assert rel_err(out[first], alone[first]) < 1e-5
    assert rel_err(out[FRAMES + 1:], alone[FRAMES + 1:]) > 1e-3


def test_cross_frame_attention_on_a_single_clip_and_its_cost(host, tiny):
    """A clip sampled alone (F rows a chunk) takes the patch too; the anchors' rows come from one
    index made once per layout and device."""
    model, clip, _ = tiny("sd1")
    inv, lat, _ = ddim(host, model, clip, clip_latent())
    pos = encode(host, clip, SOURCE)
    m = call(host, "InvertEditCrossFrameAttention", model=model, latent=lat, anchors="first")[0]
    out = reconstruct(host, m, lat, pos, steps=8)
    plain = reconstruct(host, model, lat, pos, steps=8)
    assert rel_err(out[:1], plain[:1]) < 1e-5 and rel_err(out[1:], plain[1:]) > 1e-3
    patch = m.model_options["transformer_options"]["patches"]["attn1_patch"][-1]
    assert len(patch.index) == 1   # one layout (F rows, 1 chunk at cfg 1), one device


def test_the_sd15_clip_template_is_set_for_sd15(host):
    """As shipped (no swap): Load Checkpoint of SD1.5, Load Image of the bundled clip, every frame scaled to SD1.5's
    pixels, 50 steps, PIE-Bench's Prompt-to-Prompt fractions with the local blend off, Cross-Frame Attention's
    sparse-causal anchors, the edited frames saved as frames and as an animated PNG."""
    import json
    from pathlib import Path

    from workshop.headless import runner

    path = Path(__file__).resolve().parents[2] / "example_workflows" / "SD1.5 - Clip edit (your checkpoint).json"
    prompt = runner.prepare_prompt(json.loads(path.read_text(encoding="utf-8")), host=host)
    by_type: dict = {}
    for node in prompt.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    assert [i["ckpt_name"] for i in by_type["CheckpointLoaderSimple"]] == ["v1-5-pruned-emaonly-fp16.safetensors"]
    assert [i["image"] for i in by_type["LoadImage"]] == ["toy_clip_two_objects.png"]
    assert by_type["ImageScaleToTotalPixels"][0]["megapixels"] == 0.25
    assert all(i["steps"] == 50 for i in by_type["KSamplerAdvanced"] + by_type["InvertEditDDIMInvert"])
    (inject,) = by_type["InvertEditAttentionInject"]
    assert (inject["cross_replace"], inject["self_replace"], inject["local_blend"]) == (0.4, 0.6, False)
    assert by_type["InvertEditCrossFrameAttention"][0]["anchors"] == "first and previous"
    assert "SaveAnimatedPNG" in by_type and "SaveImage" in by_type


def _fatezero_store(frames: int, heads: int, words: int = 77, seed: int = 0) -> dict:
    """A step's stored source maps as FateZero's AttentionStore keeps them (layers of at most 32 x 32
    queries): cross maps over ``words`` tokens, self maps over two anchor frames' keys."""
    g = torch.Generator().manual_seed(seed)

    def maps(tokens: int, keys: int) -> torch.Tensor:
        logits = torch.rand(frames, heads, tokens, keys, generator=g) * 4
        if keys == words:   # the blend words (tokens 2 and 5) attended in the grid's top-left quarter
            side = int(tokens ** 0.5)
            quarter = torch.zeros(side, side)
            quarter[:side // 2, :side // 2] = 6.0
            logits[..., [2, 5]] += quarter.flatten()[:, None]
        return logits.softmax(-1)

    sizes = {"down": [1024, 1024, 256, 256], "mid": [64], "up": [256, 256, 256, 1024, 1024, 1024]}
    store = {f"{place}_cross": [maps(t, words) for t in tokens] for place, tokens in sizes.items()}
    store.update({f"{place}_self": [maps(t, 2 * t) for t in tokens] for place, tokens in sizes.items()})
    return store


def _fatezero_controller(module, blend, kind: str, store: dict, frames: int, **attributes):
    """The authors' controller made without its ``__init__`` (which tokenizes prompts): the attributes
    ``__init__`` sets, with the store of the inversion (one step) and the given word tables."""
    ctrl = object.__new__(getattr(module, kind))
    ctrl.LOW_RESOURCE, ctrl.cur_step, ctrl.num_att_layers, ctrl.cur_att_layer = False, 0, -1, 0
    ctrl.disk_store, ctrl.store_dir, ctrl.save_self_attention = False, None, True
    ctrl.step_store, ctrl.attention_store, ctrl.latents_store, ctrl.attention_store_all_step = \
        ctrl.get_empty_store(), {}, [], []
    ctrl.additional_attention_store = type("Store", (), {"attention_store_all_step": [store]})()
    ctrl.batch_size, ctrl.use_inversion_attention, ctrl.latent_blend = 1, True, None
    ctrl.attention_position_counter_dict = {k: 0 for k in ("down_cross", "mid_cross", "up_cross", "down_self",
                                                           "mid_self", "up_self")}
    ctrl.prev_attention_key_name = 0
    ctrl.attention_blend = blend
    for k, v in attributes.items():
        setattr(ctrl, k, v)
    return ctrl


def test_fatezero_fusion_math_matches_the_authors_controller(host, fatezero):
    """Our fusion (``attention/fatezero.py``) against FateZero's ``AttentionReplace`` / ``AttentionRefine``
    ``forward`` and ``SpatialBlender``, unchanged, on the same maps: cross-attention replace and refine with
    the step's word alphas, self-attention blended by the blend words' mask (threshold 0.3), the source's
    self-attention without blend words, a 64 x 64 layer left alone."""
    module, checkout = fatezero
    util, spatial = module.attention_util(checkout)
    from invertedit.attention import fatezero as fz   # pure: torch only
    frames, heads, words = 3, 2, 77
    store = _fatezero_store(frames, heads)
    g = torch.Generator().manual_seed(1)
    alpha = (torch.rand(words, generator=g) > 0.3).float()
    mapper = torch.eye(words)[torch.randperm(words, generator=g)]
    refine_map, refine_alphas = torch.randperm(words, generator=g), (torch.rand(words, generator=g) > 0.5).float()
    blend_words = torch.zeros(words)
    blend_words[[2, 5]] = 1.0
    blender = object.__new__(spatial.SpatialBlender)
    blender.__dict__.update(count=0, counter=0, th=(0.3, 0.3), prompt_choose="source", substruct_layers=None,
                            save_path=None, mask_list=[], alpha_layers=blend_words.reshape(1, 1, 1, 1, 1, words))
    common = dict(cross_replace_alpha=alpha.reshape(1, 1, 1, 1, words), num_self_replace=(0, 1))
    errors = {}

    def theirs(kind, attn, is_cross, place, position, blend=None, **extra):
        ctrl = _fatezero_controller(util, blend, kind, store, frames, **common, **extra)
        ctrl.attention_position_counter_dict[f"{place}_{'cross' if is_cross else 'self'}"] = position
        return ctrl.forward(attn.clone(), is_cross, place)

    target = torch.rand(frames, heads, 1024, words, generator=g).softmax(-1)
    want = theirs("AttentionReplace", target, True, "down", 0, mapper=mapper[None])
    errors["cross replace"] = float((fz.fuse_cross_replace(target, store["down_cross"][0], mapper, alpha)
                                     - want).abs().max())
    want = theirs("AttentionRefine", target, True, "down", 1, mapper=refine_map[None],
                  alphas=refine_alphas.reshape(1, 1, 1, words))
    errors["cross refine"] = float((fz.fuse_cross_refine(target, store["down_cross"][1], refine_map, refine_alphas,
                                                         alpha) - want).abs().max())
    target = torch.rand(frames, heads, 256, 512, generator=g).softmax(-1)
    want = theirs("AttentionReplace", target, False, "up", 1, blend=blender, mapper=mapper[None])
    mask = fz.fusion_mask(store["down_cross"][2:4] + store["up_cross"][:3], blend_words, (16, 16), 0.3)
    assert 0 < float(mask.mean()) < 1   # the mask keeps some of each
    errors["self blended"] = float((fz.fuse_self(target, store["up_self"][1], mask) - want).abs().max())
    want = theirs("AttentionReplace", target, False, "up", 2, mapper=mapper[None])
    errors["self replaced"] = float((fz.fuse_self(target, store["up_self"][2], None) - want).abs().max())
    big = torch.rand(frames, heads, 4096, words, generator=g).softmax(-1)
    assert not fz.edits_layer(big.shape[2]) and torch.equal(
        theirs("AttentionReplace", big, True, "down", 0, mapper=mapper[None]), big)
    print(f"\nFateZero fusion parity (max abs error): {errors}")
    assert max(errors.values()) < 1e-6


def _fatezero_run(host, tiny, target=TARGET, direct=True, **kw):
    model, clip, _ = tiny("sd1")
    inv, lat, _ = ddim(host, model, clip, clip_latent(2))
    use_direct, direct = direct, call(host, "InvertEditDirectInversion", inversion=inv)[0]
    args = dict(mode="refine", cross_replace=0.8, self_replace=0.6, blend_words="circle", blend_threshold=0.3)
    args.update(kw)
    m, pair, pair_lat = call(host, "InvertEditFateZero", model=model, clip=clip, latent=lat, source_prompt=SOURCE,
                             target_prompt=target, **args)
    m = call(host, "InvertEditApplyInversion", model=m, inversion=direct if use_direct else inv)[0]
    calls = []

    def count(executor, *a, **k):
        calls.append(a[0].shape[0])
        return executor(*a, **k)

    import comfy.patcher_extension

    m = m.clone()
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "count", count)
    out = sample(host, m, pair, encode(host, clip, ""), pair_lat)
    return clip_latent(2), out, calls


def test_fatezero_keeps_the_source_frames_and_edits_the_target(host, tiny):
    x, out, calls = _fatezero_run(host, tiny)
    assert rel_err(out[:2], x) < 1e-5   # the source frames on the inversion (Direct Inversion)
    # cfg: 2 chunks of the pair (8 rows) a step; while blending (0.6 of 8 steps: 4) the source's 2 frames first
    assert calls == [2, 8] * 4 + [8] * 4
    assert rel_err(out[2:], out[:2]) > 1e-3
    # the same prompt (no Direct correction of the source): the fused target is the source
    _, same, _ = _fatezero_run(host, tiny, target=SOURCE, direct=False, cross_replace=1.0, self_replace=1.0)
    assert rel_err(same[2:], same[:2]) < 1e-5


def test_fatezero_records_the_source_maps_while_blending(host, tiny, monkeypatch):
    fusion = host.pack.techniques.fatezero.fusion
    seen = []
    original = fusion.fusion_mask

    def spy(maps, words, hw, th):
        seen.append((len(maps), hw))
        return original(maps, words, hw, th)

    monkeypatch.setattr(fusion, "fusion_mask", spy)
    _fatezero_run(host, tiny)
    assert seen and all(n > 0 for n, _ in seen)

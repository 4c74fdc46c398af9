"""The toy flow world's model (issue 26) through the pack's node and the host's stock nodes: world 2's
two-object scenes at 256 px drawn by a small guidance-distilled Flux-architecture DiT (the node's
`world` "two objects, flow DiT (256 px)").

What it is as the host sees it, and the claims the docs make of it; the benchmark of the editors on
it lives in ``python -m workshop.benchmarks.toyworld_flow``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from workshop.headless.calls import call, encode
from workshop.toyworld import scenes as S
from workshop.toyworld.scenes_judge import judge

REPO = Path(__file__).resolve().parents[2]
WORLD_FLOW = "two objects, flow DiT (256 px)"
RES = 256


@pytest.fixture(scope="module")
def toy(host):
    node = host.nodes.NODE_CLASS_MAPPINGS["InvertEditToyModel"]
    return node.execute(world=WORLD_FLOW).result


def test_flow_world_is_flux_dev_as_the_host_loads_it(host, toy):
    """Flux.1 dev's classes (guidance embedding, the host's Flux sampling), 16-channel latents in Flux's
    latent format, the T5 + CLIP-L text encoders with T5 padded to the world's 16 tokens."""
    import comfy.latent_formats
    import comfy.supported_models
    model, clip, vae = toy
    schema = host.nodes.NODE_CLASS_MAPPINGS["InvertEditToyModel"].define_schema()
    (world,) = schema.inputs
    assert WORLD_FLOW in world.options
    assert type(model.model.model_config) is comfy.supported_models.Flux
    assert model.model.model_config.unet_config["guidance_embed"]
    assert isinstance(model.model.latent_format, comfy.latent_formats.Flux)
    tokens = clip.tokenize(S.SAMPLE.caption)
    assert len(tokens["t5xxl"][0]) == 16 and len(tokens["l"][0]) == 77
    img = S.render(S.SAMPLE, RES)[0][None]
    latent = call(host, "VAEEncode", pixels=img, vae=vae)[0]
    assert latent["samples"].shape == (1, 16, 32, 32)
    z = model.model.latent_format.process_in(latent["samples"])
    assert abs(float(z.mean())) < 0.5 and 0.5 < float(z.std()) < 2.0   # about unit spread, as Flux's VAE gives
    out = call(host, "VAEDecode", samples=latent, vae=vae)[0]
    assert S.psnr(out[0], img[0]) > 28.0
    assert judge(out[0]).matches_scene(S.SAMPLE)


def test_bundled_flow_sample_is_the_world_2_sample_at_256():
    from PIL import Image
    with Image.open(REPO / "assets" / "sample_flow.png") as im:
        got = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)
    assert got.shape == (RES, RES, 3)
    assert judge(got).matches_scene(S.SAMPLE)
    config = json.loads((REPO / "models" / "toyworld-flow" / "config.json").read_text())
    assert config["sample"]["caption"] == S.SAMPLE.caption and config["family"] == "flux-dev"


def _draw(host, model, clip, vae, captions: list[str], guidance: float, steps: int = 20, seed: int = 0):
    """Text to image with the stock nodes as a Flux.1 dev user samples: FluxGuidance, BasicGuider, euler,
    the simple schedule after ModelSamplingFlux at the image's size."""
    shifted = call(host, "ModelSamplingFlux", model=model, max_shift=1.15, base_shift=0.5, width=RES, height=RES)[0]
    sigmas = call(host, "BasicScheduler", model=shifted, scheduler="simple", steps=steps, denoise=1.0)[0]
    sampler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    images = []
    for i, text in enumerate(captions):
        cond = call(host, "FluxGuidance", conditioning=encode(host, clip, text), guidance=guidance)[0]
        guider = call(host, "BasicGuider", model=shifted, conditioning=cond)[0]
        noise = call(host, "RandomNoise", noise_seed=seed + i)[0]
        latent = call(host, "EmptySD3LatentImage", width=RES, height=RES, batch_size=1)[0]
        out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                   latent_image=latent)[0]
        images.append(call(host, "VAEDecode", samples=out, vae=vae)[0][0])
    return images


def test_text_to_image_puts_the_caption_s_colours_with_distilled_guidance(host, toy):
    """Held-out captions drawn through the stock Flux path at FluxGuidance 4: the background's colour
    and the objects' colours follow the caption in most images (docs/toyworld.md, "What it draws"; the
    shapes do not: the model draws the objects as blobs, so their shapes are not claimed)."""
    model, clip, vae = toy
    captions = S.heldout_captions(8)
    readings = [judge(im) for im in _draw(host, model, clip, vae, captions, 4.0)]
    named = [S.parse_caption(c) for c in captions]
    colours = (sum(r.find(colour) is not None for r, (objs, _) in zip(readings, named) for colour, _ in objs)
               / sum(len(objs) for objs, _ in named))
    backgrounds = sum(r.background == bg for r, (_, bg) in zip(readings, named)) / len(captions)
    whole = sum(r.objects_right(c)[0] == r.objects_right(c)[1] for r, c in zip(readings, captions)) / len(captions)
    print(f"flow toy t2i at guidance 4: object colours right {colours:.3f}, backgrounds right {backgrounds:.3f}, "
          f"every object right (colour and shape) {whole:.3f}")
    assert colours >= COLOURS_RIGHT and backgrounds >= BACKGROUNDS_RIGHT


# measured on these 8 captions (2 CPU threads, the shipped model: the bound T5): colours 0.938, backgrounds
# 1.000 (the model before it, unbound: 0.750, 0.875)
COLOURS_RIGHT = 0.8
BACKGROUNDS_RIGHT = 0.875


def test_trainer_presets_resume_and_refuse_another_size(host, tmp_path):
    """``train_flow``'s sizes (``--preset``, the GPU pilots' ``gpu_flow_pilots.sh``): each is Flux's head
    layout (heads of 64 = the rope axes' sum), built by the host's Flux class; a stage stopped early
    resumes to the same weights as one run through, and a checkpoint of one size refuses another."""
    import shutil
    from workshop.toyworld import train_flow as TF
    for preset, (hidden, double, single) in TF.PRESETS.items():
        cfg = TF.dit_config(preset, student=True)
        assert cfg["num_heads"] * sum(cfg["axes_dim"]) == hidden and cfg["guidance_embed"]
        assert (cfg["depth"], cfg["depth_single_blocks"]) == (double, single)
    assert TF.dit_config(TF.DEFAULT_PRESET) == TF.DIT_CONFIG
    net = TF.build_dit(0, preset="h128-d4s8")
    assert len(net.double_blocks) == 4 and len(net.single_blocks) == 8
    common = ["--batch", "2", "--steps", "4", "--warmup", "2", "--lowres-steps", "4", "--highres-every", "0",
              "--preset", "h128-d4s8"]
    for name in ("once", "twice"):
        (tmp_path / name).mkdir()
        shutil.copy(REPO / "models" / "toyworld-flow" / "toy_vae.safetensors", tmp_path / name)
    TF.main(["--stage", "dit", "--out", str(tmp_path / "once"), *common])
    TF.main(["--stage", "dit", "--out", str(tmp_path / "twice"), *common, "--stop-after", "2"])
    assert not (tmp_path / "twice" / "toy_dit_ema.pt").exists()
    with pytest.raises(SystemExit, match="h128-d4s8"):
        TF.main(["--stage", "dit", "--out", str(tmp_path / "twice"), *common[:-1], "h192-d3s6"])
    TF.main(["--stage", "dit", "--out", str(tmp_path / "twice"), *common])
    a, b = (torch.load(tmp_path / n / "toy_dit_ema.pt", weights_only=False) for n in ("once", "twice"))
    assert a["preset"] == b["preset"] == "h128-d4s8" and a["step"] == b["step"] == 4
    for k, v in a["ema"].items():
        torch.testing.assert_close(b["ema"][k], v, rtol=1e-5, atol=1e-6)


def test_a_run_goes_on_from_its_compact_checkpoint(host, tmp_path, capsys):
    """The compact checkpoint (the EMA weights, step and minutes: what a GPU call can carry with the working
    tree) is written beside each full one; without the full one a run goes on from it with a fresh optimiser
    where the cosine left off, and one of another size is refused."""
    import shutil
    from workshop.toyworld import train_flow as TF
    common = ["--batch", "2", "--steps", "4", "--warmup", "2", "--lowres-steps", "4", "--highres-every", "0"]
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(REPO / "models" / "toyworld-flow" / "toy_vae.safetensors", out)
    TF.main(["--stage", "dit", "--out", str(out), *common, "--stop-after", "2"])
    full, compact = (torch.load(out / f"dit_{n}.pt", weights_only=False) for n in ("ckpt", "compact"))
    assert compact["step"] == full["step"] == 2 and compact["preset"] == TF.DEFAULT_PRESET
    assert set(compact) == {"ema", "step", "seconds", "loss", "preset"}
    for k, v in full["ema"].items():
        assert torch.equal(compact["ema"][k], v)
    assert (out / "dit_compact.pt").stat().st_size < 0.3 * (out / "dit_ckpt.pt").stat().st_size
    (out / "dit_ckpt.pt").unlink()
    with pytest.raises(SystemExit, match=TF.DEFAULT_PRESET):
        TF.main(["--stage", "dit", "--out", str(out), *common, "--preset", "h128-d4s8"])
    capsys.readouterr()
    TF.main(["--stage", "dit", "--out", str(out), *common])
    assert "resumed from the compact checkpoint at step 2" in capsys.readouterr().out
    done = torch.load(out / "toy_dit_ema.pt", weights_only=False)
    assert done["step"] == 4 and all(torch.isfinite(v).all() for v in done["ema"].values())


def test_cuda_graph_inputs_are_each_step_s_own_whatever_the_chunk(host, tmp_path):
    """``train_flow --cuda-graph``'s inputs (``graphed_steps.ChunkedInputs``, made a chunk of steps at a time on the
    device): step k's clean latents are its own scenes' (``step_scenes``, as the eager step's), its contexts its
    captions' or the empty prompt's, its target the rectified-flow velocity; a run resumed mid-chunk sees the
    same inputs; off CUDA the run trains eagerly on them, and a schedule of two image sizes is refused. The same for
    the guidance distillation's (``ChunkedDistilInputs``): step k's scenes are the eager distillation's, the teacher's
    contexts its own encoder's, the guidance drawn in range and 1 in the asked share, the words' regions (drawn at once)
    the scenes' as the eager step draws them."""
    import shutil
    from workshop.toyworld import graphed_steps as G, train_flow as TF, train_scenes as TS
    from workshop.toyworld.train import to_nchw
    shutil.copy(REPO / "models" / "toyworld-flow" / "toy_vae.safetensors", tmp_path)
    args = TF.parse_args(["--out", str(tmp_path), "--res", "128", "--batch", "3", "--dropout", "0.3"])
    ae, text, index = TF.setup(args)
    fresh, resumed = (G.ChunkedInputs(args, ae, text, index, 128, 3.0, chunk=4) for _ in range(2))
    dropped = 0
    for step in (5, 6, 7, 8, 9):
        (xs, s, ctx, pooled, target), res = fresh(step)
        assert res == 128 and xs.shape == target.shape == (3, 16, 16, 16) and s.shape == (3,)
        again, _ = resumed(step) if step > 6 else (None, None)
        if again is not None:
            for a, b in zip(again, (xs, s, ctx, pooled, target)):
                assert torch.equal(a, b)
        scenes = TS.step_scenes(args, step, 3)
        with torch.no_grad():
            x0 = ae.to_model(ae.encode(to_nchw(S.render_batch(scenes, 128))))
        torch.testing.assert_close(xs - s[:, None, None, None] * target, x0, rtol=1e-4, atol=1e-4)
        assert ((0 < s) & (s < 1)).all()
        for i, sc in enumerate(scenes):
            own = torch.equal(ctx[i], text["ctx"][index[sc.caption]])
            empty = torch.equal(ctx[i], text["empty_ctx"]) and torch.equal(pooled[i], text["empty_pooled"])
            assert own != empty and (empty or torch.equal(pooled[i], text["pooled"][index[sc.caption]]))
            dropped += empty
    assert 0 < dropped < 15
    common = ["--out", str(tmp_path), "--batch", "2", "--steps", "6", "--warmup", "2", "--res", "128",
              "--cuda-graph", "--graph-chunk", "4"]
    with pytest.raises(SystemExit, match="one image size"):
        TF.main(["--stage", "dit", *common, "--res", "256", "--lowres-steps", "4", "--highres-every", "3"])
    TF.main(["--stage", "dit", *common, "--lowres-steps", "0"])
    done = torch.load(tmp_path / "toy_dit_ema.pt", weights_only=False)
    assert done["step"] == 6 and all(torch.isfinite(v).all() for v in done["ema"].values())
    # the distillation's chunked inputs, from that teacher's folder (its text and the words' regions)
    words = TF.word_setup(tmp_path)
    args = TF.parse_args(["--out", str(tmp_path), "--res", "128", "--batch", "3"])
    taught = {**text, "ctx": text["ctx"] + 1, "pooled": text["pooled"] - 1}   # another encoder's, told apart
    side = 128 // 16

    def regions(scenes):   # each scene's regions written out: its objects' coverage, the background the rest
        cover, named = torch.zeros(len(scenes), TF.TEXT_TOKENS, side * side), torch.zeros(len(scenes), TF.TEXT_TOKENS,
                                                                                         dtype=torch.bool)
        for b, sc in enumerate(scenes):
            objects = [S.object_coverage(o, side, ss=8).flatten() for o in sc.objects]
            areas = objects + [(1 - torch.stack(objects).sum(0)).clamp(0, 1)]
            for region, positions in words[sc.caption]:
                cover[b, positions], named[b, positions] = areas[region], True
        return cover, named

    at_once = lambda scenes: TF.word_regions(scenes, words, side, TF.TEXT_TOKENS)   # noqa: E731
    distil_inputs = [G.ChunkedDistilInputs(args, ae, text, index, 128, 1.0, taught, (1.0, 7.0), 0.5, 4, at_once)
                     for _ in range(2)]
    ones = 0
    for step in (3, 4, 5, 6):
        inputs, res = distil_inputs[0](step)
        xs, s, ctx, pooled, scale, t_ctx, t_pooled, cover, named = inputs
        if step > 4:
            for a, b in zip(distil_inputs[1](step)[0], inputs):
                assert torch.equal(a, b)
        scenes = TS.step_scenes(args, 1_000_000 + step, 3)   # the eager distillation's scenes of that step
        own = torch.stack([text["ctx"][index[sc.caption]] for sc in scenes])
        assert torch.equal(ctx, own) and torch.equal(t_ctx, own + 1)
        assert torch.equal(t_pooled, torch.stack([text["pooled"][index[sc.caption]] for sc in scenes]) - 1)
        want_cover, want_named = regions(scenes)
        assert torch.equal(named, want_named) and named.any()   # the regions drawn at once are the scenes' own
        assert torch.equal(cover, want_cover)
        with torch.no_grad():
            x0 = ae.to_model(ae.encode(to_nchw(S.render_batch(scenes, 128))))
        rest = (xs - (1 - s)[:, None, None, None] * x0).flatten(1).norm(dim=1) / (s * xs[0].numel() ** 0.5)
        assert ((rest - 1).abs() < 0.1).all(), (rest, s)   # x_s minus its own scene's share is s times unit noise
        assert ((1 <= scale) & (scale <= 7)).all()
        ones += int((scale == 1).sum())
    assert 2 <= ones <= 10   # guidance 1 drawn in about half of the 12 samples
    distil = ["--stage", "distil", *common, "--lowres-steps", "0", "--distil-steps", "5"]
    with pytest.raises(SystemExit, match="one image size"):
        TF.main(["--stage", "distil", *common, "--res", "256", "--lowres-steps", "3", "--highres-every", "0",
                 "--distil-steps", "5"])
    TF.main(distil)
    student = torch.load(tmp_path / "toy_student_ema.pt", weights_only=False)
    assert student["step"] == 5 and all(torch.isfinite(v).all() for v in student["ema"].values())


def test_flow_levels_samples_from_each_level_of_the_schedule(host, tmp_path):
    """``flow_levels`` (issue 26's layout diagnostic) on a 4-step teacher: one reading per start level of
    the 20-step schedule at the host's shift, from the noise down, and the one-step estimates' grid; its
    guided velocity at CFG 1 is the prompt's own, and a run from the last level changes nothing."""
    import shutil
    from PIL import Image
    from workshop.toyworld import flow_levels as FL, train_flow as TF
    shutil.copy(REPO / "models" / "toyworld-flow" / "toy_vae.safetensors", tmp_path)
    TF.main(["--stage", "dit", "--out", str(tmp_path), "--batch", "2", "--steps", "4", "--warmup", "2",
             "--lowres-steps", "4", "--highres-every", "0"])
    res = FL.main(["--out", str(tmp_path), "--scenes", "2", "--grid", str(tmp_path / "grid.png")])
    ss = TF.shifted(torch.linspace(1, 0, 21), TF.host_shift(128))
    assert list(res["levels"]) == [f"{float(ss[i]):.2f}" for i in FL.LEVEL_STEPS] and res["steps"] == 4
    assert all(0 <= v <= 1 for level in res["levels"].values() for v in level.values())
    assert Image.open(tmp_path / "grid.png").size == (128 * (1 + len(FL.GRID_LEVELS)), 128 * 2)
    args = TF.parse_args(["--out", str(tmp_path), "--res", "128"])
    _, text, index = TF.setup(args)
    net, _ = TF.load_dit(args)
    i = torch.tensor([index[S.SAMPLE.caption]])
    x, s = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0)), torch.tensor(0.7)
    empty = (text["empty_ctx"], text["empty_pooled"])
    with torch.no_grad():
        torch.testing.assert_close(TF.guided_velocity(net, x, s, text["ctx"][i], text["pooled"][i], *empty, 1.0),
                                   TF.velocity(net, x, s.expand(1), text["ctx"][i], text["pooled"][i]))
    assert torch.equal(TF.euler_from(net, x, ss, 20, text["ctx"][i], text["pooled"][i], *empty, 4.0), x)


def test_flow_recon_reads_a_student_that_is_its_teacher_as_its_teacher(host, tmp_path):
    """``flow_recon`` (where a student leaves its teacher): a student that is its teacher (the teacher's weights,
    the guidance MLP's output at zero, as the distillation starts) reconstructs exactly as the teacher and
    departs from it by nothing at every level; one of another start departs."""
    import shutil
    from workshop.toyworld import flow_recon as FR, train_flow as TF
    shutil.copy(REPO / "models" / "toyworld-flow" / "toy_vae.safetensors", tmp_path)
    TF.main(["--stage", "dit", "--out", str(tmp_path), "--batch", "2", "--steps", "3", "--warmup", "2",
             "--lowres-steps", "3", "--highres-every", "0"])
    teacher = torch.load(tmp_path / "toy_dit_ema.pt", weights_only=False)
    student = TF.build_dit(0, student=True)
    missing, _ = student.load_state_dict(teacher["ema"], strict=False)
    assert missing and all(k.startswith("guidance_in.") for k in missing)
    torch.save({"ema": student.state_dict(), "preset": TF.DEFAULT_PRESET}, tmp_path / "toy_student_ema.pt")
    common = ["--out", str(tmp_path), "--res", "128", "--scenes", "2", "--steps", "4"]
    res = FR.main(common)
    assert res["scenes"] == 2 and len(res["student_vs_teacher"]) == 4
    assert set(res["student_vs_teacher"].values()) == {0.0}
    assert res["student"]["psnr"] == res["teacher"]["psnr"] and all(v > 0 for v in res["teacher"]["psnr"])
    other = TF.build_dit(1, student=True)
    torch.save({"ema": other.state_dict(), "preset": TF.DEFAULT_PRESET}, tmp_path / "other.pt")
    res = FR.main([*common, "--student-weights", str(tmp_path / "other.pt")])
    assert min(res["student_vs_teacher"].values()) > 0.01


def test_an_anchored_fine_tune_moves_only_with_the_attention_loss(host, tmp_path):
    """``train_flow --anchor``: a finished student, frozen, is its own teacher, so the velocity loss starts
    at zero and the fine-tune moves only where the attention loss pulls: with that loss off, the weights
    come back as they went in (to the EMA's rounding, 6e-8); with it on, they move (1.6e-5 in 3 steps). A
    shipped model's float16 ``toy_dit.safetensors`` is a start too (``load_student``), and ``finish`` then
    keeps its config with the fine-tune under ``training.fine_tune`` (``finish_fine_tune``). Without
    ``--distil-init``, or with another teacher's text, it is refused, and so is a finish with no teacher to describe."""
    import shutil
    from workshop.toyworld import train_flow as TF
    small = ["--batch", "2", "--warmup", "2", "--lowres-steps", "8", "--highres-every", "0"]
    for name in ("base", "off", "on"):
        (tmp_path / name).mkdir()
        shutil.copy(REPO / "models" / "toyworld-flow" / "toy_vae.safetensors", tmp_path / name)
    TF.main(["--stage", "dit", "--out", str(tmp_path / "base"), "--steps", "4", *small])
    TF.main(["--stage", "distil", "--out", str(tmp_path / "base"), "--distil-steps", "2", *small])
    init = tmp_path / "base" / "toy_student_ema.pt"
    # a shipped model's form: float16 safetensors with its config.json beside it
    from safetensors.torch import save_file
    (tmp_path / "shipped").mkdir()
    save_file({k: v.half() for k, v in torch.load(init, weights_only=False)["ema"].items()},
              tmp_path / "shipped" / "toy_dit.safetensors")
    (tmp_path / "shipped" / "config.json").write_text(json.dumps({"training": {"preset": TF.DEFAULT_PRESET}}))
    loaded = TF.load_student(str(tmp_path / "shipped" / "toy_dit.safetensors"), "cpu")
    assert loaded["preset"] == TF.DEFAULT_PRESET and all(
        torch.equal(loaded["ema"][k], v.half().float()) for k, v in torch.load(init, weights_only=False)["ema"].items())
    with pytest.raises(SystemExit, match="--distil-init"):
        TF.main(["--stage", "distil", "--out", str(tmp_path / "off"), "--anchor", "--distil-steps", "2", *small])
    with pytest.raises(SystemExit, match="--teacher-text"):
        TF.main(["--stage", "distil", "--out", str(tmp_path / "off"), "--anchor", "--distil-init", str(init),
                 "--teacher-text", str(tmp_path / "base" / "text.pt"), "--distil-steps", "2", *small])
    for name, weight in (("off", "0"), ("on", "1")):
        TF.main(["--stage", "distil", "--out", str(tmp_path / name), "--distil-init", str(init), "--anchor",
                 "--attention-loss", weight, "--attention-max-s", "1", "--distil-steps", "3", *small])
    start = torch.load(init, weights_only=False)["ema"]
    off, on = (torch.load(tmp_path / n / "toy_student_ema.pt", weights_only=False)["ema"] for n in ("off", "on"))
    moved = {n: max(float((w[k] - v).abs().max()) for k, v in start.items()) for n, w in (("off", off), ("on", on))}
    assert moved["off"] < 1e-6 < moved["on"], moved   # off: the EMA's rounding alone
    # from the shipped form, finished without a teacher: the shipped config kept, the fine-tune under training
    (tmp_path / "tuned").mkdir()
    shutil.copy(REPO / "models" / "toyworld-flow" / "toy_vae.safetensors", tmp_path / "tuned")
    tune = ["--out", str(tmp_path / "tuned"), "--distil-init", str(tmp_path / "shipped" / "toy_dit.safetensors"),
            "--anchor", "--attention-loss", "0", "--distil-steps", "2", *small]
    TF.main(["--stage", "distil", *tune])
    with pytest.raises(SystemExit, match="no teacher"):   # a .pt start leaves nothing to describe the training
        TF.main(["--stage", "finish", *tune[:3], str(init), *tune[4:]])
    TF.main(["--stage", "finish", *tune])
    config = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert config["training"]["preset"] == TF.DEFAULT_PRESET and config["training"]["fine_tune"]["anchor"] is True
    from safetensors.torch import load_file
    tuned, shipped = (load_file(tmp_path / n / "toy_dit.safetensors") for n in ("tuned", "shipped"))
    assert tuned.keys() == shipped.keys() and all(torch.allclose(tuned[k].float(), v.float(), atol=1e-3)
                                                  for k, v in shipped.items())


def test_trainer_noise_shift_is_the_host_s_flux_shift(host, toy):
    """``train_flow``'s shift (``--noise-shift``, ``--eval-shift host``) is the host's own: sampling
    at ``host_shift(res)`` walks the sigmas the host's ModelSamplingFlux node gives the model at that
    image size (the Flux workflows' schedule), a low-resolution step's shift is smaller by the sides'
    ratio, and shift 1 leaves the noise levels as they were."""
    from workshop.toyworld import train_flow as TF
    t = torch.linspace(1, 0, 21)[:-1].double()
    for res in (128, 256, 512):
        patched = host.nodes.NODE_CLASS_MAPPINGS["ModelSamplingFlux"]().patch(toy[0], 1.15, 0.5, res, res)[0]
        sampling = patched.get_model_object("model_sampling")
        theirs = torch.stack([sampling.sigma(x) for x in t]).double()
        torch.testing.assert_close(TF.shifted(t, TF.host_shift(res)), theirs, rtol=1e-6, atol=1e-7)
    args = TF.parse_args(["--noise-shift", "6", "--res", "256"])
    assert TF.noise_shift(args, 256) == 6 and TF.noise_shift(args, 128) == 3
    assert TF.noise_shift(TF.parse_args(["--noise-shift", "1"]), 128) == 1
    assert TF.noise_shift(TF.parse_args(["--noise-shift", "1.5"]), 128) == 1   # never toward the image
    assert TF.noise_shift(TF.parse_args([]), 128) == 4   # the shipped model's 8 at 256 px
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain, moved = TF.sample_s(1000, gen()), TF.sample_s(1000, gen(), 3.0)
    torch.testing.assert_close(TF.shifted(plain, 3.0), moved)
    assert (moved > 0.95).float().mean() > 10 * (plain > 0.95).float().mean()


def test_the_bound_flow_t5_s_nouns_carry_their_colour(host):
    """``FLOW_TEXT``'s T5 is bound (``demo/t5_binding.py``; what train_flow trains on, and the shipped
    model was trained on it: its config names the same binding, docs/toyworld.md): in "a red circle ..." against
    "a yellow circle ..." the noun's context differs (cosine 0.92 in the seeded encoder, about 0.62
    bound), so a noun's attention can find its object by colour as world 2's nouns do; each colour
    word keeps its own context (red against yellow stays apart), and a word after a noun moves less.
    The binding head's values in the first block are exact: each colour word's last token its own
    unit code, every other word of the world nothing."""
    from invertedit.demo.t5_binding import pieces
    from invertedit.demo.toy_model import load_flow_clip
    from invertedit.demo.worlds import FLOW_TEXT

    shipped = json.loads((REPO / "models" / "toyworld-flow" / "config.json").read_text())
    assert shipped["clip"] == FLOW_TEXT
    clip = load_flow_clip({"clip": FLOW_TEXT})
    unbound = load_flow_clip({"clip": {k: v for k, v in FLOW_TEXT.items() if k != "bind"}})
    a = "a red circle and a blue square on a green background"
    b = "a yellow circle and a blue square on a green background"
    cos = torch.nn.functional.cosine_similarity

    def contexts(c, text):
        return c.encode_from_tokens(c.tokenize(text))[0].float()

    (ua, ub), (ba, bb) = ((contexts(c, a), contexts(c, b)) for c in (unbound, clip))
    assert float(cos(ua[3], ub[3], dim=0)) > 0.9          # "circle": the seeded encoder barely sees its colour
    assert float(cos(ba[3], bb[3], dim=0)) < 0.7          # bound: it does
    assert float(cos(ba[2], bb[2], dim=0)) < 0.2          # "red" and "yellow" stay apart
    assert float(cos(ba[4], ua[4], dim=0)) > 0.7          # "and" (after a noun) moves less (0.80: the second block mixes)
    encoder = clip.cond_stage_model.t5xxl.transformer.encoder
    first = encoder.block[0].layer[0]
    attention = first.SelfAttention
    width = attention.q.weight.shape[0] // attention.relative_attention_bias.weight.shape[1]
    table = clip.cond_stage_model.t5xxl.transformer.shared.weight

    def code(word):
        return first.layer_norm(table[pieces(clip, word)[-1:]].float()) @ attention.v.weight[-width:].float().T

    codes = torch.cat([code(w) for w in FLOW_TEXT["bind"]["colours"]])
    assert torch.allclose(codes @ codes.T, torch.eye(len(codes)), atol=1e-3)
    for word in FLOW_TEXT["bind"]["others"]:
        assert float(code(word).abs().max()) < 1e-3, word


def test_the_nouns_maps_find_their_objects_without_the_blends_margin(host, tmp_path):
    """Attention Store's mask of the edited object's noun, through the shipped ``Flux - Attention maps``
    workflow on the flow benchmark's scenes (as ``toyworld_flow`` reads it): with ``mask_pool`` 1 (no
    max-pool margin) each lands on its object (IoU >= 0.6; issue 27's gate asks 0.5 in 90% of scenes:
    99% of the benchmark's 75 object scenes, 100% of 75 held-out ones); the paper's 3x3 pool grows the
    same mask by a map cell (a superset), which on this 16x16 patch grid misses these four
    (IoU 0.39-0.47)."""
    from workshop.benchmarks import toyworld_flow as TF
    from workshop.benchmarks.toyworld2 import blend_words

    cases = S.edit_cases(36, seed=0)
    for i in (8, 9, 21, 35):   # a circle, two triangles, a square
        case = cases[i]
        src_img, src_masks = S.render(case.source, RES)
        image = tmp_path / f"case_{i}.png"
        from PIL import Image
        Image.fromarray((src_img * 255).round().byte().numpy()).save(image)
        overrides = TF.case_overrides(case, None)
        noun = blend_words(case)[0]
        truth = src_masks[[j for j, o in enumerate(case.source.objects) if o.shape == noun]].any(0)
        masks = {}
        for pool in (1, 3):
            store = dict(overrides["InvertEditAttentionStore"], mask_pool=pool)
            files = TF.run_workflow_for(host, "Flux - Attention maps", {**overrides, "InvertEditAttentionStore": store},
                                        image, tmp_path / f"{i}_{pool}")
            masks[pool] = TF._load(next(f for f in files if "attention_mask" in f.name))[..., 0] > 0.5
        own, pooled = S.mask_iou(masks[1], truth), S.mask_iou(masks[3], truth)
        assert own >= 0.6, (i, own)
        assert pooled < own and bool((masks[3] | ~masks[1]).all()), (i, pooled, own)


def test_kv_edit_keeps_the_background_outside_the_objects_edges_with_its_own_mask(host):
    """``kv_edit_masks`` on one shape edit (case 17): the object's own mask, painted (Load Image's MASK,
    as ``Flux - KV-Edit`` takes it), reaches KV-Edit (a smaller region than the benchmark's box). With the authors' remedy (attn_scale 4) the other object is kept and, outside the
    objects' one-pixel anti-aliased edges, the background is within 1 dB of FireFlow's reconstruction;
    read as the toy flow benchmark reads it, with those edges, where the source and the target
    themselves differ, it is not. (On this model attn_scale 4 keeps the background by redrawing the
    region as background: the new shape is not drawn; docs/measurements.md, "KV-Edit's gate by
    region".) At the workflow's own settings (the box, attn_scale 1) it fails both readings."""
    import argparse

    from workshop.benchmarks import kv_edit_masks as KM

    case = S.edit_cases(18, seed=0)[17]
    src, src_masks = S.render(case.source, RES)
    tgt, tgt_masks = S.render(case.target, RES)
    objects = src_masks.any(0) | tgt_masks.any(0)
    assert S.psnr(src, tgt, ~objects) < 40 and bool((src == tgt)[KM.B.outside_edges(objects)].all())

    args = argparse.Namespace(cases=18, seed=0, shard=(0, 1), case=[17],
                              settings=KM.parse_settings("box:1,object:4"))
    (c,) = KM.run_cases(host, args)["cases"]
    box, own = c["settings"]["box:1"], c["settings"]["object:4"]
    assert own["area"] < 0.9 * box["area"], (own["area"], box["area"])
    assert own["kept"] and KM.gate(c, own, "core") and not KM.gate(c, own, "benchmark"), (own, c)
    assert not KM.gate(c, box, "core") and not KM.gate(c, box, "benchmark"), (box, c)


def test_kv_edit_masks_settings_carry_the_authors_options_into_the_workflow(tmp_path):
    """``kv_edit_masks``'s settings: REGION:ATTN_SCALE and the authors' other options (re_init, skipN,
    attn_mask) reach KV-Edit's inputs; with attn_mask the mask KV-Edit gets, Load Image's MASK (painted or the
    box), is also wired to Flow Invert's kv_mask, and a setting without options keeps the shipped workflow as it is. The
    words region runs the word workflow as it ships, whose mask is Attention Store's on KV-Edit's inversion."""
    import argparse
    import json

    from workshop.benchmarks import kv_edit_masks as KM

    plain, full = KM.parse_settings("box:1,object:2.5:re_init:skip0:attn_mask")
    assert plain.key == "box:1" and plain.kv_edit_inputs() == {"attn_scale": 1.0, "re_init": False}
    assert full.key == "object:2.5:re_init:skip0:attn_mask"
    assert full.kv_edit_inputs() == {"attn_scale": 2.5, "re_init": True, "skip_steps": 0}
    words, pooled = KM.parse_settings("words:1,words:2:pool1:thr0.2")
    assert words.workflow == KM.WORD_WORKFLOW and not words.painted and words.mask_pool is words.threshold is None
    assert pooled.key == "words:2:pool1:thr0.2" and (pooled.mask_pool, pooled.threshold) == (1, 0.2)
    assert plain.workflow == KM.WORKFLOW
    for bad in ("object:1:reinit", "disc:1", "object", "words:1:attn_mask", "object:1:pool1", "box:1:thr0.2",
                "words:1:thr"):
        with pytest.raises(argparse.ArgumentTypeError):
            KM.parse_settings(bad)
    # the word workflow as it ships: Attention Store reads KV-Edit's own inversion and its MASK is KV-Edit's mask
    shipped = REPO / "example_workflows" / f"{KM.WORD_WORKFLOW}.json"
    assert KM.workflow_for(tmp_path, False, False, KM.WORD_WORKFLOW) == shipped
    wf = json.loads(shipped.read_text())
    kind = {n["id"]: n["type"] for n in wf["nodes"]}
    into = {(kind[link[3]], link[4]): (kind[link[1]], link[2]) for link in wf["links"]}

    def slot(node: str, name: str) -> int:
        return [i["name"] for i in next(n for n in wf["nodes"] if n["type"] == node)["inputs"]].index(name)

    assert into[("InvertEditKVEdit", slot("InvertEditKVEdit", "mask"))] == ("InvertEditAttentionStore", 1)
    assert into[("InvertEditAttentionStore", slot("InvertEditAttentionStore", "inversion"))] == \
        into[("InvertEditKVEdit", slot("InvertEditKVEdit", "inversion"))] == ("InvertEditFlowInvert", 0)

    assert KM.workflow_for(tmp_path, False, False) == REPO / "example_workflows" / f"{KM.WORKFLOW}.json"
    for painted in (False, True):
        wf = json.loads(KM.workflow_for(tmp_path, painted, True).read_text())
        kind = {n["id"]: n["type"] for n in wf["nodes"]}
        into = {(kind[link[3]], link[4]): (kind[link[1]], link[2]) for link in wf["links"]}
        invert = next(n for n in wf["nodes"] if n["type"] == "InvertEditFlowInvert")
        slot = [i["name"] for i in invert["inputs"]].index("kv_mask")
        kv = next(n for n in wf["nodes"] if n["type"] == "InvertEditKVEdit")
        mask_slot = [i["name"] for i in kv["inputs"]].index("mask")
        assert into[("InvertEditFlowInvert", slot)] == into[("InvertEditKVEdit", mask_slot)] == ("LoadImage", 1)
        assert invert["inputs"][slot]["link"] == wf["last_link_id"]


def test_the_gpu_teachers_script_distils_one_teacher_s_variants_side_by_side(host, tmp_path):
    """``gpu_flow_teachers.sh`` as a lent device call runs it, in its CPU smoke mode: ``RUNS=graph`` trains one
    teacher (``--cuda-graph``, eagerly here), then distils each of ``DISTIL_VARIANTS`` from it side by side in its
    own folder; each student comes back with its options (args.txt, config.json), its text-to-image reading and
    its ``flow_recon``, and the teacher's weights once; ``PRESET`` sizes every model of the call (here twice the
    shipped depth)."""
    import json
    import os
    import subprocess
    env = {**os.environ, "DEVICE": "cpu", "SMOKE": "1", "RUNS": "graph", "OUT": str(tmp_path / "out"),
           "TEACHERS_WORK": str(tmp_path / "work"), "THREADS": "1", "DISTIL_ARGS": "--distil-ema 0.99",
           "PRESET": "h128-d4s8", "EVAL_MIN": "10",   # its evaluations boot a host: room on a loaded machine
           "DISTIL_VARIANTS": "--guidance-one 0.1;--guidance-one 0.3 --distil-lr 1e-4"}
    done = subprocess.run(["bash", "workshop/toyworld/gpu_flow_teachers.sh"], cwd=REPO, env=env, timeout=600,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "out" / "graph"
    assert (out / "toy_dit_ema.pt").is_file() and not list(out.glob("v*/toy_dit_ema.pt"))
    for i, (one, lr) in enumerate(((0.1, 2e-4), (0.3, 1e-4))):
        v = out / f"v{i}"
        log = (v / "train.log").read_text()
        assert "without CUDA: the chunked inputs, stepped eagerly" in log, log[-2000:]
        written = json.loads((v / "config.json").read_text())
        config = written["training"]
        assert (config["guidance_one"], config["distil_lr"], config["distil_ema"]) == (one, lr, 0.99)
        assert (written["dit_config"]["depth"], written["dit_config"]["depth_single_blocks"]) == (4, 8)
        assert (v / "args.txt").read_text().split() == ["--distil-ema", "0.99", "--guidance-one", str(one)] + (
            ["--distil-lr", "1e-4"] if i else [])
        assert (v / "toy_dit.safetensors").is_file() and list(v.glob("eval_student_*.json"))
        assert json.loads((v / "recon.json").read_text())["scenes"] == 2


def test_the_flow_benchmark_reads_a_candidate_model_from_its_folder(host, tmp_path):
    """``toyworld_flow --model-dir``: the candidate's config and weights (and the shipped VAE where it has none)
    linked into a folder the Toy World Model then loads the flow world from, in that process only; a folder
    without weights is refused, and ``--runs`` names only known runs."""
    import shutil
    from invertedit.demo.worlds import WORLD_FLOW
    from workshop.benchmarks import toyworld_flow as B
    shipped = REPO / "models" / "toyworld-flow"
    with pytest.raises(SystemExit, match="no config.json, toy_dit.safetensors there"):
        B.candidate_folder(tmp_path)
    shutil.copy(shipped / "config.json", tmp_path)
    shutil.copy(shipped / "toy_dit.safetensors", tmp_path)
    folder = B.candidate_folder(tmp_path)
    assert (folder / "toy_dit.safetensors").resolve() == (tmp_path / "toy_dit.safetensors").resolve()
    assert (folder / "toy_vae.safetensors").resolve() == (shipped / "toy_vae.safetensors").resolve()
    toy = host.pack.demo.toy_model
    assert toy.world_dir(WORLD_FLOW) == toy.MODELS / "toyworld-flow"
    toy.FOLDERS[WORLD_FLOW] = folder
    try:
        assert toy.world_dir(WORLD_FLOW) == folder and toy.load_config(WORLD_FLOW)["dit_config"]
    finally:
        del toy.FOLDERS[WORLD_FLOW]
    assert list(B.chosen_runs("p2p-self")) == ["rf-solver", "p2p-self"] and B.chosen_runs("") == B.RUNS
    with pytest.raises(SystemExit, match="not a run"):
        B.chosen_runs("p2p, local-blend")


def test_the_flow_benchmark_s_table_reads_its_claims_from_every_row_or_some():
    """The table's claims (published orderings, KV-Edit's gate, the best row) from a result with every row, and
    from one with ``--runs``' subset (the orderings then not read): made-up metrics, every case alike."""
    from workshop.benchmarks import toyworld_flow as B

    def metrics(row: str) -> dict:
        rec = not B.ROWS[row][2]
        return {"success": 1.0, "kept": 1.0, "structure": 1.0, "case": 0.5 if "swept" in row else 0.25,
                "bg": 30.0 + rec, "bg_rec": 30.0, "iou": None, "core": 31.0 + rec, "s": 1.0,
                "psnr_src": (28.0 if row.startswith("Euler") else 31.0) if rec else None}

    def result(rows) -> dict:
        cases = [{"i": i, "kind": kind, "rows": {r: metrics(r) for r in rows}} for i, kind in enumerate(S.EDIT_KINDS)]
        return {"cases_total": 4, "seed": 0, "shard": "0/1", "seconds": 1.0, "threads": 1, "cases": cases,
                "rows": [[r, B.ROWS[r][2]] for r in rows]}

    full = B.table(result(list(B.ROWS)))
    assert "Euler 28.0 dB, RF-Solver 31.0 dB, FireFlow 31.0 dB: holds" in full and "FlowEdit against" in full
    assert "KV-Edit with the object's box" in full and "Best row by whole-case success: 50%" in full
    # the 2025-26 leaders' published pairs (issue 84): every row alike here, so none holds
    assert "The 2025-26 leaders, keeps more background" in full and "The 2025-26 leaders, edits more" in full
    assert "0 of 9 published pairs hold" in full and "0 of 8 published pairs hold" in full
    some = [r for r in B.ROWS if B.ROWS[r][0] in B.chosen_runs("p2p-self,kv-edit")]
    part = B.table(result(some))
    assert "the published orderings are not read" in part and "FlowEdit against" not in part
    assert "KV-Edit with the object's box" in part and "Best row by whole-case success: 50%" in part


def test_vital_blocks_bypass_hands_a_block_s_input_on(host):
    """``vital_blocks``' bypass (Stable Flow's analysis: a layer taken out, its residual alone left) gives the
    host's Flux exactly the DiT with that block removed from its list, and only on the clone it patches."""
    import copy

    from workshop.benchmarks import vital_blocks as V
    model, _, _ = host.pack.demo.tiny_flow_models.build_tiny_flow_models("flux-dev", seed=0)
    net = model.model.diffusion_model
    blocks = V.blocks_of(model)
    assert blocks == ([("double_block", i) for i in range(len(net.double_blocks))]
                      + [("single_block", i) for i in range(len(net.single_blocks))])
    assert V.without(model, None) is model
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, 8, 8, generator=g)
    context = torch.randn(1, 7, net.params.context_in_dim, generator=g)
    y = torch.randn(1, net.params.vec_in_dim, generator=g)
    t, guidance = torch.tensor([0.6]), torch.tensor([3.5])

    def run(dit, options):
        with torch.no_grad():
            return dit(x, t, context, y=y, guidance=guidance, transformer_options=options)

    whole = run(net, {})
    for kind, i in (("double_block", 1), ("single_block", 0)):
        clone = V.without(model, (kind, i))
        bypassed = run(net, clone.model_options["transformer_options"])
        removed = copy.deepcopy(net)
        del getattr(removed, "double_blocks" if kind == "double_block" else "single_blocks")[i]
        assert torch.equal(bypassed, run(removed, {})), kind
        assert (bypassed - whole).abs().max() > 1e-3 * whole.abs().max(), f"bypassing {kind} {i} changed nothing"
        assert "patches_replace" not in model.model_options["transformer_options"]

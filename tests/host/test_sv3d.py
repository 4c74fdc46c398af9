"""The tiny random SV3D (``invertedit/demo/tiny_sv3d.py``, issue 83): what ImageOnlyCheckpointLoader gives for
sv3d_u.safetensors, built from the host's classes; the stock CLIPVisionEncode, SV3D_Conditioning, KSampler and VAE
Decode run it as they run the real one (an orbit of views in one batched sampling run)."""
from __future__ import annotations

import importlib
import time

import pytest
import torch

from workshop.headless.calls import call

VIEWS = 5    # a short orbit: the real one is 21 frames (the tests' time)
SIZE = 64    # px: an 8x8 latent a view


def _module(host):
    return importlib.import_module(host.pack.__name__ + ".demo.tiny_sv3d")


@pytest.fixture(scope="module")
def sv3d(host):
    return _module(host).build_tiny_sv3d(0)


def _state(module: torch.nn.Module) -> dict:
    return {k: v.detach().float().clone() for k, v in module.state_dict().items()}


def test_the_tiny_sv3d_is_the_hosts_sv3d(host, sv3d):
    """MODEL: the host's SV3D_u model (its VideoUNet, EDM v prediction, sigma_max 700); CLIP_VISION: the host's
    ClipVisionModel; VAE: the host's VAE; seeded (the same seed: the same weights, another seed: others)."""
    import comfy.clip_vision
    import comfy.model_base
    import comfy.sd
    from comfy.ldm.modules.diffusionmodules.openaimodel import VideoResBlock

    model, clip_vision, vae = sv3d
    assert type(model.model) is comfy.model_base.SV3D_u
    assert model.model.model_type == comfy.model_base.ModelType.V_PREDICTION_EDM
    assert float(model.model.model_sampling.sigma_max) == pytest.approx(700.0)
    assert any(isinstance(m, VideoResBlock) for m in model.model.diffusion_model.modules())
    assert isinstance(clip_vision, comfy.clip_vision.ClipVisionModel) and isinstance(vae, comfy.sd.VAE)
    again = _module(host).build_tiny_sv3d(0)
    other = _module(host).build_tiny_sv3d(1)
    for a, b, c in zip(sv3d, again, other):
        module = getattr(a, "first_stage_model", None) or getattr(a.model, "diffusion_model", a.model)
        same = getattr(b, "first_stage_model", None) or getattr(b.model, "diffusion_model", b.model)
        another = getattr(c, "first_stage_model", None) or getattr(c.model, "diffusion_model", c.model)
        x, y, z = _state(module), _state(same), _state(another)
        assert all(torch.equal(x[k], y[k]) for k in x)
        assert any(not torch.equal(x[k], z[k]) for k in x)


def test_the_stock_sv3d_nodes_make_an_orbit_of_views_on_it(host, sv3d):
    """Load Image's picture -> SV3D_Conditioning (the CLIP vision embedding, the VAE latent of the image, the orbit's
    angles) -> KSampler (one batched run of all views) -> VAE Decode: VIEWS views of SIZE px, finite, not flat, and
    they depend on the input image (the orbit is of that image)."""
    model, clip_vision, vae = sv3d
    views = []
    start = time.perf_counter()
    for seed in (0, 1):
        image = torch.rand(1, 96, 96, 3, generator=torch.Generator().manual_seed(seed))
        positive, negative, latent = call(host, "SV3D_Conditioning", clip_vision=clip_vision, init_image=image, vae=vae,
                                          width=SIZE, height=SIZE, video_frames=VIEWS, elevation=0.0)
        assert latent["samples"].shape == (VIEWS, 4, SIZE // 8, SIZE // 8)
        assert positive[0][1]["azimuth"] == pytest.approx([i * 360 / (VIEWS - 1) for i in range(VIEWS)])
        (samples,) = call(host, "KSampler", model=model, seed=0, steps=4, cfg=2.5, sampler_name="euler",
                          scheduler="karras", positive=positive, negative=negative, latent_image=latent, denoise=1.0)
        (pixels,) = call(host, "VAEDecode", samples=samples, vae=vae)
        assert pixels.shape == (VIEWS, SIZE, SIZE, 3) and torch.isfinite(pixels).all()
        assert float(pixels.std()) > 0.02
        views.append(pixels)
    print(f"tiny SV3D: {VIEWS} views at {SIZE} px, 4 steps, twice in {time.perf_counter() - start:.2f}s")
    assert float((views[0] - views[1]).abs().max()) > 0.02


def test_the_runners_builtin_swaps_image_only_checkpoint_loader_for_the_demo_3d_model(host):
    """With ``builtin``, every Image Only Checkpoint Loader becomes the Demo 3D Model of its file's family (same node
    id, so MODEL / CLIP_VISION / VAE keep their slots: the Demo 3D Model gives them in the loader's order); a file no
    built-in model stands for is refused by name."""
    from workshop.headless import runner

    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
        "2": {"class_type": "ImageOnlyCheckpointLoader", "inputs": {"ckpt_name": "sv3d_u.safetensors"}},
        "3": {"class_type": "SV3D_Conditioning", "inputs": {"clip_vision": ["2", 1], "vae": ["2", 2]}},
    }
    runner._swap_in_builtin(prompt, "toy-one-object")
    assert prompt["2"]["class_type"] == runner.DEMO_3D_MODEL and prompt["2"]["inputs"] == {"family": "sv3d", "seed": 0}
    assert prompt["3"]["inputs"] == {"clip_vision": ["2", 1], "vae": ["2", 2]}
    outputs = host.nodes.NODE_CLASS_MAPPINGS[runner.DEMO_3D_MODEL].GET_NODE_INFO_V1()["output"]
    assert list(outputs) == list(host.nodes.NODE_CLASS_MAPPINGS["ImageOnlyCheckpointLoader"].RETURN_TYPES)
    prompt["1"] = {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}}
    prompt["2"] = {"class_type": "ImageOnlyCheckpointLoader", "inputs": {"ckpt_name": "svd_xt.safetensors"}}
    with pytest.raises(runner.WorkflowError, match="svd_xt.safetensors"):
        runner._swap_in_builtin(prompt, "toy-one-object")


def test_the_cost_figure_counts_the_real_models(host):
    """``workshop/benchmarks/sv3d_cost.py`` counts the real models' arithmetic on the meta device: the host's SV3D
    video UNet has SVD's 1.52 B parameters and SD1.5's UNet its 859.5 M (what their checkpoints hold), one SD1.5 row at
    512 px is the known 0.40 T multiply-adds; the orbit costs about half the edit of its views (docs figure)."""
    from workshop.benchmarks import sv3d_cost

    start = time.perf_counter()
    r = sv3d_cost.measure(views=21, steps=50)
    assert r["sv3d_params"] == pytest.approx(1.524e9, rel=1e-3)
    assert r["sd_params"] == pytest.approx(859.52e6, rel=1e-4)
    assert r["sd_row"] == pytest.approx(401.6e9, rel=1e-3)
    ratio = sum(r["orbit"].values()) / sum(r["edit"].values())
    print(f"SV3D orbit / SD1.5 edit of its 21 views: {ratio:.2f} (counted in {time.perf_counter() - start:.1f}s)")
    assert 0.5 < ratio < 0.6


def test_the_sv3d_template_is_set_for_the_real_models(host, tmp_path):
    """As shipped (no swap): Image Only Checkpoint Loader of sv3d_u.safetensors, SV3D_Conditioning at SV3D's 576 px
    and 21 views, the authors' sampler (50 euler steps on karras, cfg 2.5 through VideoTriangleCFGGuidance from 1.0),
    Load Checkpoint of SD1.5 editing all 21 views (rows V..2V-1 of the pair's decode) with Cross-View Attention at
    GaussCtrl's settings, View Set naming the 21 views with the orbit's azimuths for Hunyuan3D-2mv's end and a GLB, a
    note (its page naming the files); the host accepts the graph once files of those names exist."""
    import asyncio
    import json

    import folder_paths

    from invertedit.workflows import orbit
    from invertedit.workflows.checkpoint import SD15
    from workshop.headless import runner

    path = runner.PACK_DIR / "example_workflows" / f"{orbit.NAME}.json"
    workflow = json.loads(path.read_text(encoding="utf-8"))
    notes = [n["widgets_values"][0] for n in workflow["nodes"] if n["type"] in ("MarkdownNote", "Note")]
    assert any("Load Checkpoint" in text for text in notes)
    page = (runner.PACK_DIR / "docs" / "templates" / f"{orbit.NAME}.md").read_text(encoding="utf-8")
    assert "sv3d_u.safetensors" in page and "huggingface.co/stabilityai/sv3d" in page
    prompt = runner.prepare_prompt(workflow, host=host)
    by_type: dict = {}
    for node in prompt.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    assert {"ckpt_name": "sv3d_u.safetensors"} in by_type["ImageOnlyCheckpointLoader"]
    assert [n["ckpt_name"] for n in by_type["CheckpointLoaderSimple"]] == [SD15.ckpt]
    (conditioning,) = by_type["SV3D_Conditioning"]
    assert (conditioning["width"], conditioning["height"], conditioning["video_frames"]) == (576, 576, 21)
    (orbit_sampler,) = [k for k in by_type["KSampler"] if prompt[k["positive"][0]]["class_type"] == "SV3D_Conditioning"]
    assert (orbit_sampler["steps"], orbit_sampler["cfg"], orbit_sampler["sampler_name"], orbit_sampler["scheduler"]) == \
        (50, 2.5, "euler", "karras")
    assert [g["min_cfg"] for g in by_type["VideoTriangleCFGGuidance"]] == [1.0]
    (cross,) = by_type["InvertEditCrossViewAttention"]
    assert (cross["references"], cross["self_weight"]) == (4, 0.6)
    picks = {(n["batch_index"], n["length"]) for n in by_type["ImageFromBatch"]}
    assert picks == {(0, 21), (21, 21)}
    # the 3D end: the orbit's 21 views named and placed by azimuth, Hunyuan3D-2mv's file
    (view_set,) = by_type["InvertEditViewSet"]
    azimuths = [float(a) for a in view_set["azimuths"].split(",")]
    assert len(view_set["layout"].split(",")) == 21 and azimuths == pytest.approx([(i + 1) * 360 / 21 for i in range(21)],
                                                                                   abs=0.05)
    (shape,) = [n for n in by_type["ImageOnlyCheckpointLoader"] if n["ckpt_name"] != "sv3d_u.safetensors"]
    assert "SaveGLB" in by_type
    for kind, name in (("checkpoints", "sv3d_u.safetensors"), ("checkpoints", SD15.ckpt),
                       ("checkpoints", shape["ckpt_name"])):
        folder = tmp_path / kind
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"not loaded: the prompt is only validated")
        folder_paths.add_model_folder_path(kind, str(folder), is_default=True)
    assert [n["image"] for n in by_type["LoadImage"]] == ["example.png"]   # the host ships it in input/
    users = runner.prepare_prompt(workflow, image=runner.SAMPLE_IMAGE, host=host)
    valid, error, _, node_errors = asyncio.run(host.execution.validate_prompt(
        "test", json.loads(json.dumps(users)), None))
    assert valid and not node_errors, (error, node_errors)

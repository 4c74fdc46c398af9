"""Views to 3D (issue 83): the tiny Hunyuan3D-2 built from the host's classes (seeded, tiny), Views to Hunyuan3D
wired exactly as ComfyUI's Hunyuan3D-2mv template wires the stock nodes (by the layout's names, or by azimuth from an
orbit), the Demo 3D Model's families, and the 3D end on the stock nodes writing a GLB with vertices with the DiT in
float32 and in fp16 (the half-precision lane's ``unet_in``). The shipped workflows: test_workflows (fp32, the GLB
read by ``glb_checks``) and test_half_precision; bad inputs: bad_inputs_views3d."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from glb_checks import glb_vertices
from test_half_precision import unet_in
from workshop.headless.calls import call


@pytest.fixture(scope="module")
def hunyuan3d(host):
    return call(host, "InvertEditDemo3DModel", family="hunyuan3d2", seed=0)


def _views(count: int, size: int = 32) -> torch.Tensor:
    return torch.rand(count, size, size, 3, generator=torch.Generator().manual_seed(1))


def test_the_tiny_hunyuan3d_is_the_hosts_classes_seeded_and_tiny(host, hunyuan3d):
    import comfy.clip_vision
    import comfy.ldm.hunyuan3d.model
    import comfy.ldm.hunyuan3d.vae
    import comfy.model_base
    import comfy.sd

    model, clip_vision, vae = hunyuan3d
    assert isinstance(model.model, comfy.model_base.Hunyuan3Dv2)
    assert isinstance(model.model.diffusion_model, comfy.ldm.hunyuan3d.model.Hunyuan3Dv2)
    assert isinstance(clip_vision, comfy.clip_vision.ClipVisionModel) and type(clip_vision.model).__name__ == "Dinov2Model"
    assert isinstance(vae, comfy.sd.VAE) and isinstance(vae.first_stage_model, comfy.ldm.hunyuan3d.vae.ShapeVAE)
    sizes = [sum(p.numel() for p in m.parameters())
             for m in (model.model.diffusion_model, clip_vision.model, vae.first_stage_model)]
    assert max(sizes) < 500_000, sizes
    again, other = (call(host, "InvertEditDemo3DModel", family="hunyuan3d2", seed=s) for s in (0, 1))
    for a, b, c in zip(hunyuan3d, again, other):
        module = getattr(a, "model", None) if not hasattr(a, "first_stage_model") else a.first_stage_model
        module_b = b.first_stage_model if hasattr(b, "first_stage_model") else b.model
        module_c = c.first_stage_model if hasattr(c, "first_stage_model") else c.model
        sa, sb, sc = (m.state_dict() for m in (module, module_b, module_c))
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point() and sa[k].numel() > 1)


def test_the_demo_3d_model_builds_each_family(host):
    import comfy.model_base

    options = host.nodes.NODE_CLASS_MAPPINGS["InvertEditDemo3DModel"].define_schema().inputs[0].options
    assert options == ["hunyuan3d2", "sv3d"]
    model, clip_vision, vae = call(host, "InvertEditDemo3DModel", family="sv3d", seed=0)
    assert isinstance(model.model, comfy.model_base.SV3D_u) and hasattr(clip_vision, "encode_image") and vae.latent_channels == 4


def _stock(host, clip_vision, images: torch.Tensor, rows: dict) -> list:
    """The host's template: one CLIPVisionEncode (crop none) a view, into Hunyuan3Dv2ConditioningMultiView."""
    outputs = {name: call(host, "CLIPVisionEncode", clip_vision=clip_vision, image=images[i:i + 1], crop="none")[0]
               for name, i in rows.items()}
    return call(host, "Hunyuan3Dv2ConditioningMultiView", **outputs)


def _same(a, b) -> None:
    for (ca, _), (cb, _) in zip(a, b):
        assert ca.shape == cb.shape and torch.equal(ca, cb)


def test_views_to_hunyuan3d_is_the_templates_wiring_by_name_and_by_azimuth(host, hunyuan3d):
    _, clip_vision, _ = hunyuan3d
    views = _views(4)
    images, record = call(host, "InvertEditViewSet", views=views, layout="back, front, right, left")
    positive, negative = call(host, "InvertEditViewsToHunyuan3D", clip_vision=clip_vision, views=images,
                              view_set=record, crop="none")
    stock = _stock(host, clip_vision, views, {"front": 1, "left": 3, "back": 0, "right": 2})
    _same(positive, stock[0])
    _same(negative, stock[1])
    assert positive[0][0].shape[1] == 4 * 1370 and not negative[0][0].any()
    # an 8-view orbit (SV3D-like, 45 degrees apart, two of them given as more_views): the quarter views 0, 2, 4, 6
    orbit = _views(8)
    images, record = call(host, "InvertEditViewSet", views=orbit[:6], more_views=orbit[6:],
                          layout=", ".join(f"frame {i}" for i in range(8)),
                          azimuths=", ".join(str(45 * i) for i in range(8)), elevations="10, " * 7 + "10")
    assert record.count == 8 and record.elevations == (10.0,) * 8 and torch.equal(images, orbit)
    positive, _ = call(host, "InvertEditViewsToHunyuan3D", clip_vision=clip_vision, views=images, view_set=record,
                       crop="none")
    _same(positive, _stock(host, clip_vision, orbit, {"front": 0, "left": 2, "back": 4, "right": 6})[0])
    # three named views: the host's embedding of each by its own name (front 0, back 2, right 3), not by position
    images, record = call(host, "InvertEditViewSet", views=views[:3], layout="right, front, back")
    positive, _ = call(host, "InvertEditViewsToHunyuan3D", clip_vision=clip_vision, views=images, view_set=record,
                       crop="none")
    _same(positive, _stock(host, clip_vision, views, {"front": 1, "back": 2, "right": 0})[0])


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_the_3d_end_writes_a_glb_with_vertices(host, precision):
    """Views to Hunyuan3D, then the template's stock nodes (ModelSamplingAuraFlow, EmptyLatentHunyuan3Dv2, KSampler,
    VAE Decode Hunyuan3D, VoxelToMesh surface net 0.6, SaveGLB) on the tiny Hunyuan3D-2 at the tests' quick settings
    (256 latent tokens, 2 steps, octree 16; two views: 2740 tokens of context, the CPU's fp16 matmuls are slow): a GLB
    with vertices, the DiT in ``precision``."""
    with unet_in(precision):
        model, clip_vision, vae = call(host, "InvertEditDemo3DModel", family="hunyuan3d2", seed=0)
        assert model.model.get_dtype() == {"fp32": torch.float32, "fp16": torch.float16}[precision]
        started = time.perf_counter()
        images, record = call(host, "InvertEditViewSet", views=_views(2, 64), layout="front, back")
        positive, negative = call(host, "InvertEditViewsToHunyuan3D", clip_vision=clip_vision, views=images,
                                  view_set=record, crop="none")
        shifted = call(host, "ModelSamplingAuraFlow", model=model, shift=1.0)[0]
        latent = call(host, "EmptyLatentHunyuan3Dv2", resolution=256, batch_size=1)[0]
        shape = call(host, "KSampler", model=shifted, seed=0, steps=2, cfg=7.5, sampler_name="euler", scheduler="normal",
                     positive=positive, negative=negative, latent_image=latent, denoise=1.0)[0]
        assert torch.isfinite(shape["samples"]).all()
        voxels = call(host, "VAEDecodeHunyuan3D", samples=shape, vae=vae, num_chunks=8000, octree_resolution=16)[0]
        mesh = call(host, "VoxelToMesh", voxel=voxels, algorithm="surface net", threshold=0.6)[0]
        saved = host.nodes.NODE_CLASS_MAPPINGS["SaveGLB"]().save(mesh, f"invertedit/test_views_to_3d_{precision}")
    inside = float((voxels.data > 0.6).float().mean())
    (result,) = saved["ui"]["3d"]
    path = Path(host.output_dir) / result["subfolder"] / result["filename"]
    vertices = glb_vertices(path)
    print(f"{precision}: {inside:.0%} of the 17^3 grid inside, {vertices} vertices, "
          f"{time.perf_counter() - started:.1f}s")
    assert 0.05 < inside < 0.95 and vertices > 3 and vertices == mesh.vertices.shape[1]


def test_the_hunyuan3d_template_is_set_for_the_real_models(host, tmp_path):
    """As shipped (no swap): Load Checkpoint of SD1.5 editing the four views (rows V..2V-1 of the pair's decode) with
    Cross-View Attention at GaussCtrl's settings, View Set's front/left/back/right, Image Only Checkpoint Loader of
    Hunyuan3D-2mv's one file, ComfyUI's Hunyuan3D-2mv template's 3D settings and a GLB, a note naming the files; the
    host accepts the graph once files of those names exist."""
    import asyncio
    import json

    import folder_paths

    from invertedit.techniques.views_to_3d import workflows as w
    from invertedit.workflows.checkpoint import SD15
    from workshop.headless import runner

    path = runner.PACK_DIR / "example_workflows" / f"{w.CHECKPOINT_NAME}.json"
    workflow = json.loads(path.read_text(encoding="utf-8"))
    notes = [n["widgets_values"][0] for n in workflow["nodes"] if n["type"] in ("MarkdownNote", "Note")]
    assert any("Load Checkpoint" in text for text in notes)
    page = (runner.PACK_DIR / "docs" / "templates" / f"{w.CHECKPOINT_NAME}.md").read_text(encoding="utf-8")
    assert w.HUNYUAN3D_MV_CKPT in page and w.HUNYUAN3D_MV_URL in page
    prompt = runner.prepare_prompt(workflow, host=host)
    by_type: dict = {}
    for node in prompt.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    assert by_type["ImageOnlyCheckpointLoader"] == [{"ckpt_name": w.HUNYUAN3D_MV_CKPT}]
    assert [n["ckpt_name"] for n in by_type["CheckpointLoaderSimple"]] == [SD15.ckpt]
    (cross,) = by_type["InvertEditCrossViewAttention"]
    assert (cross["references"], cross["self_weight"], cross["mode"]) == (4, 0.6, "mean of references (GaussCtrl)")
    assert {(n["batch_index"], n["length"]) for n in by_type["ImageFromBatch"]} == {(0, 4), (4, 4)}
    (view_set,) = by_type["InvertEditViewSet"]
    assert [n.strip() for n in view_set["layout"].split(",")] == ["front", "left", "back", "right"]
    t = w.TEMPLATE_3D
    (latent,) = by_type["EmptyLatentHunyuan3Dv2"]
    (decode,) = by_type["VAEDecodeHunyuan3D"]
    (shape_sampler,) = [k for k in by_type["KSampler"] if prompt[k["positive"][0]]["class_type"] ==
                        "InvertEditViewsToHunyuan3D"]
    assert (latent["resolution"], shape_sampler["steps"], shape_sampler["cfg"], decode["octree_resolution"]) == \
        (t["resolution"], t["steps"], t["cfg"], t["octree_resolution"]) == (3072, 20, 7.5, 256)
    assert [m["shift"] for m in by_type["ModelSamplingAuraFlow"]] == [1.0] and "SaveGLB" in by_type
    for name in (w.HUNYUAN3D_MV_CKPT, SD15.ckpt):
        folder = tmp_path / "checkpoints"
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(b"not loaded: the prompt is only validated")
    folder_paths.add_model_folder_path("checkpoints", str(tmp_path / "checkpoints"), is_default=True)
    users = runner.prepare_prompt(workflow, image=runner.SAMPLE_IMAGE, host=host)
    valid, error, _, node_errors = asyncio.run(host.execution.validate_prompt(
        "test", json.loads(json.dumps(users)), None))
    assert valid and not node_errors, (error, node_errors)

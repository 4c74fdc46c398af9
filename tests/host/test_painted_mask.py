"""The ``Flux - KV-Edit`` template takes the mask a user paints in Load Image's mask editor (issue 79),
and the tests and card pictures run it so: the runner's ``paint_mask`` override makes Load Image load
its image with a box painted as the mask editor saves one (an RGBA copy, transparent in the box:
Load Image's MASK is 1 - alpha), the toy overrides' box over the red circle. What the run does with
the mask: ``test_workflows.py``'s KV-Edit check (outside the mask the edit is the image); what KV-Edit
refuses (nothing painted, everything painted): ``test_bad_inputs.py``'s ``kv-edit-*`` cases. KV-Edit on Qwen-Image
takes such a mask the same way (its latent [1, 16, 1, h, w]: the Wan VAE's frame axis)."""
from __future__ import annotations

import json

import pytest
import torch

from workshop.headless.calls import call, encode

REPO_WORKFLOW = "Flux - KV-Edit"


@pytest.fixture(scope="module")
def runner(host):
    from workshop.headless import runner
    return runner


def _prompt(host, runner, **change):
    from workshop import make_workflows

    workflow = runner.load_workflow(make_workflows.REPO / "example_workflows" / f"{REPO_WORKFLOW}.json")
    overrides = dict(make_workflows.toy_overrides(REPO_WORKFLOW, quick=True), **change)
    return runner.prepare_prompt(workflow, builtin=make_workflows.builtin_for(REPO_WORKFLOW), overrides=overrides,
                                 host=host)


def test_kv_edit_takes_the_mask_painted_in_load_image(host, runner):
    """As shipped, KV-Edit's mask is Load Image's MASK (no drawn rectangle); on the built-in model Load Image
    loads the sample with the toy overrides' box painted, so the MASK is that box, 1 inside and 0 outside."""
    from workshop import make_workflows

    prompt = _prompt(host, runner)
    (loader,) = [k for k, v in prompt.items() if v["class_type"] == "LoadImage"]
    (kv,) = [v for v in prompt.values() if v["class_type"] == "InvertEditKVEdit"]
    assert kv["inputs"]["mask"] == [loader, 1]
    assert not {"SolidMask", "MaskComposite"} & {v["class_type"] for v in prompt.values()}
    assert runner.PAINT_MASK not in prompt[loader]["inputs"]   # the override is the runner's, not the node's
    x, y, w, h = make_workflows.CHECKPOINT_WORKFLOWS[REPO_WORKFLOW][1]["LoadImage"]["paint_mask"]
    image, mask = call(host, "LoadImage", image=prompt[loader]["inputs"]["image"])
    size = runner.BUILTIN_SWAPS[make_workflows.builtin_for(REPO_WORKFLOW)].size
    assert image.shape == (1, size, size, 3) and mask.shape == (1, size, size)
    painted = torch.zeros(1, size, size)
    painted[:, y:y + h, x:x + w] = 1.0
    assert torch.equal(mask, painted)
    assert "MaskEditor" in json.dumps(make_workflows.WORKFLOWS[REPO_WORKFLOW]()["nodes"][0]["text"])


def test_a_paint_mask_override_that_cannot_be_painted_is_refused(host, runner):
    with pytest.raises(runner.WorkflowError, match=r"'paint_mask' of node \d+: the box \[200, 30, 112, 112\] is not "
                                                   r"inside its 256x256 image"):
        _prompt(host, runner, LoadImage={"paint_mask": [200, 30, 112, 112]})
    with pytest.raises(runner.WorkflowError, match=r"'paint_mask' of node \d+: 'box' is not \[x, y, width, height\]"):
        _prompt(host, runner, LoadImage={"paint_mask": "box"})
    with pytest.raises(runner.WorkflowError, match=r"'paint_mask' of node \d+ \(InvertEditKVEdit\): only a LoadImage"):
        _prompt(host, runner, InvertEditKVEdit={"paint_mask": [0, 0, 8, 8]})


def test_kv_edit_on_qwen_image_takes_a_mask_painted_in_load_image(host, tiny):
    """KV-Edit on Qwen-Image with Load Image's MASK, as the mask editor saves it (an RGBA picture, transparent in the
    painted box: the MASK is 1 - alpha): VAE Encode (the Wan VAE: a latent [1, 16, 1, h, w]), Flow Invert keeping
    keys and values, KV-Edit with the MASK, sampled with CFG on a negative prompt of another token count; outside
    the box's latent cells the edit is the image's own latent, inside it is remade."""
    import os

    from PIL import Image

    model, clip, vae = tiny("qwen-image")
    picture = Image.new("RGBA", (128, 128), (40, 60, 200, 255))
    for x in range(128):
        for y in range(128):
            if (x - 64) ** 2 + (y - 60) ** 2 < 30 ** 2:
                picture.putpixel((x, y), (210, 30, 30, 255))
    box = (40, 32, 88, 80)   # x0, y0, x1, y1: painted over (alpha 0)
    for x in range(box[0], box[2]):
        for y in range(box[1], box[3]):
            picture.putpixel((x, y), picture.getpixel((x, y))[:3] + (0,))
    picture.save(os.path.join(host.input_dir, "qwen_kv_painted.png"))
    image, mask = call(host, "LoadImage", image="qwen_kv_painted.png")
    painted = torch.zeros(1, 128, 128)
    painted[:, box[1]:box[3], box[0]:box[2]] = 1.0
    assert torch.equal(mask, painted)
    latent = call(host, "VAEEncode", pixels=image, vae=vae)[0]
    assert latent["samples"].shape == (1, 16, 1, 16, 16)
    inv = call(host, "InvertEditFlowInvert", model=model, latent=latent, positive=encode(host, clip, "a red circle"),
               solver="euler", steps=6, scheduler="simple", guidance=1.0, keep_keys_values=True)[0]
    edited, noise, sigmas = call(host, "InvertEditKVEdit", model=model, inversion=inv, mask=mask, skip_steps=1,
                                 attn_scale=1.0, re_init=False, seed=0)
    guider = call(host, "CFGGuider", model=edited, positive=encode(host, clip, "a yellow square"),
                  negative=encode(host, clip, "blurry, low quality"), cfg=2.5)[0]
    out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider,
               sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas, latent_image=latent)[0]
    source = model.model.process_latent_in(latent["samples"]).float()
    made = model.model.process_latent_in(out["samples"]).float()
    cells = host.pack.techniques.kv_edit.policies.latent_mask(mask, (16, 16))[:, :, None].expand_as(made)
    assert cells.any() and not cells.all()
    assert torch.allclose(made[~cells], source[~cells], atol=1e-5)
    assert (made - source)[cells].abs().mean() > 0.01
    decoded = call(host, "VAEDecode", samples=out, vae=vae)[0]
    assert decoded.shape[-3:] == (128, 128, 3) and torch.isfinite(decoded).all()

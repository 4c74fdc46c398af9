"""The ``Flux - KV-Edit`` template takes the mask a user paints in Load Image's mask editor (issue 79),
and the tests and card pictures run it so: the runner's ``paint_mask`` override makes Load Image load
its image with a box painted as the mask editor saves one (an RGBA copy, transparent in the box:
Load Image's MASK is 1 - alpha), the toy overrides' box over the red circle. What the run does with
the mask: ``test_workflows.py``'s KV-Edit check (outside the mask the edit is the image); what KV-Edit
refuses (nothing painted, everything painted): ``test_bad_inputs.py``'s ``kv-edit-*`` cases."""
from __future__ import annotations

import json

import pytest
import torch

from workshop.headless.calls import call

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

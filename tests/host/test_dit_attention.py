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

FAMILIES = ["flux-dev", "sd3"]


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
    text = call(host, "CLIPTextEncode", clip=clip, text="a red circle")[0][0][0].shape[1]
    for i, (block, n_text, grid, heads, chunks, rows, shape, step, points) in enumerate(recorder.calls):
        assert block == blocks[i % len(blocks)]
        assert (n_text, grid) == (text, (4, 6))           # 8x12 latent, 2x2 patches
        assert shape == (1, heads, text + 24, shape[3]) and chunks == (0,) and rows == 1
        assert (step, points) == (i // len(blocks), 4)


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

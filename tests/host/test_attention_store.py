"""Attention Store on the host: heatmaps per word and a mask from the inversion's trajectory."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode

PROMPT = "a red circle on a blue background"


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_heatmaps_and_mask(host, tiny, family):
    model, clip, _ = tiny(family)
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=encode(host, clip, PROMPT), steps=10,
               scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[0]
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    heat, mask = call(host, "InvertEditAttentionStore", model=model, clip=clip, inversion=inv, prompt=PROMPT,
                      words="circle, blue", start=0.0, end=0.5, threshold=0.3, image=image)
    assert heat.shape == (7, 64, 64, 3) and float(heat.min()) >= 0 and float(heat.max()) <= 1   # one per word
    assert mask.shape == (1, 64, 64) and set(mask.unique().tolist()) <= {0.0, 1.0} and mask.sum() > 0
    with pytest.raises(ValueError, match=r"Attention Store: input 'words': \['dog'\] not in the prompt"):
        call(host, "InvertEditAttentionStore", model=model, clip=clip, inversion=inv, prompt=PROMPT, words="dog",
             start=0.0, end=1.0, threshold=0.3)


def test_maps_follow_what_the_recorded_calls_saw(host, tiny):
    """The store's word maps are the recorder's average of the cross-attention calls of the
    chosen steps: a window of one step gives exactly that step's maps."""
    model, clip, _ = tiny("sd1")
    src = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=encode(host, clip, PROMPT), steps=10,
               scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[0]
    outs = [call(host, "InvertEditAttentionStore", model=model, clip=clip, inversion=inv, prompt=PROMPT, words="",
                 start=s, end=e, threshold=0.3)[0] for s, e in ((0.0, 0.1), (0.0, 0.1), (0.5, 0.6))]
    assert torch.equal(outs[0], outs[1])            # deterministic, no state carried between runs
    assert not torch.equal(outs[0], outs[2])        # another step, other maps


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_maps_come_from_the_reference_layers_only(host, tiny, family, monkeypatch):
    """As Prompt-to-Prompt's ``aggregate_attention(res=16, from_where=("up", "down"))`` and its
    local blend: only the cross-attention layers at latent/4 are recorded, never the middle
    block or the finer levels."""
    store = host.pack.techniques.attention_maps.store
    layout = host.pack.hostkit.layout
    model, clip, _ = tiny(family)
    seen = set()
    real = store.StoreMaps.attention

    def spy(self, q, k, v, where, state):
        seen.add(where.block)
        return real(self, q, k, v, where, state)

    monkeypatch.setattr(store.StoreMaps, "attention", spy)
    src = {"samples": torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))}
    inv = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=encode(host, clip, PROMPT), steps=4,
               scheduler="ddim_uniform", start_at_step=0, cfg=1.0)[0]
    call(host, "InvertEditAttentionStore", model=model, clip=clip, inversion=inv, prompt=PROMPT, words="circle",
         start=0.0, end=1.0, threshold=0.3)
    wanted = layout.map_blocks(model)
    assert seen == set(wanted) and len(wanted) < len(layout.transformer_blocks(model))
    assert all(block != "middle" for block, _ in seen)

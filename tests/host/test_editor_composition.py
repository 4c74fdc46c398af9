"""The pair editors compose with weight patches (LoRA): the LoRA still acts under the editors'
attention patches, and the input MODEL keeps its patches."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err

SOURCE, TARGET = "a red circle on a blue background", "a red square on a blue background"
EDITORS = {
    "InvertEditAttentionInject": dict(mode="replace", reweight="", cross_replace=0.8, self_replace=0.4, local_blend=False),
    "InvertEditMasaCtrl": dict(start_step=2, start_layer=3),
    "InvertEditPlugAndPlay": dict(feature_injection=0.8, self_attention_injection=0.5),
}


@pytest.mark.parametrize("editor", sorted(EDITORS))
def test_editors_keep_a_lora_acting(host, tiny, editor):
    import comfy.model_management

    model, clip, _ = tiny("sd1")
    lora = model.clone()   # a LoRA-like weight patch on every attention projection
    lora.add_patches({k: (torch.full_like(v, 0.02),) for k, v in model.model_state_dict().items()
                      if k.endswith(("to_q.weight", "to_k.weight", "to_v.weight"))}, 1.0)
    lat = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    neg = encode(host, clip, "")
    try:
        outs = {}
        for name, base in (("lora", lora), ("plain", model)):
            m, cond, pair = call(host, editor, model=base, clip=clip, latent=lat, source_prompt=SOURCE,
                                 target_prompt=TARGET, **EDITORS[editor])
            assert m.patches.keys() == base.patches.keys()          # the weight patches travel with the clone
            outs[name] = call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=6, cfg=5.0,
                              sampler_name="ddim", scheduler="ddim_uniform", positive=cond, negative=neg, latent_image=pair,
                              start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]
        assert rel_err(outs["lora"], outs["plain"]) > 1e-3         # the LoRA still changes the result
        assert len(lora.patches) > 0 and not model.patches
    finally:
        comfy.model_management.load_models_gpu([model])           # restore the shared tiny model's weights


@pytest.fixture(scope="module")
def tiny_controlnet(host, tiny):
    """A seeded random ControlNet for the tiny SD1 UNet, built with the host's own classes."""
    import comfy.cldm.cldm
    import comfy.controlnet

    model = tiny("sd1")[0]
    config = {k: v for k, v in model.model.model_config.unet_config.items()
              if k in comfy.cldm.cldm.ControlNet.__init__.__code__.co_varnames and k != "transformer_depth_output"}
    net = comfy.cldm.cldm.ControlNet(hint_channels=3, device="cpu", **config)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return comfy.controlnet.ControlNet(net, load_device=torch.device("cpu"), manual_cast_dtype=None)


@pytest.mark.parametrize("editor", sorted(EDITORS))
def test_editors_compose_with_the_hosts_controlnet(host, tiny, tiny_controlnet, editor):
    model, clip, _ = tiny("sd1")
    lat = {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)) * 5.0}
    neg = encode(host, clip, "")
    hint = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))

    def run(target):
        m, cond, pair = call(host, editor, model=model, clip=clip, latent=lat, source_prompt=SOURCE, target_prompt=target,
                             **EDITORS[editor])
        controlled = call(host, "ControlNetApplyAdvanced", positive=cond, negative=neg, control_net=tiny_controlnet,
                          image=hint, strength=1.0, start_percent=0.0, end_percent=1.0)
        sample = lambda c, n: call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=6, cfg=5.0,
                                   sampler_name="ddim", scheduler="ddim_uniform", positive=c, negative=n,
                                   latent_image=pair, start_at_step=0, end_at_step=10000,
                                   return_with_leftover_noise="disable")[0]["samples"]
        return sample(*controlled[:2]), sample(cond, neg)

    with_control, without = run(TARGET)
    assert rel_err(with_control, without) > 1e-3                  # the ControlNet acts on the pair
    same, _ = run(SOURCE)
    assert rel_err(same[1:], same[:1]) < 1e-5                     # identical prompts: identical branches, controlled

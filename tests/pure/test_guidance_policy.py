"""The guidance policies (``invertedit/guidance/policy.py``) without the host: what each one
combines, the per-run state it makes, and what it refuses."""
from __future__ import annotations

import pytest
import torch

from invertedit.techniques.ledits.guidance import ConceptMaps, LeditsPolicy, ledits_eps
from invertedit.guidance.policy import GuidancePolicy, Where
from invertedit.techniques.proximal.guidance import ProximalPolicy, ProxSettings
from invertedit.guidance.concepts import Concept
from invertedit.techniques.sega.guidance import SegaPolicy, SegaState, sega_eps


def where(step: int = 3, steps: int = 10, sigma: float = 2.0) -> Where:
    sigmas = torch.linspace(sigma, 0.0, steps + 1)
    return Where(step=step, steps=steps, sigma=torch.full((2,), sigma), sigmas=sigmas,
                 sigma_values=sigmas.tolist(), timestep=500.0)


def eps(n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 4, 8, 8, generator=g) for _ in range(n)]


def test_the_default_policy_is_classifier_free_guidance_on_the_denoised_prediction():
    policy, e, x = GuidancePolicy(cfg=7.5), eps(2), torch.randn(2, 4, 8, 8)
    guided = e[1] + 7.5 * (e[0] - e[1])
    assert torch.allclose(policy.combine(e, where(), None), guided)
    assert torch.allclose(policy.denoised(x, e, where(), None), x - guided * 2.0)
    assert policy.make_state() is None and policy.extra == 0
    assert policy.pre_step(x, where(), None, lambda *a: None) is x
    assert policy.post_step(x, x, x, where(), None) is x


def test_sega_combines_as_sega_eps_with_its_own_state_per_run():
    concepts = [Concept(scale=5.0, warmup=0), Concept(scale=3.0, reverse=True, warmup=2)]
    policy, e = SegaPolicy(7.5, concepts, 0.1, 0.4), eps(4)
    assert policy.fixed == ("positive", "negative") and policy.extra == 2
    state, reference = policy.make_state(), SegaState()
    assert isinstance(state, SegaState) and state is not policy.make_state()
    for step in range(4):
        got = policy.combine(e, where(step), state)
        want = sega_eps(e[1], e[0], e[2:], step, 7.5, concepts, 0.1, 0.4, reference)
        assert torch.equal(got, want)


def test_ledits_takes_each_concepts_maps_from_the_run_state():
    concepts = [Concept(scale=5.0, warmup=0, tokens=(1,))]
    policy, e = LeditsPolicy(concepts, "attention", None), eps(2)
    assert policy.fixed == ("negative",) and (policy.cond_index, policy.uncond_index) == (1, 0) and policy.cfg == 1.0
    state = policy.make_state()
    assert isinstance(state, ConceptMaps)
    maps = torch.rand(2, 4, 4)
    state.add(1, maps * 8, 4)
    state.add(1, maps * 8, 4)
    got = policy.combine(e, where(), state)
    want, _ = ledits_eps(e[0], e[1:], 3, 500.0, concepts, [maps * 2], "attention")
    assert torch.allclose(got, want)
    assert state.take(1) is None   # taken for this step


def test_a_user_mask_is_resized_once_per_latent_size():
    policy = LeditsPolicy([Concept(warmup=0)], "noise", torch.ones(1, 16, 16))
    like = torch.zeros(2, 4, 8, 8)
    first = policy.latent_mask(like)
    assert first.shape == (1, 1, 8, 8) and policy.latent_mask(like) is first


def test_proximal_refuses_a_run_it_would_never_act_in():
    policy = ProximalPolicy(inversion=None, cfg=7.5, settings=ProxSettings(start_step=10))
    with pytest.raises(ValueError, match="input 'start_step' is 10, but the run has 10 steps"):
        policy.check_run(10)
    policy.check_run(11)
    assert not ProximalPolicy(None, 7.5, ProxSettings(pull="none")).exact_step

"""Null-text optimisation on a small differentiable model with a known answer."""
import torch

from invertedit.inversion.ddim import ddim_invert
from invertedit.techniques.null_text.optimisation import null_text_optimize


def test_optimised_null_text_makes_the_guided_steps_follow_the_trajectory():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4, 4, generator=g, dtype=torch.float64) * 0.3
    cond = torch.randn(1, 3, 4, generator=g, dtype=torch.float64)
    empty = torch.randn(1, 3, 4, generator=g, dtype=torch.float64)

    def eps(x, sigma, ctx):   # depends on the latent, the level and the text embedding
        shift = ctx.mean(dim=1)[:, :, None, None]
        return torch.tanh(torch.einsum("ij,bjhw->bihw", a, x) / (1 + sigma) + shift)

    def denoise(x, sigma):
        return x - sigma.reshape(-1, 1, 1, 1) * eps(x, sigma[0], cond)

    s = torch.cat([torch.linspace(3.0, 0.1, 10, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    x0 = torch.randn(1, 4, 4, 4, generator=g, dtype=torch.float64)
    traj = ddim_invert(denoise, x0, s).trajectory

    def guided_run(nulls):
        x = traj[0]
        for j in range(10):
            e_c, e_u = eps(x, s[j], cond), eps(x, s[j], nulls[j] if nulls is not None else empty)
            x = x + (s[j + 1] - s[j]) * (e_u + 7.5 * (e_c - e_u))
        return x

    with torch.enable_grad():
        nulls, stats = null_text_optimize(lambda x, sg: eps(x, sg, cond), eps, traj, s, empty, cfg=7.5,
                                          inner_steps=50, lr=5e-2, early_stop=False)
    plain = float((guided_run(None) - traj[-1]).norm())
    optimised = float((guided_run(nulls) - traj[-1]).norm())
    assert nulls.shape == (10, 1, 3, 4)
    assert stats == {"forward": 10 * 52, "backward": 10 * 50, "inner_steps": [50] * 10, "graphs": []}
    assert optimised < plain / 20, (plain, optimised)


def test_early_stopping_counts_fewer_passes():
    calls = {"n": 0}
    c = torch.zeros(1, 2, 2)

    def eps(x, sigma, ctx=None):
        calls["n"] += 1
        return x * 0 + (ctx.sum() if ctx is not None else 0)

    s = torch.tensor([2.0, 1.0, 0.0])
    traj = torch.zeros(3, 1, 1, 2, 2)
    with torch.enable_grad():
        _, stats = null_text_optimize(lambda x, sg: eps(x, sg), eps, traj, s, c.clone().requires_grad_(False))
    assert stats["inner_steps"] == [1, 1]          # already on the trajectory: loss 0 stops at once
    assert stats["forward"] == 2 * 3 and stats["backward"] == 2


def test_a_flow_model_on_its_trajectory_stops_at_once():
    """Null-text's guided step is the same Euler step for a flow model, compared in the latent the
    flow model sees (x itself): on a constant-velocity field the trajectory is followed exactly,
    whatever the null text, so every timestep stops after one inner step."""
    from invertedit.inversion.parameterisation import FLOW

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64)
    v = torch.randn(1, 2, 3, 3, generator=g, dtype=torch.float64)
    s = torch.linspace(1.0, 0.0, 6, dtype=torch.float64)
    traj = ddim_invert(lambda x, sigma: x - sigma.reshape(-1, 1, 1, 1) * v, x0, s, parameterisation=FLOW).trajectory

    def velocity(x, sigma, ctx=None):
        return v + (0 * ctx.sum() if ctx is not None else 0)

    with torch.enable_grad():
        _, stats = null_text_optimize(velocity, velocity, traj, s, torch.zeros(1, 2, 2), parameterisation=FLOW)
    assert stats["inner_steps"] == [1] * 5


def test_passes_run_eagerly_off_a_cuda_device():
    """``Replayed`` captures only outputs on a CUDA device: on the CPU every call runs the function, which
    reads its static buffers as they are at the call, and says why it was not captured."""
    from invertedit.techniques.null_text.graphed import Replayed

    buffer, lines = torch.zeros(3), []
    fn = Replayed(lambda: (buffer * 2,), "test pass", capture=True, log=lines.append)
    got = []
    for value in (1.0, 2.0, 3.0):
        buffer.fill_(value)
        got.append(float(fn()[0][0]))
    assert got == [2.0, 4.0, 6.0] and fn.calls == 3
    assert not fn.captured and fn.why_eager == "not on a CUDA device" and lines == []
    assert Replayed(lambda: (buffer,), "off", capture=False).why_eager == "capture off"


def test_the_callback_s_denoised_estimate_is_the_guided_step_s():
    """``callback(j, steps, x, denoised)``: ``x`` the latent step ``j`` reached, ``denoised()`` the guided
    prediction's clean latent ``x_j - sigma_j * eps`` (the host's preview picture), for eps and flow models."""
    from invertedit.inversion.parameterisation import EPS, FLOW

    g = torch.Generator().manual_seed(1)
    a = torch.randn(2, 2, generator=g, dtype=torch.float64) * 0.5
    cond = torch.randn(1, 3, 2, generator=g, dtype=torch.float64)
    empty = torch.randn(1, 3, 2, generator=g, dtype=torch.float64)

    def eps(x, sigma, ctx):
        return torch.tanh(torch.einsum("ij,bjhw->bihw", a, x) + ctx.mean(dim=1)[:, :, None, None])

    for parameterisation, s in ((EPS, torch.tensor([3.0, 1.5, 0.5, 0.0], dtype=torch.float64)),
                                (FLOW, torch.tensor([1.0, 0.6, 0.3, 0.0], dtype=torch.float64))):
        traj = torch.randn(4, 1, 2, 3, 3, generator=g, dtype=torch.float64)
        seen = []

        def callback(j, steps, x, denoised):
            seen.append((j, steps, x.clone(), denoised()))

        with torch.enable_grad():
            nulls, _ = null_text_optimize(lambda x, sg: eps(x, sg, cond), eps, traj, s, empty, cfg=3.0, inner_steps=2,
                                          early_stop=False, callback=callback, parameterisation=parameterisation)
        x = traj[0]
        for j, (step, steps, reached, denoised) in enumerate(seen):
            e_c, e_u = eps(x, s[j], cond), eps(x, s[j], nulls[j])
            guided = e_u + 3.0 * (e_c - e_u)
            assert (step, steps) == (j, 3)
            torch.testing.assert_close(reached, x + (s[j + 1] - s[j]) * guided)
            torch.testing.assert_close(denoised, x - s[j] * guided)
            x = reached
        assert len(seen) == 3

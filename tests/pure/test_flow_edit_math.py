"""FlowEdit's pure layer (``invertedit/techniques/flow_edit/ode.py``): the phases of a run, and that the
host's Euler step on the denoised predictions it gives is the authors' update, step for step."""
from __future__ import annotations

import torch

from invertedit.techniques.flow_edit import ode as F


def test_phases_follow_the_authors_counters():
    run = [F.phase(i, 28, 24, 0) for i in range(28)]
    assert run == [F.Phase.SKIP] * 4 + [F.Phase.EDIT] * 24
    run = [F.phase(i, 50, 33, 3) for i in range(50)]
    assert run == [F.Phase.SKIP] * 17 + [F.Phase.EDIT] * 30 + [F.Phase.JUMP] + [F.Phase.SAMPLE] * 2
    assert [F.phase(i, 5, 9, 0) for i in range(5)] == [F.Phase.EDIT] * 5   # n_max above the steps: all act


def _field(seed: int):
    """A smooth velocity field per prompt, ``v(z, t) = A z + b t`` (a stand-in for the model)."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(4, 4, generator=g, dtype=torch.float64) * 0.3, torch.randn(4, generator=g, dtype=torch.float64)
    return lambda z, t: z @ a.T + b * t


def _authors(x_src, sigmas, v_src, v_tar, noises, n_max, n_min, n_avg):
    """FlowEdit_utils.FlowEditSD3's loop, with the model replaced by the fields (same names)."""
    T_steps, zt_edit, it = len(sigmas) - 1, x_src.clone(), iter(noises)
    xt_tar = None
    for i in range(T_steps):
        if T_steps - i > n_max:
            continue
        t_i, t_im1 = sigmas[i], sigmas[i + 1]
        if T_steps - i > n_min:
            V_delta_avg = torch.zeros_like(x_src)
            for _ in range(n_avg):
                fwd_noise = next(it)
                zt_src = (1 - t_i) * x_src + t_i * fwd_noise
                zt_tar = zt_edit + zt_src - x_src
                V_delta_avg += (1 / n_avg) * (v_tar(zt_tar, t_i) - v_src(zt_src, t_i))
            zt_edit = zt_edit + (t_im1 - t_i) * V_delta_avg
        else:
            if i == T_steps - n_min:
                fwd_noise = next(it)
                xt_src = t_i * fwd_noise + (1.0 - t_i) * x_src
                xt_tar = zt_edit + xt_src - x_src
            xt_tar = xt_tar + (t_im1 - t_i) * v_tar(xt_tar, t_i)
    return zt_edit if n_min == 0 else xt_tar


def _ours(x_src, sigmas, v_src, v_tar, noises, n_max, n_min, n_avg):
    """The host's Euler sampler from x_src on the denoised predictions FlowEdit's guider gives."""
    steps, x, it = len(sigmas) - 1, x_src.clone(), iter(noises)
    for i in range(steps):
        s, s_next = sigmas[i], sigmas[i + 1]
        denoise = {"source": lambda z: z - s * v_src(z, s), "target": lambda z: z - s * v_tar(z, s)}
        now = F.phase(i, steps, n_max, n_min)
        if now is F.Phase.SKIP:
            d = x
        elif now is F.Phase.SAMPLE:
            d = denoise["target"](x)
        elif now is F.Phase.EDIT:
            delta = torch.zeros_like(x)
            for _ in range(n_avg):
                z_src = F.noised_source(x_src, next(it), s)
                z_tar = F.target_input(x, z_src, x_src)
                delta += (denoise["target"](z_tar) - denoise["source"](z_src)) / n_avg
            d = F.edit_denoised(x_src, delta)
        else:
            z_src = F.noised_source(x_src, next(it), s)
            z_tar = F.target_input(x, z_src, x_src)
            landing = z_tar + (s_next - s) * F.velocity(z_tar, denoise["target"](z_tar), s)
            d = F.landing_denoised(x, landing, s, s_next)
        x = x + (s_next - s) * (x - d) / s          # the host's sample_euler step (to_d, dt)
    return x


def test_the_hosts_euler_step_on_flowedits_denoised_predictions_is_the_authors_update():
    g = torch.Generator().manual_seed(0)
    x_src = torch.randn(3, 4, generator=g, dtype=torch.float64)
    sigmas = torch.cat([torch.linspace(1.0, 0.05, 12, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    v_src, v_tar = _field(1), _field(2)
    for n_max, n_min, n_avg in ((9, 0, 1), (12, 0, 3), (10, 3, 2), (12, 1, 1)):
        noises = [torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(40)]
        ref = _authors(x_src, sigmas, v_src, v_tar, noises, n_max, n_min, n_avg)
        ours = _ours(x_src, sigmas, v_src, v_tar, noises, n_max, n_min, n_avg)
        assert torch.allclose(ours, ref, rtol=1e-10, atol=1e-10), (n_max, n_min, n_avg, (ours - ref).abs().max())


def test_the_same_prompt_twice_leaves_the_source_unchanged():
    """Source and target the same prompt: every velocity difference is zero, the edit is the source."""
    g = torch.Generator().manual_seed(3)
    x_src = torch.randn(2, 4, generator=g, dtype=torch.float64)
    sigmas = torch.cat([torch.linspace(1.0, 0.1, 8, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)])
    v = _field(5)
    noises = [torch.randn(2, 4, generator=g, dtype=torch.float64) for _ in range(20)]
    assert torch.allclose(_ours(x_src, sigmas, v, v, noises, 6, 0, 2), x_src, atol=1e-12)

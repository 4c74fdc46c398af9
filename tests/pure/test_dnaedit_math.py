"""DNAEdit's pure steps (``invertedit/techniques/dnaedit/dna.py``): the noise drawn as the authors' code draws it,
the inversion's step, and the edit step retracing it at mvg 1."""
import torch

from invertedit.techniques.dnaedit import dna as D


def test_the_noise_is_the_authors_randn_like_after_manual_seed_in_flux_token_layout_or_the_latents():
    like = torch.zeros(1, 16, 4, 6)
    torch.manual_seed(5)
    packed = torch.randn_like(torch.zeros(1, 2 * 3, 64))   # DNAEdit_FLUX: randn_like(x_src_packed)
    unpacked = packed.view(1, 2, 3, 16, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(1, 16, 4, 6)
    assert torch.equal(D.draw_noise(like, 5, packed=True), unpacked)
    torch.manual_seed(5)
    assert torch.equal(D.draw_noise(like, 5, packed=False), torch.randn_like(like))   # DNAEdit_SD3


def test_an_inversion_step_is_euler_with_the_guess_velocity_and_the_edit_at_mvg_1_undoes_it():
    x0, noise = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    times = torch.tensor([0.0, 0.3, 0.7])

    def velocity(z, t):
        return 0.5 * z + t.reshape(-1, 1, 1, 1)

    for align in (True, False):
        states, offsets, velocities = D.invert(velocity, x0, times, noise, align)
        for i in range(2):
            dt = times[i + 1] - times[i]
            assert torch.allclose(states[i + 1], states[i] + dt * velocities[i], atol=1e-6)
            guess = states[i + 1] + offsets[i]
            assert torch.allclose(velocities[i], velocity(guess, times[i + 1].reshape(1)), atol=1e-6)
        # the edit at mvg 1 with the source's own velocities steps back down the inversion
        x, ref = states[-1], x0
        for i in (1, 0):
            t, t_next = times[i + 1], times[i]
            v = velocities[i]
            ref = D.moved_reference(ref, v, v, t, t_next)
            x = x + (t_next - t) * D.mobile_velocity(v, x, ref, t, 1.0)
        assert torch.allclose(x, x0, atol=1e-5)
    aligned, fixed = D.invert(velocity, x0, times, noise, True), D.invert(velocity, x0, times, noise, False)
    assert torch.equal(aligned[0][1], fixed[0][1]) and not torch.allclose(aligned[0][2], fixed[0][2])

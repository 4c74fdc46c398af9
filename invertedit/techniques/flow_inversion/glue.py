"""Flow inversion inside the host (solvers in ``inversion/flow.py``): Flow Invert's inversion loop
for each solver, and the Flow Sampler: the solvers as a SAMPLER for SamplerCustomAdvanced."""
from __future__ import annotations

from ...hostkit.flow_inverters import check_run_schedule
from ...hostkit.sampling import as_sampler
from ...inversion import flow as F


def solver_loop(solver: str):
    """The inversion loop of a flow solver: ``inversion/flow.py``'s ``solve`` up the schedule."""
    def loop(velocity, x, sigmas, callback):
        return F.solve(velocity, x, sigmas.flip(0), solver, callback)
    return loop


def flow_sampler_function(solver: str):
    """A k-diffusion sampler function (the host's SAMPLER contract) of ``solver``: the model gives
    denoised predictions ``D``; a flow model's velocity is ``(x - D) / t`` (t > 0 on the way down). An inversion
    of a solver whose inverse is another solver's step is sampled back with that one (``SAMPLED_WITH``: Uni-Inv's
    with Euler, as its authors reconstruct)."""
    solver = F.SAMPLED_WITH.get(solver, solver)

    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None):
        check_run_schedule("Flow Sampler", getattr(model, "noise", None), sigmas)
        extra_args = extra_args or {}
        s_in = x.new_ones([x.shape[0]])

        last: dict = {}

        def velocity(z, t):
            last["denoised"] = model(z, t * s_in, **extra_args)
            return (z - last["denoised"]) / t.reshape(-1, *([1] * (z.ndim - 1)))

        def step(i, total, z):
            if callback is not None:   # the step's last prediction: the host's preview and progress
                callback({"x": z, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": last["denoised"]})

        return F.solve(lambda z, t: velocity(z, t[:1]), x, sigmas, solver, step)[-1]
    sample.__name__ = f"sample_flow_{solver.replace('-', '_')}"
    sample.euler_step = solver == "euler"   # each step the DDIM/Euler step (inversion_patches.steps_as_euler)
    return sample


def flow_sampler(solver: str):
    """The SAMPLER of ``solver`` (Flow Sampler's output)."""
    return as_sampler(flow_sampler_function(solver))

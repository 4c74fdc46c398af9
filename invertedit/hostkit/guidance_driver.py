"""The GUIDER that runs a guidance policy (``guidance/policy.py``) inside the host's sampling.

Every step it evaluates the policy's conds in one batched model call (the host's
``calc_cond_batch``), runs the model's pre-CFG functions on the predictions in the host's order,
lets the policy combine them, then applies the model's post-CFG functions (so Apply Inversion's
corrections and Latent Blend still act), with the arguments the host's own guiders give both
(``cond_scale`` is the policy's cfg). The policy's per-run state is made once per sampling run
(``run_state``), in the run's own copy of the model options.
"""
from __future__ import annotations

import comfy.samplers
import torch

from ..guidance.policy import GuidancePolicy, Where
from .errors import NodeInputError
from .run_state import begin_run, run_state
from .steps import sigma_list, step_at, timestep_at


def predict_conds(model, conds: list, x: torch.Tensor, sigma: torch.Tensor, model_options: dict) -> list:
    """The model's predictions of ``conds`` (None for a cond left out) at ``x``, in one batched call
    where the host can batch them (its ``calc_cond_batch``: areas, ControlNet and patches apply)."""
    return comfy.samplers.calc_cond_batch(model, conds, x, sigma, model_options)


def cfg_combine(model, cond_pred: torch.Tensor, uncond_pred: torch.Tensor, cfg: float, x: torch.Tensor,
                sigma: torch.Tensor, model_options: dict, cond: list, uncond: list | None) -> torch.Tensor:
    """Classifier-free guidance as the host's guiders combine it (its ``cfg_function``: the model's
    ``sampler_cfg_function`` and post-CFG functions apply)."""
    return comfy.samplers.cfg_function(model, cond_pred, uncond_pred, cfg, x, sigma, model_options=model_options,
                                       cond=cond, uncond=uncond)


class BatchedGuider(comfy.samplers.CFGGuider):
    """A GUIDER over named conds whose batched predictions go through the model's pre-CFG
    functions as the host's guiders hand them over; ``NAME`` names the node in messages, the
    conds at ``COND`` and ``UNCOND`` are what those functions see as cond and uncond."""

    NAME = "Guidance"
    COND, UNCOND = 0, 1

    def set_named_conds(self, conds: dict) -> None:
        """The guider's conds by name (CONDITIONINGs), in the order the guider evaluates them."""
        self.keys = list(conds)
        self.inner_set_conds(conds)

    def outer_sample(self, *args, **kwargs):
        # self.model_options is the run's own copy here (CFGGuider.sample): a fresh state per run.
        begin_run(self.model_options)
        return super().outer_sample(*args, **kwargs)

    def host_order(self, n: int) -> list[int]:
        """Indexes of the guider's conds in the order the host's pre-CFG functions expect them:
        cond, uncond, then the rest (the host's guiders pass ``[cond, uncond, ...]``)."""
        return [self.COND, self.UNCOND] + [i for i in range(n) if i not in (self.COND, self.UNCOND)]

    def pre_cfg(self, conds: list, outs: list, x, timestep, model_options: dict) -> list:
        """The model's pre-CFG functions (``sampler_pre_cfg_function``) on the batched predictions,
        with the host's arguments (``comfy.samplers.sampling_function``; Perp-Neg's guider does the
        same), the conds in the host's order (``host_order``)."""
        functions = model_options.get("sampler_pre_cfg_function", [])
        if not functions:
            return outs
        order = self.host_order(len(conds))
        host_conds, host_outs = [conds[i] for i in order], [outs[i] for i in order]
        for fn in functions:
            args = {"conds": host_conds, "conds_out": host_outs, "cond_scale": self.cfg, "timestep": timestep,
                    "input": x, "sigma": timestep, "model": self.inner_model, "model_options": model_options}
            host_outs = fn(args)
            if host_outs is None or len(host_outs) != len(order):
                got = "nothing" if host_outs is None else f"{len(host_outs)} predictions"
                name = getattr(fn, "__qualname__", type(fn).__name__)
                raise NodeInputError(self.NAME, f"a pre-CFG function of the input MODEL ({name}) returned {got} for "
                                                f"{len(order)} conds; it must return one prediction per cond, as "
                                                f"[cond, uncond] + conds_out[2:] (remove the node that adds it).")
        outs = list(outs)
        for j, i in enumerate(order):
            outs[i] = host_outs[j]
        return outs


class GuidanceDriver(BatchedGuider):
    """The GUIDER of ``policy``: its fixed conds (``fixed``, by name) and ``extra`` more, one
    batched model call per step."""

    def __init__(self, model, policy: GuidancePolicy, fixed: dict, extra: list = ()):
        super().__init__(model)
        if set(fixed) != set(policy.fixed) or len(extra) != policy.extra:
            raise ValueError(f"{policy.name} takes the conds {policy.fixed} and {policy.extra} more, not "
                             f"{tuple(fixed)} and {len(extra)}")
        self.policy = policy
        self.NAME, self.COND, self.UNCOND = policy.name, policy.cond_index, policy.uncond_index
        self.set_cfg(policy.cfg)
        self.set_named_conds({**{k: fixed[k] for k in policy.fixed}, **{f"extra_{i}": c for i, c in enumerate(extra)}})

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        self.prepare_run(noise, latent_image, sampler, sigmas)
        out = super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)
        self.policy.finish(out)
        return out

    def prepare_run(self, noise: torch.Tensor, latent_image: torch.Tensor, sampler, sigmas: torch.Tensor) -> None:
        """Before the run starts: refuse a run the policy cannot guide (guiders on more than the
        policy also set the run up here)."""
        try:
            self.policy.check_run(len(sigmas) - 1)
        except ValueError as e:
            raise NodeInputError(self.NAME, str(e)) from None

    def where(self, timestep: torch.Tensor, options: dict) -> Where:
        sigmas = options["sample_sigmas"]
        step, steps = step_at(sigmas, timestep)
        return Where(step=step, steps=steps, sigma=timestep, sigmas=sigmas, sigma_values=sigma_list(sigmas),
                     timestep=timestep_at(self.inner_model.model_sampling, sigmas, step))

    def predict_noise(self, x, timestep, model_options={}, seed=None, **kwargs):
        policy, options = self.policy, model_options["transformer_options"]
        state = run_state(options, policy, policy.make_state, node=self.NAME)
        where = self.where(timestep, options)
        conds = [self.conds.get(k) for k in self.keys]

        def uncond(latent: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            cond = [None] * len(conds)
            cond[self.UNCOND] = conds[self.UNCOND]
            return predict_conds(self.inner_model, cond, latent, sigma, model_options)[self.UNCOND]

        x_in = policy.pre_step(x, where, state, uncond)
        outs = predict_conds(self.inner_model, conds, x_in, timestep, model_options)
        outs = self.pre_cfg(conds, outs, x_in, timestep, model_options)
        sigma = timestep.reshape(-1, *([1] * (x.ndim - 1)))
        denoised = policy.denoised(x_in, [(x_in - o) / sigma for o in outs], where, state)
        for fn in model_options.get("sampler_post_cfg_function", []):
            denoised = fn({"denoised": denoised, "cond": conds[self.COND], "uncond": conds[self.UNCOND],
                           "cond_scale": self.cfg, "model": self.inner_model, "uncond_denoised": outs[self.UNCOND],
                           "cond_denoised": outs[self.COND], "sigma": timestep, "model_options": model_options,
                           "input": x_in})
        return policy.post_step(x, x_in, denoised, where, state)

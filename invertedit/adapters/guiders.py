"""Guiders for SamplerCustomAdvanced that evaluate extra conditionings in the same batched UNet
call (the host's `calc_cond_batch`), as SEGA and LEDITS++ need."""
from __future__ import annotations

import torch.nn.functional as F
from ..guidance.ledits import ledits_eps
from ..guidance.sega import SegaState
from ..guidance.sega import sega_eps
from .attention_maps import ConceptMaps
from .attention_maps import MAPS_KEY
from .errors import NodeInputError

import comfy.samplers
import torch

from ..guidance.sega import Concept
from .steps import step_at


class ConceptGuider(comfy.samplers.CFGGuider):
    """A GUIDER that evaluates its fixed conds (``FIXED``) and one cond per concept in one batched
    UNet call a step (the host's ``calc_cond_batch``), runs the model's pre-CFG functions on the
    predictions, combines them (``combine``), then applies the model's post-CFG functions (so
    Apply Inversion's corrections and Latent Blend still act), with the arguments the host's own
    guiders give both (``cond_scale`` is the guider's ``cfg``; LEDITS++ has none: 1). Per-run
    state lives in the run's own copy of the model options."""

    NAME = "Concept guidance"   # the node, for messages
    FIXED: tuple[str, ...] = ("positive", "negative")
    COND, UNCOND = 0, 1          # which conds the post-CFG functions see as cond / uncond

    def __init__(self, model, concepts: list[Concept]):
        super().__init__(model)
        self.concepts = concepts

    def set_all(self, fixed: dict, concept_conds: list) -> None:
        conds = dict(fixed)
        conds.update({f"concept_{i}": c for i, c in enumerate(concept_conds)})
        self.inner_set_conds(conds)

    def run_state(self) -> dict:
        """Entries for the run's ``transformer_options``, fresh for every sampling run."""
        return {}

    def combine(self, eps: list[torch.Tensor], step: int, sigma: torch.Tensor, options: dict) -> torch.Tensor:
        raise NotImplementedError

    def outer_sample(self, *args, **kwargs):
        # self.model_options is the run's own copy here (CFGGuider.sample): a fresh state per run.
        self.model_options.setdefault("transformer_options", {}).update(self.run_state())
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

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        keys = list(self.FIXED) + [f"concept_{i}" for i in range(len(self.concepts))]
        conds = [self.conds.get(k) for k in keys]
        outs = comfy.samplers.calc_cond_batch(self.inner_model, conds, x, timestep, model_options)
        outs = self.pre_cfg(conds, outs, x, timestep, model_options)
        sigma = timestep.reshape(-1, *([1] * (x.ndim - 1)))
        eps = [(x - o) / sigma for o in outs]
        options = model_options.get("transformer_options", {})
        step, _ = step_at(options["sample_sigmas"], timestep)
        denoised = x - self.combine(eps, step, timestep, options) * sigma
        for fn in model_options.get("sampler_post_cfg_function", []):
            denoised = fn({"denoised": denoised, "cond": conds[self.COND], "uncond": conds[self.UNCOND],
                           "cond_scale": self.cfg, "model": self.inner_model, "uncond_denoised": outs[self.UNCOND],
                           "cond_denoised": outs[self.COND], "sigma": timestep, "model_options": model_options,
                           "input": x})
        return denoised


STATE_KEY = "invertedit_sega_state"


class SegaGuider(ConceptGuider):
    NAME = "SEGA Guidance"

    def __init__(self, model, concepts: list[Concept], momentum_scale: float, momentum_beta: float):
        super().__init__(model, concepts)
        self.momentum_scale, self.momentum_beta = momentum_scale, momentum_beta

    def run_state(self) -> dict:
        return {STATE_KEY: SegaState()}

    def combine(self, eps, step, sigma, options):
        return sega_eps(eps[1], eps[0], eps[2:], step, self.cfg, self.concepts, self.momentum_scale,
                        self.momentum_beta, options[STATE_KEY])


class LeditsGuider(ConceptGuider):
    NAME = "LEDITS++ Guidance"
    FIXED = ("negative",)
    COND, UNCOND = 1, 0

    def __init__(self, model, concepts: list[Concept], mask: str, user_mask: torch.Tensor | None):
        super().__init__(model, concepts)
        self.mask, self.user_mask = mask, user_mask
        self.resized: dict = {}

    def run_state(self) -> dict:
        return {MAPS_KEY: ConceptMaps()}

    def combine(self, eps, step, sigma, options):
        store = options.get(MAPS_KEY)
        maps = [store.take(i + 1) if store is not None else None for i in range(len(self.concepts))]
        t = float(self.inner_model.model_sampling.timestep(sigma.reshape(-1)[:1]).round())
        guided, _ = ledits_eps(eps[0], eps[1:], step, t, self.concepts, maps, self.mask,
                               self.latent_mask(tuple(eps[0].shape[-2:])))
        return guided

    def latent_mask(self, size: tuple[int, int]) -> torch.Tensor | None:
        """The user MASK at latent size, resized once per size (not every step)."""
        if self.user_mask is None:
            return None
        if size not in self.resized:
            self.resized[size] = F.interpolate(self.user_mask.reshape(-1, 1, *self.user_mask.shape[-2:]).float(),
                                               size=size, mode="bilinear", align_corners=False)
        return self.resized[size]

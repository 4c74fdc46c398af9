"""Guiders for SamplerCustomAdvanced that evaluate extra conditionings in the same batched UNet
call (the host's `calc_cond_batch`), as SEGA and LEDITS++ need."""
from __future__ import annotations

import logging

import torch.nn.functional as F
from ..guidance.ledits import ledits_eps
from ..guidance.sega import SegaState
from ..guidance.sega import sega_eps
from .attention_maps import ConceptMaps
from .attention_maps import MAPS_KEY
from .errors import NodeInputError
from .errors import check_inversion

import comfy.samplers
import torch

from ..guidance.sega import Concept
from .steps import sigma_list, sigma_value, step_at, timestep_at

import comfy.patcher_extension
import comfy.sampler_helpers
from comfy.k_diffusion import sampling as k_diffusion_sampling
from ..guidance.noise_map import noise_map_step
from ..guidance.proximal import ProxSettings, proximal_eps, pulled_next
from ..inversion.solver import denoised_onto, euler_step
from ..inversion.methods import Patch, method_of
from ..inversion.record import Inversion
from .inversion_patches import SAMPLING_PATCHES, WRAPPER_KEY, announce_negative, check_run, checked_method, sampler_name
from .inversion_patches import source_conditioning


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

    def guided_denoised(self, x, eps: list[torch.Tensor], step: int, timestep, options: dict) -> torch.Tensor:
        """The guided denoised prediction before the post-CFG functions: by default the one of
        ``combine``'s noise prediction; guiders that change the step itself override this."""
        return x - self.combine(eps, step, timestep, options) * timestep.reshape(-1, *([1] * (x.ndim - 1)))

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
        denoised = self.guided_denoised(x, eps, step, timestep, options)
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
        t = timestep_at(self.inner_model.model_sampling, options["sample_sigmas"], step)
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


# -- guiders on an inversion: Proximal Guidance (ProxEdit) and Noise Map Guidance (NMG) ---------

# Why a guider refuses an inversion method (the refusal also lists the methods it takes); Proximal Guidance
# refuses only the first two, Noise Map Guidance all four.
_OWN_SAMPLER = ", which only its own sampler (EDICT Sampler, Edit-Friendly DDPM Sampler) replays, and this guider " \
               "samples with the host's ddim sampler"
REFUSED_BECAUSE = {
    "edict": _OWN_SAMPLER, "edit-friendly": _OWN_SAMPLER,
    "direct": ", which already puts the source back on its trajectory at every step (the guider pulls the source "
              "towards the trajectory itself)",
    "negative-prompt": ", whose source prompt stands in for the null text, so the guider's unconditional pass no "
                       "longer pulls the source towards its noise map (the edited row breaks)",
}


def carrying(model, inversion: Inversion, node: str, methods: tuple):
    """``model`` with ``inversion``'s sampling patch (a direct inversion's correction, a null-text
    inversion's embeddings), as Apply Inversion adds it: the model itself when it already carries
    this inversion (from Apply Inversion), else a patched clone. Refuses what is not an INVERSION,
    an inversion of a method not in ``methods`` (saying why), one made with another model, and a
    model carrying another inversion."""
    check_inversion(node, inversion, model=model, methods=methods, why=REFUSED_BECAUSE)
    method = checked_method(inversion, node)
    guards = model.get_wrappers(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY)
    same = [g for g in guards if g.inversion is inversion or (
        g.inversion.method == inversion.method and g.inversion.trajectory.shape == inversion.trajectory.shape
        and torch.equal(g.inversion.trajectory, inversion.trajectory))]
    if same:
        return model
    if guards:
        raise NodeInputError(node, "input 'model' carries another inversion (from Apply Inversion) than input "
                                   "'inversion'; connect the same INVERSION to both, or the model without Apply Inversion.")
    m = model.clone()
    SAMPLING_PATCHES[method.patch](m, inversion)
    return m


class InversionGuider(ConceptGuider):
    """A guider that samples an inverted image along its inversion: each run is checked as Apply
    Inversion checks it (same model, schedule and latent; no added noise; a deterministic
    sampler), a negative-prompt inversion's source prompt becomes the negative, and where the
    guider moves the step itself (``exact_step``) the sampler must be the host's ddim or euler,
    whose step it computes. The source rows are the first rows of the batch, as many as the
    inversion has."""

    EXACT_ELSE = ""   # what else avoids the exact step, for the sampler refusal

    def __init__(self, model, inversion: Inversion):
        super().__init__(model, [])
        self.inversion = inversion

    def exact_step(self) -> bool:
        return True

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        check_run(self.inversion, self.model_patcher, noise, latent_image, sampler, sigmas, node=self.NAME, cfg=self.cfg)
        announce_negative(self.inversion, self.NAME)
        if self.exact_step() and getattr(sampler, "sampler_function", None) is not k_diffusion_sampling.sample_euler:
            raise NodeInputError(self.NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' steps differently "
                                            f"from the DDIM step this guider computes; use ddim or euler{self.EXACT_ELSE}.")
        if method_of(self.inversion.method).patch is Patch.SOURCE_AS_NEGATIVE and "negative" in self.conds:
            self.conds["negative"] = comfy.sampler_helpers.convert_cond(source_conditioning(self.inversion))
        return super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)

    def source_rows(self, batch: int) -> int:
        return min(self.inversion.trajectory.shape[1], batch)

    def trajectory_at(self, sigma: torch.Tensor, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The inversion's latent at ``sigma`` (its source at 0), one row per batch row."""
        inv = self.inversion
        s = sigma_value(sigma)
        point = inv.trajectory[-1] if s == 0.0 else inv.trajectory[inv.step_at(s) - inv.start_step]
        return point.to(like).repeat((batch + point.shape[0] - 1) // point.shape[0], *[1] * (point.ndim - 1))[:batch]

    def combine(self, eps, step, sigma, options):
        return eps[self.UNCOND] + self.cfg * (eps[self.COND] - eps[self.UNCOND])


class ProximalGuider(InversionGuider):
    """ProxEdit's proximal guidance (Han et al., WACV 2024; ``guidance/proximal.py``): CFG with the
    guidance term through the proximal operator; in the pull's window the step lands where the
    reference's pulls put it (the host's ddim/euler step is handed the prediction that lands there)."""
    NAME = "Proximal Guidance"
    EXACT_ELSE = " (or set pull to 'none')"

    def __init__(self, model, inversion: Inversion, settings: ProxSettings):
        super().__init__(model, inversion)
        self.settings = settings

    def exact_step(self) -> bool:
        return self.settings.pull != "none"

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        steps = len(sigmas) - 1
        if self.settings.start_step >= steps:
            raise NodeInputError(self.NAME, f"input 'start_step' is {self.settings.start_step}, but the run has {steps} "
                                            f"steps, so proximal guidance would never act; give a start_step below "
                                            f"{steps} (paper: 0).")
        out = super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)
        rows = self.source_rows(out.shape[0])
        if out.shape[0] == 2 * rows and torch.equal(out[rows:], out[:rows]):  # sampling-path-ok: once, after the run
            logging.warning("%s: the target came out identical to the source: the threshold (quantile %g) removed the "
                            "whole edit. Use a quantile from 0 to 1 (paper: 0.7), or a smaller fixed threshold.",
                            self.NAME, self.settings.quantile)
        return out

    def guided_denoised(self, x, eps, step, timestep, options):
        sigma = timestep.reshape(-1)[0]
        in_scope = torch.ones(x.shape[0], dtype=torch.bool)  # sampling-path-ok: per-row flags, kept on the CPU
        if self.settings.scope == "target":
            in_scope[:self.source_rows(x.shape[0])] = False
        t = timestep_at(self.inner_model.model_sampling, options["sample_sigmas"], step)
        guided, keep = proximal_eps(eps[self.UNCOND], eps[self.COND], self.cfg, self.settings, in_scope,
                                    step, t)
        if keep is None:
            return x - guided * sigma
        sigma_next = options["sample_sigmas"][step + 1].to(x)
        nxt = pulled_next(x, sigma, sigma_next, guided, keep, self.settings,
                          self.trajectory_at(0.0, x.shape[0], x),
                          self.trajectory_at(sigma_list(options["sample_sigmas"])[step + 1], x.shape[0], x))
        return denoised_onto(x, sigma, sigma_next, nxt)


class NoiseMapGuider(InversionGuider):
    """Noise Map Guidance (Cho et al., ICLR 2024; ``guidance/noise_map.py``): the source rows take the
    noise-map-guided step first, then CFG is evaluated at the moved latent; the host's ddim/euler
    step is handed the prediction that lands where the reference's second step lands. The model
    must allow gradients (``gradients.with_weight_copies``)."""
    NAME = "Noise Map Guidance"

    def __init__(self, model, inversion: Inversion, scale: float, grad_scale: float, loss: str):
        super().__init__(model, inversion)
        self.scale, self.grad_scale, self.loss = scale, grad_scale, loss

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        run = model_options["transformer_options"]["sample_sigmas"]
        step, _ = step_at(run, timestep)
        sigma, sigma_next = timestep.reshape(-1)[0], run[step + 1].to(x)
        rows = self.source_rows(x.shape[0])
        negative = self.conds.get("negative")
        # The noise-map step of the source rows: one unconditional pass of the whole batch (so pair
        # editors see their pair; they change only the target rows), differentiated outside the
        # host's inference mode.
        with torch.inference_mode(False):
            t, rest = timestep.clone(), x[rows:].clone()

            def denoise(source: torch.Tensor) -> torch.Tensor:
                batch = torch.cat([source, rest])
                return comfy.samplers.calc_cond_batch(self.inner_model, [None, negative], batch, t, model_options)[1][:rows]

            moved = noise_map_step(denoise, x[:rows].clone(), sigma.clone(), sigma_next.clone(),
                                   self.trajectory_at(sigma_list(run)[step + 1], rows, x).clone(), self.scale,
                                   self.grad_scale, self.loss)
        x_in = torch.cat([moved.to(x), x[rows:]])
        denoised = super().predict_noise(x_in, timestep, model_options, seed)
        # Text guidance from the moved source rows, as a prediction at the sampler's own latent.
        landed = euler_step(x_in[:rows], denoised[:rows], sigma, sigma_next)
        out = denoised.clone()
        out[:rows] = denoised_onto(x[:rows], sigma, sigma_next, landed)
        return out

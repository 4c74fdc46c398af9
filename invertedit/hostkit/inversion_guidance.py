"""Guiders on an inversion (Proximal Guidance, Noise Map Guidance): the model with the
inversion's sampling patch (``carrying``), and the driver that checks each run as Apply
Inversion checks it before the policy (``guidance/on_inversion.py``) guides it."""
from __future__ import annotations

import comfy.patcher_extension
import comfy.sampler_helpers
import torch
from comfy.k_diffusion import sampling as k_diffusion_sampling

from ..guidance.on_inversion import InversionPolicy
from ..inversion.methods import Patch, method_of
from ..inversion.record import Inversion
from .errors import NodeInputError, check_inversion
from .guidance_driver import GuidanceDriver
from .inversion_patches import SAMPLING_PATCHES, announce_negative, check_run, checked_method, sampler_name
from .inversion_patches import source_conditioning
from .keys import INVERSION_KEY

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
    guards = model.get_wrappers(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, INVERSION_KEY)
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


class InversionDriver(GuidanceDriver):
    """The driver of a policy on an inversion: each run is checked as Apply Inversion checks it
    (same model, schedule and latent; no added noise; a deterministic sampler), a negative-prompt
    inversion's source prompt becomes the negative, and where the policy computes the step itself
    (``exact_step``) the sampler must be the host's ddim or euler."""

    policy: InversionPolicy

    def prepare_run(self, noise, latent_image, sampler, sigmas) -> None:
        super().prepare_run(noise, latent_image, sampler, sigmas)
        inversion = self.policy.inversion
        check_run(inversion, self.model_patcher, noise, latent_image, sampler, sigmas, node=self.NAME, cfg=self.cfg)
        announce_negative(inversion, self.NAME)
        if self.policy.exact_step and getattr(sampler, "sampler_function", None) is not k_diffusion_sampling.sample_euler:
            raise NodeInputError(self.NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' steps differently "
                                            f"from the DDIM step this guider computes; use ddim or euler"
                                            f"{self.policy.exact_else}.")
        if method_of(inversion.method).patch is Patch.SOURCE_AS_NEGATIVE and "negative" in self.conds:
            self.conds["negative"] = comfy.sampler_helpers.convert_cond(source_conditioning(inversion))

"""Proximal Guidance: ProxEdit's proximal guidance (Han et al., WACV 2024) as a GUIDER for
SamplerCustomAdvanced (policy in ``guidance.py``, run by ``hostkit/inversion_guidance.py``).

A guider rather than a model patch because the code's order of operations spans the whole step:
the thresholded guidance, then the pull of the predicted clean latent inside the DDIM step, then
the pull of the stepped latent towards the inversion trajectory, then (the code's step callback)
Prompt-to-Prompt's local blend, which here is a post-CFG function and so still comes last. The
guider computes the step's landing point from the inversion it is given and hands the host's
ddim/euler step the prediction that lands there. Attention editors (MasaCtrl for ProxMasaCtrl,
Attention Inject for ProxNPI + Prompt-to-Prompt) patch the model before it, as usual.
"""
from __future__ import annotations

from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_at_least, check_choice, check_conditioning, check_finite
from ...hostkit.inversion_guidance import InversionDriver, carrying
from ...hostkit.sampling import check_model_family
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import DDIM, DIRECT, FIXED_POINT, NEGATIVE_PROMPT, NULL_TEXT
from . import ROW
from .guidance import PROXES, RECONSTRUCTIONS, SCOPES, ProximalPolicy, ProxSettings

# The inversions the host's ddim sampler replays (the paper's recipe: Negative-Prompt Inversion).
TAKES = (DDIM, NEGATIVE_PROMPT, NULL_TEXT, DIRECT, FIXED_POINT)


class ProximalGuidance(io.ComfyNode):
    NAME = "Proximal Guidance"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditProximalGuidance",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description=(
                "ProxEdit (Han et al.): classifier-free guidance whose guidance term passes through a proximal operator "
                "(thresholded at a quantile of its magnitude), so that where the edit is weak the source is kept; in "
                "the late steps the rest is pulled back onto the inversion. On a Negative-Prompt Inversion this is "
                "ProxNPI; chain MasaCtrl before it for ProxMasaCtrl, Attention Inject for Prompt-to-Prompt. A GUIDER "
                "for SamplerCustomAdvanced with the inversion's SIGMAS and the pair editor's LATENT; applies the "
                "inversion to the model unless Apply Inversion already did."),
            inputs=[
                io.Model.Input("model", tooltip="The model, patched by a pair editor (MasaCtrl, Attention Inject) or not."),
                io.Conditioning.Input("positive", tooltip="The pair editor's CONDITIONING pair (row 0 source, row 1 "
                                                          "target), or the target prompt."),
                io.Conditioning.Input("negative", tooltip="The negative prompt; a Negative-Prompt Inversion replaces it "
                                                          "with the source prompt (ProxNPI)."),
                InversionSocket.Input("inversion", tooltip="The inversion being edited: Negative-Prompt Inversion's for "
                                                           "ProxNPI (paper), or another DDIM-based one."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance scale (paper: 7.5)."),
                io.Combo.Input("prox", options=list(PROXES), default="l0",
                               tooltip="The proximal operator, by the reference code's names (paper: l0): l0 shrinks "
                                       "the guidance term by the threshold (zero below it); l1 shrinks it once more "
                                       "as the code does (positive values by the threshold from twice it, negative "
                                       "ones by it)."),
                io.Float.Input("quantile", default=ROW.settings["InvertEditProximalGuidance.quantile"], min=-100.0, max=1.0, step=0.01,
                               tooltip="The threshold: this quantile of the guidance term's magnitude (paper's code: "
                                       "0.7; ProxMasaCtrl 0.6). 0: plain guidance. Negative: a fixed threshold of "
                                       "that size (the code's convention)."),
                io.Combo.Input("quantile_over", options=list(SCOPES), default="pair",
                               tooltip="Rows the quantile is taken over and the operator acts on: 'pair', source and "
                                       "target together (ProxNPI's code, paper default), or 'target' only "
                                       "(ProxMasaCtrl's code)."),
                io.Int.Input("start_step", default=0, min=0, max=1000,
                             tooltip="First step with proximal guidance; plain guidance before (paper: 0)."),
                io.Combo.Input("pull", options=list(RECONSTRUCTIONS), default="inversion",
                               tooltip="Where the edit is not, pull towards the source in the late steps: 'inversion' "
                                       "pulls the next latent onto the inversion trajectory (the paper's ProxNPI "
                                       "recipe), 'reconstruction' the predicted clean latent onto the source latent, "
                                       "'both', or 'none' (the code's bare default). Needs the ddim or euler sampler."),
                io.Float.Input("recon_lr", default=ROW.settings["InvertEditProximalGuidance.recon_lr"], min=0.0, max=1.0, step=0.01,
                               tooltip="How far the pull goes, 1 = all the way (paper recipe: 1; the code's bare "
                                       "default 0.1)."),
                io.Float.Input("recon_t", default=ROW.settings["InvertEditProximalGuidance.recon_t"], min=-1000.0, max=1000.0, step=1.0,
                               tooltip="The pull acts at timesteps (0-1000) below this (paper: 400, the last 40% of "
                                       "the steps); negative: above its size; 0: never."),
                io.Int.Input("dilate_mask", default=1, min=0, max=64,
                             tooltip="Radius in latent pixels by which the edited region grows before the rest is "
                                     "pulled (paper code: 1)."),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, positive, negative, inversion, cfg, prox, quantile, quantile_over, start_step, pull,
                recon_lr, recon_t, dilate_mask) -> io.NodeOutput:
        node = ProximalGuidance.NAME
        check_model_family(model, node)
        check_choice(node, "prox", prox, PROXES)
        check_choice(node, "quantile_over", quantile_over, SCOPES)
        check_choice(node, "pull", pull, RECONSTRUCTIONS)
        check_finite(node, cfg=cfg, quantile=quantile, recon_lr=recon_lr, recon_t=recon_t)
        check_at_least(node, 0, start_step=start_step, dilate_mask=dilate_mask)
        check_conditioning(node, "positive", positive, model)
        check_conditioning(node, "negative", negative, model)
        if quantile > 1:
            raise NodeInputError(node, f"input 'quantile' is {quantile}; give a quantile from 0 to 1 (paper: 0.7), "
                                       f"or a negative number for a fixed threshold of its size.")
        settings = ProxSettings(prox=prox, quantile=quantile, scope=quantile_over, start_step=start_step, pull=pull,
                                recon_lr=recon_lr, recon_t=recon_t, dilate=dilate_mask)
        policy = ProximalPolicy(inversion, cfg, settings)
        return io.NodeOutput(InversionDriver(carrying(model, inversion, node, TAKES), policy,
                                             {"positive": positive, "negative": negative}))


NODES = [ProximalGuidance]

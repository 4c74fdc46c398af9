"""DNAEdit (Xie et al. 2025): DNAEdit Invert, the inversion by direct noise alignment up to a start step
(an INVERSION carrying each step's offset and source velocity), and DNAEdit, the edit by Mobile Velocity
Guidance as a GUIDER for SamplerCustomAdvanced with the stock euler sampler. Math in ``dna.py``, host glue in
``glue.py``."""
from __future__ import annotations

import torch

from ...hostkit.errors import NodeInputError, check_at_least, check_conditioning, check_finite, check_inversion
from ...hostkit.flow_inverters import InvertedNoise
from ...hostkit.sampling import check_flow_family, check_plain_prompt
from ...hostkit.schemas import flow_inverter_outputs, io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import DNAEDIT
from . import ROW
from .glue import FEWEST_STEPS, INVERT_NAME, NAME, dnaedit_guider, dnaedit_invert

#: Measured on the toy flow world (12 of world 2's cases, the Flux template; workshop/benchmarks/toyworld_flow.py's
#: metrics) and on the tiny Flux dev (tests/host/test_dnaedit.py: the latent's RMS change, monotone both ways)
TURN_START = ("Higher keeps more of the image (the edit starts lower, with fewer steps to change it); lower edits "
              "more, from nearer pure noise. Toy flow world, start_step 2 / 4 / 8 of 28: background 21.5 / 21.9 / "
              "24.0 dB, edits made 42 / 42 / 8%.")
TURN_MVG = ("Higher follows the target prompt more (1: the target's velocity alone); lower keeps more of the "
            "image (0: straight to the source moved by the velocity difference). Toy flow world, mvg 0.6 / 0.8 / 1: "
            "background 23.5 / 21.9 / 20.3 dB, edits made 25 / 42 / 42%.")


class DNAEditInvert(io.ComfyNode):
    NAME = INVERT_NAME

    @classmethod
    def define_schema(cls) -> io.Schema:
        p = ROW.settings_of("InvertEditDNAEditInvert")
        return io.Schema(
            node_id="InvertEditDNAEditInvert",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "DNAEdit's inversion (Xie et al.): from the image up the schedule to its start_step, each step "
                "evaluates the model on a guess of the next latent made from a Gaussian noise, moves the latent by "
                "that velocity and moves the noise by the velocity's error (direct noise alignment); each step's "
                "offset and velocity are kept for DNAEdit. Edit with DNAEdit and SamplerCustomAdvanced: this node's "
                "SIGMAS, the image's latent, KSamplerSelect euler. Authors: Flux 28 steps (BasicScheduler simple "
                "after ModelSamplingFlux), start_step 4; SD3.5 40 steps (normal), start_step 13."),
            inputs=[
                io.Model.Input("model", tooltip="A Flux.1 (dev, schnell) or SD3/SD3.5 model (Qwen-Image runs too, as SD3: "
                                                "no authors' settings for it)."),
                io.Latent.Input("latent", tooltip="The image's latent, from VAE Encode."),
                io.Conditioning.Input("positive", tooltip="The source prompt: a caption of the image as it is."),
                io.Sigmas.Input("sigmas", tooltip="The whole schedule of the edit, from pure noise (BasicScheduler; "
                                                  "authors: Flux 28 steps simple after ModelSamplingFlux at the "
                                                  "image's size, SD3.5 40 steps normal). The inversion stops "
                                                  "start_step steps below its top."),
                io.Int.Input("start_step", default=p["start_step"], min=0, max=1000,
                             tooltip=f"Steps of the schedule's noisy end that are skipped: the inversion stops and "
                                     f"the edit starts there (authors: Flux {p['start_step']} of 28, SD3.5 13 of "
                                     f"40). {TURN_START}"),
                io.Float.Input("guidance", default=p["guidance"], min=0.0, max=100.0, step=0.1,
                               tooltip=f"Flux dev's distilled guidance of the source prompt while inverting "
                                       f"(authors: {p['guidance']:g}). Ignored by Flux schnell and SD3 (inverted "
                                       f"without classifier-free guidance, as the authors' source scale 1)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff,
                             tooltip="Seed of the Gaussian noise the inversion aligns (the authors seed 0; drawn "
                                     "on the CPU, in Flux's token layout as their code draws it)."),
                io.Boolean.Input("align_noise", default=p["align_noise"],
                                 tooltip="On (paper: on): the noise moves by each step's velocity error (direct noise "
                                         "alignment, the authors' code, xiechenxi99/DNAEdit_code). Off: the noise stays fixed, "
                                         "as the RF-Image-Editing reimplementation (Justin900429) runs it."),
            ],
            outputs=flow_inverter_outputs(),
        )

    @classmethod
    def execute(cls, model, latent, positive, sigmas, start_step, guidance, seed, align_noise) -> io.NodeOutput:
        family = check_flow_family(model, cls.NAME)
        check_finite(cls.NAME, guidance=guidance)
        check_at_least(cls.NAME, 0, start_step=start_step)
        if not isinstance(sigmas, torch.Tensor) or sigmas.ndim != 1 or len(sigmas) < 2:
            raise NodeInputError(cls.NAME, "input 'sigmas' is not a schedule; connect BasicScheduler's SIGMAS "
                                           "(authors: Flux 28 steps simple, SD3.5 40 steps normal).")
        s = sigmas.detach().float()
        if not bool(torch.isfinite(s).all()) or bool((s[1:] >= s[:-1]).any()) or float(s[0]) > 1.0 or float(s[-1]) < 0:
            raise NodeInputError(cls.NAME, "input 'sigmas' must descend strictly from at most 1 towards 0 (a flow model's "
                                           "schedule, noise to image); connect BasicScheduler's SIGMAS.")
        steps = len(s) - 1
        if steps - start_step < FEWEST_STEPS:
            raise NodeInputError(cls.NAME, f"start_step is {start_step} of the schedule's {steps} steps, which leaves "
                                           f"{max(steps - start_step, 0)} to invert and edit; leave at least "
                                           f"{FEWEST_STEPS} (authors: 4 of 28 for Flux, 13 of 40 for SD3.5).")
        if float(s[start_step]) >= 1.0:
            raise NodeInputError(cls.NAME, f"start_step {start_step} starts the edit at sigma {float(s[start_step]):g}, "
                                           f"pure noise: nothing of the image would be kept; skip at least the first "
                                           f"step (authors: 4 of 28 for Flux, 13 of 40 for SD3.5).")
        flux = family.layout == "dit-double-single"
        inversion = dnaedit_invert(model, latent["samples"], positive, s, start_step, guidance, seed, align_noise,
                                   distilled=family.distilled_guidance, packed=flux)
        return io.NodeOutput(inversion, InvertedNoise(inversion, cls.NAME), inversion.sampling_sigmas)


class DNAEdit(io.ComfyNode):
    NAME = NAME

    @classmethod
    def define_schema(cls) -> io.Schema:
        p = ROW.settings_of("InvertEditDNAEdit")
        return io.Schema(
            node_id="InvertEditDNAEdit",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "DNAEdit's edit (Xie et al.): from DNAEdit Invert's latent, each step evaluates the target prompt "
                "where the inversion evaluated the source, moves a reference (the source image at first) by the "
                "difference of the two velocities, and steps with Mobile Velocity Guidance: mvg times the target's "
                "velocity plus (1 - mvg) times the velocity that lands on the reference. One target evaluation a "
                "step (SD3: with its negative, one batched call). A GUIDER for SamplerCustomAdvanced with DNAEdit "
                "Invert's SIGMAS (and NOISE), the image's latent as latent_image and KSamplerSelect euler. Authors: "
                "Flux guidance 2.5, SD3.5 cfg 3.5, mvg 0.8."),
            inputs=[
                io.Model.Input("model", tooltip="The model the image was inverted with."),
                InversionSocket.Input("inversion", tooltip="DNAEdit Invert's inversion."),
                io.Conditioning.Input("target", tooltip="The target prompt: the caption of the edited image."),
                io.Float.Input("mvg", default=p["mvg"], min=0.0, max=1.0, step=0.01,
                               tooltip=f"Mobile Velocity Guidance's weight of the target's velocity (authors' "
                                       f"configs: {p['mvg']:g}; 0.85 in their function's signature and the "
                                       f"RF-Image-Editing reimplementation). {TURN_MVG}"),
                io.Float.Input("guidance", default=p["guidance"], min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip=f"The target's guidance: Flux dev's distilled guidance (authors: "
                                       f"{p['guidance']:g}), or SD3's classifier-free guidance scale with 'negative' "
                                       f"(authors, SD3.5: 3.5). Higher edits more. Flux schnell takes none."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="SD3: the negative prompt (the authors': empty) for classifier-free "
                                              "guidance at 'guidance'. Flux takes none (its guidance is distilled)."),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, inversion, target, mvg, guidance, negative=None) -> io.NodeOutput:
        family = check_flow_family(model, cls.NAME)
        check_finite(cls.NAME, mvg=mvg, guidance=guidance)
        if not 0.0 <= mvg <= 1.0:
            raise NodeInputError(cls.NAME, f"input 'mvg' is {mvg:g}; give 0 to 1 (authors: 0.8).")
        check_inversion(cls.NAME, inversion, model=model, methods=(DNAEDIT,))
        missing = DNAEDIT.missing_clues(inversion.clues)
        if missing:
            raise NodeInputError(cls.NAME, f"input 'inversion' lacks DNAEdit's per-step records ({', '.join(missing)}); "
                                           f"invert the image again with DNAEdit Invert.")
        for name, conditioning in (("target", target), ("negative", negative)):
            if conditioning is not None:
                check_conditioning(cls.NAME, name, conditioning, model)
                check_plain_prompt(cls.NAME, name, conditioning)
        flux = family.layout == "dit-double-single"
        if flux and negative is not None:
            raise NodeInputError(cls.NAME, "input 'negative' is connected, but Flux takes no negative prompt (its "
                                           "guidance is distilled: 'guidance'); disconnect it.")
        if not flux and negative is None and guidance != 1.0:
            raise NodeInputError(cls.NAME, f"{family.config_name} guides the target with classifier-free guidance: "
                                           f"connect 'negative' (an empty prompt, as the authors), or set guidance "
                                           f"to 1.")
        return io.NodeOutput(dnaedit_guider(model, inversion, target, negative, guidance, mvg,
                                            distilled=family.distilled_guidance))


NODES = [DNAEditInvert, DNAEdit]

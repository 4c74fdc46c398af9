"""FlowEdit (Kulikov et al. 2025): inversion-free editing with Flux.1, SD3 and Qwen-Image, a GUIDER for
SamplerCustomAdvanced (math in ``ode.py``, the guider in ``glue.py``).

On Qwen-Image (no authors' settings: its classifier-free guidance is SD3's kind, so the node takes it as SD3's,
with a negative) the prompts are not padded: the host batches conditionings of the same token count only
(``CONDRegular.can_concat``), and its Qwen-Image model reads no text attention mask, so padding the shorter prompt
would change what the model sees. The source and target therefore share one model call where they have the same
number of tokens, and take a call each where they do not, as a stock CFG run on Qwen-Image runs its prompt and its
negative: the same model evaluations (rows), one more call a step, never padded."""
from __future__ import annotations

from ...hostkit.errors import NodeInputError, check_at_least, check_conditioning, check_finite
from ...hostkit.sampling import check_flow_family, check_plain_prompt
from ...hostkit.schemas import io
from . import ROW
from .glue import NAME, FlowEditSettings, flow_edit_guider


#: The families FlowEdit guides with classifier-free guidance, as messages name them (by the host's config)
_CFG_FAMILIES = {"SD3": "SD3", "QwenImage": "Qwen-Image", "WAN21_T2V": "Wan 2.1", "WAN22_T2V": "Wan 2.2"}


class FlowEdit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditFlowEdit",
            display_name=NAME,
            category="InvertEdit/flow",
            description=(
                "FlowEdit (Kulikov et al.): edits an image with a rectified-flow model (Flux.1, SD3, Qwen-Image) without "
                "inverting it. From the source latent, each step moves the edit by the difference of the target "
                "prompt's and the source prompt's velocities, evaluated at a fresh noisy copy of the source and the "
                "same noise on the edit. A GUIDER for SamplerCustomAdvanced: the source image's latent (VAE Encode) as "
                "latent_image, the model's schedule (BasicScheduler; Flux: after ModelSamplingFlux with the image "
                "size), KSamplerSelect euler, and RandomNoise (its seed draws FlowEdit's noises). Authors' settings: "
                "Flux 28 steps, n_max 24, guidance 1.5 / 5.5; SD3 50 steps, n_max 33, cfg 3.5 / 13.5 (Qwen-Image has "
                "none: it is guided as SD3, with a negative). A Wan 2.1/2.2 clip (its VAE's latent [1, 16, frames, h, "
                "w]) is edited whole, as FiVE-Bench's Wan-Edit: 50 steps at shift 5, n_max 34, cfg 5 / 10 with Wan's "
                "negative. On Qwen-Image, whose prompts are not padded, the source "
                "and target share one model call a step only when they have the same number of tokens; otherwise "
                "each takes its own, as a stock CFG run on Qwen-Image splits its prompt and negative (the same "
                "evaluations, one more call)."),
            inputs=[
                io.Model.Input("model", tooltip="A Flux.1 (dev, schnell), SD3/SD3.5, Qwen-Image or Wan 2.1/2.2 "
                                                "text-to-video model."),
                io.Conditioning.Input("source", tooltip="The source prompt: a caption of the image as it is."),
                io.Conditioning.Input("target", tooltip="The target prompt: the caption of the edited image. On "
                                                        "Qwen-Image it runs in the source's model call only when "
                                                        "both prompts have the same number of tokens (they are not "
                                                        "padded); else in a call of its own."),
                io.Float.Input("source_guidance", default=ROW.settings["InvertEditFlowEdit.source_guidance"], min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance of the source prompt: Flux dev's distilled guidance (authors: 1.5), or "
                                       "SD3's and Qwen-Image's classifier-free guidance scale with 'negative' "
                                       "(authors, SD3: 3.5). Flux schnell takes none."),
                io.Float.Input("target_guidance", default=ROW.settings["InvertEditFlowEdit.target_guidance"], min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance of the target prompt: Flux dev's distilled guidance (authors: 5.5), or "
                                       "SD3's and Qwen-Image's classifier-free guidance scale (authors, SD3: 13.5). "
                                       "Higher edits more."),
                io.Int.Input("n_max", default=ROW.settings["InvertEditFlowEdit.n_max"], min=1, max=1000,
                             tooltip="The edit acts in the last n_max steps; the noisier ones are skipped (authors: "
                                     "Flux 24 of 28, SD3 33 of 50). Higher changes more of the image's structure."),
                io.Int.Input("n_min", default=ROW.settings["InvertEditFlowEdit.n_min"], min=0, max=1000,
                             tooltip="The last n_min steps sample the target alone from the noised edit (authors: 0); "
                                     "more adds detail and changes more."),
                io.Int.Input("n_avg", default=ROW.settings["InvertEditFlowEdit.n_avg"], min=1, max=64,
                             tooltip="Noises averaged per step (authors: 1); each costs another source and target "
                                     "evaluation, in the same batched call (on Qwen-Image, in each prompt's call "
                                     "where their token counts differ)."),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="SD3 and Qwen-Image: the negative prompt (usually empty) for "
                                              "classifier-free guidance at the two scales. Flux takes none (its "
                                              "guidance is distilled)."),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, source, target, source_guidance, target_guidance, n_max, n_min, n_avg,
                negative=None) -> io.NodeOutput:
        family = check_flow_family(model, NAME)
        check_finite(NAME, source_guidance=source_guidance, target_guidance=target_guidance)
        check_at_least(NAME, 1, n_max=n_max, n_avg=n_avg)
        check_at_least(NAME, 0, n_min=n_min)
        for name, conditioning in (("source", source), ("target", target), ("negative", negative)):
            if conditioning is not None:
                check_conditioning(NAME, name, conditioning, model)
                check_plain_prompt(NAME, name, conditioning)
        if n_min > n_max:
            raise NodeInputError(NAME, f"n_min is {n_min}, above n_max {n_max}; the last n_min steps are part of the "
                                       f"n_max that act: keep n_min at most n_max (authors: 0).")
        flux = family.layout == "dit-double-single"
        if flux and negative is not None:
            raise NodeInputError(NAME, "input 'negative' is connected, but Flux takes no negative prompt (its guidance "
                                       "is distilled: source_guidance and target_guidance); disconnect it.")
        if not flux and negative is None and not (source_guidance == 1.0 and target_guidance == 1.0):
            name = _CFG_FAMILIES.get(family.config_name, family.config_name)
            raise NodeInputError(NAME, f"{name} guides each prompt with classifier-free guidance: connect 'negative' "
                                       f"(an empty prompt, as the authors), or set both guidance scales to 1.")
        settings = FlowEditSettings(source_guidance, target_guidance, n_max, n_min, n_avg)
        guider = flow_edit_guider(model, source, target, negative, settings, distilled=family.distilled_guidance,
                                  packed_noise=flux)
        return io.NodeOutput(guider)


NODES = [FlowEdit]

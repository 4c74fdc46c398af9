"""pix2pix-zero (Parmar et al., "Zero-shot Image-to-Image Translation", SIGGRAPH 2023): Pix2Pix-Zero
Invert (DDIM inversion with the predicted noise regularised towards Gaussian noise; math in
``regularised.py``), Edit Direction (mean target minus mean source sentence embedding,
added to the prompt; ``edit_direction.py``) and Cross-Attention Guidance (a GUIDER that
keeps the edit's cross-attention maps on the reconstruction's; ``cross_guidance.py``,
host side in ``glue.py``)."""
from __future__ import annotations


import torch
from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_at_least, check_conditioning, check_finite, check_finite_tensor
from ...hostkit.gradients import with_weight_copies
from ...hostkit.inverters import INVERTED_SIGMAS, check_latent_made_with, invert, inverted_latent
from ...hostkit.layout import transformer_blocks
from ...hostkit.patches import replace_attention
from ...hostkit.sampling import check_model_family
from ...hostkit.schemas import inverter_inputs, inverter_outputs
from ...inversion.methods import DDIM
from . import regularised as R
from .cross_guidance import AMOUNT, GuidanceMaps
from .glue import NAME as GUIDANCE, CrossAttentionGuider, RecordMaps
from .glue import DIRECTION, add_direction, side

INVERT = "Pix2Pix-Zero Invert"   # it makes a DDIM record (replayed, refined and checked like one)


class Pix2PixZeroInvert(io.ComfyNode):
    NAME = INVERT

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditPix2PixZeroInvert",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=(
                "DDIM inversion as pix2pix-zero does it (Parmar et al.): at every step the predicted noise is pulled "
                "towards white Gaussian noise (an auto-correlation loss over a pyramid and a KL loss) before the step, "
                "so the inverted latent is easier to edit. Sampled back like a DDIM inversion (ddim or euler, the same "
                "steps and scheduler); reconstruction is approximate. Edit with Edit Direction + Cross-Attention "
                "Guidance. Its INVERSION is a DDIM record: the DDIM refinements and Apply Inversion accept it."),
            inputs=inverter_inputs(
                steps=50, start_at_step=0, cfg=1.0, paper="paper",
                start_tooltip="0 inverts all the way to noise (paper). k > 0 stops k steps short of it.",
                cfg_tooltip="Guidance during inversion (paper: 1, i.e. none). Other values need 'negative'.") + [
                io.Float.Input("lambda_auto_corr", default=R.LAMBDA_AUTO_CORR, min=0.0, max=1000.0, step=0.5,
                               tooltip="Weight of the auto-correlation loss on the predicted noise (paper: 20); 0 "
                                       "turns it off."),
                io.Float.Input("lambda_kl", default=R.LAMBDA_KL, min=0.0, max=1000.0, step=0.5,
                               tooltip="Weight of the KL loss to a standard normal (paper: 20); 0 turns it off. "
                                       "Both 0: plain DDIM inversion."),
                io.Int.Input("reg_steps", default=R.REG_STEPS, min=0, max=100,
                             tooltip="Regularisation rounds per inversion step (paper: 5)."),
                io.Int.Input("auto_corr_rolls", default=R.AUTO_CORR_ROLLS, min=1, max=100,
                             tooltip="Auto-correlation descent steps per round, each with new random shifts (paper: 5)."),
                io.Int.Input("seed", default=0, min=0, max=0xffffffffffffffff, control_after_generate=False,
                             tooltip="Seed of the random shifts of the auto-correlation loss."),
            ],
            outputs=inverter_outputs(
                "The inverted latent: feed it to Cross-Attention Guidance (or KSamplerAdvanced, add_noise disable).",
                "The schedule from the inverted latent back to the image, for SamplerCustomAdvanced."),
        )

    @classmethod
    def execute(cls, model, latent, positive, steps, scheduler, start_at_step, cfg, lambda_auto_corr, lambda_kl,
                reg_steps, auto_corr_rolls, seed, negative=None) -> io.NodeOutput:
        check_finite(INVERT, lambda_auto_corr=lambda_auto_corr, lambda_kl=lambda_kl)
        check_at_least(INVERT, 0, lambda_auto_corr=lambda_auto_corr, lambda_kl=lambda_kl, reg_steps=reg_steps, seed=seed)
        check_at_least(INVERT, 1, auto_corr_rolls=auto_corr_rolls)
        settings = {"pix2pix_zero": {"lambda_auto_corr": lambda_auto_corr, "lambda_kl": lambda_kl, "reg_steps": reg_steps,
                                     "auto_corr_rolls": auto_corr_rolls, "seed": seed}}
        try:
            inversion = invert(DDIM, R.regularised_invert, model, latent["samples"], positive, negative, steps,
                               scheduler, start_at_step, cfg, settings=settings, node=INVERT, lambda_ac=lambda_auto_corr,
                               lambda_kl=lambda_kl, reg_steps=reg_steps, rolls=auto_corr_rolls,
                               generator=torch.Generator().manual_seed(seed))
        except R.RegulariserDiverged as e:
            raise NodeInputError(INVERT, f"{e}: its steps overshoot on a latent this small or a noise this far from "
                                         f"unit spread. Lower lambda_auto_corr (e.g. {lambda_auto_corr / 4:g}) or raise "
                                         f"auto_corr_rolls, or invert a larger image (the paper: 512 px).") from None
        return io.NodeOutput(inversion, inverted_latent(inversion), inversion.sampling_sigmas)


class EditDirection(io.ComfyNode):
    NAME = DIRECTION

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditEditDirection",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description=(
                "pix2pix-zero's edit direction (Parmar et al.): the mean embedding of the target sentences minus the "
                "mean of the source sentences, added to the prompt's embedding. Many varied sentences (the paper "
                "uses about a thousand) keep what differs between the concepts and cancel the rest. Feed the output "
                "to Cross-Attention Guidance as 'target', or sample it like any prompt."),
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="The source prompt (a caption of the image), as the "
                                                              "inversion got it."),
                io.String.Input("source_sentences", multiline=True,
                                default="a cat sitting on a sofa\na photo of a cat\na cat playing with a ball",
                                tooltip="Sentences about the source concept, one per line (paper: about 1000, "
                                        "generated; a handful work). Ignored when 'source_embeddings' is connected."),
                io.String.Input("target_sentences", multiline=True,
                                default="a dog sitting on a sofa\na photo of a dog\na dog playing with a ball",
                                tooltip="Sentences about the target concept, one per line, like the source's. Ignored "
                                        "when 'target_embeddings' is connected."),
                io.Clip.Input("clip", optional=True, tooltip="The text encoder, to encode the sentences (the model's "
                                                             "CLIP)."),
                io.Conditioning.Input("source_embeddings", optional=True,
                                      tooltip="Instead of source_sentences: the source side's CONDITIONING (all its "
                                              "rows are averaged), e.g. CLIP Text Encode of 'cat'."),
                io.Conditioning.Input("target_embeddings", optional=True,
                                      tooltip="Instead of target_sentences: the target side's CONDITIONING."),
            ],
            outputs=[io.Conditioning.Output(display_name="target",
                                            tooltip="The prompt moved along the edit direction (the edited prompt).")],
        )

    @classmethod
    def execute(cls, conditioning, source_sentences, target_sentences, clip=None, source_embeddings=None,
                target_embeddings=None) -> io.NodeOutput:
        check_conditioning(DIRECTION, "conditioning", conditioning)
        source = side(source_embeddings, clip, source_sentences, "source_sentences")
        target = side(target_embeddings, clip, target_sentences, "target_sentences")
        return io.NodeOutput(add_direction(conditioning, source, target))


class CrossAttentionGuidance(io.ComfyNode):
    NAME = GUIDANCE

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditCrossAttentionGuidance",
            display_name=cls.NAME,
            category="InvertEdit/guidance",
            description=(
                "pix2pix-zero's cross-attention guidance (Parmar et al.): the reconstruction (source prompt) and the "
                "edit (target prompt) are drawn side by side; at every step the edit's latent takes a gradient step "
                "that pulls its cross-attention maps towards the reconstruction's, so the structure stays while the "
                "content changes. A GUIDER for SamplerCustomAdvanced with DisableNoise, KSamplerSelect ddim (or "
                "euler), the inversion's SIGMAS and this node's LATENT pair; the output holds the reconstruction and "
                "the edit. Costs 3 UNet calls and one backward pass a step."),
            inputs=[
                io.Model.Input("model", tooltip="The model the image was inverted with (Apply Inversion's model works)."),
                io.Conditioning.Input("positive", tooltip="The source prompt, as the inversion got it: the "
                                                          "reconstruction's prompt."),
                io.Conditioning.Input("target", tooltip="The edited prompt (Edit Direction's output, or a CLIP Text "
                                                        "Encode with the same token length)."),
                io.Conditioning.Input("negative", tooltip="The unconditional prompt (usually empty; the authors' "
                                                          "real-image script uses the source prompt)."),
                io.Latent.Input("latent", tooltip="The inverted latent (Pix2Pix-Zero Invert's LATENT); it is paired."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Guidance scale of both rows (diffusers' default: 7.5; the authors' real-image "
                                       "script: 5)."),
                io.Float.Input("guidance_amount", default=AMOUNT, min=0.0, max=10.0, step=0.01,
                               tooltip="Step size of the cross-attention guidance on the latent (paper: 0.1); 0 "
                                       "samples the edited prompt unguided."),
            ],
            outputs=[
                io.Guider.Output(),
                io.Latent.Output(display_name="latent", tooltip="The latent twice: row 0 reconstruction, row 1 edit."),
            ],
        )

    @classmethod
    def execute(cls, model, positive, target, negative, latent, cfg, guidance_amount) -> io.NodeOutput:
        check_model_family(model, GUIDANCE)
        check_finite(GUIDANCE, cfg=cfg, guidance_amount=guidance_amount)
        if guidance_amount < 0:
            raise NodeInputError(GUIDANCE, f"input 'guidance_amount' is {guidance_amount}; give 0 or more (paper: 0.1).")
        samples = latent["samples"]
        if samples.ndim != 4 or samples.shape[0] != 1:
            raise NodeInputError(GUIDANCE, f"input 'latent' has shape {tuple(samples.shape)}; connect one inverted "
                                           f"image's latent (batch 1).")
        check_finite_tensor(GUIDANCE, "input 'latent'", samples, "connect the inversion's LATENT.")
        check_latent_made_with(GUIDANCE, latent, model)
        for name, cond in (("positive", positive), ("target", target), ("negative", negative)):
            check_conditioning(GUIDANCE, name, cond, model)
        if positive[0][0].shape[1:] != target[0][0].shape[1:]:
            raise NodeInputError(GUIDANCE, f"input 'target' has {tuple(target[0][0].shape[1:])} (tokens, width), "
                                           f"'positive' {tuple(positive[0][0].shape[1:])}; their cross-attention maps "
                                           f"are compared, so give both the same token length (Edit Direction keeps it).")
        blocks = transformer_blocks(model)
        existing = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
        taken = [key for key in existing if key[:2] in blocks]
        if taken:
            raise NodeInputError(GUIDANCE, f"the input MODEL already has cross-attention replace patches (attn2 of block "
                                           f"{taken[0]}), from another node; they would be dropped. Connect the model "
                                           f"without them.")
        m = with_weight_copies(model)
        m = m.clone() if m is model else m
        maps = GuidanceMaps()
        patch = RecordMaps(maps)
        for block, number in blocks:
            replace_attention(m, patch, "attn2", block, number)
        guider = CrossAttentionGuider(m, maps, guidance_amount, latent.get(INVERTED_SIGMAS))
        guider.set_named_conds({"positive": positive, "target": target, "negative": negative})
        guider.set_cfg(cfg)
        return io.NodeOutput(guider, {"samples": samples.repeat(2, 1, 1, 1)})


NODES = [Pix2PixZeroInvert, EditDirection, CrossAttentionGuidance]

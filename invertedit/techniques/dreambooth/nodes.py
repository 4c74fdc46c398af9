"""DreamBooth LoRA and DreamBooth Fine-Tune (Ruiz et al., "DreamBooth: Fine Tuning Text-to-Image
Diffusion Models for Subject-Driven Generation", CVPR 2023), as diffusers' ``train_dreambooth_lora.py``
and ``train_dreambooth.py`` train them.

Binds a subject shown in a few photos to an identifier in the instance prompt ("a sks square"),
with the prior-preservation loss on class images the model drew ("a square"). The math is in
``personalisation/denoising_loss.py``, the host glue in ``glue.py``.
"""
from __future__ import annotations

from ...hostkit.schemas import io
from ...hostkit.training_state import STATE_TOOLTIP
from . import ROW
from .glue import FULL_NODE, NODE, check_inputs, check_text_inputs, dreambooth_full, dreambooth_lora


def _subject_inputs() -> list:
    """The model, the subject's photos and the instance prompt: both DreamBooth nodes' first inputs."""
    return [
        io.Model.Input("model", tooltip="The model to teach (SD1.x, SD2.x, SDXL)."),
        io.Latent.Input("instance_images",
                        tooltip="VAE Encode of the subject's photos (paper: 3-5), one batch of one size."),
        io.Conditioning.Input("instance_prompt",
                              tooltip="CLIP Text Encode of the prompt with the identifier and the class, "
                                      "e.g. \"a sks dog\" (paper: a rare token before the class noun)."),
    ]


def _state_input(resume: bool = False) -> list:
    """The run's state file (both nodes'): kept while training, resumed from where it exists."""
    return [io.String.Input("state_name", default="", optional=True,
                            tooltip=STATE_TOOLTIP + (" A state file that exists takes the place of 'resume' (made from the same one)."
                                                     if resume else ""))]


def _class_inputs() -> list:
    """The prior-preservation loss's class images and class prompt (optional), both nodes'."""
    return [
        io.Latent.Input("class_images", optional=True,
                        tooltip="Images of the subject's class the model drew (KSampler with the class prompt; "
                                "paper: 200-300, diffusers: 100-200), at the instance images' size. Needed when "
                                "prior_loss_weight is above 0."),
        io.Conditioning.Input("class_prompt", optional=True,
                              tooltip="CLIP Text Encode of the class prompt, e.g. \"a dog\" (the instance "
                                      "prompt without the identifier)."),
    ]


def _text_inputs(what: str) -> list:
    """The text encoder trained too (the scripts' --train_text_encoder): the CLIP and the prompts' texts."""
    return [
        io.Clip.Input("clip", optional=True,
                      tooltip=f"Connect the checkpoint's CLIP to train its text encoder too (the script's "
                              f"--train_text_encoder; off by default, as in the script): {what}, same learning rate. "
                              f"Needs instance_text (and class_text with the prior loss)."),
        io.String.Input("instance_text", default="", optional=True,
                        tooltip="With 'clip': the text instance_prompt was encoded from (\"a sks dog\"); encoded "
                                "at every step through the text encoder being trained."),
        io.String.Input("class_text", default="", optional=True,
                        tooltip="With 'clip' and the prior loss: the text class_prompt was encoded from (\"a dog\")."),
    ]


def _text_output() -> io.Clip.Output:
    return io.Clip.Output(display_name="clip",
                          tooltip="With 'clip' connected: the CLIP with the text encoder's change (encode the prompts "
                                  "that name the subject with it); else empty.")



#: DreamBooth Fine-Tune's largest learning rate: the highest measured to keep a model that draws (1e-4, 800 steps on
#: world 2: the class kept in every seed); at 1e-3 the toy model draws noise after 200 steps, with a finite loss that
#: no divergence check sees (docs/measurements.md, "DreamBooth Fine-Tune's largest learning rate").
FINE_TUNE_LR_MAX = 1e-4

class DreamBoothLoRA(io.ComfyNode):
    NAME = NODE

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDreamBoothLoRA",
            display_name=cls.NAME,
            category="InvertEdit/personalise",
            description=("DreamBooth (Ruiz et al.): teaches the model a subject from 3-5 photos, bound to an identifier "
                         "in the instance prompt (\"a sks dog\"), as a LoRA on the UNet's attention projections "
                         "(diffusers' train_dreambooth_lora.py). Prior preservation: class images the model drew from "
                         "the class prompt (\"a dog\"; KSampler, batch 100-200) keep the class from drifting. Returns "
                         "the MODEL with the LoRA (stock samplers, other LoRAs and ControlNets work on it) and the LoRA "
                         "for Save LoRA Weights / LoraLoader. Each step is one forward of the instance and class rows "
                         "together and one backward."),
            inputs=[
                *_subject_inputs(),
                io.Int.Input("steps", default=ROW.settings["InvertEditDreamBoothLoRA.steps"], min=0, max=100000,
                             tooltip="Training steps (diffusers' LoRA README: 500). 0 returns the model unchanged."),
                io.Float.Input("learning_rate", default=ROW.settings["InvertEditDreamBoothLoRA.learning_rate"], min=0.0, max=0.01, step=0.00001, round=0.000001,
                               tooltip="AdamW learning rate, constant (diffusers' LoRA README: 1e-4; weight decay "
                                       "1e-2 and gradient-norm clipping to 1 as the script)."),
                io.Int.Input("rank", default=ROW.settings["InvertEditDreamBoothLoRA.rank"], min=1, max=256,
                             tooltip="LoRA rank (diffusers' script: 4; alpha = rank, scale 1)."),
                io.Float.Input("prior_loss_weight", default=ROW.settings["InvertEditDreamBoothLoRA.prior_loss_weight"], min=0.0, max=10.0, step=0.05,
                               tooltip="lambda, the prior-preservation loss's weight (paper and script: 1). 0 trains "
                                       "without class images (the script without --with_prior_preservation)."),
                io.Int.Input("batch_size", default=ROW.settings["InvertEditDreamBoothLoRA.batch_size"], min=1, max=64,
                             tooltip="Instance images per step, with as many class images (diffusers' LoRA README: "
                                     "1; script default 4)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip="Seed of the LoRA's initialisation, the batches' order and each step's noise "
                                     "and timesteps."),
                *_class_inputs(),
                *_state_input(resume=True),
                io.LoraModel.Input("resume", optional=True,
                                   tooltip="The 'lora' output of an earlier run on this model and rank: training "
                                           "continues from it (the optimiser's moments start afresh)."),
                *_text_inputs("a LoRA of the same rank on its attention projections (q, k, v, out)"),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The input model with the subject's LoRA."),
                io.LoraModel.Output(display_name="lora",
                                    tooltip="The LoRA in the host's format: Save LoRA Weights writes it, LoraLoader "
                                            "and Load LoRA Model apply it (with 'clip', its text-encoder part too: "
                                            "LoraLoader applies that to the CLIP; Load LoRA Model the UNet's only)."),
                io.LossMap.Output(display_name="loss", tooltip="The loss at each step (Plot Loss Graph)."),
                _text_output(),
            ],
        )

    @classmethod
    def execute(cls, model, instance_images, instance_prompt, steps, learning_rate, rank, prior_loss_weight,
                batch_size, seed, class_images=None, class_prompt=None, state_name="", resume=None, clip=None,
                instance_text="", class_text="") -> io.NodeOutput:
        family, instance, classes = check_inputs(model, instance_images, instance_prompt, class_images, class_prompt,
                                                 steps, learning_rate, rank, prior_loss_weight, batch_size)
        texts = check_text_inputs(model, clip, instance_text, class_text, instance_prompt,
                                  class_prompt if classes is not None else None)
        patched, lora, losses, text_clip = dreambooth_lora(
            model, instance, instance_prompt, classes, class_prompt, steps, learning_rate, rank, prior_loss_weight,
            batch_size, seed, family.parameterisation == "v", resume, state_name, clip, texts)
        return io.NodeOutput(patched, lora, {"loss": list(losses)}, text_clip)



class DreamBoothFineTune(io.ComfyNode):
    NAME = FULL_NODE

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDreamBoothFineTune",
            display_name=cls.NAME,
            category="InvertEdit/personalise",
            description=("DreamBooth (Ruiz et al.) as the paper does it: a full fine-tune of every UNet weight "
                         "(diffusers' train_dreambooth.py), the subject bound to an identifier in the instance prompt, "
                         "with the prior-preservation loss on class images the model drew. Needs about 16 bytes per "
                         "UNet parameter besides the model (SD1.5: 13 GB; refused where the device has not that much "
                         "free: use DreamBooth LoRA). Returns the MODEL with the change (Save Checkpoint saves it "
                         "whole) and the change as a weight-difference patch (Save LoRA Weights writes it, LoraLoader "
                         "applies it)."),
            inputs=[
                *_subject_inputs(),
                io.Int.Input("steps", default=ROW.settings["InvertEditDreamBoothFineTune.steps"], min=0, max=100000,
                             tooltip="Training steps (diffusers' DreamBooth README: 800 with prior preservation, 400 "
                                     "without). 0 returns the model unchanged."),
                io.Float.Input("learning_rate", default=ROW.settings["InvertEditDreamBoothFineTune.learning_rate"], min=0.0,
                               max=FINE_TUNE_LR_MAX, step=0.000001, round=0.0000001,
                               tooltip=f"AdamW learning rate, constant (diffusers' DreamBooth README: 5e-6; at most "
                                       f"{FINE_TUNE_LR_MAX:g}: at 1e-3 every weight is rewritten and the model draws "
                                       f"noise; weight decay 1e-2 on the whole weight and gradient-norm clipping to 1 "
                                       f"as the script)."),
                io.Float.Input("prior_loss_weight", default=ROW.settings["InvertEditDreamBoothFineTune.prior_loss_weight"], min=0.0, max=10.0, step=0.05,
                               tooltip="lambda, the prior-preservation loss's weight (paper and script: 1). 0 trains "
                                       "without class images."),
                io.Int.Input("batch_size", default=ROW.settings["InvertEditDreamBoothFineTune.batch_size"], min=1, max=64,
                             tooltip="Instance images per step, with as many class images (diffusers' README: 1)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip="Seed of the batches' order and each step's noise and timesteps."),
                *_class_inputs(),
                *_state_input(),
                *_text_inputs("every weight of its text model (train_dreambooth.py)"),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The input model with the fine-tune's change."),
                io.LoraModel.Output(display_name="patch",
                                    tooltip="The change of every UNet weight in the host's weight-difference format "
                                            "(<layer>.diff): Save LoRA Weights writes it (the UNet's size, float32), "
                                            "LoraLoader applies it to the same checkpoint (with 'clip', the text "
                                            "encoder's differences too, to its CLIP)."),
                io.LossMap.Output(display_name="loss", tooltip="The loss at each step (Plot Loss Graph)."),
                _text_output(),
            ],
        )

    @classmethod
    def execute(cls, model, instance_images, instance_prompt, steps, learning_rate, prior_loss_weight, batch_size,
                seed, class_images=None, class_prompt=None, state_name="", clip=None, instance_text="",
                class_text="") -> io.NodeOutput:
        family, instance, classes = check_inputs(model, instance_images, instance_prompt, class_images, class_prompt,
                                                 steps, learning_rate, None, prior_loss_weight, batch_size, FULL_NODE,
                                                 clip)
        texts = check_text_inputs(model, clip, instance_text, class_text, instance_prompt,
                                  class_prompt if classes is not None else None, FULL_NODE)
        patched, patch, losses, text_clip = dreambooth_full(
            model, instance, instance_prompt, classes, class_prompt, steps, learning_rate, prior_loss_weight,
            batch_size, seed, family.parameterisation == "v", state_name, clip, texts)
        return io.NodeOutput(patched, patch, {"loss": list(losses)}, text_clip)


NODES = [DreamBoothLoRA, DreamBoothFineTune]

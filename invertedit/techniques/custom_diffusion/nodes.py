"""Custom Diffusion (Kumari et al., "Multi-Concept Customization of Text-to-Image Diffusion", CVPR
2023), as diffusers' ``train_custom_diffusion.py`` trains it.

Teaches the model a subject from a few photos by changing only the cross-attention keys and values
and learning a modifier word ("photo of a <new1> cat"), with prior preservation on class pictures.
The math is in ``training.py``, the host glue in ``glue.py``.
"""
from __future__ import annotations

from ...hostkit.schemas import io
from ...hostkit.training_state import STATE_TOOLTIP
from . import ROW
from .glue import NODE, check_inputs, custom_diffusion, save_word


class CustomDiffusion(io.ComfyNode):
    NAME = NODE

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditCustomDiffusion",
            display_name=cls.NAME,
            category="InvertEdit/personalise",
            description=("Custom Diffusion (Kumari et al.): teaches the model a subject from 3-5 photos by changing "
                         "only the keys and values of its cross-attention layers and learning a new modifier word "
                         "(diffusers' train_custom_diffusion.py): photos scaled at random with captions to match "
                         "(\"very small\", \"close up\"), class pictures for prior preservation. Returns the MODEL "
                         "with the change (stock samplers, LoRAs and ControlNets work on it), the change as a LoRA "
                         "of whole-weight differences (Save LoRA Weights; LoraLoader applies it), and saves the word "
                         "as models/embeddings/<name>.safetensors: write embedding:<name> in prompts. SD1.x, "
                         "SD2.x and SDXL (the word in both encoders). Each step: one UNet forward of the photos and "
                         "class pictures together and one backward (the VAE encodes every step's pictures once, "
                         "before training)."),
            inputs=[
                io.Model.Input("model", tooltip="The model to teach (SD1.x, SD2.x, SDXL)."),
                io.Clip.Input("clip", tooltip="The checkpoint's CLIP (its encoder stays frozen; the new word's "
                                              "vector is learned)."),
                io.Vae.Input("vae", tooltip="The checkpoint's VAE: encodes the scaled photos and the class pictures."),
                io.Image.Input("instance_images",
                               tooltip="The subject's photos (paper: 4-20; diffusers' example: 5), square, one size "
                                       "(the script's 512 px)."),
                io.String.Input("instance_prompt", default="photo of a {} cat",
                                tooltip="The photos' caption with {} where the new word goes, before the class noun "
                                        "(the script's \"photo of a <new1> cat\")."),
                io.String.Input("name", default="new1",
                                tooltip="The new word's embedding file: prompts name it embedding:<name> (the "
                                        "script's modifier token <new1>)."),
                io.String.Input("initializer", default="ktn",
                                tooltip="One word of one token the new word starts from (the script's \"ktn\": rare, "
                                        "meaning little)."),
                io.Int.Input("steps", default=ROW.settings["InvertEditCustomDiffusion.steps"], min=0, max=20000,
                             tooltip="Training steps (diffusers' README: 250). 0 returns the model unchanged."),
                io.Float.Input("learning_rate", default=ROW.settings["InvertEditCustomDiffusion.learning_rate"], min=0.0, max=0.01, step=0.000001, round=0.0000001,
                               tooltip="AdamW learning rate, constant, weight decay 1e-2, gradient-norm clipping 1 "
                                       "(diffusers' README: 1e-5 with --scale_lr: x batch 2 x 2 with the prior = 4e-5)."),
                io.Int.Input("batch_size", default=ROW.settings["InvertEditCustomDiffusion.batch_size"], min=1, max=64,
                             tooltip="Photos per step, with as many class pictures (diffusers' README: 2)."),
                io.Float.Input("prior_loss_weight", default=ROW.settings["InvertEditCustomDiffusion.prior_loss_weight"], min=0.0, max=10.0, step=0.05,
                               tooltip="lambda, the prior-preservation loss's weight (README: 1). 0 trains without "
                                       "class pictures."),
                io.Boolean.Input("augment", default=True,
                                 tooltip="The script's scale augmentation (on unless --noaug): each photo shrunk onto "
                                         "a grey canvas or zoomed and cropped, captioned \"a far away\" / \"very "
                                         "small\" / \"zoomed in\" / \"close up\", the loss masked to the photo."),
                io.Boolean.Input("hflip", default=True,
                                 tooltip="Random left-right flips of the photos and class pictures (README: --hflip)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip="Seed of the batches, the augmentation, each step's noise and timesteps."),
                io.Image.Input("class_images", optional=True,
                               tooltip="Pictures of the subject's class (KSampler from the class prompt on this "
                                       "model, VAE Decode; README: 200), at the photos' size. Needed when "
                                       "prior_loss_weight is above 0."),
                io.String.Input("class_prompt", default="cat", optional=True,
                                tooltip="The class pictures' caption (README: \"cat\")."),
                io.String.Input("state_name", default="", optional=True, tooltip=STATE_TOOLTIP),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The input model with the learned keys and values."),
                io.Clip.Output(display_name="clip",
                               tooltip="The input CLIP, once the word is saved: encode prompts naming "
                                       "embedding:<name> with it."),
                io.String.Output(display_name="word", tooltip="embedding:<name>, to write in prompts."),
                io.LoraModel.Output(display_name="lora",
                                    tooltip="The keys' and values' changes as a LoRA of .diff weights: Save LoRA "
                                            "Weights writes it, LoraLoader and Load LoRA Model apply it."),
                io.LossMap.Output(display_name="loss", tooltip="The loss at each step (Plot Loss Graph)."),
            ],
        )

    @classmethod
    def execute(cls, model, clip, vae, instance_images, instance_prompt, name, initializer, steps, learning_rate,
                batch_size, prior_loss_weight, augment, hflip, seed, class_images=None, class_prompt="",
                state_name="") -> io.NodeOutput:
        v, instance, classes = check_inputs(model, clip, vae, instance_images, instance_prompt, name, initializer, steps,
                                            learning_rate, prior_loss_weight, batch_size, augment, class_images,
                                            class_prompt)
        patched, diff, vectors, losses = custom_diffusion(model, clip, vae, instance, instance_prompt, name, initializer,
                                                          classes, class_prompt, steps, learning_rate,
                                                          prior_loss_weight, batch_size, augment, hflip, seed, v,
                                                          state_name)
        save_word(clip, name, vectors, initializer)
        return io.NodeOutput(patched, clip.clone(), f"embedding:{name}", diff, {"loss": list(losses)})


NODES = [CustomDiffusion]

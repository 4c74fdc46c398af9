"""Textual Inversion (Gal et al., "An Image is Worth One Word: Personalizing Text-to-Image
Generation using Textual Inversion", ICLR 2023), as diffusers' ``textual_inversion.py`` trains it.

Learns a new word from a few images: the vectors of a placeholder token (in each of SDXL's two
encoders, as ``textual_inversion_sdxl.py``), saved where the host's "embedding:<name>" prompt syntax
reads them. The math is in ``templates.py``,
the host glue in ``glue.py``.
"""
from __future__ import annotations

from ...hostkit.learned_words import save_embedding
from ...hostkit.schemas import io
from ...hostkit.training_state import STATE_TOOLTIP
from . import ROW
from .glue import NODE, check_inputs, train_embedding
from .templates import TEMPLATES


class TextualInversion(io.ComfyNode):
    NAME = NODE

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditTextualInversion",
            display_name=cls.NAME,
            category="InvertEdit/personalise",
            description=("Textual Inversion (Gal et al.): learns a new word for the subject (or style) of 3-5 images, "
                         "the model and text encoder frozen: the vectors of a placeholder, trained on captions from "
                         "the reference's templates (\"a photo of a {}\"). Saves models/embeddings/<name>.safetensors: "
                         "write embedding:<name> in any CLIP Text Encode prompt (connect this node's CLIP output so "
                         "that the prompt is encoded after the file is written). SD1.x, SD2.x and SDXL (the word is learned "
                         "in both of SDXL's text encoders, its pooled vector included, as diffusers' "
                         "textual_inversion_sdxl.py). Each step encodes the batch's captions, then one UNet forward "
                         "and one backward through both."),
            inputs=[
                io.Model.Input("model", tooltip="The model the word is learned for (kept frozen)."),
                io.Clip.Input("clip", tooltip="The checkpoint's CLIP (kept frozen; SD1.x, SD2.x, or SDXL's two encoders)."),
                io.Latent.Input("images", tooltip="VAE Encode of the subject's images (paper: 3-5), one batch of one size."),
                io.String.Input("name", default="my-subject",
                                tooltip="The embedding's file name: prompts use it as embedding:<name>."),
                io.String.Input("initializer", default="object",
                                tooltip="One word of one token naming the subject's class (the reference's "
                                        "--initializer_token): the vectors start as its embedding."),
                io.Int.Input("steps", default=ROW.settings["InvertEditTextualInversion.steps"], min=0, max=100000,
                             tooltip="Training steps (diffusers' README: 3000; the script's default 5000)."),
                io.Float.Input("learning_rate", default=ROW.settings["InvertEditTextualInversion.learning_rate"], min=0.0, max=1.0, step=0.0001, round=0.00001,
                               tooltip="AdamW learning rate, constant, weight decay 1e-2 (diffusers' README: 5e-4 "
                                       "scaled by its batch of 1 x 4 accumulated steps = 0.002; the paper's 0.005 at "
                                       "batch 4 on 2 GPUs)."),
                io.Int.Input("batch_size", default=ROW.settings["InvertEditTextualInversion.batch_size"], min=1, max=64,
                             tooltip="Images per step (diffusers' README: 1 x 4 accumulated; script default 16)."),
                io.Int.Input("num_vectors", default=ROW.settings["InvertEditTextualInversion.num_vectors"], min=1, max=16,
                             tooltip="Vectors of the new word (script default 1; more can hold more detail)."),
                io.Combo.Input("templates", options=list(TEMPLATES), default="object",
                               tooltip="The captions: the reference's object templates (\"a photo of a {}\") or "
                                       "style templates (\"a painting in the style of {}\")."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=False,
                             tooltip="Seed of the batches' order, captions, flips, noises and timesteps."),
                io.String.Input("caption", default="", optional=True,
                                tooltip="One caption for every image instead of the templates, with {} where the new "
                                        "word goes (\"a red {} on a white background\"); empty: the templates."),
                io.String.Input("state_name", default="", optional=True, tooltip=STATE_TOOLTIP),
            ],
            outputs=[
                io.Clip.Output(display_name="clip",
                               tooltip="The input CLIP, once the embedding is saved: encode prompts naming "
                                       "embedding:<name> with it."),
                io.String.Output(display_name="word", tooltip="embedding:<name>, to write in prompts."),
                io.LossMap.Output(display_name="loss", tooltip="The loss at each step (Plot Loss Graph)."),
            ],
        )

    @classmethod
    def execute(cls, model, clip, images, name, initializer, steps, learning_rate, batch_size, num_vectors, templates,
                seed, caption="", state_name="") -> io.NodeOutput:
        samples, v = check_inputs(model, clip, images, name, initializer, steps, learning_rate, num_vectors, batch_size,
                                  caption)
        vectors, losses = train_embedding(model, clip, samples, initializer, steps, learning_rate, num_vectors,
                                          batch_size, (caption,) if caption else TEMPLATES[templates], seed, v,
                                          state_name)
        save_embedding(clip, name, vectors, initializer, NODE)
        return io.NodeOutput(clip.clone(), f"embedding:{name}", {"loss": list(losses)})


NODES = [TextualInversion]

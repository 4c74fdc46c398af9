"""Self-Guidance (Epstein et al., NeurIPS 2023): move or resize one object of an inverted image by guiding
the sampler with the model's own cross-attention and features (math in ``terms.py``, host side in
``glue.py``).

How to wire it (the toy workflow "Toy - Self-Guidance move" shows it):

    Load Image -> VAE Encode -> DDIM Invert (model, positive = the caption) -> INVERSION
    Self-Guidance (model, clip, prompt = the same caption, negative, inversion, word, dx, dy, scale)
        -> GUIDER, LATENT, SIGMAS
    SamplerCustomAdvanced (noise = DisableNoise, guider = GUIDER, sampler = KSamplerSelect ddim,
                           sigmas = SIGMAS, latent_image = LATENT) -> VAE Decode

``word`` names the object (one or more words of the prompt, e.g. 'circle' or 'red circle'); ``dx``/``dy``
are in image pixels (x right, y down); ``scale`` resizes it about its centre (1: same size). With a
``mask`` of the object the move is checked against it (``guidance/spatial.check_move``); without, against the
object's region read from its source attention on the inversion's last step (one model call at node time).
"""
from __future__ import annotations

from ...guidance.spatial import check_move
from ...hostkit.attention_driver import install_policy
from ...hostkit.errors import NodeInputError, check_conditioning, check_finite, check_inversion
from ...hostkit.fingerprint import conditioning_fingerprint
from ...hostkit.gradients import check_no_control, with_weight_copies
from ...hostkit.inverters import inverted_latent
from ...hostkit.layout import decoder_blocks, map_blocks
from ...hostkit.patches import on_output_blocks
from ...hostkit.sampling import check_model_family
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...hostkit.tokens import check_clip_tokenizer, phrase_positions, prompt_tokens, word_tokens
from ...inversion.methods import DDIM, FIXED_POINT
from . import NODE, ROW
from . import terms as T
from .glue import NAME, Features, SelfGuider, WordMaps, check_word_move, object_maps, warn_prompt, word_matrix

S = ROW.settings_of(NODE)


def _weight(name: str, what: str, extra: str = "") -> io.Float.Input:
    return io.Float.Input(name, default=S[name], min=0.0, max=1000.0, step=0.05,
                          tooltip=f"Weight of {what} in the energy g (default {S[name]:g}; the paper gives no weights "
                                  f"for Stable Diffusion, docs/faithfulness.md says how these were chosen){extra}; 0 "
                                  f"drops the term.")


class SelfGuidance(io.ComfyNode):
    NAME = NAME

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE,
            display_name=cls.NAME,
            category="InvertEdit/spatial",
            description=(
                "Self-Guidance (Epstein et al. 2023): moves or resizes one object of an inverted image. At every step "
                "the source's properties are read on the inversion's trajectory (the object's cross-attention centroid "
                "and size, every other word's shape, every word's appearance) and the edit is guided by the gradient "
                "of an energy g that asks for the object's centroid moved by (dx, dy), its size times scale^2, and "
                "the rest as it was: eps = eps_uncond + cfg (eps_cond - eps_uncond) + guidance sigma_t grad g. "
                "A GUIDER for SamplerCustomAdvanced with DisableNoise, KSamplerSelect ddim, this node's SIGMAS and "
                "LATENT. Costs one source row, two rows with gradients and a backward pass a step."),
            inputs=[
                io.Model.Input("model", tooltip="The model the image was inverted with."),
                io.Clip.Input("clip", tooltip="Its text encoder: the prompt is encoded with it and its words found by "
                                              "its tokenizer."),
                io.String.Input("prompt", multiline=True, default="a red circle and a blue square on a green background",
                                tooltip="The caption of the image, as the inversion got it (its words name the objects)."),
                io.Conditioning.Input("negative", tooltip="The unconditional prompt (usually empty)."),
                InversionSocket.Input("inversion", tooltip="The image's DDIM inversion (DDIM Invert or Fixed-Point "
                                                           "Invert) made with this model: its trajectory gives the "
                                                           "source's attention and features at every step."),
                io.String.Input("word", default="circle",
                                tooltip="The object to move: a word (or words) of the prompt, e.g. 'circle' or "
                                        "'red circle'; its tokens' maps are averaged."),
                io.Float.Input("dx", default=0.0, min=-8192.0, max=8192.0, step=1.0,
                               tooltip="Horizontal move in image pixels (right is positive)."),
                io.Float.Input("dy", default=0.0, min=-8192.0, max=8192.0, step=1.0,
                               tooltip="Vertical move in image pixels (down is positive)."),
                io.Float.Input("scale", default=1.0, min=0.0, max=10.0, step=0.05,
                               tooltip="Resize about the object's centre (linear: 0.5 halves its width; its size, an "
                                       "area, is pulled to scale^2 times the source's). 1 keeps the size."),
                io.Float.Input("guidance", default=S["guidance"], min=-1e6, max=1e6, step=10.0,
                               tooltip=f"v, the self-guidance weight of the paper's eq. 3 (default {S['guidance']:g}; the "
                                       f"paper gives none for Stable Diffusion: see docs/faithfulness.md). 0 samples the "
                                       f"reconstruction unguided."),
                io.Float.Input("cfg", default=S["cfg"], min=0.0, max=100.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance scale (1 + s in the paper's eq. 3; SD's usual 7.5)."),
                _weight("position_weight", "the object's centroid term |centroid - (source centroid + offset)|_1"),
                _weight("size_weight", "the object's size term |size - scale^2 source size|"),
                _weight("appearance_weight", "the appearance terms (the object's and every kept word's), |appearance - "
                                             "source appearance|"),
                _weight("shape_weight", "the kept words' shape terms |shape - source shape|"),
                _weight("moved_shape_weight", "the object's shape term |shape - source shape moved by (dx, dy) and scaled|",
                        " (a move written on the shape itself, as the paper edits layouts; 0 leaves the move to the "
                        "centroid and size terms)"),
                io.String.Input("keep_words", default="",
                                tooltip="Words whose shape and appearance stay the source's, comma-separated; empty: "
                                        "every other word of the prompt (the paper's 'all other tokens')."),
                io.Float.Input("sharpness", default=S["sharpness"], min=0.1, max=100.0, step=0.5,
                               tooltip="Sharpness s of the soft threshold of shapes, sigmoid(s (A - 0.5)) on the "
                                       f"normalised map (default {S['sharpness']:g})."),
                io.Float.Input("guide_until", default=S["guide_until"], min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps guided, from the first (default "
                                       f"{S['guide_until']:g}); the later steps are plain CFG and only refine."),
                io.Mask.Input("mask", optional=True,
                              tooltip="The object's region (optional): the move is checked against it; without it, "
                                      "against the object's source attention (above half its peak) on the inversion's "
                                      "last step."),
            ],
            outputs=[
                io.Guider.Output(),
                io.Latent.Output(display_name="latent", tooltip="The inverted latent to sample (batch 1)."),
                io.Sigmas.Output(display_name="sigmas", tooltip="The inversion's schedule, for SamplerCustomAdvanced."),
            ],
        )

    @classmethod
    def execute(cls, model, clip, prompt, negative, inversion, word, dx, dy, scale, guidance, cfg, position_weight,
                size_weight, appearance_weight, shape_weight, moved_shape_weight, keep_words, sharpness, guide_until,
                mask=None) -> io.NodeOutput:
        family = check_model_family(model, NAME)
        check_finite(NAME, dx=dx, dy=dy, scale=scale, guidance=guidance, cfg=cfg, position_weight=position_weight,
                     size_weight=size_weight, appearance_weight=appearance_weight, shape_weight=shape_weight,
                     moved_shape_weight=moved_shape_weight, sharpness=sharpness, guide_until=guide_until)
        if scale <= 0:
            raise NodeInputError(NAME, f"input 'scale' is {scale:g}; give a factor above 0 (1 keeps the size, 0.5 "
                                       f"halves it, 2 doubles it).")
        for name, value in (("position_weight", position_weight), ("size_weight", size_weight),
                            ("appearance_weight", appearance_weight), ("shape_weight", shape_weight),
                            ("moved_shape_weight", moved_shape_weight)):
            if value < 0:
                raise NodeInputError(NAME, f"input '{name}' is {value:g}; give 0 (off) or more.")
        if sharpness <= 0:
            raise NodeInputError(NAME, f"input 'sharpness' is {sharpness:g}; give a positive sharpness (default 10).")
        if not 0.0 <= guide_until <= 1.0:
            raise NodeInputError(NAME, f"input 'guide_until' is {guide_until:g}; give a fraction from 0 to 1.")
        inversion = check_inversion(NAME, inversion, model=model, methods=(DDIM, FIXED_POINT))
        check_conditioning(NAME, "negative", negative, model)
        check_no_control(NAME, "negative", negative)
        check_clip_tokenizer(clip, NAME, family.config_name)
        positive = clip.encode_from_tokens_scheduled(clip.tokenize(prompt))
        check_conditioning(NAME, "clip", positive, model)
        warn_prompt(inversion, conditioning_fingerprint(positive))
        ids, context = prompt_tokens(clip, prompt, NAME, "prompt")
        if not word.strip():
            raise NodeInputError(NAME, "input 'word' is empty; name the object to move, a word of the prompt "
                                       f"({', '.join(w for w, _ in word_tokens(clip, prompt, NAME))}).")
        object_positions = phrase_positions(clip, ids, word, "word", NAME, "prompt")
        if keep_words.strip():
            kept = [phrase_positions(clip, ids, w, "keep_words", NAME, "prompt") for w in keep_words.split(",")
                    if w.strip()]
        else:
            kept = [p for _, p in word_tokens(clip, prompt, NAME)]
        kept = [[p for p in ps if p not in object_positions] for ps in kept]
        kept = [ps for ps in kept if ps]
        latent = inversion.latent
        height, width = latent.shape[-2] * 8, latent.shape[-1] * 8
        if mask is not None:
            plane = mask if mask.ndim == 2 else mask[0]
            if tuple(plane.shape) != (height, width):
                raise NodeInputError(NAME, f"input 'mask' is {plane.shape[1]}x{plane.shape[0]} px, the inverted image "
                                           f"{width}x{height}; give a mask at the image's size.")
            check_move(NAME, mask, dx, dy, scale)
        blocks = sorted(map_blocks(model))
        words = word_matrix(object_positions, kept, context)
        if mask is None:   # the object's region from its source attention, read once now
            check_word_move(object_maps(model, words[:, :1], blocks, inversion, positive), sharpness, dx, dy, scale,
                            (height, width))
        existing = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
        taken = [key for key in existing if key[:2] in blocks]
        if taken:
            raise NodeInputError(NAME, f"the input MODEL already has cross-attention replace patches (attn2 of block "
                                       f"{taken[0]}), from another node; connect the model without them.")
        m = with_weight_copies(model)
        m = m.clone() if m is model else m
        policy = WordMaps(words)
        install_policy(m, policy, blocks, NAME, ("attn2",))
        on_output_blocks(m, Features(policy, decoder_blocks(model)[1] - 1))
        weights = T.Weights(position_weight, size_weight, appearance_weight, shape_weight, moved_shape_weight)
        guider = SelfGuider(m, policy, inversion, T.image_offset(dx, dy, width, height), scale, weights, guidance,
                            sharpness, guide_until)
        guider.set_named_conds({"positive": positive, "negative": negative})
        guider.set_cfg(cfg)
        return io.NodeOutput(guider, inverted_latent(inversion), inversion.sampling_sigmas)


NODES = [SelfGuidance]

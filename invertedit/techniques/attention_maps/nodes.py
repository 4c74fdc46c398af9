"""Attention Store: what the model attends to, per word, as heatmaps and a mask.

The node runs the prompt's conditional UNet pass at the inversion's own trajectory points
within a window of the steps, on a private clone of the model whose cross-attention records
its maps at the layers Prompt-to-Prompt's code reads (``aggregate_attention(res=16,
from_where=("up", "down"))`` and its local blend: latent/4, never the middle block; math in
``store.py``). Nothing is kept after the node returns, so its
outputs are plain IMAGE and MASK that any node can use (Latent Blend, inpainting, ...).

On a diffusion transformer (Flux.1, SD3, Qwen-Image, given a flow inversion) the maps are the image tokens'
probabilities on the text tokens in the joint attention of the blocks chosen (``dit_blocks``),
averaged over heads, blocks and the window's steps, on the image's patch grid. On Wan 2.1/2.2 (given a flow inversion
of a clip) they are its cross-attention's, averaged over the clip's latent frames too: one map per word for the clip.

The mask is the paper's local blend by default: the chosen words' maps summed, max-pooled over
3x3 cells (Prompt-to-Prompt's ``k = 1``), normalised, thresholded. The pool grows the mask by one
map cell on every side (on a 16x16 map of a 512 px image, 32 px), a margin the blend wants;
``mask_pool`` 1 gives the words' own region. Which fits depends on how far a model's maps spread:
the toy flow world's cover their object and find it (IoU >= 0.5) in 99% of scenes without the pool,
56% with it; world 2's UNet's sit on the object's core, 100% with it, 42% without
(docs/measurements.md).
"""
from __future__ import annotations

import logging

import torch.nn.functional as F
from ...hostkit.schemas import io

from ...hostkit.attention_driver import install_policy
from ...hostkit.dit_attention import dit_blocks as dit_block_keys, install_dit_policy
from ...hostkit.errors import NodeInputError, check_choice, check_conditioning, check_finite, check_inversion, check_threshold
from ...hostkit.family import model_family
from ...hostkit.layout import map_blocks
from ...hostkit.sampling import check_model_family, run_loop, to_output, with_guidance
from ...hostkit.sockets import Inversion as InversionSocket
from ...hostkit.tokens import check_clip_tokenizer, sequence_words, word_tokens
from ...hostkit.wan_attention import install_wan_policy
from .store import MapRecorder, StoreCrossMaps, StoreJointMaps, StoreMaps, local_blend_mask, normalise, word_maps

DIT_BLOCKS = ("all", "double", "single")
from ...hostkit.attention_maps import heatmaps
from . import ROW


class AttentionStore(io.ComfyNode):
    NAME = "Attention Store"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditAttentionStore",
            display_name=cls.NAME,
            category="InvertEdit/attention",
            description=("Aggregates the cross-attention maps of each word of the prompt over a window of the steps "
                         "(evaluated on the inversion's trajectory, at the layers of latent/4 resolution: Prompt-to-Prompt's "
                         "AttentionStore, as its code reads it, 16x16 for SD1.5 at 512 px) and returns them "
                         "as labelled heatmaps, plus a mask of the chosen words (the paper's local blend: 3x3 max-pool, "
                         "threshold) for Latent Blend or any node that takes a MASK."),
            inputs=[
                io.Model.Input("model", tooltip="The model the inversion was made with."),
                io.Clip.Input("clip", tooltip="Its text encoder."),
                InversionSocket.Input("inversion", tooltip="The inversion whose trajectory the maps are taken on."),
                io.String.Input("prompt", multiline=True, default="a red circle on a blue background",
                                tooltip="The prompt whose words' maps are shown (usually the source prompt)."),
                io.String.Input("words", default="circle",
                                tooltip="Words of the prompt for the mask, comma-separated (empty: all words)."),
                io.Float.Input("start", default=0.0, min=0.0, max=1.0, step=0.05,
                               tooltip="First step of the window, as a fraction of the sampling steps."),
                io.Float.Input("end", default=1.0, min=0.0, max=1.0, step=0.05,
                               tooltip="End of the window, as a fraction of the sampling steps."),
                io.Float.Input("threshold", default=ROW.settings["InvertEditAttentionStore.threshold"], min=0.0, max=1.0, step=0.01,
                               tooltip="Mask threshold on the max-pooled, normalised maps (paper: 0.3)."),
                io.Image.Input("image", optional=True, tooltip="The source image, to draw the heatmaps over."),
                io.Combo.Input("dit_blocks", options=list(DIT_BLOCKS), default="all", optional=True,
                               tooltip="Flux.1 / SD3 / Qwen-Image only: the blocks whose joint attention is read: all, double "
                                       "(Flux's double-stream, SD3's and Qwen-Image's joint blocks) or single (Flux's "
                                       "single-stream)."),
                io.Int.Input("mask_pool", default=3, min=1, max=9, step=2, optional=True,
                             tooltip="The mask's max-pool window over the maps' cells, before the threshold (paper's "
                                     "local blend: 3, which grows the mask by one cell on every side); 1: the words' "
                                     "own region, no margin."),
            ],
            outputs=[
                io.Image.Output(display_name="heatmaps", tooltip="One labelled heatmap per word of the prompt."),
                io.Mask.Output(display_name="mask", tooltip="The chosen words' region, at image resolution."),
            ],
        )

    @classmethod
    def execute(cls, model, clip, inversion, prompt, words, start, end, threshold, image=None,
                dit_blocks="all", mask_pool=3) -> io.NodeOutput:
        dit = model_family(model).flow_editable
        if not dit:
            check_model_family(model, AttentionStore.NAME)
        check_inversion(AttentionStore.NAME, inversion, model=model)
        check_finite(AttentionStore.NAME, start=start, end=end, threshold=threshold)
        check_choice(AttentionStore.NAME, "dit_blocks", dit_blocks, DIT_BLOCKS)
        if isinstance(mask_pool, bool) or not isinstance(mask_pool, int) or mask_pool < 1 or mask_pool % 2 == 0:
            raise NodeInputError(AttentionStore.NAME, f"input 'mask_pool' is {mask_pool!r}; give an odd window of map "
                                                      f"cells: 1 (none), 3 (the paper's local blend), 5, 7 or 9.")
        check_threshold(AttentionStore.NAME, "threshold", threshold, "the maps are normalised to a maximum of 1",
                        "the mask would be empty", "the mask would be the whole image", 0.3)
        if not 0.0 <= start < end <= 1.0:
            raise NodeInputError(AttentionStore.NAME, f"inputs 'start' ({start}) and 'end' ({end}) leave no steps to "
                                                      f"record maps at; give 0 <= start < end <= 1 (e.g. start 0, end 1).")
        cond = clip.encode_from_tokens_scheduled(clip.tokenize(prompt))
        check_conditioning(AttentionStore.NAME, "clip", cond, model)
        if not dit:   # SD's words are CLIP's tokens (the width check passes a T5 or Qwen2.5-VL as wide as its context)
            check_clip_tokenizer(clip, AttentionStore.NAME, model_family(model).config_name)
        if dit:
            tokens = sequence_words(clip, prompt, AttentionStore.NAME, model_family(model).text_sequence,
                                    cond[0][0].shape[1])
        else:
            tokens = word_tokens(clip, prompt, AttentionStore.NAME)
        if not tokens:
            raise NodeInputError(AttentionStore.NAME, "input 'prompt' has no words.")
        chosen = [w.strip() for w in words.split(",") if w.strip()] or [w for w, _ in tokens]
        missing = [w for w in chosen if w not in [t for t, _ in tokens]]
        if missing:
            raise NodeInputError(AttentionStore.NAME, f"input 'words': {missing} not in the prompt ({[t for t, _ in tokens]}).")
        sigmas = inversion.sampling_sigmas
        steps = len(sigmas) - 1
        window = [i for i in range(steps) if start * steps <= i < max(end * steps, start * steps + 1)]
        if not window:
            raise NodeInputError(AttentionStore.NAME, f"inputs 'start' ({start}) and 'end' ({end}) select none of the "
                                                      f"inversion's {steps} steps; lower 'start' (e.g. start 0, end 1).")
        latent_hw = tuple(inversion.latent.shape[-2:])
        m = model.clone()
        if dit:
            patch = model_family(model).patch_size
            recorder = MapRecorder(latent_hw, side=-(-latent_hw[0] // patch))   # the patch grid
            kinds = {"all": ("double_block", "single_block"), "double": ("double_block",),
                     "single": ("single_block",)}[dit_blocks]
            blocks = dit_block_keys(model, kinds)
            if not blocks:
                raise NodeInputError(AttentionStore.NAME, f"input 'dit_blocks' is '{dit_blocks}', but this "
                                                          f"{model_family(model).config_name} model has no such blocks; "
                                                          f"choose all or double.")
            if model_family(model).layout == "dit-cross":   # Wan: its cross-attention's maps, over the clip's frames
                install_wan_policy(m, StoreCrossMaps(recorder), blocks, AttentionStore.NAME)
            else:
                install_dit_policy(m, StoreJointMaps(recorder), blocks, AttentionStore.NAME)
            if model_family(model).distilled_guidance:   # as the inversion evaluated the model
                cond = with_guidance(cond, float(inversion.settings.get("guidance", 1.0)))
        else:   # the reference's res-16 layers, as local blend reads:
            recorder = MapRecorder(latent_hw, side=max(latent_hw[0] // 4, 8))
            install_policy(m, StoreMaps(recorder), sorted(map_blocks(model)), AttentionStore.NAME, ("attn2",))

        def loop(denoise, x, run_sigmas, step_callback):
            for n, i in enumerate(window):
                denoise.part("positive", inversion.trajectory[i].to(x), run_sigmas[i].to(x))
                step_callback(n, len(window), x)
            return x

        run_loop(m, cond, None, 1.0, inversion.latent, sigmas, loop)
        maps = normalise(word_maps(recorder.average(), [idx for _, idx in tokens]))
        size = (latent_hw[0] * 8, latent_hw[1] * 8)
        chosen_maps = maps[[i for i, (w, _) in enumerate(tokens) if w in chosen]]
        mask = local_blend_mask(chosen_maps, threshold, mask_pool)
        mask = F.interpolate(mask[None, None], size=size, mode="nearest")[0]
        if not words.strip():
            covered = float(mask.float().mean())  # sampling-path-ok: once, after the maps are read
            logging.warning("%s: input 'words' is empty, so the mask is every word of the prompt's (%d words), %.0f%% "
                            "of the image: a region for an edit is one object's; name its words (e.g. '%s').",
                            AttentionStore.NAME, len(tokens), 100 * covered, tokens[min(1, len(tokens) - 1)][0])
        return io.NodeOutput(heatmaps(maps, [w for w, _ in tokens], size, image), to_output(mask))


NODES = [AttentionStore]

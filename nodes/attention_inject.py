"""Attention Inject: Prompt-to-Prompt on a source/target pair (math in ``attention/``).

The node encodes the source and target prompts with the CLIP (token counts come from the
host's tokenizer), returns them as one batch-2 CONDITIONING (row 0 source, row 1 target) and
the LATENT pair, and patches every transformer block of the UNet (found from the model, so
SD1.x, SD2.x and SDXL layouts all work) so that, in the conditional rows of each pair, the
target takes the source's attention maps on the scheduled steps. Source and target run in
one sampler call; maps exist only inside the attention call that uses them.
"""
from __future__ import annotations

import logging
import math

import comfy.model_patcher
import comfy.patcher_extension
import torch
from comfy.ldm.modules.attention import SpatialTransformer, optimized_attention
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, Upsample
from comfy_api.latest import io

from ..attention.align import refine_mapper, replacement_mapper
from ..attention.local_blend import LocalBlendMaps, blend_latents, blend_start
from ..attention.maps import attend, attention_probs, token_grid
from ..attention.prompt_to_prompt import (SELF_LAYERS, ReplaceSchedule, cross_steps, equalizer, refined_maps,
                                          replaced_maps, self_steps)
from ..inversion.direct import denoised_onto, euler_step
from .host_sampling import NodeInputError, check_model_family

NAME = "Attention Inject"
END_TOKEN = 49407  # CLIP's end-of-text token (every SD text encoder uses the CLIP vocabulary)


def transformer_blocks(model) -> list[tuple[str, int]]:
    """The (block, number) keys of the UNet blocks holding a SpatialTransformer, as the host
    names them in ``transformer_options["block"]``."""
    unet = model.model.diffusion_model
    keys = []
    for name, blocks in (("input", unet.input_blocks), ("output", unet.output_blocks)):
        for i, block in enumerate(blocks):
            if any(isinstance(m, SpatialTransformer) for m in block):
                keys.append((name, i))
    if any(isinstance(m, SpatialTransformer) for m in unet.middle_block):
        keys.append(("middle", 0))
    return keys


def attention_levels(model) -> dict[tuple[str, int], int]:
    """Each input/output block holding a SpatialTransformer, with its downsampling factor."""
    unet = model.model.diffusion_model
    levels, factor = {}, 1
    for i, block in enumerate(unet.input_blocks):
        if any(isinstance(m, Downsample) for m in block):
            factor *= 2
        if any(isinstance(m, SpatialTransformer) for m in block):
            levels[("input", i)] = factor
    for i, block in enumerate(unet.output_blocks):
        if any(isinstance(m, SpatialTransformer) for m in block):
            levels[("output", i)] = factor
        if any(isinstance(m, Upsample) for m in block):
            factor //= 2
    return levels


def mask_factor(levels: dict[tuple[str, int], int]) -> int:
    """The maps' downsampling factor: 4 (the reference's latent/4) when the model attends there,
    else its coarsest attention level."""
    factors = set(levels.values())
    return 4 if 4 in factors else max(factors)


def prompt_tokens(clip, text: str, node: str = NAME) -> tuple[list[int], int]:
    """(the prompt's token ids from the start token to the end token, the context length), by
    the CLIP's own tokenizer (its first text encoder's: every SD encoder shares CLIP's vocabulary)."""
    tokens = clip.tokenize(text)
    chunks = next(iter(tokens.values()))
    if len(chunks) > 1:
        raise NodeInputError(node, f"the prompt '{text[:40]}...' is longer than one 77-token chunk; use at most 75 tokens.")
    ids = [t[0] for t in chunks[0]]
    end = ids.index(END_TOKEN, 1) if END_TOKEN in ids[1:] else len(ids) - 1
    return ids[:end + 1], len(ids)



def word_tokens(clip, prompt: str) -> list[tuple[str, list[int]]]:
    """Each word of the prompt (split at spaces, as the reference code does) with its token
    positions, in order, by the CLIP's tokenizer."""
    ids, _ = prompt_tokens(clip, prompt)
    out, cursor = [], 1
    for word in prompt.split():
        w = prompt_tokens(clip, word)[0][1:-1]
        for i in range(cursor, len(ids) - len(w) + 1):
            if w and ids[i:i + len(w)] == w:
                out.append((word, list(range(i, i + len(w)))))
                cursor = i + len(w)
                break
    return out


def phrase_positions(clip, target_ids: list[int], phrase: str, name: str, node: str = NAME,
                     prompt: str = "target prompt") -> list[int]:
    """Every token position of ``phrase`` (one or more words) in the prompt ``target_ids``;
    refuses a phrase that is not in the prompt, naming input ``name``."""
    word_ids = prompt_tokens(clip, phrase.strip(), node)[0][1:-1]
    hits = [i for i in range(len(target_ids) - len(word_ids) + 1) if target_ids[i:i + len(word_ids)] == word_ids]
    if not word_ids or not hits:
        raise NodeInputError(node, f"input '{name}': '{phrase.strip()}' is not a word of the {prompt}.")
    return [j for i in hits for j in range(i, i + len(word_ids))]


def word_positions(clip, target_ids: list[int], spec: str, name: str = "reweight",
                   example: str = "'square:2, blue:0.5'", value: str = "scale") -> dict[int, float]:
    """Token positions in the target prompt and their values from ``"word:value, word:value"``
    (input ``name`` of the node). Values must be finite numbers."""
    positions: dict[int, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        word, sep, scale = item.rpartition(":")
        try:
            number = float(scale)
        except ValueError:
            number, word = None, ""
        if not sep or not word.strip() or number is None:
            raise NodeInputError(NAME, f"input '{name}': '{item}' is not 'word:{value}' (e.g. {example}).")
        if not math.isfinite(number):
            raise NodeInputError(NAME, f"input '{name}': '{item}' is not a finite number (e.g. {example}).")
        for j in phrase_positions(clip, target_ids, word, name):
            positions[j] = number
    return positions


def blend_word_positions(clip, ids: list[int], words: str, name: str, prompt: str) -> list[int]:
    """Token positions of comma-separated blend words in a prompt (input ``name``)."""
    return sorted({j for w in words.split(",") if w.strip() for j in phrase_positions(clip, ids, w, name, prompt=prompt)})


def encode_pair(clip, source: str, target: str) -> list:
    """One CONDITIONING of batch 2: row 0 the source prompt, row 1 the target."""
    conds = []
    for text in (source, target):
        conds.append(clip.encode_from_tokens_scheduled(clip.tokenize(text))[0])
    emb = torch.cat([conds[0][0], conds[1][0]])
    extra = {}
    if conds[0][1].get("pooled_output") is not None:
        extra["pooled_output"] = torch.cat([conds[0][1]["pooled_output"], conds[1][1]["pooled_output"]])
    return [[emb, extra]]


def prepare_pair_model(model, latent: dict, kinds: tuple[str, ...], node: str):
    """The shared set-up of the pair editors: a clone of the model to patch, the UNet's
    transformer blocks, and the LATENT pair. Refuses a batch that is not one image and a model
    that already replaces these attention layers (the patch would be dropped)."""
    samples = latent["samples"]
    if samples.shape[0] != 1:
        raise NodeInputError(node, f"input 'latent' has a batch of {samples.shape[0]}; connect one inverted image.")
    blocks = transformer_blocks(model)
    existing = model.model_options.get("transformer_options", {}).get("patches_replace", {})
    taken = [(kind, key) for kind in kinds for key in existing.get(kind, {}) if key[:2] in blocks or key in blocks]
    if taken:
        raise NodeInputError(node, f"the input MODEL already has attention replace patches ({taken[0][0]} of block "
                                   f"{taken[0][1]}), from another node; they would be dropped. Apply {node} to the "
                                   f"model before that node's patch, or without it.")
    return model.clone(), blocks, {"samples": samples.repeat(2, 1, 1, 1)}


def pair_rows(q: torch.Tensor, extra_options: dict, node: str) -> tuple[list, int]:
    """The chunks (``cond_or_uncond``) of an attention call and their row count, which must be
    the (source, target) pair."""
    chunks = extra_options.get("cond_or_uncond", [0])
    rows = q.shape[0] // len(chunks)
    if rows != 2:
        raise NodeInputError(node, f"the sampler runs a batch of {rows}; sample the LATENT pair and the CONDITIONING "
                                   f"pair from this node (row 0 source, row 1 target).")
    return chunks, rows


def sampling_step(extra_options: dict) -> tuple[int, int]:
    """(step index, number of steps) of the running sampler, from the host's transformer options."""
    run = extra_options["sample_sigmas"]
    sigma = extra_options["sigmas"].reshape(-1)[0]
    hits = torch.nonzero(torch.isclose(run.float(), sigma.float(), rtol=1e-4, atol=1e-6)).flatten()
    return (int(hits[0]) if len(hits) else len(run) - 1), len(run) - 1


BLEND_KEY = "invertedit_local_blend"   # transformer_options key of the running local blend


class PromptToPromptPatch:
    """attn1/attn2 replace patch: in the conditional chunk, row pair (source, target), the target
    takes the source's maps when the schedule says so; everything else is plain attention. With
    a local blend running, cross-attention calls at ``blend_blocks`` also add both rows' maps
    (the target's as edited) to the run's ``LocalBlendMaps``."""

    def __init__(self, schedule: ReplaceSchedule, kind: str, mapper=None, alphas=None, scales=None,
                 swap=None, blend_blocks: frozenset = frozenset()):
        self.schedule, self.kind = schedule, kind
        self.mapper, self.alphas = mapper, alphas   # refine's token alignment (cross-attention only)
        self.scales = scales                        # reweight's equalizer (cross-attention only)
        self.swap = swap                            # replace's word-swap matrix when token counts differ
        self.blend_blocks = blend_blocks

    def target_maps(self, q, k, heads, step, steps):
        if self.kind == "self":
            return replaced_maps(q, k, heads)
        words = self.schedule.word_alphas(step, steps)
        if self.mapper is not None:
            return refined_maps(q, k, heads, self.mapper, self.alphas, self.scales, words)
        return replaced_maps(q, k, heads, self.scales, words, self.swap)

    def __call__(self, q, k, v, extra_options):
        heads = extra_options["n_heads"]
        out = optimized_attention(q, k, v, heads)
        chunks, rows = pair_rows(q, extra_options, NAME)
        step, steps = sampling_step(extra_options)
        latent_hw = tuple(extra_options["original_shape"][-2:])
        inject = self.schedule.injects(self.kind, step, steps, q.shape[1], latent_hw[0] * latent_hw[1])
        blend = extra_options.get(BLEND_KEY) if tuple(extra_options.get("block", ())) in self.blend_blocks else None
        if not inject and blend is None:
            return out
        out = out.clone()
        for c, kind in enumerate(chunks):
            if kind != 0:   # conditional rows: the paper edits these only
                continue
            s = c * rows
            qq, kk = q[s:s + 2], k[s:s + 2]
            maps = self.target_maps(qq, kk, heads, step, steps) if inject else attention_probs(qq[1:2], kk[1:2], heads)
            if inject:
                out[s + 1] = attend(maps, v[s + 1:s + 2])[0].to(out.dtype)
            if blend is not None:
                blend.add(attention_probs(qq[:1], kk[:1], heads), maps, token_grid(latent_hw, q.shape[1]))
        return out


class LocalBlendStep:
    """Post-CFG function of the local blend: from its start step on, the target's prediction is
    the one whose DDIM/Euler step lands on ``source + mask * (target - source)``, the mask made
    from the run's maps so far (``attention/local_blend.py``). Runs after a Direct Inversion's
    correction, so the source is the corrected one, as in the reference."""

    def __init__(self, start: float):
        self.start = start

    def __call__(self, args: dict) -> torch.Tensor:
        denoised, x, sigma = args["denoised"], args["input"], args["sigma"]
        options = args["model_options"]["transformer_options"]
        blend = options.get(BLEND_KEY)
        step, steps = sampling_step({"sample_sigmas": options["sample_sigmas"], "sigmas": sigma})
        if blend is None or step < blend_start(self.start, steps):
            return denoised
        if x.shape[0] != 2:
            raise NodeInputError(NAME, f"the sampler runs a batch of {x.shape[0]}; the local blend works on the "
                                       f"LATENT pair from this node (row 0 source, row 1 target).")
        sigma_next = options["sample_sigmas"][step + 1].to(x)
        mask = blend.mask(tuple(x.shape[-2:])).to(x)
        nxt_s, nxt_t = (euler_step(x[i:i + 1], denoised[i:i + 1], sigma[0], sigma_next) for i in (0, 1))
        out = denoised.clone()
        out[1:2] = denoised_onto(x[1:2], sigma[0], sigma_next, blend_latents(nxt_s, nxt_t, mask))
        return out


class PromptToPromptRun:
    """OUTER_SAMPLE wrapper: a fresh local blend state for each sampling run (node outputs are
    cached and re-used), and one log line with the step counts the run will use."""

    def __init__(self, schedule: ReplaceSchedule, blend: tuple[list[int], list[int], float, float] | None):
        self.schedule, self.blend = schedule, blend

    def __call__(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        guider = executor.class_obj
        original = guider.model_options
        steps = len(sigmas) - 1
        first, stop = self_steps(self.schedule.self_start, self.schedule.self_, steps)
        note = (f"{NAME}: {steps} steps: cross-attention maps injected in the first "
                f"{cross_steps(self.schedule.cross, steps)}, self-attention in steps {first} to {stop - 1}")
        try:
            guider.model_options = comfy.model_patcher.create_model_options_clone(original)
            if self.blend is not None:
                source, target, threshold, start = self.blend
                guider.model_options["transformer_options"][BLEND_KEY] = LocalBlendMaps(source, target, threshold)
                note += f", local blend after each step from step {blend_start(start, steps)}"
            logging.info(note)
            return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
        finally:
            guider.model_options = original


def blend_blocks(model) -> frozenset:
    """The blocks whose cross-attention maps make the local blend mask: those at a quarter of the
    latent's resolution (the reference's ``down_cross[2:4] + up_cross[:3]`` at SD1.5 512 px),
    or the coarsest attention level of a model without one."""
    levels = attention_levels(model)
    factor = mask_factor(levels)
    return frozenset(key for key, f in levels.items() if f == factor)


STEP_COUNTS = ("Steps counted as the reference code does: of N sampling steps, cross-attention maps are injected in the "
               "first int(f * (N + 1)) steps, self-attention maps in the first int(f * N) (50 steps at 0.8: 40; 15 steps "
               "at 0.1: 1). The sampler's log says the counts of each run.")


class AttentionInject(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditAttentionInject",
            display_name=NAME,
            category="InvertEdit/attention",
            description=("Prompt-to-Prompt (Hertz et al.), as its reference code does it: the target prompt's branch takes "
                         "the source branch's attention maps, so the image keeps its layout while the words change "
                         "(replace, refine), chosen words' maps can be scaled (reweight), and with blend words the "
                         "target follows the source outside the words' attention (local blend). Outputs the patched "
                         "MODEL, the source/target CONDITIONING pair and the LATENT pair for one sampler run; combine "
                         "with an inversion (Direct Inversion keeps the source row exact). " + STEP_COUNTS),
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with (patches on it are kept)."),
                io.Clip.Input("clip", tooltip="Its text encoder: both prompts are encoded and their tokens compared."),
                io.Latent.Input("latent", tooltip="The inverted latent (e.g. DDIM Invert's LATENT); it is paired."),
                io.String.Input("source_prompt", multiline=True, default="a red circle on a blue background",
                                tooltip="The prompt the image was inverted with."),
                io.String.Input("target_prompt", multiline=True, default="a red square on a blue background",
                                tooltip="The edited prompt: words swapped one for one (replace) or added/changed (refine)."),
                io.Combo.Input("mode", options=list(MODES), default="replace",
                               tooltip="replace: words swapped one for one, the same number of words; a swapped word's "
                                       "tokens take the source word's maps, spread evenly when their token counts differ "
                                       "(the paper's AttentionReplace). refine: words added or changed; tokens aligned "
                                       "between the prompts keep the source's maps, new ones their own (AttentionRefine)."),
                io.String.Input("reweight", default="",
                                tooltip="Scale words' cross-attention maps in the target while cross-attention is injected: "
                                        "'word:scale, ...' with words of the target prompt (> 1 stronger, < 1 weaker, "
                                        "negative inverts; paper: e.g. 2 to 5). Combines with replace or refine; empty: none."),
                io.Float.Input("cross_replace", default=0.8, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose cross-attention maps are injected (paper: 0.4-0.8; "
                                       "PIE-Bench: 0.4): the first int(f * (N + 1)) of N steps."),
                io.String.Input("cross_replace_words", default="", optional=True,
                                tooltip="Per-word cross-attention schedules, 'word:fraction, ...' with words of the target "
                                        "prompt (paper: e.g. a swapped word at 0.4 while the rest keep cross_replace); "
                                        "each word's maps are injected in the first int(f * (N + 1)) steps; empty: every "
                                        "word follows cross_replace."),
                io.Float.Input("self_replace", default=0.4, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose self-attention maps are injected (paper: 0.4-0.6; "
                                       "PIE-Bench: 0.6): the first int(f * N) of N steps."),
                io.Combo.Input("self_replace_layers", options=list(SELF_LAYERS), default="coarser than latent", optional=True,
                               tooltip="Which layers' self-attention is replaced, relative to the latent so it follows "
                                       "the image size. 'coarser than latent' (reference code, PIE-Bench): layers of at "
                                       "most a quarter of the latent's tokens (SD1.5 512 px: 32x32 and coarser; SDXL "
                                       "1024 px: 64x64 and 32x32). 'latent/4 and coarser': the original generation "
                                       "notebook's 16x16 at 512 px. 'all': every layer."),
                io.String.Input("blend_source_words", default="", optional=True,
                                tooltip="Local blend (paper's LocalBlend): words of the source prompt whose attention "
                                        "marks the edited region, comma-separated (PIE-Bench's blended word, e.g. "
                                        "'circle'). Empty (with blend_target_words empty): no local blend."),
                io.String.Input("blend_target_words", default="", optional=True,
                                tooltip="Local blend: words of the target prompt whose attention marks the edited region "
                                        "(e.g. 'square'). The mask is the OR of the source's and the target's."),
                io.Float.Input("blend_threshold", default=0.3, min=0.0, max=1.0, step=0.01, optional=True,
                               tooltip="Local blend: threshold on the max-pooled, normalised maps (paper: 0.3)."),
                io.Float.Input("blend_start", default=0.2, min=0.0, max=1.0, step=0.05, optional=True,
                               tooltip="Local blend: fraction of the steps before blending starts (paper: 0.2); the "
                                       "latents are blended after each step from step int(f * N) on."),
            ],
            outputs=[
                io.Model.Output(tooltip="A clone of the model with the attention patches."),
                io.Conditioning.Output(display_name="positive", tooltip="Source and target prompts as one batch of 2."),
                io.Latent.Output(display_name="latent", tooltip="The latent twice: row 0 source, row 1 target."),
            ],
        )

    @classmethod
    def execute(cls, model, clip, latent, source_prompt, target_prompt, mode, reweight, cross_replace,
                self_replace, cross_replace_words="", self_replace_layers="coarser than latent",
                blend_source_words="", blend_target_words="", blend_threshold=0.3, blend_start=0.2) -> io.NodeOutput:
        check_model_family(model, NAME)
        check_choice(NAME, "mode", mode, MODES)
        check_choice(NAME, "self_replace_layers", self_replace_layers, SELF_LAYERS)
        for name, value in (("cross_replace", cross_replace), ("self_replace", self_replace),
                            ("blend_threshold", blend_threshold), ("blend_start", blend_start)):
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise NodeInputError(NAME, f"input '{name}' is {value}; use a fraction between 0 and 1.")
        (src_ids, length), (tgt_ids, _) = prompt_tokens(clip, source_prompt), prompt_tokens(clip, target_prompt)
        mapper = alphas = swap = None
        if mode == "replace" and len(src_ids) != len(tgt_ids):
            swap = word_swap(clip, source_prompt, target_prompt, length)
        if mode == "refine":
            mapper, alphas = refine_mapper(src_ids, tgt_ids, length)
        positions = word_positions(clip, tgt_ids, reweight)
        scales = equalizer(length, positions) if positions else None
        fractions = word_positions(clip, tgt_ids, cross_replace_words or "", "cross_replace_words", "'square:0.4'",
                                   "fraction")
        if any(not 0.0 <= f <= 1.0 for f in fractions.values()):
            raise NodeInputError(NAME, "input 'cross_replace_words': fractions are between 0 and 1 (e.g. 'square:0.4').")
        schedule = ReplaceSchedule(cross=cross_replace, self_=self_replace, self_layers=SELF_LAYERS[self_replace_layers],
                                   words=tuple(sorted(fractions.items())), length=length)
        blend = None
        if (blend_source_words or "").strip() or (blend_target_words or "").strip():
            blend = (blend_word_positions(clip, src_ids, blend_source_words or "", "blend_source_words", "source prompt"),
                     blend_word_positions(clip, tgt_ids, blend_target_words or "", "blend_target_words", "target prompt"),
                     blend_threshold, blend_start)
        m, blocks, pair_latent = prepare_pair_model(model, latent, ("attn1", "attn2"), NAME)
        at_blend = blend_blocks(model) if blend is not None else frozenset()
        for block, number in blocks:
            m.set_model_attn1_replace(PromptToPromptPatch(schedule, "self"), block, number)
            m.set_model_attn2_replace(PromptToPromptPatch(schedule, "cross", mapper, alphas, scales, swap, at_blend),
                                      block, number)
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, BLEND_KEY, PromptToPromptRun(schedule, blend))
        if blend is not None:
            m.set_model_sampler_post_cfg_function(LocalBlendStep(blend_start))
        return io.NodeOutput(m, encode_pair(clip, source_prompt, target_prompt), pair_latent)


MODES = ("replace", "refine")


def check_choice(node: str, name: str, value: str, options) -> None:
    """A dropdown value the host did not check (V3 combos accept anything): refuse one not offered."""
    if value not in options:
        raise NodeInputError(node, f"input '{name}' is '{value}'; choose one of {', '.join(repr(o) for o in options)}.")


def word_swap(clip, source: str, target: str, length: int) -> torch.Tensor:
    """Replace's word-swap matrix for prompts whose swapped words tokenize to different counts."""
    src, tgt = word_tokens(clip, source), word_tokens(clip, target)
    if len(src) != len(tgt) or len(src) != len(source.split()) or len(tgt) != len(target.split()):
        raise NodeInputError(NAME, f"mode 'replace' swaps words one for one, but the source prompt has {len(source.split())} "
                                   f"words and the target {len(target.split())}; swap words one for one, or use mode "
                                   f"'refine' to add or remove words.")
    return replacement_mapper([p for _, p in src], [p for _, p in tgt], [a != b for (a, _), (b, _) in zip(src, tgt)],
                              length)


NODES = [AttentionInject]

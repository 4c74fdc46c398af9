"""Attention Inject: Prompt-to-Prompt on a source/target pair (math in ``attention/``).

The node encodes the source and target prompts with the CLIP (token counts come from the
host's tokenizer), returns them as one batch-2 CONDITIONING (row 0 source, row 1 target) and
the LATENT pair, and patches every transformer block of the UNet (found from the model, so
SD1.x, SD2.x and SDXL layouts all work) so that, in the conditional rows of each pair, the
target takes the source's attention maps on the scheduled steps. Source and target run in
one sampler call; maps exist only inside the attention call that uses them.
"""
from __future__ import annotations

import torch
from comfy.ldm.modules.attention import SpatialTransformer, optimized_attention
from comfy_api.latest import io

from ..attention.align import refine_mapper
from ..attention.prompt_to_prompt import ReplaceSchedule, equalizer, refine_target, replace_target
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



def word_positions(clip, target_ids: list[int], spec: str, name: str = "reweight",
                   example: str = "'square:2, blue:0.5'", value: str = "scale") -> dict[int, float]:
    """Token positions in the target prompt and their values from ``"word:value, word:value"``
    (input ``name`` of the node)."""
    positions: dict[int, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        word, sep, scale = item.rpartition(":")
        try:
            number = float(scale)
        except ValueError:
            number, word = None, ""
        if not sep or not word.strip() or number is None:
            raise NodeInputError(NAME, f"input '{name}': '{item}' is not 'word:{value}' (e.g. {example}).")
        word_ids, _ = prompt_tokens(clip, word.strip())
        word_ids = word_ids[1:-1]
        hits = [i for i in range(len(target_ids) - len(word_ids) + 1) if target_ids[i:i + len(word_ids)] == word_ids]
        if not word_ids or not hits:
            raise NodeInputError(NAME, f"input '{name}': '{word.strip()}' is not a word of the target prompt.")
        for i in hits:
            for j in range(i, i + len(word_ids)):
                positions[j] = number
    return positions


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


class PromptToPromptPatch:
    """attn1/attn2 replace patch: in the conditional chunk, row pair (source, target), the target
    takes the source's maps when the schedule says so; everything else is plain attention."""

    def __init__(self, schedule: ReplaceSchedule, kind: str, mapper=None, alphas=None, scales=None):
        self.schedule, self.kind = schedule, kind
        self.mapper, self.alphas = mapper, alphas   # refine's token alignment (cross-attention only)
        self.scales = scales                        # reweight's equalizer (cross-attention only)

    def __call__(self, q, k, v, extra_options):
        heads = extra_options["n_heads"]
        out = optimized_attention(q, k, v, heads)
        chunks, rows = pair_rows(q, extra_options, NAME)
        step, steps = sampling_step(extra_options)
        if not self.schedule.injects(self.kind, step, steps, q.shape[1]):
            return out
        out = out.clone()
        for c, kind in enumerate(chunks):
            if kind == 0:   # conditional rows: the paper edits these only
                s = c * rows
                if self.kind == "self":
                    edited = replace_target(q[s:s + 2], k[s:s + 2], v[s:s + 2], heads)
                elif self.mapper is not None:
                    edited = refine_target(q[s:s + 2], k[s:s + 2], v[s:s + 2], heads, self.mapper, self.alphas, self.scales,
                                           self.schedule.word_alphas(step, steps))
                else:
                    edited = replace_target(q[s:s + 2], k[s:s + 2], v[s:s + 2], heads, self.scales,
                                            self.schedule.word_alphas(step, steps))
                out[s + 1] = edited[0].to(out.dtype)
        return out


class AttentionInject(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditAttentionInject",
            display_name=NAME,
            category="InvertEdit/attention",
            description=("Prompt-to-Prompt (Hertz et al.): the target prompt's branch takes the source branch's attention "
                         "maps, so the image keeps its layout while the words change (replace, refine), and chosen "
                         "words' maps can be scaled (reweight). Outputs the patched MODEL, the "
                         "source/target CONDITIONING pair and the LATENT pair for one sampler run; combine with an "
                         "inversion (Direct Inversion keeps the source row exact)."),
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with (patches on it are kept)."),
                io.Clip.Input("clip", tooltip="Its text encoder: both prompts are encoded and their tokens compared."),
                io.Latent.Input("latent", tooltip="The inverted latent (e.g. DDIM Invert's LATENT); it is paired."),
                io.String.Input("source_prompt", multiline=True, default="a red circle on a blue background",
                                tooltip="The prompt the image was inverted with."),
                io.String.Input("target_prompt", multiline=True, default="a red square on a blue background",
                                tooltip="The edited prompt: words swapped, same token count (replace)."),
                io.Combo.Input("mode", options=["replace", "refine"], default="replace",
                               tooltip="replace: word swap with the same token count (the paper's AttentionReplace). "
                                       "refine: words added or changed; tokens aligned between the prompts keep the "
                                       "source's maps, new ones their own (AttentionRefine)."),
                io.String.Input("reweight", default="",
                                tooltip="Scale words' cross-attention maps in the target: 'word:scale, ...' with words of "
                                        "the target prompt (> 1 stronger, < 1 weaker, negative inverts; paper: e.g. 2 to "
                                        "5). Combines with replace or refine; empty: none."),
                io.Float.Input("cross_replace", default=0.8, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose cross-attention maps are injected (paper: 0.4-0.8)."),
                io.String.Input("cross_replace_words", default="", optional=True,
                                tooltip="Per-word cross-attention schedules, 'word:fraction, ...' with words of the target "
                                        "prompt (paper: e.g. a swapped word at 0.4 while the rest keep cross_replace); "
                                        "empty: every word follows cross_replace."),
                io.Float.Input("self_replace", default=0.4, min=0.0, max=1.0, step=0.05,
                               tooltip="Fraction of the steps whose self-attention maps (layers of at most 16x16 tokens) "
                                       "are injected (paper: 0.4-0.6)."),
            ],
            outputs=[
                io.Model.Output(tooltip="A clone of the model with the attention patches."),
                io.Conditioning.Output(display_name="positive", tooltip="Source and target prompts as one batch of 2."),
                io.Latent.Output(display_name="latent", tooltip="The latent twice: row 0 source, row 1 target."),
            ],
        )

    @classmethod
    def execute(cls, model, clip, latent, source_prompt, target_prompt, mode, reweight, cross_replace,
                self_replace, cross_replace_words="") -> io.NodeOutput:
        check_model_family(model, NAME)
        (src_ids, length), (tgt_ids, _) = prompt_tokens(clip, source_prompt), prompt_tokens(clip, target_prompt)
        mapper = alphas = None
        if mode == "replace" and len(src_ids) != len(tgt_ids):
            raise NodeInputError(NAME, f"mode 'replace' swaps words of the same token count, but the source prompt has "
                                       f"{len(src_ids) - 2} tokens and the target {len(tgt_ids) - 2}; swap words one for "
                                       f"one, or use mode 'refine'.")
        if mode == "refine":
            mapper, alphas = refine_mapper(src_ids, tgt_ids, length)
        positions = word_positions(clip, tgt_ids, reweight)
        scales = equalizer(length, positions) if positions else None
        fractions = word_positions(clip, tgt_ids, cross_replace_words or "", "cross_replace_words", "'square:0.4'",
                                   "fraction")
        if any(not 0.0 <= f <= 1.0 for f in fractions.values()):
            raise NodeInputError(NAME, "input 'cross_replace_words': fractions are between 0 and 1 (e.g. 'square:0.4').")
        schedule = ReplaceSchedule(cross=cross_replace, self_=self_replace, words=tuple(sorted(fractions.items())),
                                   length=length)
        m, blocks, pair_latent = prepare_pair_model(model, latent, ("attn1", "attn2"), NAME)
        for block, number in blocks:
            m.set_model_attn1_replace(PromptToPromptPatch(schedule, "self"), block, number)
            m.set_model_attn2_replace(PromptToPromptPatch(schedule, "cross", mapper, alphas, scales), block, number)
        return io.NodeOutput(m, encode_pair(clip, source_prompt, target_prompt), pair_latent)


NODES = [AttentionInject]

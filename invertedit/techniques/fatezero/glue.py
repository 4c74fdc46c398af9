"""FateZero inside the host: the pair of clips (``hostkit/pair.py``, 2F rows in blocks), the fusion
policy on every attention layer (``fusion.py``), sparse-causal attention (``hostkit/frames.py``), and
the model-call wrapper that records the source's maps of a blending step first."""
from __future__ import annotations

import torch

from ...attention.align import refine_mapper
from ...attention.cross_frame import frame_anchors
from ...hostkit.attention_driver import install_policy
from ...hostkit.errors import NodeInputError, check_choice, check_conditioning
from ...hostkit.frames import CrossFrameKeys, clip_frames
from ...hostkit.keys import PAIR_RUN_KEY
from ...hostkit.pair import PairRun, encode_prompt, join_pair, prepare_pair_model, warn_same_prompts
from ...hostkit.patches import take_rows, wrap_model_calls, wrap_runs
from ...hostkit.run_state import run_state
from ...hostkit.sampling import check_model_family
from ...hostkit.steps import step_at
from ...hostkit.tokens import blend_word_positions, prompt_tokens
from .fusion import RECORD, FateZeroFusion, FusionSchedule

MODES = ("refine", "replace")   # the authors' configs: is_replace_controller False (refine)
WRAPPER_KEY = "invertedit_fatezero"


class SourceMaps:
    """APPLY_MODEL wrapper: at a step that blends the self-attention, the source's conditional frames are
    run alone first, and the policy records their cross-attention maps (the mask's); then the step's
    one call of every row."""

    def __init__(self, policy: FateZeroFusion, node: str):
        self.policy, self.node = policy, node

    def __call__(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        step, steps = step_at(transformer_options["sample_sigmas"], transformer_options.get("sigmas", t))
        chunks = list(transformer_options.get("cond_or_uncond", []))
        frames = self.policy.frames
        if self.policy.blends(step, steps) and 0 in chunks and x.shape[0] == 2 * frames * len(chunks):
            state = run_state(transformer_options, self.policy, self.policy.make_state, self.node)
            state.begin(step)
            start = chunks.index(0) * 2 * frames
            rows = slice(start, start + frames)   # the conditional chunk's source frames
            args = take_rows((x, t, c_concat, c_crossattn, control, kwargs), rows, x.shape[0])
            options = dict(transformer_options, cond_or_uncond=[0], **{RECORD: True})
            if isinstance(options.get("sigmas"), torch.Tensor) and options["sigmas"].shape[0] == x.shape[0]:
                options["sigmas"] = options["sigmas"][rows]
            executor(*args[:5], options, **args[5])
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)


def fatezero(node: str, model, clip, latent: dict, source_prompt: str, target_prompt: str, mode: str,
             cross_replace: float, self_replace: float, blend_words: str, blend_threshold: float):
    """A clone of ``model`` that samples a clip's source/target pair with FateZero's fusion and
    sparse-causal attention, the pair's blocked CONDITIONING and the LATENT pair."""
    check_model_family(model, node)
    check_choice(node, "mode", mode, MODES)
    for name, value in (("cross_replace", cross_replace), ("self_replace", self_replace),
                        ("blend_threshold", blend_threshold)):
        if not 0.0 <= value <= 1.0:
            raise NodeInputError(node, f"input '{name}' is {value:g}; give a fraction from 0 to 1 (paper: "
                                       f"{ {'cross_replace': 0.8, 'self_replace': 0.6, 'blend_threshold': 0.3}[name]:g}).")
    frames = clip_frames(node, "latent", latent["samples"])
    (src_ids, length), (tgt_ids, _) = (prompt_tokens(clip, text, node, name)
                                       for name, text in (("source_prompt", source_prompt),
                                                          ("target_prompt", target_prompt)))
    if mode == "replace":
        if len(src_ids) != len(tgt_ids):
            raise NodeInputError(node, f"mode 'replace' swaps tokens one for one, but the source prompt has "
                                       f"{len(src_ids)} tokens and the target {len(tgt_ids)}; use mode 'refine' (the "
                                       f"authors' configs) to add or change words.")
        mapper, alphas = torch.eye(length), None
    else:
        mapper, alphas = refine_mapper(src_ids, tgt_ids, length)
    words = None
    if blend_words.strip():
        positions = blend_word_positions(clip, src_ids, blend_words, "blend_words", node, "source prompt")
        words = torch.zeros(length)
        words[positions] = 1.0
    policy = FateZeroFusion(FusionSchedule(cross_replace, self_replace), frames,
                            mapper.float() if alphas is None else mapper, None if alphas is None else alphas.float(),
                            words, blend_threshold)
    m, blocks, pair_latent = prepare_pair_model(model, latent, ("attn1", "attn2"), node)
    m.set_model_attn1_patch(CrossFrameKeys(frames, frame_anchors("first and previous", frames), node))
    install_policy(m, policy, blocks, node)
    if words is not None:
        wrap_model_calls(m, WRAPPER_KEY, SourceMaps(policy, node))
    warn_same_prompts(node, source_prompt, target_prompt)
    source = encode_prompt(clip, source_prompt)
    check_conditioning(node, "clip", source, model)
    wrap_runs(m, PAIR_RUN_KEY, PairRun(source, node))
    return m, join_pair(source, encode_prompt(clip, target_prompt), frames), pair_latent

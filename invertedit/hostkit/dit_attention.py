"""The driver of attention policies on diffusion transformers (Flux.1, SD3): the DiT counterpart of
``attention_driver.py``. It installs a policy on the blocks asked for and, at each of their
joint-attention calls, hands the policy the call's queries, keys and values ``[batch, heads,
tokens, dim]`` and where the call is (``attention/policy.py``'s ``JointWhere``).

How it reaches the attention inside a block: the host calls a ``patches_replace["dit"]`` patch
for every Flux double and single block and every SD3 joint block, with the block's inputs and
``transformer_options``; the host's attention functions hand themselves to
``transformer_options["optimized_attention_override"]`` where it is set
(``comfy.ldm.modules.attention.wrap_attn``). The block patch runs the block with options that
carry an override bound to that block, so nothing is counted or matched by position. An override
or a ``"dit"`` patch already there (another node's) is kept: the policy's ``attend`` calls it.

The text token count and the image's patch grid, which a block's attention call does not say,
are read once per model call by an APPLY_MODEL wrapper from the model's input (``LAYOUT_KEY``).
A call whose tokens are not text + image (SD3.5's image-only second attention) runs unchanged.

An instruction editor's reference images (Flux.1 Kontext's ReferenceLatent, Qwen-Image-Edit's) are more tokens after
the image's, in every joint call (``REFERENCE_KEY``: how many); only a policy that reads them (``reads_references``)
is handed such a call, any other refuses it by name rather than edit the wrong tokens.
"""
from __future__ import annotations

from functools import partial

import comfy.ops
import comfy.patcher_extension
import torch
from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT
from torch.nn.attention import sdpa_kernel

from ..attention.attention_lse import heads_attention_with_lse, log_sum_exp
from ..attention.policy import AttentionPolicy, JointWhere, PolicyInputError
from .errors import NodeInputError
from .family import model_family
from .patches import replace_dit_block, wrap_model_calls
from .run_state import keep_run_state, run_state
from .steps import call_time

LAYOUT_KEY = "invertedit_dit_layout"     # transformer_options: (text tokens, (patch rows, patch columns))
#: transformer_options of a block run on the text and some of the image's tokens (KV-Edit's): (the policy whose
#: block patch chose them, how many image tokens); only that policy's driver takes such a call as joint
SUBSET_KEY = "invertedit_dit_subset"
#: transformer_options: the reference images' tokens after the image's (Kontext's, Qwen-Image-Edit's), 0 for none
REFERENCE_KEY = "invertedit_dit_references"
OVERRIDE = "optimized_attention_override"
#: transformer_options of a model call whose rows hold prompts padded to one token count (``PaddedPair``): a ``TextPad``
PAD_KEY = "invertedit_dit_text_pad"
HOST_POSITIONAL = ("mask", "attn_precision")   # the host's attention functions' arguments after (q, k, v, heads)


def dit_blocks(model, kinds: tuple[str, ...] = ("double_block", "single_block")) -> list[tuple[str, int]]:
    """The blocks of the DiT ``model`` of the ``kinds`` asked for, in order."""
    return [key for key in model_family(model).dit_blocks if key[0] in kinds]


def _record_layout(patch: int, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                   **kwargs):
    """APPLY_MODEL wrapper: the call's text tokens, patch grid and reference images' tokens, for its blocks'
    policies."""
    rows, cols = -(-x.shape[-2] // patch), -(-x.shape[-1] // patch)
    text = 0 if c_crossattn is None else c_crossattn.shape[1]
    options = {**transformer_options, LAYOUT_KEY: (text, (rows, cols)),
               REFERENCE_KEY: reference_tokens(kwargs.get("ref_latents"), patch)}
    return executor(x, t, c_concat, c_crossattn, control, options, **kwargs)


def reference_tokens(references, patch: int) -> int:
    """How many tokens the reference latents (a model call's ``ref_latents``) add after the image's: each its patch
    grid, as the host's Flux and Qwen-Image append them."""
    return sum(-(-r.shape[-2] // patch) * -(-r.shape[-1] // patch) for r in references or ())


class DiTDriver:
    """The override a block patch binds: runs ``policy`` on the block's joint-attention calls."""

    def __init__(self, policy: AttentionPolicy, node: str):
        self.policy, self.node = policy, node

    def __call__(self, func, q, k, v, heads, *args, block, outer, options, skip_reshape=False, **kwargs):
        # the host's attention functions take (q, k, v, heads, mask=None, attn_precision=None, ...): Qwen-Image's
        # blocks pass the mask by position (``optimized_attention_masked(q, k, v, heads, mask, ...)``), which the
        # policy's own mask then joins by name
        kwargs.update(zip(HOST_POSITIONAL, args))
        args = args[len(HOST_POSITIONAL):]
        host = partial(_host_attention, func, outer, heads, args, kwargs)
        text, grid = options.get(LAYOUT_KEY, (None, None))
        if text is None:
            raise NodeInputError(self.node, "the model ran without the pack's DiT layout wrapper; sample the MODEL this "
                                            "node outputs.")
        if not skip_reshape:   # SD3: [batch, tokens, heads * dim]
            q, k, v = (t.view(t.shape[0], t.shape[1], heads, -1).transpose(1, 2) for t in (q, k, v))
        subset = options.get(SUBSET_KEY)
        references = options.get(REFERENCE_KEY, 0)
        if references and not self.policy.reads_references:
            raise NodeInputError(self.node, "the model is sampled with reference images (ReferenceLatent, "
                                            "TextEncodeQwenImageEdit: Flux.1 Kontext's or Qwen-Image-Edit's instruction "
                                            "editing), whose tokens this node does not edit; sample it with a plain text "
                                            "prompt, or lock an instruction edit with KV-Edit (Flow Invert of the image "
                                            "with the same prompt, keep_keys_values on).")
        image = subset[1] if subset is not None and subset[0] is self.policy else grid[0] * grid[1] + references
        if q.shape[2] != text + image:   # not a joint call (SD3.5's image-only attention)
            if q.shape[2] != image or not getattr(self.policy, "reads_image_attention", False):
                return host(q, k, v)
            text = 0   # SD3.5's image-only second attention, for a policy that reads it (LayerVerse's): no text tokens
        chunks = tuple(options.get("cond_or_uncond", [0]))
        padded = options.get(PAD_KEY)   # a pair of prompts padded to one token count (``PaddedPair``)
        pad = None if padded is None else padded.bias(q.shape[0], q.shape[2], q.dtype, q.device)
        plain = outer is None and kwargs.get("mask") is None   # else the log-sum-exp of what the host computes
        where = JointWhere(block=block, chunks=chunks, rows=q.shape[0] // max(len(chunks), 1), heads=heads,
                           text=text, grid=grid, attend=host, time=partial(call_time, options),
                           attend_lse=None if plain else partial(_host_attention_lse, host, kwargs.get("mask")),
                           plain_lse=_attention_lse, pad=pad, references=references)
        state = run_state(options, self.policy, self.policy.make_state, self.node) if self.policy.keeps_state else None
        try:
            return self.policy.attention(q, k, v, where, state)
        except PolicyInputError as e:
            raise NodeInputError(self.node, str(e)) from None


def _host_attention(func, outer, heads, args, kwargs, q, k, v, mask=None):
    """The host's attention of ``[batch, heads, tokens, dim]`` inputs (through an override that was
    there before the pack's), ``[batch, tokens, heads * dim]`` out; ``mask`` (an additive bias the
    policy adds, broadcast over ``[batch, heads, queries, keys]``) joins the call's own."""
    if mask is not None:
        own = kwargs.get("mask")
        if own is not None:
            mask = _additive(own, mask.dtype) + mask
        kwargs = {**kwargs, "mask": mask}
    if outer is not None:
        return outer(func, q, k, v, heads, *args, skip_reshape=True, **kwargs)
    return func(q, k, v, heads, *args, skip_reshape=True, **kwargs)


def _attention_lse(q, k, v, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``heads_attention_with_lse`` with the kernel the host's attention picks: the host sets its own order of
    PyTorch's attention kernels (``comfy.ops.SDPA_BACKEND_PRIORITY``: cuDNN first on CUDA) around each
    call; outside it PyTorch's default order picks flash (on an H100 at Flux.1 dev's size, 1024 px, Joint
    Attention Inject cost 1.27x a stock evaluation in flash's order against 1.19x in the host's)."""
    priority = getattr(comfy.ops, "SDPA_BACKEND_PRIORITY", None)
    if priority is None or q.device.type != "cuda":
        return heads_attention_with_lse(q, k, v, mask)
    with sdpa_kernel(priority, set_priority=True):
        return heads_attention_with_lse(q, k, v, mask)


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A call's own mask (boolean: attend where True; or additive) as an additive bias ``[batch, heads or 1,
    queries, keys]``."""
    if mask.dtype == torch.bool:
        mask = torch.zeros_like(mask, dtype=dtype).masked_fill_(~mask, float("-inf"))
    return mask.reshape(mask.shape[0], -1, *mask.shape[-2:])


def _host_attention_lse(host, own, q, k, v, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The host's attention (through another node's override, or with the call's own mask ``own``; ``mask``,
    a policy's additive bias, joins it) and the log-sum-exp of its logits written out
    (``attention_lse.log_sum_exp``)."""
    both = None if own is None else _additive(own, torch.float32)
    if mask is not None:
        both = mask.float() if both is None else both + mask.float()
    return host(q, k, v, mask=mask), log_sum_exp(q, k, both)




class JointBlockAsStock:
    """SD3's joint block ``index`` run as the host runs it where no patch replaces it.

    The host's replace path (``comfy/ldm/modules/diffusionmodules/mmdit.py``, ``block_wrap``) calls
    the block without ``use_checkpoint``, whose default is True, so a patched block runs its
    attention and MLPs inside ``torch.utils.checkpoint`` (the unpatched loop passes the model's
    ``use_checkpoint``, False). Under sampling's no-grad the output is the same, but the checkpoint's
    Python runs in every block: about 52 µs a call on this project's CPU, a dozen small operations'
    worth (docs/measurements.md, "SD3's patched blocks"). A block patch hands this to the patch chain
    as ``original_block`` instead."""

    def __init__(self, denoiser, index: int):
        self.denoiser, self.index = denoiser, index

    def __call__(self, args: dict) -> dict:
        denoiser = self.denoiser
        txt, img = denoiser.joint_blocks[self.index](args["txt"], args["img"], c=args["vec"],
                                                     use_checkpoint=denoiser.use_checkpoint,
                                                     transformer_options=args["transformer_options"])
        return {"txt": txt, "img": img}


class DiTBlockPatch:
    """A ``patches_replace["dit"]`` patch: runs its block (or the patch that was there) with an
    attention override bound to the block; ``run_block`` (SD3: ``JointBlockAsStock``), where given,
    stands in for the host's ``original_block``."""

    def __init__(self, driver: DiTDriver, block: tuple[str, int], previous=None, run_block=None):
        self.driver, self.block, self.previous, self.run_block = driver, block, previous, run_block

    def __call__(self, args: dict, extra: dict) -> dict:
        options = args["transformer_options"]
        override = partial(self.driver, block=self.block, outer=options.get(OVERRIDE), options=options)
        args = {**args, "transformer_options": {**options, OVERRIDE: override}}
        if self.run_block is not None:
            extra = {**extra, "original_block": self.run_block}
        if self.previous is not None:
            return self.previous(args, extra)
        return extra["original_block"](args)

    @property
    def wraps_another_patch(self) -> bool:
        """Whether a ``"dit"`` patch that was on the block before (another node's) runs inside this
        one; it may read every token of the block."""
        return self.previous is not None


def install_dit_policy(model, policy: AttentionPolicy, blocks, node: str) -> None:
    """Run ``policy`` on the joint attention of the DiT ``blocks`` (``dit_blocks``) of ``model``, a
    clone the caller patches; a policy with per-run state gets a fresh one every sampling run."""
    if policy.keeps_state:
        keep_run_state(model)
    if not model.get_wrappers(comfy.patcher_extension.WrappersMP.APPLY_MODEL, LAYOUT_KEY):
        wrap_model_calls(model, LAYOUT_KEY, partial(_record_layout, model_family(model).patch_size))
    driver = DiTDriver(policy, node)
    replace = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("dit", {})
    joint = isinstance(model.model.diffusion_model, MMDiT)   # SD3 (JointBlockAsStock's docstring), not Qwen-Image
    for block in blocks:
        run_block = JointBlockAsStock(model.model.diffusion_model, block[1]) if joint else None
        replace_dit_block(model, DiTBlockPatch(driver, block, replace.get(block), run_block), block)


def token_axis(pe: torch.Tensor, tokens: int) -> int:
    """The tokens' axis of a block's rotary embedding: Flux's ``[batch, 1, tokens, ...]`` (2), Qwen-Image's
    ``[batch, tokens, 1, ...]`` (1)."""
    return 2 if pe.shape[2] == tokens else 1


class SubsetBlock:
    """A ``patches_replace["dit"]`` patch around a block (and the driver's patch in it) that runs the block on some of
    its tokens, for a policy whose attention supplies the others' keys and values (KV-Edit's kept background, a
    cache of an earlier step's): the text whole, and of the image stream (the image's tokens, then the reference
    images') the rows ``choose(options, img)`` gives, with their rotary embedding; the other rows keep the block's
    input. ``choose`` returns ``(rows, image_rows, tokens, state)``: the rows of the text-then-image sequence and of
    the image stream computed, the sequence's length, and an object the rotary embedding's rows are kept on once a
    model call (its ``pe``); or None: every token this call. A block called with an attention mask of its own, or
    holding another node's ``"dit"`` patch (``foreign``: it may read every token), runs on every token. The
    policy's driver takes the subset's calls as joint (``SUBSET_KEY``: how many image-stream tokens)."""

    def __init__(self, policy: AttentionPolicy, choose, block: tuple[str, int], previous, foreign: bool = False):
        self.policy, self.choose, self.block, self.previous, self.foreign = policy, choose, block, previous, foreign

    def __call__(self, args: dict, extra: dict) -> dict:
        run = self.previous if self.previous is not None else (lambda a, e: e["original_block"](a))
        options = args["transformer_options"]
        if self.foreign or args.get("attn_mask") is not None or args.get("pe") is None:
            return run(args, extra)
        img, pe = args["img"], args["pe"]
        chosen = self.choose(options, img)
        if chosen is None:
            return run(args, extra)
        rows, image_rows, tokens, state = chosen
        if state.pe is None or state.pe[0] is not pe:   # once per model call: every block has its rotary embedding
            state.pe = (pe, pe.index_select(token_axis(pe, tokens), rows))
        sub = {**args, "pe": state.pe[1],
               "transformer_options": {**options, SUBSET_KEY: (self.policy, int(image_rows.shape[0]))}}
        if self.block[0] == "double_block":   # the image stream's tokens alone; the text runs whole
            out = run({**sub, "img": img.index_select(1, image_rows)}, extra)
            return {"img": img.index_copy(1, image_rows, out["img"]), "txt": out["txt"]}
        out = run({**sub, "img": img.index_select(1, rows)}, extra)   # single: the text, then the image
        return {"img": img.index_copy(1, rows, out["img"])}


def install_subset_policy(model, policy: AttentionPolicy, blocks, choose, node: str) -> None:
    """``install_dit_policy``, and each of the ``blocks`` run on the tokens ``choose`` picks (``SubsetBlock``; a block
    holding another node's patch runs on every token)."""
    install_dit_policy(model, policy, blocks, node)
    replace = model.model_options["transformer_options"]["patches_replace"]["dit"]
    for block in blocks:
        inner = replace[block]   # the driver's patch (DiTBlockPatch), with another node's inside it where there was one
        replace_dit_block(model, SubsetBlock(policy, choose, block, inner, inner.wraps_another_patch), block)


class TextPad:
    """The padded text keys of one model call's rows (``PaddedPair``): ``keep`` ``[batch, text]`` (bool), as the
    additive bias a joint-attention call of the rows adds (``bias``), made once per call, dtype and device."""

    def __init__(self, keep: torch.Tensor):
        self.keep, self.made = keep, {}

    def bias(self, rows: int, tokens: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """``[rows, 1, 1, tokens]``: -inf on each row's padded text keys, 0 elsewhere (the image's tokens after the
        text)."""
        key = (rows, tokens, dtype, device)
        bias = self.made.get(key)
        if bias is None:
            keep = self.keep.to(device)
            image = torch.ones(keep.shape[0], tokens - keep.shape[1], dtype=torch.bool, device=device)
            keep = torch.cat((keep, image), 1)
            bias = self.made[key] = torch.zeros(keep.shape, dtype=dtype, device=device).masked_fill_(
                ~keep, float("-inf"))[:, None, None]
        return bias


class PaddedPair:
    """APPLY_MODEL wrapper of a source/target pair whose prompts are padded to one token count (``pad_pair``):
    Qwen-Image's text is not padded, so two prompts of different lengths would run in separate model calls,
    and a policy pairing the source's and the target's rows in one attention call would find one of them. The
    shorter prompt's embedding is padded with zeros to the longer's length, and in the calls holding the pair
    (conditional chunks of ``text`` tokens, rows source then target) each row's padded text keys are masked
    out of every attention (``TextPad``): the real tokens attend as they would unpadded (the text's rotary
    positions count from the first token; the image's do not depend on the text), so the model computes what
    it computes for each prompt alone. The padded tokens' own outputs are never read."""

    def __init__(self, lengths: tuple[int, int], text: int):
        self.lengths, self.text = lengths, text
        self.pads: dict = {}

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                 **kwargs):
        chunks = tuple(transformer_options.get("cond_or_uncond", [0]))
        if c_crossattn is not None and c_crossattn.shape[1] == self.text and 0 in chunks:
            key = (x.shape[0], chunks)
            pad = self.pads.get(key)
            if pad is None:   # once per layout of the rows: each conditional chunk's rows, source then target
                rows = x.shape[0] // max(len(chunks), 1)
                keep = torch.ones(x.shape[0], self.text, dtype=torch.bool)
                for c, kind in enumerate(chunks):
                    if kind == 0:
                        for r, length in enumerate(self.lengths[:rows]):
                            keep[c * rows + r, length:] = False
                pad = self.pads[key] = TextPad(keep)
            transformer_options = {**transformer_options, PAD_KEY: pad}
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)


PAD_WRAPPER_KEY = "invertedit_dit_padded_pair"


def pad_pair(source: list, target: list) -> tuple[list, list, tuple[int, int]]:
    """The one-row CONDITIONINGs ``source`` and ``target`` padded with zero tokens to the longer's token count
    (``PaddedPair``), and their own lengths."""
    lengths = (source[0][0].shape[1], target[0][0].shape[1])
    text = max(lengths)

    def padded(cond: list) -> list:
        emb, extra = cond[0]
        more = text - emb.shape[1]
        return cond if not more else [[torch.cat((emb, emb.new_zeros(emb.shape[0], more, emb.shape[2])), 1), extra]]

    return padded(source), padded(target), lengths


class PaddedText(AttentionPolicy[None]):
    """The padded rows' mask alone, on the blocks a pair editor does not edit (their attention is otherwise
    the host's)."""

    pair = False

    def attention(self, q, k, v, where: JointWhere, state: None):
        return where.attend(q, k, v) if where.pad is None else where.attend(q, k, v, mask=where.pad)


def install_padded_pair(model, lengths: tuple[int, int], text: int, edited_blocks, node: str) -> None:
    """Mask the padded text of a pair made by ``pad_pair`` in every joint attention of ``model`` (a clone the caller
    patches): the ``PaddedPair`` wrapper, and ``PaddedText`` on the blocks outside ``edited_blocks`` (those have the
    pair editor's policy, which adds the mask itself)."""
    wrap_model_calls(model, PAD_WRAPPER_KEY, PaddedPair(lengths, text))
    others = [key for key in dit_blocks(model) if key not in set(edited_blocks)]
    if others:
        install_dit_policy(model, PaddedText(), others, node)

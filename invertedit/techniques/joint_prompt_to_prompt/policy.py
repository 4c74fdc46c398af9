"""Prompt-to-Prompt (Hertz et al. 2023) on the joint attention of a diffusion transformer (Flux.1's
double- and single-stream blocks, SD3's joint blocks).

A joint-attention call attends every token (the text's, then the image's patches) to every token,
in one softmax. Its cross-attention maps are the image queries' probabilities on the text keys
(``P[img, text]``, what Attention Store draws); its self-attention maps, the image queries'
probabilities on the image keys (``P[img, img]``). No authors' code exists for this setting; the
pack carries the UNet controllers over as they are (``attention/controllers.py``), block for
block of the joint map:

- in the target row, the image queries' text block becomes the controller's edit of the two rows'
  text blocks, ``P_s[img, text] A + P_t[img, text] B`` (replace: the source's through the word
  swap; refine: aligned tokens from the source, new tokens their own; reweight: scaled; the
  per-word fractions mix with the target's own), with the UNet schedule's step counts;
- while self-attention is injected, the image block is the source's ``P_s[img, img]``, else the
  target's own;
- like the UNet controllers, nothing is renormalised: the edited row sums to the source's text
  mass plus the image block's; the text queries (the text stream) keep their own attention.

How it is computed: a step that edits or reads the blend's maps runs the call's own rows with their
log-sum-exp (``attention_lse``, PyTorch's fused kernel). The image queries' probabilities on the few
text keys (Flux.1 at 1 MP: 256 of 4,352 keys) are then ``w * softmax(q k_text^T / sqrt(d))``, the
softmax over the text keys alone scaled by each query's text mass ``w = exp(lse_text - lse)``, so any
product ``P[img, text] X`` is ``w * attend(q_img, k_text, X)``: one more fused call over the text keys
only (it runs every query, the text queries at weight 0: fewer operations than slicing the image's
out). As ``(P A) V = P (A V)``, the text block's edit is ``P_s (A V_t,text) + P_t ((B - I) V_t,text)``,
added to the target's image rows: one such call on each row's mixed text values (where each row's mix
is a multiple of the identity, replace on prompts whose words align, the target's text values as they are,
the 1 and -1 in the weight), each row's part added into its pair's target row with one ``index_add_``, in
the kernel's layout before the host's (where the host's attention is plain). The source's image
block (while self-attention is injected) is a product of the source's probabilities with the
target's values that no smaller call gives: one more row of the call's attention, ``attend(q_s, k_s,
[A V_t,text; V_t,img])``, which replaces the target's image rows; the target's own part, ``P_t (B
V_t,text)``, is added to it where ``B`` is not zero. The blend's maps are the same call on the blend
words' indicator columns (values of the heads' width, two channels used), summed over rows and heads.
No map is held.

On CUDA ``index_add_`` adds a pair's two parts in either order (PyTorch's atomic additions; deterministic
under ``torch.use_deterministic_algorithms``), so two runs may differ in the last bit of the output's
dtype. On the CPU the order is fixed.

Earlier versions computed the text block's edit and the blend's maps as extra rows of the call
(values mixed per row; 1.27-1.50x a stock step on an H100 at Flux.1's size), then as float32 text
maps ``exp(q k_text^T / sqrt(d) - lse)`` and their products (1.19-1.24x: an H100 runs float32
products without TF32, which the host does not turn on) (docs/measurements.md, "The flow editors on
a GPU").
"""
from __future__ import annotations

import torch

from dataclasses import dataclass

from ...attention.attention_lse import heads_attention_with_lse, host_layout
from ...attention.controllers import PromptToPrompt
from ...attention.local_blend import LocalBlendMaps, blend_reader
from ...attention.policy import AttentionPolicy, JointWhere, PolicyInputError


@dataclass(frozen=True)
class JointPlan:
    """One call layout's constants (``JointPromptToPrompt.plan``)."""

    qk_index: torch.Tensor | None      # with the source's image block: the call's rows, then each pair's source row
    v_index: torch.Tensor | None       # and the values' rows: every row, then each pair's target row
    scale: torch.Tensor | None         # the extra rows' values per token (text: a diagonal A; image: 1), else None
    mixes: torch.Tensor | None         # the extra rows' text values' mix A where it is not diagonal
    put: torch.Tensor | None           # the output's gather index: the targets' image rows from the extra rows
    rows_mix: torch.Tensor | None      # [rows * heads, L, L] (v's dtype): what each row's text map takes of its
                                       # pair's target text values (None: nothing, or each row's matrix is a
                                       # multiple of the identity, replace on aligned prompts: 1 and -1, in ``weigh``)
    text_rows: torch.Tensor | None     # each row's pair's target row (None: no text-map edit)
    columns: torch.Tensor | None       # [rows, heads, L, dim] (v's dtype): the blend words' columns per row in
                                       # channels 0 and 1 (the rest zero: the kernels want the queries' dim)
    weigh: torch.Tensor | None         # [rows, 1, tokens, 1] (float32): what the text maps' edit takes of each row's
                                       # part: 0 on the text queries, each row's multiple of the identity (or 1)
                                       # on the image's
    lse: bool                          # whether the call needs its log-sum-exp (a text-map edit or the blend)


class JointPromptToPrompt(AttentionPolicy[LocalBlendMaps]):
    """A Prompt-to-Prompt ``controller`` (replace, refine, reweight; its schedule and local blend)
    on joint attention. The blend's ``blocks`` are DiT block keys."""

    pair = True

    def __init__(self, controller: PromptToPrompt):
        self.controller = controller
        self.schedule, self.blend = controller.schedule, controller.blend
        self.plans: dict = {}     # per call layout, device, dtype and step pattern (see plan())
        self.readers: dict = {}   # the blend's reader per device and layout: one object, so that its sums keep it

    @property
    def keeps_state(self) -> bool:
        return self.blend is not None

    def make_state(self) -> LocalBlendMaps | None:
        return None if self.blend is None else self.blend.maps()

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: JointWhere,
                  state: LocalBlendMaps | None) -> torch.Tensor:
        steps = len(where.schedule) - 1
        step = where.step
        cross = self.schedule.injects("cross", step, steps, 0, 1)
        self_ = self.schedule.injects("self", step, steps, 0, 1)
        blend = state if self.blend is not None and where.block in self.blend.blocks else None
        pad = where.pad   # the pair's prompts padded to one token count (Qwen-Image): every attention masks it
        if not (cross or self_ or blend is not None) or 0 not in where.chunks:
            # nothing to edit, or a call of unconditional rows alone (a negative prompt of another token count
            # than the pair's runs in a model call of its own): the host's attention
            return where.attend(q, k, v) if pad is None else where.attend(q, k, v, mask=pad)
        pattern = self.schedule.word_pattern(step, steps) if cross else None
        plan = self.plan(where, q, v, cross, self_, pattern, blend is not None)
        text, (batch, heads, tokens, dim) = where.text, q.shape
        if plan.qk_index is not None:   # the source's image block: each pair's source row once more
            values = v.index_select(0, plan.v_index)
            if plan.scale is not None:
                values = values * plan.scale
            if plan.mixes is not None:
                values[batch:, :, :text] = torch.matmul(plan.mixes, values[batch:, :, :text])
            q_all, k_all = q.index_select(0, plan.qk_index), k.index_select(0, plan.qk_index)
            pad_all = None if pad is None else pad.index_select(0, plan.qk_index)
        else:
            q_all, k_all, values, pad_all = q, k, v, pad
        # Where the host's attention is plain, its output stays in the kernel's layout [rows, heads, tokens, dim]
        # until the text maps' edit is added: the host's layout after costs the stock call's transpose and
        # reshape, no operation more. Otherwise (another node's override, the call's own mask) the host's layout.
        if not plan.lse:
            out, lse = (where.attend(q_all, k_all, values) if pad_all is None else
                        where.attend(q_all, k_all, values, mask=pad_all)), None
        elif where.attend_lse is not None:
            out, lse = (where.attend_lse(q_all, k_all, values) if pad_all is None else
                        where.attend_lse(q_all, k_all, values, mask=pad_all))
        else:
            out, lse = where.plain_lse(q_all, k_all, values) if pad_all is None else where.plain_lse(
                q_all, k_all, values, pad_all)
        heads_layout = lse is not None and where.attend_lse is None
        if plan.put is not None:   # the targets' image rows from the extra rows: one gather, in the host's layout
            out, heads_layout = (host_layout(out) if heads_layout else out).gather(0, plan.put), False
        if lse is None:
            return out
        # P[img, text] X = w * attend(q_img, k_text, X): the image queries' attention over the text keys
        # alone, weighted by their text mass in the call's softmax, w = exp(lse_text - lse). Every query
        # runs (fewer operations than slicing the image's out); in the edit the text queries' weight is 0
        # (``weigh``), so they keep their own attention, and the blend's reading leaves them out. The weight
        # stays float32: the edit takes it in place (a half-precision product computed in float32, rounded once).
        k_text = k[:, :, :text]
        pad_text = None if pad is None else pad[..., :text]   # each row's padded text keys
        lse_rows = lse if plan.put is None else lse[:batch]
        weight = None
        if plan.text_rows is not None:   # the text maps' edit: each row's part added into its pair's target
            v_text = v[:, :, :text].index_select(0, plan.text_rows)
            if plan.rows_mix is None:   # each row's multiple of the identity: in ``weigh``
                mixed = v_text
            else:
                mixed = torch.bmm(plan.rows_mix, v_text.view(batch * heads, text, dim)).view(batch, heads, text, dim)
            part, lse_text = heads_attention_with_lse(q, k_text, mixed, pad_text)
            weight = torch.exp(lse_text - lse_rows).unsqueeze(-1)
            edit = part.mul_(weight * plan.weigh)
            if heads_layout:
                out.index_add_(0, plan.text_rows, edit)
            else:
                out.view(batch, tokens, heads, dim).index_add_(0, plan.text_rows, edit.transpose(1, 2))
        if blend is not None:   # the words' maps [rows, heads, tokens, 2], weighted into the run's float32 sum
            words, lse_text = heads_attention_with_lse(q, k_text, plan.columns, pad_text)
            if weight is None:
                weight = torch.exp(lse_text - lse_rows).unsqueeze(-1)
            count = blend.count
            reader = self.readers.get((q.device, batch, heads, count))
            if reader is None:   # channel 0 of every row and head the source's map, channel 1 the target's (2, 3: subtract)
                reader = self.readers[(q.device, batch, heads, count)] = blend_reader(batch, heads, count, False,
                                                                                     q.device, count)
            blend.add_rows(words[..., :count], reader, text, where.grid, weight=weight)
        return host_layout(out) if heads_layout else out

    def plan(self, where: JointWhere, q: torch.Tensor, v: torch.Tensor, cross: bool, self_: bool,
             pattern: tuple | None, blend: bool) -> JointPlan:
        """The call's constants, made once per layout, device, dtype and step pattern.

        With cross-attention injected the controller's mixes give the source's text map's ``A`` and
        the target's own ``B`` (``mixes``; else ``A = 0, B = I``). While self-attention is injected,
        each pair's source row runs once more on ``[A V_t,text; V_t,img]`` (``A`` diagonal: a scale of
        the values per token; else a matrix product of the text values) and its image rows replace
        the target's (one gather); the text maps then add the target's own ``P_t (B V_t,text)``.
        Else the target's rows are its own and the text maps add ``P_s (A V_t,text) + P_t ((B - I)
        V_t,text)``: ``rows_mix`` is each row's matrix (source rows, target rows; the unconditional
        rows' zero), ``text_rows`` whose text values it takes. The blend's columns: the source
        rows' ``[w_s, A w_t]``, the target rows' ``[0, B w_t]`` (``w``: the blend words' indicators)."""
        key = (where.chunks, where.rows, q.shape, where.text, v.device, v.dtype, cross, self_, pattern, blend)
        plan = self.plans.get(key)
        if plan is not None:
            return plan
        if where.rows != 2:
            raise PolicyInputError(f"the sampler runs a batch of {where.rows} rows a prompt; sample the source/target "
                                   f"pair (row 0 source, row 1 target) with this node's CONDITIONING and a latent of 2 "
                                   f"rows.")
        if where.text != self.schedule.length:
            raise PolicyInputError(f"the joint attention has {where.text} text tokens, not the source and target "
                                   f"prompts' {self.schedule.length}; sample the CONDITIONING pair from this node.")
        device, length, batch, tokens, heads = v.device, where.text, q.shape[0], q.shape[2], q.shape[1]
        to = dict(device=device)
        sources = [2 * c for c, kind in enumerate(where.chunks) if kind == 0]
        targets = [s + 1 for s in sources]
        n = len(sources)
        eye, zero = torch.eye(length, **to), torch.zeros(length, length, **to)
        if cross:
            a, b = self.controller.mixes(None if pattern is None else torch.tensor(pattern, **to), device)
        else:
            a, b = None, eye
        qk_index = v_index = scale = mixes = put = None
        if self_:
            mix = zero if a is None else a
            diagonal = bool(torch.equal(mix, torch.diag(torch.diagonal(mix))))  # sampling-path-ok: once per plan (memo)
            scale = torch.ones(batch + n, 1, tokens, 1, **to)
            scale[batch:, :, :length, 0] = torch.diagonal(mix) if diagonal else 1.0
            scale = None if bool(scale.eq(1).all()) else scale.to(v.dtype)  # sampling-path-ok: once per plan (memo)
            if not diagonal:
                mixes = mix[None, None].expand(n, heads, -1, -1).to(v.dtype).contiguous()
            qk_index = torch.tensor(list(range(batch)) + sources, **to)
            v_index = torch.tensor(list(range(batch)) + targets, **to)
            put = torch.arange(batch, **to)[:, None].repeat(1, tokens)
            put[targets, length:] = torch.arange(batch, batch + n, **to)[:, None]
            put = put[:, :, None].expand(-1, -1, heads * v.shape[-1]).contiguous()   # over [rows, tokens, heads * dim]
        # what the target's own text map adds (nothing where only the blend reads the maps)
        own = b if self_ else ((-eye if b is None else b - eye) if cross else None)
        source_mix = None if self_ else a                        # and the source's (self: in the extra row)
        rows_mix = text_rows = weigh = None
        if own is not None or source_mix is not None:
            text_rows = torch.arange(batch, **to) // 2 * 2 + 1
            scales = [_identity_multiple(m, eye) for m in (source_mix, own)]
            if None not in scales:
                weigh = torch.zeros(batch, 1, tokens, 1, **to)
                weigh[sources, :, length:], weigh[targets, :, length:] = scales
            else:
                rows_mix = torch.zeros(batch, heads, length, length, **to)
                if source_mix is not None:
                    rows_mix[sources] = source_mix
                if own is not None:
                    rows_mix[targets] = own
                rows_mix = rows_mix.flatten(0, 1).to(v.dtype)
        columns = None
        if blend:
            words = self.blend.maps().word_columns(length, device)   # [L, count]: source's, target's (then subtract)
            if v.shape[-1] < words.shape[1]:
                raise PolicyInputError(f"local blend: {words.shape[1]} word maps need heads of at least "
                                       f"{words.shape[1]} channels, not {v.shape[-1]}")
            columns = torch.zeros(batch, heads, length, v.shape[-1], **to)
            for c in range(0, words.shape[1], 2):
                columns[sources, :, :, c] = words[:, c]
                if a is not None:
                    columns[sources, :, :, c + 1] = a @ words[:, c + 1]
                if b is not None:
                    columns[targets, :, :, c + 1] = b @ words[:, c + 1]
            columns = columns.to(v.dtype)
        lse = blend or text_rows is not None
        if rows_mix is not None:
            weigh = torch.zeros(1, 1, tokens, 1, **to)
            weigh[:, :, length:] = 1.0
        plan = self.plans[key] = JointPlan(qk_index, v_index, scale, mixes, put, rows_mix, text_rows, columns, weigh,
                                           lse=lse)
        return plan


def _identity_multiple(m: torch.Tensor | None, eye: torch.Tensor) -> float | None:
    """``c`` where ``m`` is ``c`` times the identity (None: 0), else None."""
    if m is None:
        return 0.0
    c = float(m[0, 0])  # sampling-path-ok: once per plan (memo)
    return c if bool(torch.equal(m, c * eye)) else None  # sampling-path-ok: once per plan (memo)


class CrossPromptToPrompt(AttentionPolicy[None]):
    """A Prompt-to-Prompt ``controller`` (replace, refine, reweight; its schedule) on a transformer whose blocks
    attend twice, as a UNet's do: Wan 2.x's self-attention over the clip's tokens and cross-attention to the text
    (``hostkit/wan_attention.py``; ``where.kind`` says which). The UNet controllers as they are
    (``attention/controllers.py``), on each conditional (source, target) row pair:

    - cross-attention, while injected: the target's map is ``P_s A + P_t B`` (the controller's ``mixes``: replace's
      word swap or refine's alignment from the source, the per-word fractions mixing in the target's own, reweight's
      scales), so its output is ``attend(q_s, k_s, A V_t) + attend(q_t, k_t, B V_t)``: fused calls, no map held;
    - self-attention, while injected: the target takes the source's map on its own values, ``attend(q_s, k_s, V_t)``;
    - nothing is renormalised; the unconditional rows keep their own attention.

    No local blend: its maps are a UNet's (or a joint call's) per-word maps of one image; on a clip's tokens it is
    not carried over (the node refuses it on Wan)."""

    pair = True

    def __init__(self, controller: PromptToPrompt):
        self.controller, self.schedule = controller, controller.schedule
        self.plans: dict = {}   # per layout and device: (the query/key rows: targets take their sources', targets, sources)
        self.mixes: dict = {}   # per step pattern, device and dtype: (A, B)

    def _plan(self, where, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = (where.chunks, where.rows, device)
        plan = self.plans.get(key)
        if plan is None:
            if where.rows != 2:
                raise PolicyInputError(f"the sampler runs a batch of {where.rows} clips a prompt; sample the "
                                       f"source/target pair (row 0 source, row 1 target) with this node's CONDITIONING "
                                       f"and a latent of 2 rows (Repeat Latent Batch, amount 2).")
            sources = [2 * c for c, kind in enumerate(where.chunks) if kind == 0]
            rows = [r for c in range(len(where.chunks)) for r in ((2 * c, 2 * c) if 2 * c in sources else (2 * c, 2 * c + 1))]
            plan = self.plans[key] = (torch.tensor(rows, device=device),   # each target row takes its source's q, k
                                      torch.tensor([s + 1 for s in sources], device=device),
                                      torch.tensor(sources, device=device))
        return plan

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where, state: None) -> torch.Tensor:
        if 0 not in where.chunks:
            return where.attend(q, k, v)
        steps = len(where.schedule) - 1
        step = where.step
        if not self.schedule.injects(where.kind, step, steps, 0, 1):
            return where.attend(q, k, v)
        index, targets, _ = self._plan(where, q.device)
        q_s, k_s = q.index_select(0, index), k.index_select(0, index)
        if where.kind == "self":
            return where.attend(q_s, k_s, v)
        if where.text != self.schedule.length:
            raise PolicyInputError(f"the cross-attention has {where.text} text tokens, not the source and target "
                                   f"prompts' {self.schedule.length}; sample the CONDITIONING pair from this node.")
        pattern = self.schedule.word_pattern(step, steps)
        key = (pattern, v.device, v.dtype)
        mixes = self.mixes.get(key)
        if mixes is None:
            a, b = self.controller.mixes(None if pattern is None else torch.tensor(pattern, device=v.device), v.device)
            mixes = self.mixes[key] = tuple(None if m is None else m.to(v.dtype) for m in (a, b))
        a, b = mixes
        values = v.clone()
        values[targets] = torch.matmul(a, v.index_select(0, targets))
        out = where.attend(q_s, k_s, values)
        if b is not None:   # the target's own part of its map
            own = where.attend(q.index_select(0, targets), k.index_select(0, targets),
                               torch.matmul(b, v.index_select(0, targets)))
            out = out.index_add(0, targets, own)
        return out

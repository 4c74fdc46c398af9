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

As ``(P A) V = P (A V)``, the edited row is two plain attention calls on mixed values, each in the
host's fused kernel, batched as extra rows of the call: ``attend(q_s, k_s, [A V_t,text; s V_t,img])
+ attend(q_t, k_t, [B V_t,text; (1 - s) V_t,img])`` (``s`` 1 while self-attention is injected);
where one of them has only zero values it is left out. No map is held.

The local blend reads the blend words' maps from the same call: values that are the words'
indicator columns (channel 0 the source's words on the source's text block, channel 1 the
target's words on its edited text block) give, per image query and head, the sum of the words'
probabilities, in two more rows (where nothing else is edited, after the call's own rows by one
``cat``). Those rows are added up over the run's calls as they are (one addition a call) and turned into maps once a step, where the mask is made (``LocalBlendMaps``);
their float32 sum takes 2 rows x tokens x width x 4 bytes (Flux.1 at 1 MP: 2 x 4,608 x 3,072 x 4,
about 113 MB).
"""
from __future__ import annotations

import torch

from .controllers import PromptToPrompt
from .local_blend import LocalBlendMaps, blend_reader
from .policy import AttentionPolicy, JointWhere, PolicyInputError


class JointPromptToPrompt(AttentionPolicy[LocalBlendMaps]):
    """A Prompt-to-Prompt ``controller`` (replace, refine, reweight; its schedule and local blend)
    on joint attention. The blend's ``blocks`` are DiT block keys."""

    pair = True

    def __init__(self, controller: PromptToPrompt):
        self.controller = controller
        self.schedule, self.blend = controller.schedule, controller.blend
        self.plans: dict = {}   # per call layout, device, dtype and step pattern (see plan())

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
        if not (cross or self_ or blend is not None):
            return where.attend(q, k, v)
        pattern = self.schedule.word_pattern(step, steps) if cross else None
        text, batch = where.text, q.shape[0]
        qk_index, v_index, scale, mixes, extra, put, accumulate, blend_values = self.plan(
            where, q, v, cross, self_, pattern, blend is not None)
        if blend_values is not None and not (cross or self_):   # the blend's rows alone: after the call's own
            values = torch.cat([v, blend_values[2]])
        else:
            values = v.index_select(0, v_index)
            if blend_values is not None:   # the blend rows' values (scale 0 there) in the same operation
                values = torch.addcmul(blend_values[0], values, scale)
            elif scale is not None:
                values = values * scale
        if mixes is not None:   # the extra rows' text values through their sets' mixes
            values[batch:batch + extra, :, :text] = torch.matmul(mixes, values[batch:batch + extra, :, :text])
        out = where.attend(q.index_select(0, qk_index), k.index_select(0, qk_index), values)
        if extra and not accumulate:   # the targets' image rows are their set's rows': one gather of the rows
            main = out.gather(0, put)
            if blend is not None:
                blend.add_rows(out[-blend_values[3][2]:], blend_values[1], text, where.grid)
            return main
        if extra:   # the targets' image rows: their own plus their sets' corrections, added in place
            out.index_put_(put[0], out[put[1]], accumulate=True)
        if blend is None:
            return out[:batch]
        main, _, rows = out.split(blend_values[3])   # the blend rows as they are, summed over calls; read once a step
        blend.add_rows(rows, blend_values[1], text, where.grid)
        return main

    def plan(self, where: JointWhere, q: torch.Tensor, v: torch.Tensor, cross: bool, self_: bool,
             pattern: tuple | None, blend: bool) -> tuple:
        """The call's constants, made once per layout, device, dtype and step pattern.

        The target's edited image rows are one or two extra row sets of the call: with the target
        keeping none of its own text map while the image block is the source's, the source's set
        alone, ``attend(q_s, k_s, [A V_t,text; V_t,img])``, which replaces them; else the target's
        plain row plus two corrections, ``attend(q_s, k_s, [A V_t,text; s V_t,img])`` and
        ``attend(q_t, k_t, [(B - I) V_t,text; -s V_t,img])``, added to it. A diagonal text mix is a
        scale of the values per token; any other (a swap of differently tokenized words, refine's
        alignment) a matrix product of the set's text values.

        Returns the query/key row index (every row, then each set's rows: the sources' or the
        targets', then the blend rows'), the value row index (every row, then the targets' once per
        set, then row 0 for each blend row), the values' scale per row and token (None: all 1; 0 on
        the blend rows), the sets' text mixes (``[extra rows, heads, L, L]``, None where every mix is
        diagonal), the number of extra rows, where the sets' output goes (with one set that replaces
        the targets' image rows: the ``gather`` index of the call's output rows, per row and token,
        over ``[rows, tokens, heads * dim]``; with sets that add to the plain rows: the
        ``index_put_`` indices of the targets' image rows, per extra row, and of the extra rows' image
        rows), whether the sets add to the plain rows, and for the blend: the values added to every row (the blend rows'
        indicator columns, ``[rows, 1, tokens, channels]``), the reader that turns their output into
        maps (``blend_reader``), the blend rows' values alone, every head (``[blend rows, heads,
        tokens, channels]``, a view: where nothing else is edited they follow the call's own rows,
        one ``cat``), and the output's split (plain rows, extra rows, blend rows); or None."""
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
        sources = [2 * c for c, kind in enumerate(where.chunks) if kind == 0]
        targets = [s + 1 for s in sources]
        eye, zero = torch.eye(length, device=device), torch.zeros(length, length, device=device)
        if cross:
            a, b = self.controller.mixes(None if pattern is None else torch.tensor(pattern, device=device), device)
        else:
            a, b = None, eye
        a = zero if a is None else a
        sets: list = []   # (rows whose queries and keys it takes, text mix [L, L], image scale); none: the blend only
        accumulate = False
        if cross or self_:
            if b is None and self_:
                sets = [(sources, a, 1.0)]
            else:
                accumulate = True
                sets = [(sources, a, 1.0 if self_ else 0.0), (targets, (zero if b is None else b) - eye,
                                                               -1.0 if self_ else 0.0)]
        n = len(targets)
        diagonal = [torch.equal(m, torch.diag(torch.diagonal(m))) for _, m, _ in sets]  # sampling-path-ok: once per plan (memo)
        scale = torch.ones(batch + len(sets) * n, 1, tokens, 1, device=device)
        for i, ((_, mix, image), diag) in enumerate(zip(sets, diagonal)):
            rows = slice(batch + i * n, batch + (i + 1) * n)
            scale[rows, :, :length, 0] = torch.diagonal(mix) if diag else 1.0
            scale[rows, :, length:] = image
        mixes = None
        if not all(diagonal):
            stack = torch.stack([eye if diag else mix for (_, mix, _), diag in zip(sets, diagonal)])
            mixes = stack.repeat_interleave(n, 0)[:, None].expand(-1, heads, -1, -1).to(v.dtype).contiguous()
        qk_rows = list(range(batch)) + [r for set_rows, _, _ in sets for r in set_rows]
        v_rows = list(range(batch)) + targets * len(sets)
        blend_values = None
        if blend:
            words = self.blend.maps().word_columns(length, device)   # [L, 2]: the source's, the target's blend words
            edited_a, edited_b = (a, None) if not cross else self.controller.mixes(
                None if pattern is None else torch.tensor(pattern, device=device), device)
            own = eye if not cross else edited_b
            none = torch.zeros(length, device=device)
            columns = [torch.stack([words[:, 0], edited_a @ words[:, 1] if cross else none], 1),   # the source's maps
                       torch.stack([none, none if own is None else own @ words[:, 1]], 1)]         # the target's own
            made = torch.zeros(2, tokens, v.shape[-1], device=device)
            for i, c in enumerate(columns):
                made[i, :length, :2] = c
            # every row's added values: none but the blend rows' (which take any row's values at scale 0)
            alone = made.repeat_interleave(n, 0)[:, None].to(v.dtype)
            rows = torch.cat([torch.zeros(len(v_rows), 1, tokens, v.shape[-1], device=device, dtype=v.dtype), alone])
            scale = torch.cat([scale, torch.zeros(2 * n, 1, tokens, 1, device=device)])
            v_rows += [0] * (2 * n)
            blend_values = (rows, blend_reader(n, heads, v.shape[-1], True, device), alone.expand(-1, heads, -1, -1),
                            (batch, len(sets) * n, 2 * n))
            qk_rows += sources + targets
        to = dict(device=device)
        if sets and not accumulate:   # one set replaces the targets' image rows: the output's row for each token
            put = torch.arange(batch, **to)[:, None].repeat(1, tokens)
            put[targets, length:] = torch.arange(batch, batch + n, **to)[:, None]
            put = put[:, :, None].expand(-1, -1, heads * v.shape[-1])   # the output's [rows, tokens, heads * dim]
        else:
            image = torch.arange(length, tokens, **to)[None, :]
            put = ((torch.tensor(targets * len(sets), **to)[:, None], image),           # where: the targets' image rows
                   (torch.arange(batch, batch + len(sets) * n, **to)[:, None], image))  # what: the sets' image rows
        ones = not blend and bool(scale.eq(1).all())  # sampling-path-ok: once per plan (memo)
        plan = self.plans[key] = (torch.tensor(qk_rows, **to), torch.tensor(v_rows, **to),
                                  None if ones else scale.to(v.dtype), mixes, len(sets) * n, put, accumulate,
                                  blend_values)
        return plan

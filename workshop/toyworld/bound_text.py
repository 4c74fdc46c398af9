"""A text encoder for toy world 2 whose nouns carry their colour, built weight by weight.

Real CLIP's causal attention lets a noun's embedding take in the adjectives before it: in
"a red circle and a blue square" the token of "circle" already says *red* circle. The seeded
random encoder of world 1 does not (the two objects' nouns have cosine 0.98 whether the circle
is red or blue, SCENES-NOTES.md), which left the UNet to bind colours to shapes by word
position, and two hours of training did not teach it that.

``bind(model, tokens)`` rewrites the host's SD1 CLIP (``comfy.clip_model``, any width >= 40,
at least one head of 16 channels) so that its last hidden state is, before the final layer norm,

    [ this token (16) | the latest colour word at or before it (16) | position ramp (2) | colour flag (2) |
      start flag (2) | 0 ... ]

- The world's tokens get orthonormal rows (scaled by 4) in a 16-dimensional block whose
  entries sum to zero, so layer norm's mean removal leaves every block as it is.
- Layer 0, head 0 is a "latest colour" head: its query is a constant (biases only), its key
  reads the colour flag and the position ramp, so under the causal mask each token attends to
  the most recent colour word at or before it (a colour word to itself). Its value copies the
  token block into the second block. Every other head, every MLP and layers 1.. add nothing.
- So "circle" after "red" is [circle | red], after "blue" [circle | blue] (cosine about 0.5),
  and "background" carries its colour the same way: every object's noun names the whole object.
- With ``nouns`` given, only those words (and the colour words) carry a colour: every other
  token's query points at the start token instead (a flag only it has), so "and", "a", "on"
  and the end and padding tokens are the same whatever the colours. Changing one colour word
  then changes its own token and its noun, nothing else (what DiffEdit's noise difference
  needs: its mask is where the prediction moves when the prompt changes).

Pure torch; the world's token ids come from the host's tokenizer (``tokens``: word -> id).
"""
from __future__ import annotations

import torch

BLOCK = 16            # channels per block (one attention head of the toy CLIP)
TOKEN_SCALE = 4.0     # norm of a token's row in its block
RAMP = 2.0            # position ramp height (at position 76)
FLAG = 2.0            # colour flag height
FLAG_GAIN = 600.0     # query bias on the flag: any colour word beats any other token
RECENCY_GAIN = 300.0  # query bias on the ramp: the latest colour word wins (>= 10 logits per 4 positions)
# where each part of the last hidden state lies: this token, the latest colour word, the ramp, the two flags
TOKEN_AT, CARRIED_AT, RAMP_AT, FLAG_AT, START_AT = 0, BLOCK, 2 * BLOCK, 2 * BLOCK + 2, 2 * BLOCK + 4


def _orthonormal_rows(n: int, seed: int) -> torch.Tensor:
    """``n`` orthonormal rows of length ``BLOCK`` whose entries each sum to zero."""
    if n > BLOCK - 1:
        raise ValueError(f"{n} words do not fit a {BLOCK}-channel block (at most {BLOCK - 1})")
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(BLOCK, n, generator=g, dtype=torch.float64)
    a = a - a.mean(dim=0, keepdim=True)                # into the sum-zero subspace
    q, _ = torch.linalg.qr(a)
    return q.T.float()                                 # [n, BLOCK]


def _prefix(model: torch.nn.Module) -> str:
    sd = model.state_dict()
    key = next(k for k in sd if k.endswith("embeddings.token_embedding.weight"))
    return key[: -len("embeddings.token_embedding.weight")]


@torch.no_grad()
def bind(model: torch.nn.Module, tokens: dict[str, int], colours: list[str], seed: int = 0,
         nouns: list[str] | None = None) -> None:
    """Rewrite ``model`` (a host SD1 CLIP text model, e.g. ``clip.cond_stage_model``) in place.

    ``tokens`` maps every word of the world, and ``"<bos>"`` / ``"<eos>"``, to its token id;
    ``colours`` are the words that carry the colour flag; ``nouns``, when given, the only other
    words that take in the latest colour (the rest take in the start token)."""
    params = dict(model.named_parameters())
    pre = _prefix(model)
    table = params[pre + "embeddings.token_embedding.weight"]
    pos = params[pre + "embeddings.position_embedding.weight"]
    width = table.shape[1]
    t0, p0, ramp, flag, start = TOKEN_AT, CARRIED_AT, RAMP_AT, FLAG_AT, START_AT
    if width < start + 2:
        raise ValueError(f"text width {width} < {start + 2}")
    names = sorted(tokens)
    rows = _orthonormal_rows(len(names), seed) * TOKEN_SCALE
    for name, row in zip(names, rows):
        r = torch.zeros(width)
        r[t0:t0 + BLOCK] = row
        if name in colours:
            r[flag], r[flag + 1] = FLAG, -FLAG
        if nouns is not None and name == "<bos>":
            r[start], r[start + 1] = FLAG, -FLAG
        table[tokens[name]] = r.to(table.dtype)
    n_pos = pos.shape[0]
    pos.zero_()
    j = torch.arange(n_pos, dtype=torch.float32) / (n_pos - 1)
    pos[:, ramp], pos[:, ramp + 1] = RAMP * j, -RAMP * j

    layers = sorted({int(k[len(pre) + len("encoder.layers."):].split(".")[0])
                     for k in params if k.startswith(pre + "encoder.layers.")})
    for i in layers:
        lp = f"{pre}encoder.layers.{i}."
        for name in ("self_attn.out_proj", "mlp.fc2", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            params[lp + name + ".weight"].zero_()
            params[lp + name + ".bias"].zero_()
        for ln in ("layer_norm1", "layer_norm2"):
            params[lp + ln + ".weight"].fill_(1.0)
            params[lp + ln + ".bias"].zero_()
    lp = f"{pre}encoder.layers.{layers[0]}."
    q_b, k_w = params[lp + "self_attn.q_proj.bias"], params[lp + "self_attn.k_proj.weight"]
    v_w, o_w = params[lp + "self_attn.v_proj.weight"], params[lp + "self_attn.out_proj.weight"]
    typical_sigma = TOKEN_SCALE / width ** 0.5          # layer norm's scale of a token row
    k_w[0, flag], k_w[1, ramp] = 1.0, 1.0              # head 0 occupies channels 0..15 of q, k, v
    if nouns is None:
        q_b[0], q_b[1] = FLAG_GAIN, RECENCY_GAIN       # every token: the latest colour word
    else:
        # the query read from the token's own row (layer norm scales it by about 1 / typical_sigma):
        # colour words and nouns ask for the latest colour word, every other token for the start
        q_w = params[lp + "self_attn.q_proj.weight"]
        k_w[2, start] = 1.0
        carry = set(colours) | set(nouns)
        for name, row in zip(names, rows):
            want = (FLAG_GAIN, RECENCY_GAIN, 0.0) if name in carry else (0.0, 0.0, FLAG_GAIN)
            for c, gain in enumerate(want):
                q_w[c, t0:t0 + BLOCK] += gain * typical_sigma / TOKEN_SCALE * row / TOKEN_SCALE
    for d in range(BLOCK):
        v_w[d, t0 + d] = 1.0
        o_w[p0 + d, d] = typical_sigma
    params[pre + "final_layer_norm.weight"].fill_(1.0)
    params[pre + "final_layer_norm.bias"].zero_()


IDENTIFIER_CHANNEL = START_AT + 4   # a channel no row of ``bind`` sets (after the start flag)


@torch.no_grad()
def bind_identifier(model: torch.nn.Module, token: int, channel: int = IDENTIFIER_CHANNEL) -> None:
    """Give a word outside the world (DreamBooth's identifier, "sks") a way into the words after it,
    in a ``bind``-rewritten ``model``, as a trained CLIP's attention binds any modifier to its noun.

    The world's words fill the token block, so the identifier gets a ``channel`` of its own: its row is
    that channel (``TOKEN_SCALE``) and the colour flag, zero in the token block. Head 1 of layer 0 reads
    the latest colour word as head 0 does and copies that channel into the same channel of every token
    from the identifier on (until the next colour word). So "square" in "a sks square" carries it, with
    an empty colour block. Every row ``bind`` made is zero in ``channel``, so no caption of the world is
    encoded differently, to float rounding (the layer norm's mean of a zero-sum row, about 1e-9, is what
    the new head copies). For ``bind`` without ``nouns`` (world 2's encoder)."""
    params = dict(model.named_parameters())
    pre = _prefix(model)
    table = params[pre + "embeddings.token_embedding.weight"]
    width = table.shape[1]
    ramp, flag = RAMP_AT, FLAG_AT
    if not START_AT + 2 <= channel < width:
        raise ValueError(f"identifier channel {channel} is not free in a text width of {width}")
    row = torch.zeros(width)
    row[channel] = TOKEN_SCALE
    row[flag], row[flag + 1] = FLAG, -FLAG
    table[token] = row.to(table.dtype)
    lp = f"{pre}encoder.layers.0."
    head = BLOCK   # head 1's first query / key / value channel
    params[lp + "self_attn.q_proj.bias"][head:head + 2] = torch.tensor([FLAG_GAIN, RECENCY_GAIN])
    params[lp + "self_attn.k_proj.weight"][head, flag] = 1.0
    params[lp + "self_attn.k_proj.weight"][head + 1, ramp] = 1.0
    params[lp + "self_attn.v_proj.weight"][head, channel] = 1.0
    params[lp + "self_attn.out_proj.weight"][channel, head] = TOKEN_SCALE / width ** 0.5

"""Train the toy flow world's model (issue 26): world 2's scenes, drawn by a small Flux-architecture
DiT trained with the rectified-flow objective. The one reproducible, resumable command:

    python -m workshop.toyworld.train_flow                  # all stages, writes models/toyworld-flow/
    python -m workshop.toyworld.train_flow --stage vae|dit|eval|finish

Run from the repository root, on one CPU thread (``--threads``), or on a GPU (``--device cuda``,
with a larger ``--batch``; ``workshop/toyworld/gpu_flow_pilots.sh`` trains ``--preset`` sizes side by
side for the same wall time, ``--fit-minutes``). Each stage resumes as
``train_scenes.py``'s do: a checkpoint (model, EMA, optimiser, step) every ``--ckpt-minutes`` and at
the end; data and noise are drawn from generators seeded per step.

Stages
    vae     world 2's autoencoder design (``invertedit/demo/scenes_autoencoder.py``) with 16 latent
            channels, calibrated so that the host's Flux latent format, ``(latent - 0.1159) *
            0.3611``, gives mean 0 and std 1 per channel (``train_scenes.train_vae``, unchanged).
    dit     the teacher: the host's own Flux class (``comfy.ldm.flux.model.Flux`` through
            ``comfy.supported_models.FluxSchnell``: no guidance embedding, the host's discrete-flow
            sampling with shift 1, timestep = sigma) at a small size (``DIT_CONFIG``), adaLN-Zero
            start. Rectified flow: ``x_s = (1 - s) x0 + s noise``, the target velocity ``noise - x0``,
            s logit-normal (SD3's sampling of s, Esser et al. 2024); caption dropout 10% with the
            real empty prompt's encoding, so classifier-free guidance works (the model is sampled
            with CFG, as SD3 is; it has no distilled guidance input). Text: the pack's seeded random
            tiny Flux text encoders (``tiny_flow_models``: T5 context 64 wide, CLIP-L pooled),
            frozen, every caption encoded once; T5 padded to 16 tokens (``TOKENIZER_DATA``), the
            world's longest caption. The first ``--lowres-steps`` steps use ``--lowres`` images but
            every ``--highres-every``-th.
    distil  the shipped model: the same DiT with Flux.1 dev's guidance embedding, taught the
            teacher's CFG-guided velocity at guidance 1-7 (``distil``), so that it samples as Flux.1 dev
            does: FluxGuidance, one call a step, no CFG.
    eval    text-to-image on held-out captions (Euler, ``--eval-steps``; the teacher at CFG
            ``--eval-cfg``, or ``--eval-student`` at that guidance) read by world 2's judge.
    finish  ``toy_dit.safetensors`` (the student's EMA, float16), ``config.json``, ``sample.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from invertedit.demo.worlds import FLOW_TEXT
from workshop.toyworld import scenes as S
from workshop.toyworld import scenes_judge as J
from workshop.toyworld import train_scenes as TS
from workshop.toyworld.train import log, save_file, to_nchw, update_ema

OVERRIDE = "optimized_attention_override"   # the host's attention override in transformer_options

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "models" / "toyworld-flow"

# The DiT: Flux's layout at a CPU size (hidden 128, 2 heads of 64 with rope axes 16 + 24 + 24,
# 2 double-stream + 4 single-stream blocks, patch 2 over 16 latent channels).
DIT_CONFIG = {
    "image_model": "flux", "in_channels": 16, "out_channels": 16, "patch_size": 2,
    "vec_in_dim": 32, "context_in_dim": 64, "hidden_size": 128, "mlp_ratio": 4.0, "num_heads": 2,
    "depth": 2, "depth_single_blocks": 4, "axes_dim": [16, 24, 24], "theta": 10000, "qkv_bias": True,
    "guidance_embed": False,
}
# The shipped model: the same DiT with Flux.1 dev's guidance embedding, distilled from the CFG teacher.
STUDENT_CONFIG = {**DIT_CONFIG, "guidance_embed": True}
# Sizes to pilot (heads of 64, as Flux's: hidden = 64 x heads): (hidden, double blocks, single blocks).
PRESETS = {
    "h128-d2s4": (128, 2, 4),     # the shipped model (DIT_CONFIG), 2.35 M parameters (the student, with its guidance MLP)
    "h128-d4s8": (128, 4, 8),     # twice as deep, 4.53 M
    "h192-d3s6": (192, 3, 6),     # wider and deeper, 7.66 M
    "h256-d4s8": (256, 4, 8),     # 17.9 M (36 MB in float16: over the repository's budget; a pilot's upper end)
}
DEFAULT_PRESET = "h128-d2s4"


def dit_config(preset: str = DEFAULT_PRESET, student: bool = False) -> dict:
    """The teacher's (or with ``student`` the guidance-distilled model's) config at a ``PRESETS`` size."""
    hidden, double, single = PRESETS[preset]
    return {**DIT_CONFIG, "hidden_size": hidden, "num_heads": hidden // 64, "depth": double,
            "depth_single_blocks": single, "guidance_embed": student}
GUIDANCE_RANGE = (1.0, 7.0)   # the guidance scales the student learns (uniform)
VAE_KWARGS = {"latent_channels": 16, "latent_format": "flux"}


def host_classes(student: bool = False):
    from invertedit.hostkit.loaders import HOST_CLASSES
    return HOST_CLASSES["flux-dev" if student else "flux-schnell"]


# ---------------------------------------------------------------------------------------------
# Text: every caption encoded once
# ---------------------------------------------------------------------------------------------

def text_setup(out: Path) -> dict:
    """The captions, their T5 contexts ``[N, 16, 64]`` and CLIP-L pooled vectors ``[N, 32]``, and the
    empty prompt's, from the toy world's text encoder (``toy_model.load_flow_clip``), kept in
    ``<out>/text.pt`` (so a resumed run need not boot the host)."""
    path = out / "text.pt"
    if path.is_file():
        return torch.load(path, weights_only=False)
    TS.boot_host()
    from invertedit.demo.toy_model import load_flow_clip
    clip = load_flow_clip({"clip": FLOW_TEXT})
    caps = S.all_captions()

    def enc(text):
        c, p = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
        return c[0].float(), p[0].float()

    pairs = [enc(c) for c in caps]
    empty = enc("")
    st = {"captions": caps, "ctx": torch.stack([c for c, _ in pairs]), "pooled": torch.stack([p for _, p in pairs]),
          "empty_ctx": empty[0], "empty_pooled": empty[1]}
    TS.save_ckpt(st, path)
    return st


# ---------------------------------------------------------------------------------------------
# DiT
# ---------------------------------------------------------------------------------------------

def build_dit(seed: int, student: bool = False, preset: str = DEFAULT_PRESET) -> torch.nn.Module:
    """The host's Flux DiT (``preset``'s size) in float32, seeded (``tiny_models.init_weights``),
    adaLN-Zero: every modulation and the final projection start at zero, so each block starts as the
    identity (Peebles and Xie 2023)."""
    TS.boot_host()   # before the host's modules load (its device choice)
    from invertedit.demo.tiny_models import _generator, init_weights
    from invertedit.hostkit import loaders
    hc = host_classes(student)
    model = loaders.empty_unet(hc.config_class, dit_config(preset, student), {}, hc.model_type)
    net = model.diffusion_model
    init_weights(net, _generator("toyworld-flow", "student" if student else "dit", seed))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if (".lin." in name or "adaLN_modulation" in name or name.startswith("final_layer.linear")
                    or name.startswith("guidance_in.out_layer")):
                p.zero_()
    return net


class _OutOfPlace(torch.Tensor):
    """A tensor whose ``+=`` makes a new tensor: the host's Flux blocks add their residuals in place
    (``txt += ...``, ``x += ...``), which autograd refuses; ops on it return it again, so every tensor
    the blocks derive from the inputs behaves so. Training only."""

    def __iadd__(self, other):
        return torch.add(self, other)


def velocity(net, x, s, ctx, pooled, guidance: torch.Tensor | None = None, options: dict | None = None
             ) -> torch.Tensor:
    """The DiT's velocity at noise level ``s`` (the host's timestep for this model is sigma itself),
    at distilled ``guidance`` for the student; ``options``: the host's ``transformer_options``."""
    options = options or {}
    if torch.is_grad_enabled():
        x, ctx = x.as_subclass(_OutOfPlace), ctx.as_subclass(_OutOfPlace)
        return net(x, s, ctx, y=pooled, guidance=guidance, transformer_options=options).as_subclass(torch.Tensor)
    return net(x, s, ctx, y=pooled, guidance=guidance, transformer_options=options)


class JointMaps:
    """The host's attention override (``transformer_options["optimized_attention_override"]``): runs
    every block's joint attention unchanged and keeps the image queries' probabilities on the ``text``
    text keys (softmax over every key, as ``attention.maps.joint_text_probs``), head-averaged,
    differentiably: ``mean()`` is ``[batch, image tokens, text]`` averaged over the blocks."""

    def __init__(self, text: int):
        self.text, self.maps = text, []

    def __call__(self, func, q, k, v, heads, *args, **kwargs):
        logits = (q[:, :, self.text:] @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
        self.maps.append(torch.softmax(logits, dim=-1)[..., :self.text].mean(1))
        return func(q, k, v, heads, *args, **kwargs)

    def mean(self) -> torch.Tensor:
        return torch.stack(self.maps).mean(0)


def word_regions(scenes: list, words: dict, side: int, text: int, device: torch.device | str = "cpu"
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, text, side * side]`` coverage of the region each text token names on the token grid (an
    object's colour word and noun: that object; the background's colour word and "background":
    the rest) and ``[B, text]`` which tokens name one; ``words[caption]``: (region, token positions).
    Every scene's regions are drawn at once on ``device`` (``scenes.object_coverages``: ``object_coverage``'s
    numbers), so a chunk of training steps takes one call."""
    objects = S.object_coverages(scenes, side, device, ss=8).flatten(2)          # [B, slots, P]
    background = (1 - objects.sum(1, keepdim=True)).clamp(0, 1)
    regions = torch.cat([objects, background], 1)                                 # background last
    slots = objects.shape[1]
    which = torch.zeros(len(scenes), text, dtype=torch.long)
    named = torch.zeros(len(scenes), text, dtype=torch.bool)
    for b, scene in enumerate(scenes):
        for region, positions in words[scene.caption]:
            for pos in positions:   # a scene's last region is its background, the padded slots' after
                which[b, pos], named[b, pos] = region if region < len(scene.objects) else slots, True
    which, named = which.to(regions.device), named.to(regions.device)
    cover = regions.gather(1, which[..., None].expand(-1, -1, regions.shape[-1])) * named[..., None]
    return cover, named


def word_setup(out: Path) -> dict:
    """Per caption, (region, T5 positions) of each word that names a region: object k's colour word
    and noun name region k, the background's colour word and "background" the last region (the
    pack's own word finder, ``hostkit.tokens.sequence_words``); kept in ``<out>/words.pt``."""
    path = out / "words.pt"
    if path.is_file():
        return torch.load(path, weights_only=False)
    TS.boot_host()
    from invertedit.demo.toy_model import load_flow_clip
    from invertedit.hostkit.tokens import sequence_words
    clip = load_flow_clip({"clip": FLOW_TEXT})
    table = {}
    for caption in S.all_captions():
        objects, background = S.parse_caption(caption)
        found = sequence_words(clip, caption, "train_flow", "t5xxl", TEXT_TOKENS)
        content = [w for w, _ in found if w not in ("a", "and", "on")]
        expected = [w for c, sh in objects for w in (c, sh)] + [background, "background"]
        assert content == expected, (caption, content)
        named = [(w, p) for w, p in found if w not in ("a", "and", "on")]
        table[caption] = [(i // 2, positions) for i, (_, positions) in enumerate(named)]
    TS.save_ckpt(table, path)
    return table


TEXT_TOKENS = FLOW_TEXT["tokenizer_data"]["t5xxl_min_length"]


def shifted(s: torch.Tensor, shift: float) -> torch.Tensor:
    """``s`` moved toward the noise by ``shift``, ``shift s / (1 + (shift - 1) s)`` (SD3's
    resolution-dependent shift, Esser et al. 2024; Flux's ``exp(mu)``): the host's own function."""
    from comfy.model_sampling import time_snr_shift
    return time_snr_shift(shift, s)


def host_shift(res: int, factor: int = 8) -> float:
    """The shift of the host's ModelSamplingFlux node at an image of ``res`` x ``res`` (its defaults,
    base 0.5 at 256 tokens, max 1.15 at 4,096, linear in the image tokens; ``exp(mu)``): what the
    shipped Flux workflows sample with."""
    tokens = (res // factor // 2) ** 2
    return math.exp(0.5 + (1.15 - 0.5) * (tokens - 256) / (4096 - 256))


def noise_shift(args, res: int, full: float | None = None) -> float:
    """The training shift at an image of ``res``: ``--noise-shift`` (or ``full``) is the full size's (``--res``);
    a low-resolution step's is smaller in proportion to the image side, as SD3 scales its shift with
    the square root of the latent's size (Esser et al. 2024), and never below 1 (toward the image)."""
    return max(1.0, (args.noise_shift if full is None else full) * res / args.res)


def sample_s(n: int, gen: torch.Generator, shift: float = 1.0) -> torch.Tensor:
    """Noise levels, logit-normal (mean 0, std 1), moved toward the noise by ``shift``, on ``gen``'s device."""
    return shifted(torch.sigmoid(torch.randn(n, generator=gen, device=gen.device)), shift)


def of_preset(ck: dict, path, args) -> dict:
    """``ck`` (a checkpoint or weights file's contents) where it was made at ``--preset``'s size, else refused."""
    made = ck.get("preset", DEFAULT_PRESET)
    if made != args.preset:
        raise SystemExit(f"{path} is of preset {made!r}, not {args.preset!r}")
    return ck


def load_of_preset(path: Path, args, device=None) -> dict:
    """A checkpoint or weights file of ``train_flow`` (``of_preset``), on ``device`` (default ``--device``)."""
    return of_preset(torch.load(path, weights_only=False, map_location=device or args.device), path, args)


@torch.enable_grad()
def train_loop(args, stem: str, net: torch.nn.Module, lr: float, warmup: int, ema_decay: float, steps: int,
               step_loss, step_grads=None) -> bool:
    """Train ``net`` (AdamW, fused on a GPU; cosine to a tenth after ``warmup`` steps, clipping 1, EMA
    ``ema_decay``) for ``steps`` steps of ``step_loss(step) -> (loss, image size)`` (or of ``step_grads``,
    which also leaves the gradients in the parameters: ``graphed_steps``), resumably: a checkpoint
    ``<out>/<stem>_ckpt.pt`` every ``--ckpt-minutes`` and at the end, the EMA weights in
    ``<out>/toy_<stem>_ema.pt`` when done (a stage whose file exists is skipped). False when stopped
    early (``--max-minutes``, ``--stop-after``).

    Beside each checkpoint, ``<out>/<stem>_compact.pt``: the EMA weights and the run's step and minutes
    alone (a quarter of the checkpoint: 9 MB for the shipped size), small enough to carry to a GPU machine
    with the working tree. Where it is there and the checkpoint is not, the run goes on from it: the
    weights and their average both from the EMA, a fresh optimiser whose rate warms up again over
    ``warmup`` steps, the cosine where the run left it."""
    out = Path(args.out)
    final = out / f"toy_{stem}_ema.pt"
    if final.is_file():
        load_of_preset(final, args, "cpu")
        log(f"{stem}: {final} exists, skipped")
        return True
    net.train()
    params = list(net.parameters())
    for p in params:
        p.requires_grad_(True)
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.99),
                            fused=True if str(args.device).startswith("cuda") else None)
    ckpt_path, compact_path = out / f"{stem}_ckpt.pt", out / f"{stem}_compact.pt"
    start, spent, rewarm = 0, 0.0, 0
    if not ckpt_path.is_file() and compact_path.is_file():
        ck = load_of_preset(compact_path, args)
        net.load_state_dict(ck["ema"])
        ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
        start, spent, rewarm = ck["step"], ck["seconds"], ck["step"]
        log(f"{stem}: resumed from the compact checkpoint at step {start} ({spent:.0f}s spent; a fresh optimiser)")
    elif ckpt_path.is_file():
        ck = load_of_preset(ckpt_path, args)
        net.load_state_dict(ck["model"])
        ema = ck["ema"]
        TS._unpack_opt(opt, ck["opt"])
        start, spent = ck["step"], ck["seconds"]
        log(f"{stem}: resumed at step {start} ({spent:.0f}s spent)")
    log(f"{stem}: {sum(p.numel() for p in params) / 1e6:.2f} M parameters")
    t0, last_ckpt = time.time() - spent, time.time()
    # the --cuda-graph teacher's window: a whole chunk (its inputs' making was a third of a step on an H200)
    fit = TS.FitHorizon(args.fit_minutes, start, t0, stem, args.graph_chunk if step_grads is not None else 100)
    loss_avg = None
    step = start
    while step < steps:
        step += 1
        steps = fit.horizon(step, steps)
        rate = lr * min(1.0, (step - rewarm) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = rate
        if step_grads is None:
            loss, res = step_loss(step)
            opt.zero_grad(set_to_none=True)
            loss.backward()
        else:
            loss, res = step_grads(step)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        update_ema(ema, net.state_dict(), min(ema_decay, (1 + step) / (10 + step)))
        # the running loss stays on the device (read at the log: one synchronisation in 25 steps)
        loss_avg = loss.detach().clone() if loss_avg is None else loss_avg.mul_(0.98).add_(loss.detach(), alpha=0.02)
        if step % 25 == 0 or step == steps:
            el = time.time() - t0
            log(f"{stem} step {step}/{steps} res {res} loss {float(loss_avg):.4f} lr {rate:.2e} "
                f"({el:.0f}s, {(el - spent) / (step - start):.3f} s/step)")
        stop = bool(args.max_minutes and (time.time() - t0) > 60 * args.max_minutes) or step == args.stop_after
        if time.time() - last_ckpt > 60 * args.ckpt_minutes or step == steps or stop:
            TS.save_ckpt({"model": net.state_dict(), "ema": ema, "opt": TS._pack_opt(opt), "step": step,
                          "seconds": time.time() - t0, "loss": float(loss_avg), "preset": args.preset}, ckpt_path)
            TS.save_ckpt({"ema": ema, "step": step, "seconds": time.time() - t0, "loss": float(loss_avg),
                          "preset": args.preset}, compact_path)
            last_ckpt = time.time()
            log(f"{stem} checkpoint at step {step}")
        if stop:
            log(f"{stem}: stopped at step {step} (resume with the same command)")
            return False
    TS.save_ckpt({"ema": ema, "step": steps, "seconds": time.time() - t0, "loss": float(loss_avg), "preset": args.preset,
                  "batch": args.batch}, final)
    log(f"{stem} done in {time.time() - t0:.0f}s")
    return True


def batch(args, ae, text: dict, index: dict, step: int, res: int, bs: int):
    """A step's scenes (``train_scenes.step_scenes``) as Flux-format latents, their captions' T5
    contexts and pooled vectors, and the scenes themselves."""
    scenes = TS.step_scenes(args, step, bs)
    x0 = latents(args, ae, scenes, res)
    idx = torch.tensor([index[s.caption] for s in scenes], device=x0.device)
    return x0, text["ctx"][idx], text["pooled"][idx], scenes


@torch.no_grad()
def latents(args, ae, scenes: list, res: int) -> torch.Tensor:
    """``scenes`` rendered at ``res`` and encoded as Flux-format latents (on ``--device``)."""
    return ae.to_model(ae.encode(to_nchw(S.render_batch(scenes, res, device=on_device(args)))))


def without_captions(text: dict, ctx: torch.Tensor, pooled: torch.Tensor, drop: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The contexts and pooled vectors with the empty prompt's where ``drop`` (caption dropout, for CFG)."""
    return (torch.where(drop[:, None, None], text["empty_ctx"], ctx),
            torch.where(drop[:, None], text["empty_pooled"], pooled))


def on_device(args) -> str | None:
    """``--device`` for ``scenes.render_batch`` (None: the CPU's exact renderer)."""
    return None if args.device == "cpu" else args.device


def setup(args) -> tuple:
    """(autoencoder, text, caption index) on ``--device``."""
    ae = TS.load_ae(args).to(args.device)
    text = {k: v.to(args.device) if torch.is_tensor(v) else v for k, v in text_setup(Path(args.out)).items()}
    return ae, text, {c: i for i, c in enumerate(text["captions"])}


def noised(x0: torch.Tensor, gen: torch.Generator, shift: float = 1.0
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(s, noise, x_s): logit-normal noise levels (moved by ``shift``) and the rectified-flow interpolation, drawn
    on ``gen``'s device."""
    s = sample_s(len(x0), gen, shift).to(x0.device)
    noise = torch.randn(x0.shape, generator=gen, device=gen.device).to(x0.device)
    sv = s[:, None, None, None]
    return s, noise, (1 - sv) * x0 + sv * noise


def train_dit(args) -> bool:
    """The CFG teacher: the rectified-flow loss, captions dropped in ``--dropout`` of the samples."""
    ae, text, index = setup(args)
    net = build_dit(args.seed, preset=args.preset).to(args.device)

    def step_loss(step: int):
        res = TS.step_res(args, step, args.res)
        x0, ctx, pooled, _ = batch(args, ae, text, index, step, res, args.batch)
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        drop = (torch.rand(len(x0), generator=gen) < args.dropout).to(x0.device)
        ctx, pooled = without_captions(text, ctx, pooled, drop)
        s, noise, xs = noised(x0, gen, noise_shift(args, res))
        return F.mse_loss(velocity(net, xs, s, ctx, pooled), noise - x0), res

    def loss_of(xs, s, ctx, pooled, target):
        return F.mse_loss(velocity(net, xs, s, ctx, pooled), target)

    grads = None
    if args.cuda_graph:
        from workshop.toyworld import graphed_steps as G
        res = graph_res(args, args.steps)
        grads = graphed_grads(args, net, loss_of, G.ChunkedInputs(args, ae, text, index, res, noise_shift(args, res),
                                                                 args.graph_chunk))
    return train_loop(args, "dit", net, args.lr, args.warmup, args.ema, args.steps, step_loss, grads)


def graph_res(args, steps: int) -> int:
    """``--cuda-graph``'s one image size over ``steps`` steps (one graph has one shape)."""
    res = TS.step_res(args, 1, args.res)
    if any(TS.step_res(args, k, args.res) != res for k in range(2, steps + 1)):
        raise SystemExit("--cuda-graph trains at one image size: give --lowres-steps 0 (every step at --res) or "
                         "--lowres-steps at least --steps with --highres-every 0 (every step at --lowres)")
    return res


def graphed_grads(args, net: torch.nn.Module, loss_of, inputs):
    """``--cuda-graph``: a stage's steps at a GPU's speed (``graphed_steps``): their ``inputs`` made a chunk
    of steps at a time on the device, ``loss_of(*inputs)``'s forward and backward replayed from a CUDA graph
    (eagerly off CUDA, the same training)."""
    from workshop.toyworld import graphed_steps as G
    params = list(net.parameters())
    if not str(args.device).startswith("cuda"):
        log("--cuda-graph without CUDA: the chunked inputs, stepped eagerly")
        return G.eager_grads(params, loss_of, inputs)
    return G.GraphedGrads(params, loss_of, inputs)


def load_dit(args, which: str = "final", student: bool = False) -> tuple[torch.nn.Module, dict]:
    """The EMA weights of the finished stage (or of its last checkpoint, ``which="ckpt"``): the CFG
    teacher, or with ``student`` the guidance-distilled model."""
    out = Path(args.out)
    stem = "student" if student else "dit"
    path = out / (f"toy_{stem}_ema.pt" if which == "final" else f"{stem}_ckpt.pt")
    ck = load_of_preset(path, args)
    net = build_dit(args.seed, student, args.preset).to(args.device)
    net.load_state_dict(ck["ema"])
    net.eval().requires_grad_(False)
    return net, {"steps": ck["step"], "seconds": round(ck["seconds"]), "loss": round(float(ck["loss"]), 4)}


def load_student(path: str, device: str) -> dict:
    """A finished student for ``--distil-init``: a ``toy_student_ema.pt``, or a shipped model's
    ``toy_dit.safetensors`` (float16, as ``finish`` writes it; its size read from the ``config.json``
    beside it), as ``{"ema": weights in float32, "preset": ...}``."""
    if not path.endswith(".safetensors"):
        return torch.load(path, weights_only=False, map_location=device)
    from safetensors.torch import load_file
    config = json.loads((Path(path).parent / "config.json").read_text())
    preset = config.get("training", {}).get("preset", DEFAULT_PRESET)
    return {"ema": {k: v.float() for k, v in load_file(path, device=str(device)).items()}, "preset": preset}


def distil(args) -> bool:
    """Guidance distillation (as Flux.1 dev's guidance input; Meng et al. 2023): a student with a
    guidance embedding, started from the teacher's weights (its guidance MLP's output at zero), learns
    the teacher's classifier-free-guided velocity ``v_u + g (v_c - v_u)`` at guidance ``g`` drawn
    uniformly from ``GUIDANCE_RANGE``, on fresh scenes at the teacher's noise levels. With
    ``--attention-loss`` it also learns where each word is, as world 2's attention fine-tune taught its
    UNet: the share of a colour word's or noun's image-to-text attention (every block's joint
    attention, ``JointMaps``) outside its region, below noise level ``--attention-max-s``."""
    ae, text, index = setup(args)
    if args.anchor and not args.distil_init:
        raise SystemExit("--anchor holds a finished student where it was: give it with --distil-init")
    if args.anchor and args.teacher_text:
        raise SystemExit("--anchor: the teacher is the --distil-init student on its own text encoder; drop "
                         "--teacher-text")
    teacher = None if args.anchor else load_dit(args)[0]
    net = build_dit(args.seed, student=True, preset=args.preset).to(args.device)
    if args.distil_init:   # a fine-tune of a finished student (its EMA weights), as world 2's attention fine-tune
        init = of_preset(load_student(args.distil_init, args.device), args.distil_init, args)
        net.load_state_dict(init["ema"])
        if args.anchor:   # the start, frozen, is its own teacher: its guided velocity at the same guidance
            teacher = build_dit(args.seed, student=True, preset=args.preset).to(args.device)
            teacher.load_state_dict(init["ema"])
            teacher.eval().requires_grad_(False)
    else:
        missing, unexpected = net.load_state_dict(teacher.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("guidance_in.") for k in missing), (missing, unexpected)
    lo, hi = GUIDANCE_RANGE
    steps = args.distil_steps
    words = word_setup(Path(args.out)) if args.attention_loss else None
    # the teacher's own text encoder's contexts, where it was trained on another (``--teacher-text``)
    taught = text if not args.teacher_text else {k: v.to(args.device) if torch.is_tensor(v) else v
                                                 for k, v in torch.load(args.teacher_text, weights_only=False).items()}
    if taught["captions"] != text["captions"]:
        raise SystemExit(f"{args.teacher_text}: its captions are not this world's")

    @torch.no_grad()
    def target_of(xs, s, ctx, pooled, scale, t_ctx, t_pooled):
        """The teacher's classifier-free-guided velocity at ``scale`` (with ``--anchor``: the frozen start's at
        its distilled guidance)."""
        if args.anchor:
            return velocity(teacher, xs, s, ctx, pooled, guidance=scale)
        n = len(xs)
        v = velocity(teacher, torch.cat([xs, xs]), torch.cat([s, s]),
                     torch.cat([t_ctx, taught["empty_ctx"].expand_as(t_ctx)]),
                     torch.cat([t_pooled, taught["empty_pooled"].expand_as(t_pooled)]))
        return v[n:] + scale[:, None, None, None] * (v[:n] - v[n:])

    def losses_of(xs, s, ctx, pooled, scale, t_ctx, t_pooled, cover=None, named=None):
        """(the velocity loss, with ``words`` the attention outside the words' regions, else None)."""
        target = target_of(xs, s, ctx, pooled, scale, t_ctx, t_pooled)
        if not words:
            return F.mse_loss(velocity(net, xs, s, ctx, pooled, guidance=scale), target), None
        maps = JointMaps(TEXT_TOKENS)
        loss = F.mse_loss(velocity(net, xs, s, ctx, pooled, guidance=scale, options={OVERRIDE: maps}), target)
        named = named & (s < args.attention_max_s)[:, None]   # above it the noise hides the layout
        return loss, TS.attention_loss(maps.mean(), cover, named)   # world 2's loss

    def loss_of(*inputs):
        loss, outside = losses_of(*inputs)
        return loss if outside is None else loss + args.attention_loss * outside

    def step_loss(step: int):
        res = TS.step_res(args, step, args.res)
        x0, ctx, pooled, scenes = batch(args, ae, text, index, 1_000_000 + step, res, args.batch)
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + 7_000_000 + step)
        n = len(x0)
        s, noise, xs = noised(x0, gen, noise_shift(args, res, args.distil_shift))
        scale = lo + (hi - lo) * torch.rand(n, generator=gen)
        if args.guidance_one:   # guidance 1 (the inversions' and reconstructions') drawn more often
            scale = torch.where(torch.rand(n, generator=gen) < args.guidance_one, 1.0, scale)
        scale = scale.to(x0.device)
        if taught is not text:
            idx = torch.tensor([index[sc.caption] for sc in scenes], device=x0.device)
            t_ctx, t_pooled = taught["ctx"][idx], taught["pooled"][idx]
        else:
            t_ctx, t_pooled = ctx, pooled
        if not words:
            return loss_of(xs, s, ctx, pooled, scale, t_ctx, t_pooled), res
        cover, named = word_regions(scenes, words, res // args.factor // 2, TEXT_TOKENS, x0.device)
        loss, outside = losses_of(xs, s, ctx, pooled, scale, t_ctx, t_pooled, cover, named)
        if step % 25 == 0:
            log(f"distil step {step}: velocity loss {loss.item():.4f}, attention outside the region {outside.item():.3f}")
        return loss + args.attention_loss * outside, res

    grads = None
    if args.cuda_graph:
        from workshop.toyworld import graphed_steps as G
        res = graph_res(args, steps)
        regions = (lambda scenes: word_regions(scenes, words, res // args.factor // 2, TEXT_TOKENS, args.device)
                   ) if words else None
        grads = graphed_grads(args, net, loss_of, G.ChunkedDistilInputs(
            args, ae, text, index, res, noise_shift(args, res, args.distil_shift), taught, GUIDANCE_RANGE,
            args.guidance_one, args.graph_chunk, regions))
    return train_loop(args, "student", net, args.distil_lr, 20, args.distil_ema, steps, step_loss, grads)


# ---------------------------------------------------------------------------------------------
# Quick evaluation
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def euler_sample(net, ctx, pooled, empty_ctx, empty_pooled, cfg: float, steps: int, latent: int, seed: int,
                 distilled: bool = False, shift: float = 1.0):
    """Euler over s = 1 -> 0 in ``steps`` equal steps moved by ``shift`` (the host's simple schedule
    at that shift): CFG at ``cfg`` (the teacher), or one call at guidance ``cfg`` (``distilled``: the
    student)."""
    n = ctx.shape[0]
    x = torch.randn(n, 16, latent, latent, generator=torch.Generator().manual_seed(seed)).to(ctx.device)
    ss = shifted(torch.linspace(1, 0, steps + 1, device=ctx.device), shift)
    return euler_from(net, x, ss, 0, ctx, pooled, empty_ctx, empty_pooled, cfg, distilled)


@torch.no_grad()
def euler_from(net, x: torch.Tensor, ss: torch.Tensor, start: int, ctx, pooled, empty_ctx, empty_pooled,
               cfg: float, distilled: bool = False) -> torch.Tensor:
    """Euler over the noise levels ``ss`` from ``ss[start]`` to the last (``euler_sample``'s loop; from
    a noised image, ``flow_levels``)."""
    for i in range(start, len(ss) - 1):
        x = x + (ss[i + 1] - ss[i]) * guided_velocity(net, x, ss[i], ctx, pooled, empty_ctx, empty_pooled, cfg,
                                                      distilled)
    return x


@torch.no_grad()
def guided_velocity(net, x: torch.Tensor, s: torch.Tensor, ctx, pooled, empty_ctx, empty_pooled, cfg: float,
                    distilled: bool = False) -> torch.Tensor:
    """The velocity at noise level ``s`` (a 0-d tensor): the teacher's CFG at ``cfg`` (the prompt and the
    empty prompt in one batched call), or the student's one call at guidance ``cfg``."""
    n = x.shape[0]
    if distilled:
        return velocity(net, x, s.expand(n), ctx, pooled, guidance=torch.full((n,), cfg, device=x.device))
    v = velocity(net, torch.cat([x, x]), s.expand(2 * n), torch.cat([ctx, empty_ctx.expand_as(ctx)]),
                 torch.cat([pooled, empty_pooled.expand_as(pooled)]))
    return v[n:] + cfg * (v[:n] - v[n:])


def to_images(ae, z: torch.Tensor) -> torch.Tensor:
    """Flux-format latents as [N, H, W, 3] images in [0, 1], on the CPU (for the judge)."""
    return ((ae.decode(ae.from_model(z)) + 1) / 2).clamp(0, 1).movedim(1, -1).cpu()


def evaluate(args) -> dict:
    out = Path(args.out)
    ae, text, index = setup(args)
    student = args.eval_student
    stem = "student" if student else "dit"
    net, meta = load_dit(args, "final" if (out / f"toy_{stem}_ema.pt").is_file() else "ckpt", student)
    res = args.res
    eval_shift = host_shift(res, args.factor) if args.eval_shift == "host" else float(args.eval_shift)
    texts = S.heldout_captions(args.eval_captions)
    readings, imgs = [], []
    t0 = time.time()
    for i in range(0, len(texts), 10):
        chunk = texts[i:i + 10]
        ids = [index[c] for c in chunk]
        z = euler_sample(net, text["ctx"][ids], text["pooled"][ids], text["empty_ctx"], text["empty_pooled"],
                         args.eval_cfg, args.eval_steps, res // args.factor, seed=1000 + i, distilled=student,
                         shift=eval_shift)
        im = to_images(ae, z)
        imgs.append(im)
        readings += [J.judge(x) for x in im]
    right = [r.objects_right(c) for r, c in zip(readings, texts)]
    result = {**meta, "preset": args.preset, "model": "distilled (guidance)" if student else "teacher (CFG)", "res": res, "cfg": args.eval_cfg, "sampling_steps": args.eval_steps, "sampling_shift": round(eval_shift, 3), "captions": len(texts),
              "t2i_every_object_right": round(sum(a == b for a, b in right) / len(texts), 3),
              "t2i_objects_right": round(sum(a for a, _ in right) / sum(b for _, b in right), 3),
              "t2i_background_right": round(sum(r.background == S.parse_caption(c)[1]
                                                for r, c in zip(readings, texts)) / len(texts), 3),
              "t2i_exact_caption": round(sum(r.matches_caption(c) for r, c in zip(readings, texts)) / len(texts), 3),
              "eval_seconds": round(time.time() - t0)}
    log("eval " + json.dumps(result))
    (out / f"eval_{stem}_{meta['steps']}_cfg{args.eval_cfg:g}{'' if eval_shift == 1 else f'_shift{eval_shift:.2f}'}.json").write_text(json.dumps(result, indent=2) + "\n")
    grid = torch.cat(imgs)[:20]
    rows = [torch.cat(list(grid[r * 5:(r + 1) * 5]), dim=1) for r in range(len(grid) // 5)]
    from PIL import Image
    Image.fromarray((torch.cat(rows, 0) * 255).round().byte().numpy()).save(out / f"t2i_{stem}_{meta['steps']}.png")
    return result


# ---------------------------------------------------------------------------------------------
# Finish
# ---------------------------------------------------------------------------------------------

def finish(args) -> None:
    out = Path(args.out)
    net, meta = load_dit(args, student=True)
    if not (out / "toy_dit_ema.pt").is_file():   # no teacher here: a fine-tune of a shipped model
        shipped = Path(args.distil_init).parent / "config.json" if args.distil_init.endswith(".safetensors") else None
        if shipped is None or not shipped.is_file():
            raise SystemExit(f"finish: {out} has no teacher (toy_dit_ema.pt) to describe; a fine-tune of a shipped "
                             f"model names its toy_dit.safetensors (config.json beside it) with --distil-init")
        return finish_fine_tune(args, net, meta, json.loads(shipped.read_text()))
    _, teacher = load_dit(args)
    save_student(out, net, meta)
    from safetensors import safe_open
    with safe_open(str(out / "toy_vae.safetensors"), "pt") as f:
        vae_meta = f.metadata()
    config = {
        "what": "Toy World Flow Model: the pack's built-in flow-matching demo/test model (issue 26), world 2's "
                "scenes drawn by a small Flux-architecture DiT; not a general image model.",
        "world": {"module": "workshop.toyworld.scenes", "size": args.res, "colours": list(S.COLOURS),
                  "shapes": list(S.SHAPES), "templates": [S.TEMPLATE_2, S.TEMPLATE_1]},
        "family": "flux-dev",
        "dit_config": dit_config(args.preset, student=True),
        "sampling": "as Flux.1 dev: the distilled guidance input (FluxGuidance about 4; the student learnt 1-7), "
                    "no CFG; the host's Flux sampling (ModelSamplingFlux at the image's size)",
        "clip": FLOW_TEXT,
        "vae": {"class": "invertedit.demo.scenes_autoencoder.SceneAutoencoder", "downscale": args.factor,
                "latent_channels": 16, "kwargs": {"factor": args.factor, **VAE_KWARGS}},
        "training": {"command": "python -m workshop.toyworld.train_flow", "seed": args.seed, "preset": args.preset,
                     "device": args.device, "fit_minutes": args.fit_minutes, "cuda_graph": args.cuda_graph or None,
                     "vae_steps": args.vae_steps, "vae_batch": args.vae_batch, "steps": teacher.get("steps", args.steps),
                     "batch": args.batch, "lr": args.lr, "noise_shift": args.noise_shift, "caption_dropout": args.dropout, "one_object": args.one_object,
                     "ema": args.ema, "lowres": args.lowres, "lowres_steps": args.lowres_steps,
                     "highres_every": args.highres_every, "teacher": teacher, "distil_steps": meta.get("steps", args.distil_steps),
                     "distil_lr": args.distil_lr, "distil_ema": args.distil_ema, "guidance_range": list(GUIDANCE_RANGE),
                     "student": meta, "attention_loss": args.attention_loss, "attention_max_s": args.attention_max_s,
                     "distil_init": Path(args.distil_init).name if args.distil_init else None,
                     "anchor": args.anchor or None,
                     "distil_shift": args.distil_shift, "guidance_one": args.guidance_one,
                     "teacher_text": "another text encoder's" if args.teacher_text else None,
                     "toy_vae_metadata": vae_meta},
    }
    from PIL import Image
    img, _ = S.render(S.SAMPLE, args.res)
    Image.fromarray((img * 255).round().byte().numpy()).save(out / "sample.png")
    config["sample"] = {"file": "sample.png", "caption": S.SAMPLE.caption}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    log("wrote toy_dit.safetensors, sample.png and config.json")


def save_student(out: Path, net: torch.nn.Module, meta: dict) -> None:
    """The shipped form of a student: ``toy_dit.safetensors`` in float16, its training figures as metadata."""
    save_file({k: v.half().cpu() for k, v in net.state_dict().items()}, out / "toy_dit.safetensors",
              metadata={k: str(v) for k, v in meta.items()})


def finish_fine_tune(args, net: torch.nn.Module, meta: dict, shipped: dict) -> None:
    """``finish`` for a fine-tune of a shipped model (``--distil-init .../toy_dit.safetensors``, no teacher
    here): its weights, and its ``config.json`` with the shipped model's training kept as it was and
    what this stage did under ``training.fine_tune``."""
    out = Path(args.out)
    save_student(out, net, meta)
    config = shipped
    config["training"]["fine_tune"] = {
        "command": "python -m workshop.toyworld.train_flow --stage distil", "device": args.device,
        "distil_init": str(args.distil_init), "anchor": args.anchor, "steps": meta.get("steps", args.distil_steps),
        "batch": args.batch, "distil_lr": args.distil_lr, "distil_ema": args.distil_ema,
        "attention_loss": args.attention_loss, "attention_max_s": args.attention_max_s,
        "noise_shift": args.noise_shift, "distil_shift": args.distil_shift, "lowres": args.lowres,
        "lowres_steps": args.lowres_steps, "highres_every": args.highres_every, "student": meta}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    sample = Path(args.distil_init).parent / config.get("sample", {}).get("file", "sample.png")
    if sample.is_file():
        (out / sample.name).write_bytes(sample.read_bytes())
    log("wrote toy_dit.safetensors and config.json (a fine-tune of the shipped model)")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", default="all", choices=["all", "vae", "dit", "distil", "eval", "finish"])
    p.add_argument("--out", default=str(OUT), help="output folder (weights, checkpoints, log)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS), help="the DiT's size (PRESETS)")
    p.add_argument("--device", default="cpu", help="where the DiT trains and evaluates (cpu, cuda); the VAE "
                                                    "stage runs on the CPU")
    p.add_argument("--fit-minutes", type=float, default=0.0,
                   help="pilots: time steps 101-200, then shorten the stage's --steps (or --distil-steps) to what "
                        "fits in this many minutes of the stage")
    p.add_argument("--factor", type=int, default=8)
    p.add_argument("--res", type=int, default=256, help="image size (the VAE's crops come from it)")
    p.add_argument("--vae-steps", type=int, default=3000)
    p.add_argument("--vae-batch", type=int, default=32)
    p.add_argument("--vae-crop-cells", type=int, default=16)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--one-object", type=float, default=0.15)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--noise-shift", type=float, default=8.0,
                   help="training noise levels: logit-normal moved toward the noise by this shift at --res (SD3's "
                        "resolution shift; --lowres steps a shift smaller by the sides' ratio, at least 1; 1: none; "
                        "8: the shipped model's)")
    p.add_argument("--lowres", type=int, default=128)
    p.add_argument("--lowres-steps", type=int, default=3500)
    p.add_argument("--highres-every", type=int, default=3)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--cuda-graph", action="store_true",
                   help="the teacher's and the distillation's steps at a GPU's speed: inputs made --graph-chunk steps at a time on the "
                        "device, the forward and backward replayed from a CUDA graph (workshop/toyworld/graphed_steps.py); "
                        "one image size throughout")
    p.add_argument("--graph-chunk", type=int, default=256, help="--cuda-graph: steps whose inputs are made at once")
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--max-minutes", type=float, default=0.0)
    p.add_argument("--stop-after", type=int, default=0)
    p.add_argument("--force", action="store_true", help="retrain the VAE even if its weights exist")
    p.add_argument("--eval-captions", type=int, default=40)
    p.add_argument("--eval-steps", type=int, default=20)
    p.add_argument("--eval-shift", default="1",
                   help="evaluation's sampling shift: a number, or 'host' for the host's ModelSamplingFlux at "
                        "the image's size (what the Flux workflows sample with)")
    p.add_argument("--eval-cfg", type=float, default=4.0, help="CFG scale (teacher) or guidance (student)")
    p.add_argument("--eval-student", action="store_true", help="evaluate the distilled model")
    p.add_argument("--distil-steps", type=int, default=600)
    p.add_argument("--distil-lr", type=float, default=2e-4)
    p.add_argument("--distil-ema", type=float, default=0.995)
    p.add_argument("--attention-loss", type=float, default=0.3,
                   help="distillation: weight of world 2's attention loss on the joint attention (the share of a "
                        "colour word's or noun's image-to-text attention outside its region; 0: off)")
    p.add_argument("--attention-max-s", type=float, default=0.8,
                   help="the attention loss applies below this noise level")
    p.add_argument("--distil-init", default="",
                   help="distillation: start from this finished student's EMA weights (toy_student_ema.pt of another "
                        "--out, or a shipped toy_dit.safetensors) instead of the teacher's: a fine-tune, e.g. of the "
                        "attention")
    p.add_argument("--anchor", action="store_true",
                   help="distillation from --distil-init: that student, frozen, is the teacher (its own velocity at "
                        "the same guidance), so that only the attention loss moves the fine-tune")
    p.add_argument("--teacher-text", default="",
                   help="distillation: the teacher's text.pt, where it was trained on another text encoder than "
                        "the student's (the flow world's T5 before its binding)")
    p.add_argument("--guidance-one", type=float, default=0.0,
                   help="distillation: this share of the samples at guidance 1 exactly (the teacher's conditional "
                        "velocity: what inversions and reconstructions sample), the rest uniform over the range")
    p.add_argument("--distil-shift", type=float, default=None,
                   help="distillation: the training noise levels' shift at --res (default: --noise-shift); 1 draws "
                        "most samples below --attention-max-s, where the attention loss acts")
    args = p.parse_args(argv)
    args.vae_kwargs = VAE_KWARGS
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    Path(args.out).mkdir(parents=True, exist_ok=True)
    stages = ["vae", "dit", "distil", "finish"] if args.stage == "all" else [args.stage]
    for s in stages:
        done = {"vae": TS.train_vae, "dit": train_dit, "distil": distil, "eval": evaluate, "finish": finish}[s](args)
        if done is False:
            break


if __name__ == "__main__":
    main()

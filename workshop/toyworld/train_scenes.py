"""Train the Toy World 2 model (issue 12): the one reproducible, resumable command.

    python -m workshop.toyworld.train_scenes                     # all stages, writes models/toyworld2/
    python -m workshop.toyworld.train_scenes --stage vae|unet|eval|finish

Run from the repository root, on one CPU thread (``--threads``). Every stage resumes: the VAE
and the UNet write a checkpoint (model, EMA, optimiser, step) to ``<out>/*_ckpt.pt`` every
``--ckpt-minutes`` of wall time and at the end; the same command started again continues from
the last checkpoint with the same data and noise (both are drawn from generators seeded per
step), and a stage whose final weights exist is skipped.

Stages
    vae     the autoencoder (invertedit/demo/scenes_autoencoder.py) on random crops of freshly rendered scenes
            (it is fully convolutional and works at latent resolution); then its per-channel
            latent affine (latent x 0.18215 -> mean 0, std 1) and held-out PSNR on whole images.
    unet    an SD1.x-architecture UNet built with the host's own classes
            (comfy.supported_models.SD15 with a small unet_config, ``--preset``), eps prediction
            on the SD1.x noise schedule, offset noise, min-SNR weighting, caption dropout with the
            real CLIPTextEncode("") embedding, EMA weights. The frozen text encoder is the pack's
            seeded random SD1 CLIP (invertedit/demo/tiny_models.build_tiny_clip, seed 3 as in world 1),
            every caption's embedding computed once. Training scenes are rendered and encoded
            on the fly (no cache): two objects, or one in ``--one-object`` of them. The first
            ``--lowres-steps`` steps use half-size images (32x32 latents, about 4x cheaper)
            except every ``--highres-every``-th step; the rest use full-size ones.
    eval    quick measurements of the EMA weights: text-to-image on held-out captions at cfg 5
            (own DDIM loop, 20 steps; the judge reads every object) and the Prompt-to-Prompt
            local-blend mask of each noun (cross-attention at latent/4 averaged over the
            forward-noised trajectory of a rendered scene, 3x3 max-pool, normalised, > 0.3)
            against the object's true mask.
    finish  the text-encoder subset and config.json.
    oracle  (not part of "all") the local-blend recipe's IoU ceiling per latent size, no model.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from invertedit.attention.maps import attention_probs
from invertedit.techniques.attention_maps.store import local_blend_mask
from workshop.toyworld import scenes as S
from workshop.toyworld import scenes_judge as J
from invertedit.demo.scenes_autoencoder import SD1_SCALE, SceneAutoencoder
from workshop.toyworld.train import CLIP_SEED, log, save_file, eps_loss, save_text_encoder, to_nchw, update_ema

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "models" / "toyworld2"
WORK = Path(os.environ.get("TOYWORLD2_WORK", "/tmp/toyworld2"))  # host folders (not committed)


def _unet_config(latent: int, channel_mult: list[int], num_res_blocks: list[int],
                 attention: list[bool], model_channels: int = 32, middle_attention: bool = True,
                 layers: int = 1) -> dict:
    """A comfy unet_config; ``attention[level]`` puts a transformer of ``layers`` attention
    layers after every res block of that level (input and output side); the middle block has one
    if ``middle_attention``, else it is a single res block (the host's ``transformer_depth_middle`` -1)."""
    depth = [layers * int(a) for a, n in zip(attention, num_res_blocks) for _ in range(n)]
    depth_out = [layers * int(a) for a, n in zip(attention, num_res_blocks) for _ in range(n + 1)]
    return {
        "use_checkpoint": False, "image_size": latent, "in_channels": 4, "out_channels": 4,
        "model_channels": model_channels, "num_res_blocks": list(num_res_blocks),
        "channel_mult": list(channel_mult), "transformer_depth": depth,
        "transformer_depth_middle": layers if middle_attention else -1, "transformer_depth_output": depth_out,
        "use_spatial_transformer": True, "legacy": False, "use_linear_in_transformer": False,
        "context_dim": 64, "adm_in_channels": None, "use_temporal_attention": False,
        "use_temporal_resblock": False,
    }


# UNet presets measured in the pilots (toyworld/SCENES-NOTES.md). Levels halve the latent.
PRESETS: dict[str, dict] = {
    # 64x64 latent; levels 64/32/16; cross-attention only at latent/4 (16x16) and the middle.
    "L64-a4": _unet_config(64, [1, 2, 4], [0, 1, 1], [False, False, True]),
    # The same with no transformer in the middle (8x8): every word reaches the picture through the
    # latent/4 layers, the ones Prompt-to-Prompt's maps read (with one at 8x8, the words were
    # placed there and the latent/4 maps stayed diffuse: SCENES-NOTES.md).
    "L64-a4-m0": _unet_config(64, [1, 2, 4], [0, 1, 1], [False, False, True], middle_attention=False),
    # 64x64 latent; levels 64/32/16/8; cross-attention at latent/4 and latent/8.
    "L64-a48": _unet_config(64, [1, 2, 4, 4], [0, 1, 1, 1], [False, False, True, True]),
    # 64x64 latent; wider at latent/4: 64 base channels, mult 1-2-2 (128 at 32 and 16).
    "L64w-a4": _unet_config(64, [1, 2, 2], [0, 1, 1], [False, False, True], model_channels=64),
    # Issue 29's pilots (a model that counts and keeps objects apart needs more global capacity):
    # L64-a4 with two attention layers in every transformer (latent/4 and the middle).
    "L64-a4-d2": _unet_config(64, [1, 2, 4], [0, 1, 1], [False, False, True], layers=2),
    # 192 channels and two res blocks at latent/4 (mult 1-2-6, res blocks 0-1-2).
    "L64-a4x": _unet_config(64, [1, 2, 6], [0, 1, 2], [False, False, True]),
    # 32x32 latent (256-px images at 8x); levels 32/16/8; cross-attention at latent/4 (8x8).
    "L32-a4": _unet_config(32, [1, 2, 4], [1, 1, 1], [False, False, True]),
}
UNET_OVERRIDES = {"num_heads": -1, "num_head_channels": 32}
DEFAULT_PRESET = "L64-a4"


def preset_latent(preset: str) -> int:
    return PRESETS[preset]["image_size"]


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------

CKPT_BUDGET = 64e6  # bytes: Adam's moments are stored in bfloat16 when float32 would pass this


def _pack_opt(opt: torch.optim.Optimizer) -> dict:
    """The optimiser state; Adam's moments in float32 (an exact resume) while model + EMA +
    moments fit in ``CKPT_BUDGET``, else in bfloat16 (a resume then differs by their rounding)."""
    sd = opt.state_dict()
    n = sum(p.numel() for g in opt.param_groups for p in g["params"])
    if 16 * n <= CKPT_BUDGET:
        return sd
    state = {}
    for k, v in sd["state"].items():
        state[k] = {n: (t.to(torch.bfloat16) if torch.is_tensor(t) and t.is_floating_point() and t.ndim > 0 else t)
                    for n, t in v.items()}
    return {"state": state, "param_groups": sd["param_groups"]}


def _unpack_opt(opt: torch.optim.Optimizer, packed: dict) -> None:
    state = {k: {n: (t.float() if torch.is_tensor(t) and t.dtype == torch.bfloat16 else t) for n, t in v.items()}
             for k, v in packed["state"].items()}
    opt.load_state_dict({"state": state, "param_groups": packed["param_groups"]})


def save_ckpt(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------------------------

def make_ae(args) -> SceneAutoencoder:
    """The world's autoencoder: 4 channels scaled as SD1.x for world 2, or what ``args.vae_kwargs``
    says (the flow world's: 16 channels scaled as Flux's, ``train_flow.py``)."""
    return SceneAutoencoder(factor=args.factor, **getattr(args, "vae_kwargs", {}))


def vae_path(args) -> Path:
    return Path(args.out) / "toy_vae.safetensors"


@torch.no_grad()
def vae_psnr(ae: SceneAutoencoder, scenes: list, res: int) -> float:
    vals = []
    for i in range(0, len(scenes), 8):
        imgs = S.render_batch(scenes[i:i + 8], res)
        rec = ((ae.decode(ae.encode(to_nchw(imgs))) + 1) / 2).clamp(0, 1).movedim(1, -1)
        vals += [S.psnr(rec[j], imgs[j]) for j in range(len(imgs))]
    return sum(vals) / len(vals)


class FitHorizon:
    """``--fit-minutes``: time ``window`` steps from ``start+101`` (after the warm-up, once runs sharing
    a GPU have all started), then shorten the cosine's horizon to the steps that fit in that many
    minutes of the stage (never past the given ``--*-steps``). Off (the horizon unchanged) at 0. Where
    some steps cost more than others (``--cuda-graph``'s inputs are made once a chunk), the window
    spans one of each kind (the chunk)."""

    def __init__(self, minutes: float, start: int, t0: float, stage: str, window: int = 100) -> None:
        self.minutes, self.t0, self.stage = minutes, t0, stage
        self.first, self.last = start + 100, start + 100 + window
        self.t_first = 0.0

    def horizon(self, step: int, steps: int) -> int:
        if not self.minutes:
            return steps
        if step == self.first:
            self.t_first = time.time()
        elif step == self.last:
            rate = (time.time() - self.t_first) / (self.last - self.first)
            steps = max(step, min(steps, step + int((60 * self.minutes - (time.time() - self.t0)) / rate)))
            log(f"{self.stage}: {rate:.3f} s/step here: the schedule's horizon set to {steps} steps "
                f"(--fit-minutes {self.minutes:g})")
        return steps


@torch.enable_grad()   # a caller's no_grad (the host's tests run under one) must not stop training
def train_vae(args) -> bool:
    out = Path(args.out)
    if vae_path(args).is_file() and not args.force:
        log(f"vae: {vae_path(args)} exists, skipped")
        return True
    ckpt_path = out / "vae_ckpt.pt"
    torch.manual_seed(args.seed)
    ae = make_ae(args)
    opt = torch.optim.AdamW(ae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    start, spent = 0, 0.0
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, weights_only=False)
        ae.load_state_dict(ck["model"])
        _unpack_opt(opt, ck["opt"])
        start, spent = ck["step"], ck["seconds"]
        log(f"vae: resumed at step {start} ({spent:.0f}s spent)")
    steps, res, f = args.vae_steps, args.res, args.factor
    crop = args.vae_crop_cells * f
    per_scene = 4
    t0, last_ckpt = time.time() - spent, time.time()
    fit = FitHorizon(args.fit_minutes, start, t0, "vae")
    step = start
    while step < steps:
        step += 1
        steps = fit.horizon(step, steps)
        lr = args.vae_lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps))) * min(1.0, step / 50)
        for g in opt.param_groups:
            g["lr"] = lr
        rng = random.Random(f"vae-{args.seed}-{step}")
        crops = []
        for _ in range(args.vae_batch // per_scene):
            n = 1 if rng.random() < args.one_object else 2
            img, _ = S.render(S.random_scene(rng, n), res)
            for _ in range(per_scene):
                y, x = rng.randrange(0, res - crop + 1, f), rng.randrange(0, res - crop + 1, f)
                crops.append(img[y:y + crop, x:x + crop])
        x = to_nchw(torch.stack(crops))
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        z = ae.encode_raw(x)
        zn = z + 0.05 * z.detach().std() * torch.randn(z.shape, generator=gen)
        loss = F.mse_loss(ae.decode_raw(zn), x) + 0.25 * F.mse_loss(ae.decode_raw(z), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps:
            el = time.time() - t0
            log(f"vae step {step}/{steps} loss {loss.item():.5f} "
                f"(~{10 * math.log10(4 / max(loss.item() / 1.25, 1e-12)):.1f} dB) lr {lr:.2e} ({el:.0f}s, {el / step:.2f} s/step)")
        stop = bool(args.max_minutes and (time.time() - t0) > 60 * args.max_minutes) or step == args.stop_after
        if time.time() - last_ckpt > 60 * args.ckpt_minutes or step == steps or stop:
            save_ckpt({"model": ae.state_dict(), "opt": _pack_opt(opt), "step": step,
                       "seconds": time.time() - t0}, ckpt_path)
            last_ckpt = time.time()
            log(f"vae checkpoint at step {step}")
        if stop:
            log(f"vae: stopped at step {step} (resume with the same command)")
            finish_vae(ae, args, final=False)
            return False
    finish_vae(ae, args, final=True)
    log(f"vae done in {time.time() - t0:.0f}s")
    return True


def finish_vae(ae: SceneAutoencoder, args, final: bool) -> float:
    rng = random.Random(args.seed + 1)
    calib = S.render_batch([S.random_scene(rng, 1 if i % 7 == 0 else 2) for i in range(128)], args.res)
    ae.eval()
    ae.calibrate(to_nchw(calib))
    p = vae_psnr(ae, S.heldout_scenes(64 if final else 24, seed=10_000), args.res)
    ae.train()
    path = vae_path(args) if final else Path(args.out) / "toy_vae_partial.safetensors"
    save_file(ae.state_dict(), path, metadata={"heldout_psnr_db": f"{p:.2f}", "factor": str(args.factor),
                                               "res": str(args.res)})
    log(f"vae: held-out PSNR {p:.2f} dB -> {path.name}")
    return p


def load_ae(args) -> SceneAutoencoder:
    from safetensors.torch import load_file
    path = vae_path(args)
    ae = make_ae(args)
    ae.load_state_dict(load_file(str(path)))
    return ae.eval()


# ---------------------------------------------------------------------------------------------
# Host pieces: text encoder, UNet
# ---------------------------------------------------------------------------------------------

def boot_host():
    from workshop.headless.boot import boot
    return boot(base_dir=WORK / "host")


def _encode(h, clip, text: str):
    from workshop.headless.calls import encode
    return encode(h, clip, text)


TEXT_FILE = "text_encoder.safetensors"   # the trained text encoder's layers (--text-encoder train)


def token_id(clip, word: str) -> int:
    """``word``'s CLIP token id (a word of one token)."""
    return int(clip.tokenize(word)["l"][0][1][0])


def world_tokens(clip) -> dict[str, int]:
    """Every word of the world's captions, and the start / end tokens, to its CLIP token id."""
    words = sorted({w for c in S.all_captions() for w in c.split()})
    ids = {w: token_id(clip, w) for w in words}
    return {**ids, "<bos>": 49406, "<eos>": 49407}


NOUNS = [*S.SHAPES, "background"]   # the words that take in their colour (--text-encoder bound-nouns)
# DreamBooth's identifier (issue 28), bound into the ``bound`` encoder beside the world's words: a word the
# UNet never read until a DreamBooth run teaches it (docs/measurements.md, "Why world 2's model does not learn
# the subject"). Its caption is saved with the world's, so the shipped encoder keeps the identifier's row.
IDENTIFIER = "sks"
IDENTIFIER_CAPTION = f"a {IDENTIFIER} square on a white background"


def bind_world(clip, encoder: str) -> None:
    """Rewrite ``clip``'s weights for ``--text-encoder bound`` (every token after a colour word
    carries it; the identifier ``IDENTIFIER`` carries a channel of its own into the words after it,
    ``bound_text.bind_identifier``, which changes no caption of the world) or ``bound-nouns`` (only
    the nouns do); other encoders are left as they are."""
    if encoder in ("bound", "bound-nouns"):
        from workshop.toyworld.bound_text import bind, bind_identifier
        bind(clip.cond_stage_model, world_tokens(clip), list(S.COLOURS), seed=CLIP_SEED,
             nouns=NOUNS if encoder == "bound-nouns" else None)
        if encoder == "bound":
            bind_identifier(clip.cond_stage_model, token_id(clip, IDENTIFIER))


def text_setup(h, out: Path | None = None, encoder: str = "frozen"):
    """(clip, captions, {caption: index}, embeddings [n, 77, 64], empty [77, 64]). The pack's
    seeded random SD1 text encoder; for ``bound`` / ``bound-nouns`` its weights rewritten so
    that every noun carries its colour (``bind_world``); with the layers trained by
    ``--text-encoder train`` loaded over it when ``out`` holds them."""
    clip = h.pack.demo.tiny_models.build_tiny_clip("sd1", seed=CLIP_SEED)
    bind_world(clip, encoder)
    if out is not None and (Path(out) / TEXT_FILE).is_file():
        from safetensors.torch import load_file
        clip.cond_stage_model.load_state_dict(load_file(str(Path(out) / TEXT_FILE)), strict=False)
    caps = S.all_captions()
    # every word of the world is one CLIP token: captions of one template have one token count
    for text in (caps[0], caps[-1]):
        ids = [int(t[0]) for t in clip.tokenize(text)["l"][0]]
        n_tok = ids.index(49407) - 1  # up to the end-of-text token
        if n_tok != len(text.split()):
            raise RuntimeError(f"caption {text!r}: {n_tok} tokens for {len(text.split())} words")
    embs = torch.cat([_encode(h, clip, c)[0][0] for c in caps]).float()
    empty = _encode(h, clip, "")[0][0][0].float()
    return clip, caps, {c: i for i, c in enumerate(caps)}, embs, empty


class TrainedText:
    """The text encoder trained with the UNet (``--text-encoder train``): every weight of the
    host's SD1 CLIP but the token embedding table (its rows stay the seeded random ones, so the
    pack's stored subset of rows is unchanged), with an EMA like the UNet's.

    Why: a frozen random encoder barely tells "red circle" from "blue circle" at the noun (cosine
    0.98 of the two embeddings), and a colour word cannot see the noun after it (causal
    attention), so the UNet could only bind colours to shapes by word position, which two hours
    of training did not teach it (SCENES-NOTES.md)."""

    def __init__(self, clip, caps: list[str]):
        import comfy.clip_model
        comfy.clip_model.CLIPLayer.forward = _clip_layer_forward   # out of place, for autograd (training only)
        self.model = clip.cond_stage_model
        self.tokens = [clip.tokenize(c) for c in caps]
        self.empty = clip.tokenize("")
        self.params = {n: p for n, p in self.model.named_parameters()
                       if not n.endswith(("logit_scale", "token_embedding.weight"))}
        for n, p in self.model.named_parameters():
            p.requires_grad_(n in self.params)
        self.ema = {n: p.detach().clone() for n, p in self.params.items()}

    def encode(self, cap_idx: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model.encode_token_weights(self.empty if d else self.tokens[int(i)])[0]
                          for i, d in zip(cap_idx, drop)]).float()

    def update_ema(self, decay: float) -> None:
        update_ema(self.ema, self.params, decay)


def _clip_layer_forward(self, x, mask=None, optimized_attention=None):
    """comfy.clip_model.CLIPLayer.forward without its in-place additions (autograd needs x)."""
    x = x + self.self_attn(self.layer_norm1(x), mask, optimized_attention)
    return x + self.mlp(self.layer_norm2(x))


def build_unet(h, preset: str, seed: int):
    import comfy.model_base
    import comfy.supported_models
    tiny_models = h.pack.demo.tiny_models
    cfg = comfy.supported_models.SD15(copy.deepcopy(PRESETS[preset]))
    cfg.unet_config.update(UNET_OVERRIDES)
    cfg.set_inference_dtype(torch.float32, None)
    model = comfy.model_base.BaseModel(cfg, model_type=comfy.model_base.ModelType.EPS, device=torch.device("cpu"))
    tiny_models.init_weights(model.diffusion_model, tiny_models._generator("toyworld2", "unet", seed))
    with torch.no_grad():
        model.diffusion_model.out[-1].weight.mul_(0.1)
        model.diffusion_model.out[-1].bias.zero_()
    return model


def step_scenes(args, step: int, bs: int) -> list:
    """The scenes of step ``step``: fresh ones from a generator seeded by the step, so a resumed
    run sees the same data."""
    rng = random.Random(f"unet-{args.seed}-{step}")
    return [S.random_scene(rng, 1 if rng.random() < args.one_object else 2) for _ in range(bs)]


@torch.no_grad()
def batch_data(args, ae, index: dict, scenes: list, res: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scaled latents [bs, 4, h, w], caption indices [bs]) of ``scenes``. Off the CPU the batch is
    rendered and encoded on ``--device``."""
    device = None if args.device == "cpu" else args.device
    lat = ae.encode(to_nchw(S.render_batch(scenes, res, device=device))) * SD1_SCALE
    return lat, torch.tensor([index[s.caption] for s in scenes])


def word_regions(scenes: list, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each word of each caption is: ``[B, 77, side * side]`` coverage of the region a
    token names on the ``side`` grid (an object's colour word and noun: that object; the
    background's colour word and "background": everything else), and ``[B, 77]`` which tokens
    name a region. Token positions follow the caption template ("<bos> a red circle and a ...")."""
    cover = torch.zeros(len(scenes), 77, side * side)
    named = torch.zeros(len(scenes), 77, dtype=torch.bool)
    for b, scene in enumerate(scenes):
        objects = [S.object_coverage(o, side, ss=8).flatten() for o in scene.objects]
        regions = objects + [(1 - torch.stack(objects).sum(0)).clamp(0, 1)]
        for k, region in enumerate(regions):
            for pos in (2 + 4 * k, 3 + 4 * k):   # the colour word and the noun of region k
                cover[b, pos], named[b, pos] = region, True
    return cover, named


def attention_loss(maps: torch.Tensor, cover: torch.Tensor, named: torch.Tensor) -> torch.Tensor:
    """The share of each naming token's attention mass that falls outside its region, averaged
    over the tokens in ``named``. ``maps``: ``[B, N, 77]`` cross-attention (mean over heads and
    layers); ``cover`` / ``named`` from ``word_regions``."""
    p = maps.transpose(1, 2)                                        # [B, 77, N]
    inside = (p * cover).sum(-1) / p.sum(-1).clamp_min(1e-8)
    return ((1 - inside) * named).sum() / named.sum().clamp_min(1)


START_FILE = "unet_start.pt"


def encoder_source(encoder: str) -> str:
    """A digest of the code that writes a bound encoder's weights (empty for the others), kept in
    the start file so that embeddings made by an older ``bound_text.py`` are not trained on."""
    if not encoder.startswith("bound"):
        return ""
    import hashlib
    return hashlib.sha256((Path(__file__).parent / "bound_text.py").read_bytes()).hexdigest()[:16]


def unet_start(args) -> dict:
    """What the UNet stage starts from, computed with the host once and kept in
    ``<out>/unet_start.pt``: the UNet's constructor config and seeded initial weights, the
    captions and their embeddings under the chosen text encoder, the empty prompt's, and the
    SD1 schedule's alphas-cumprod. With it a machine that has only the host's ``comfy`` package
    (no nodes, no pack: a rented GPU) can train."""
    path = Path(args.out) / START_FILE
    if path.is_file():
        st = torch.load(path, weights_only=False)
        if (st["preset"], st["text_encoder"], st["seed"]) != (args.preset, args.text_encoder, args.seed):
            raise SystemExit(f"{path} is for {st['preset']} / --text-encoder {st['text_encoder']} / "
                             f"seed {st['seed']}: delete it or use those")
        if st.get("encoder_source", encoder_source(args.text_encoder)) != encoder_source(args.text_encoder):
            raise SystemExit(f"{path} holds caption embeddings of an older workshop/toyworld/bound_text.py: "
                             f"delete it (it is rebuilt with the host)")
        return st
    h = boot_host()
    _, caps, _, embs, empty = text_setup(h, encoder=args.text_encoder)
    model = build_unet(h, args.preset, args.seed)
    abar = 1.0 / (1.0 + model.model_sampling.sigmas.float() ** 2)
    st = {"preset": args.preset, "text_encoder": args.text_encoder, "seed": args.seed,
          "encoder_source": encoder_source(args.text_encoder),
          "unet_config": dict(model.model_config.unet_config), "init": model.diffusion_model.state_dict(),
          "captions": caps, "embs": embs, "empty": empty, "abar": abar}
    save_ckpt(st, path)
    return st


def unet_from_config(config: dict, device: torch.device) -> torch.nn.Module:
    """The host's SD1 UNet class built as ``comfy.model_base.BaseModel`` builds it (float32,
    no weight init), imported alone so that the host's nodes need not load."""
    from comfy.cli_args import args as host_args   # before comfy.model_management reads it
    if device.type == "cpu":
        host_args.cpu = True
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    return UNetModel(**config, device=device, operations=comfy.ops.disable_weight_init)


def trained_parameters(unet: torch.nn.Module, only: str) -> list[torch.nn.Parameter]:
    """The parameters a UNet stage trains: all of them, or (``only``: comma-separated name
    fragments, e.g. ``attn2.to_q,attn2.to_k``) those whose name holds one of the fragments; the
    rest are frozen (``requires_grad`` off)."""
    parts = [f.strip() for f in only.split(",") if f.strip()]
    chosen = []
    for name, q in unet.named_parameters():
        q.requires_grad_(not parts or any(f in name for f in parts))
        if q.requires_grad:
            chosen.append(q)
    if not chosen:
        raise SystemExit(f"--train-only {only!r} names no parameter of this UNet")
    if parts:
        log(f"unet: training {sum(q.numel() for q in chosen) / 1e6:.3f} M parameters "
            f"({len(chosen)} tensors holding {parts}); the rest frozen")
    return chosen


def warm_start(unet: torch.nn.Module, source: Path) -> None:
    """Start from a trained model's EMA weights (``<source>/toy_unet.safetensors``): every weight
    whose name and shape this UNet shares; the rest keep their seeded start (a block the new
    preset adds), and weights of blocks it leaves out (``L64-a4-m0``'s middle transformer) are
    dropped."""
    from safetensors.torch import load_file
    given = load_file(str(source / "toy_unet.safetensors"))
    own = unet.state_dict()
    kept = {k: v.float() for k, v in given.items() if k in own and own[k].shape == v.shape}
    unet.load_state_dict(kept, strict=False)
    dropped = sorted({k.rsplit(".", 2)[0] for k in given if k not in kept})
    fresh = sorted({k.rsplit(".", 2)[0] for k in own if k not in kept})
    log(f"unet: warm start from {source}: {len(kept)} of {len(own)} tensors; dropped {dropped[:6]}"
        f"{' ...' if len(dropped) > 6 else ''}; fresh {fresh[:6]}")


def step_res(args, step: int, res: int) -> int:
    """Image size of a step: the first ``--lowres-steps`` steps use ``--lowres`` images, except
    every ``--highres-every``-th step (0: none), which uses the full size; then the full size."""
    if step > args.lowres_steps:
        return res
    if args.highres_every and step % args.highres_every == 0:
        return res
    return args.lowres


@torch.enable_grad()
def train_unet(args) -> bool:
    out = Path(args.out)
    device = torch.device(args.device)
    ae = load_ae(args).to(device)
    if args.text_encoder == "train":
        h = boot_host()
        clip, caps, index, embs, empty = text_setup(h)
        model = build_unet(h, args.preset, args.seed)
        unet = model.diffusion_model
        abar = 1.0 / (1.0 + model.model_sampling.sigmas.float() ** 2)
    else:
        st = unet_start(args)
        caps, embs, empty, abar = st["captions"], st["embs"], st["empty"], st["abar"]
        index = {c: i for i, c in enumerate(caps)}
        unet = unet_from_config(st["unet_config"], device)
        resuming = (out / "unet_ckpt.pt").is_file()
        if "init" in st:   # a start file slimmed for a resume may leave it out: the checkpoint has the weights
            unet.load_state_dict(st["init"])
        elif not resuming and not args.init_from:
            raise SystemExit(f"{out / START_FILE} has no initial weights and there is no checkpoint to resume")
        if args.init_from and not resuming:
            warm_start(unet, Path(args.init_from))
    unet.to(device)
    embs, empty, abar = embs.to(device), empty.to(device), abar.to(device)
    unet.train()
    trained = trained_parameters(unet, args.train_only)
    n_params = sum(p.numel() for p in unet.parameters())
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    snr = abar / (1 - abar)
    w_t = torch.clamp(snr, max=5.0) / snr  # min-SNR-5 weights for eps prediction
    opt = torch.optim.AdamW(trained, lr=args.unet_lr, weight_decay=0.0)
    text = TrainedText(clip, caps) if args.text_encoder == "train" else None
    if text is not None:
        opt.add_param_group({"params": list(text.params.values()), "lr": args.unet_lr})
    ckpt_path = out / "unet_ckpt.pt"
    start, spent, run_loss, run_att = 0, 0.0, None, None
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, weights_only=False, map_location=device)
        if ck.get("preset") != args.preset:
            raise SystemExit(f"{ckpt_path} is of preset {ck.get('preset')!r}, not {args.preset!r}")
        if ck.get("text_encoder", "frozen") != args.text_encoder:
            raise SystemExit(f"{ckpt_path} was trained with --text-encoder {ck.get('text_encoder', 'frozen')}")
        unet.load_state_dict(ck["model"])
        ema = ck["ema"]
        if text is not None:
            text.model.load_state_dict(ck["text"], strict=False)
            text.ema = ck["text_ema"]
        _unpack_opt(opt, ck["opt"])
        start, spent, run_loss = ck["step"], ck["seconds"], ck["loss"]
        log(f"unet: resumed at step {start} ({spent:.0f}s spent)")
    steps, bs = args.unet_steps, args.unet_batch
    res = preset_latent(args.preset) * args.factor
    log(f"unet {args.preset}: {n_params / 1e6:.2f} M parameters, {steps} steps of batch {bs}, "
        f"{res}px images ({args.lowres}px in the first {args.lowres_steps} but every "
        f"{args.highres_every or 'no'}th), {len(caps)} captions")
    t0, last_ckpt = time.time() - spent, time.time()
    fit = FitHorizon(args.fit_minutes, start, t0, "unet")
    step = start
    while step < steps:
        step += 1
        steps = fit.horizon(step, steps)
        lr = args.unet_lr * min(1.0, step / args.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        scenes = step_scenes(args, step, bs)
        x0, cap_idx = batch_data(args, ae, index, scenes, step_res(args, step, res))
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        drop = (torch.rand(bs, generator=gen) < args.dropout).to(device)
        if text is None:
            ctx = torch.where(drop.view(bs, 1, 1), empty.expand_as(embs[cap_idx]), embs[cap_idx])
        else:
            ctx = text.encode(cap_idx, drop)
        if args.attention_loss:
            side = x0.shape[-1] // 4
            peek = torch.Generator()
            peek.set_state(gen.get_state())
            t = torch.randint(0, 1000, (bs,), generator=peek)       # the timesteps eps_loss draws next
            cover, named = word_regions(scenes, side)
            named &= ((t < args.attention_max_t) & ~drop.cpu()).view(bs, 1)
            rec = AttnRecorder(unet, x0.shape[-1])
            try:
                eps = eps_loss(unet, x0, ctx, abar, w_t, gen, args.offset_noise)
            finally:
                rec.close()
            att = attention_loss(rec.total / rec.count, cover.to(device), named.to(device))
            run_att = att.item() if run_att is None else 0.98 * run_att + 0.02 * att.item()
            loss = eps + args.attention_loss * att
        else:
            loss = eps = eps_loss(unet, x0, ctx, abar, w_t, gen, args.offset_noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([q for g in opt.param_groups for q in g["params"]], 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        if text is not None:
            text.update_ema(decay)
        update_ema(ema, unet.state_dict(), decay)
        run_loss = eps.item() if run_loss is None else 0.98 * run_loss + 0.02 * eps.item()
        if step % 25 == 0:
            el = time.time() - t0
            att_note = f" attention loss {run_att:.3f}" if run_att is not None else ""
            log(f"unet step {step}/{steps} loss {run_loss:.5f}{att_note} lr {lr:.2e} ({el:.0f}s, {el / step:.2f} s/step)")
        stop = bool(args.max_minutes and (time.time() - t0) > 60 * args.max_minutes) or step == args.stop_after
        if time.time() - last_ckpt > 60 * args.ckpt_minutes or step == steps or stop:
            el = time.time() - t0
            extra = {} if text is None else {"text": {n: p.detach() for n, p in text.params.items()},
                                             "text_ema": text.ema}
            save_ckpt({"model": unet.state_dict(), "ema": ema, "opt": _pack_opt(opt), "step": step,
                       "seconds": el, "loss": run_loss, "preset": args.preset, "text_encoder": args.text_encoder,
                       **extra}, ckpt_path)
            if text is not None:
                save_file({n: v.contiguous() for n, v in text.ema.items()}, out / TEXT_FILE)
            save_unet(ema, out, {"steps": str(step), "loss": f"{run_loss:.5f}", "seconds": f"{el:.0f}",
                                 "preset": args.preset, "horizon": str(steps), "batch": str(bs)})
            last_ckpt = time.time()
            log(f"unet checkpoint at step {step} ({ckpt_path.stat().st_size / 1e6:.1f} MB)")
        if stop:
            log(f"unet: stopped at step {step} (resume with the same command)")
            return False
    log(f"unet done in {time.time() - t0:.0f}s")
    return True


def save_unet(state: dict, out: Path, meta: dict) -> None:
    # float16 on disk (the repo budget is 20 MB); loaded back as float32
    save_file({k: (v.half() if v.is_floating_point() else v).cpu() for k, v in state.items()},
              out / "toy_unet.safetensors", metadata=meta)


def load_unet(h, args):
    from safetensors import safe_open
    from safetensors.torch import load_file
    path = Path(args.out) / "toy_unet.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    model = build_unet(h, meta.get("preset", args.preset), args.seed)
    model.diffusion_model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    model.eval()
    return model, meta


# ---------------------------------------------------------------------------------------------
# Quick evaluation (pilots; the README's gates are measured with the host's nodes elsewhere)
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def ddim_sample(unet, abar, ctx, empty, cfg: float, steps: int, latent: int, seed: int) -> torch.Tensor:
    n = ctx.shape[0]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, latent, latent, generator=gen).to(ctx.device)   # the same noise on any device
    ts = torch.linspace(999, 0, steps).round().long()
    cond = torch.cat([ctx, empty.expand_as(ctx)])
    for i, t in enumerate(ts):
        e = unet(torch.cat([x, x]), timesteps=torch.full((2 * n,), float(t), device=x.device), context=cond)
        eps = e[n:] + cfg * (e[:n] - e[n:])
        a = abar[t]
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        a_prev = abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return x


class AttnRecorder:
    """Forward hooks on every cross-attention (attn2) of the down and up blocks whose token grid
    is latent/4 (the layers Prompt-to-Prompt's local blend reads; not the middle block, which
    is at latent/4 too in these small UNets): sums the head-averaged maps ``[N, 77]``."""

    def __init__(self, unet, latent: int):
        self.total, self.count, self.handles = None, 0, []
        want = (latent // 4) ** 2
        for name, mod in unet.named_modules():
            if name.endswith("attn2") and not name.startswith("middle_block"):
                def hook(m, args, kwargs, out, _probs=attention_probs):
                    x, ctx = args[0], kwargs["context"]
                    if x.shape[1] != want:
                        return
                    p = _probs(m.to_q(x), m.to_k(ctx), m.heads).mean(1)  # [B, N, T]
                    self.total = p if self.total is None else self.total + p
                    self.count += 1
                self.handles.append(mod.register_forward_hook(hook, with_kwargs=True))

    def close(self):
        for hd in self.handles:
            hd.remove()


@torch.no_grad()
def noun_attention(unet, abar, ae, scenes: list, embs, index, res: int, latent: int, seed: int = 0
                   ) -> tuple[list[float], list[float], list[float]]:
    """Per object of each scene: (IoU of its noun's local-blend mask with its true mask, share of
    the noun's attention mass on the object, the object's share of the grid = that share by
    chance). Maps: cross-attention at latent/4, averaged over heads, layers and the
    forward-noised trajectory t = 50, 150, ..., 950 of the rendered scene."""
    side = latent // 4
    ious, inside, chance = [], [], []
    ts = list(range(50, 1000, 100))
    dev = embs.device
    for si, scene in enumerate(scenes):
        img, masks = S.render(scene, res)
        x0 = ae.encode(to_nchw(img[None]).to(dev)) * SD1_SCALE
        ctx = embs[index[scene.caption]][None]
        gen = torch.Generator().manual_seed(seed + si)
        noise = torch.randn(x0.shape, generator=gen).to(dev)
        rec = AttnRecorder(unet, latent)
        try:
            for t in ts:
                xt = abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * noise
                unet(xt, timesteps=torch.tensor([float(t)], device=dev), context=ctx)
        finally:
            rec.close()
        maps = (rec.total / rec.count)[0].T.reshape(77, side, side).cpu()  # [T, h, w]
        for oi in range(len(scene.objects)):
            pos = 3 + 4 * oi  # BOS a c0 s0 and a c1 s1 ...: the nouns are tokens 3 and 7
            m = local_blend_mask(maps[pos][None], 0.3)
            m = F.interpolate(m[None, None], size=(res, res), mode="nearest")[0, 0] > 0.5
            ious.append(S.mask_iou(m, masks[oi]))
            cell = F.adaptive_avg_pool2d(masks[oi].float()[None, None], side)[0, 0]
            inside.append(float((maps[pos] * cell).sum() / maps[pos].sum()))
            chance.append(float(cell.mean()))
    return ious, inside, chance


@torch.no_grad()
def binding_probe(unet, abar, ae, scenes: list, embs, index, empty, res: int, seed: int = 0) -> dict:
    """Denoising error (eps MSE) of held-out scenes at t = 300, 500, 700 with the true caption,
    with its two colours exchanged between the objects (same words, wrong binding) and with the
    empty caption. ``binding_gap`` = swapped - true (> 0 once colours are bound to their
    objects); ``text_gain`` = empty - true."""
    errs = {"true": 0.0, "swapped": 0.0, "empty": 0.0}
    n, dev = 0, embs.device
    for si, scene in enumerate(scenes):
        (c0, s0), (c1, s1) = [(o.colour, o.shape) for o in scene.objects]
        swapped = S.caption([(c1, s0), (c0, s1)], scene.background)
        x0 = ae.encode(to_nchw(S.render(scene, res)[0][None]).to(dev)) * SD1_SCALE
        ctx = torch.stack([embs[index[scene.caption]], embs[index[swapped]], empty])
        gen = torch.Generator().manual_seed(seed + si)
        for t in (300, 500, 700):
            noise = torch.randn(x0.shape, generator=gen).to(dev)
            xt = abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * noise
            e = unet(xt.expand(3, -1, -1, -1), timesteps=torch.full((3,), float(t), device=dev), context=ctx)
            for k, row in zip(errs, e):
                errs[k] += float(((row - noise[0]) ** 2).mean())
            n += 1
    errs = {k: v / n for k, v in errs.items()}
    return {"eps_mse_true": round(errs["true"], 5), "binding_gap": round(errs["swapped"] - errs["true"], 5),
            "text_gain": round(errs["empty"] - errs["true"], 5)}


def evaluate(args) -> dict:
    h = boot_host()
    ae = load_ae(args)
    _, caps, index, embs, empty = text_setup(h, Path(args.out), encoder=args.text_encoder)
    model, meta = load_unet(h, args)
    preset = meta.get("preset", args.preset)
    res = args.eval_res or preset_latent(preset) * args.factor
    latent = res // args.factor
    dev = torch.device(args.eval_device)
    unet = model.diffusion_model.to(dev)
    ae, embs, empty = ae.to(dev), embs.to(dev), empty.to(dev)
    abar = (1.0 / (1.0 + model.model_sampling.sigmas.float() ** 2)).to(dev)
    t0 = time.time()
    texts = S.heldout_captions(args.eval_captions) if args.eval_captions else []
    readings, imgs = [], []
    for i in range(0, len(texts), 10):
        chunk = texts[i:i + 10]
        ctx = embs[[index[c] for c in chunk]]
        z = ddim_sample(unet, abar, ctx, empty, args.eval_cfg, 20, latent, seed=1000 + i)
        im = ((ae.decode(z / SD1_SCALE) + 1) / 2).clamp(0, 1).movedim(1, -1).cpu()
        imgs.append(im)
        readings += [J.judge(x) for x in im]
    t_t2i = time.time() - t0
    result = {"preset": preset, "steps": meta.get("steps"), "train_seconds": meta.get("seconds"),
              "loss": meta.get("loss")}
    if texts:
        right = [r.objects_right(c) for r, c in zip(readings, texts)]
        result.update({
            "captions": len(texts),
            "t2i_every_object_right": round(sum(a == b for a, b in right) / len(texts), 3),
            "t2i_objects_right": round(sum(a for a, _ in right) / sum(b for _, b in right), 3),
            "t2i_background_right": round(sum(r.background == S.parse_caption(c)[1]
                                              for r, c in zip(readings, texts)) / len(texts), 3),
            "t2i_exact_caption": round(sum(r.matches_caption(c) for r, c in zip(readings, texts)) / len(texts), 3),
        })
    t0 = time.time()
    scenes = S.heldout_scenes(args.eval_scenes)
    ious, inside, chance = noun_attention(unet, abar, ae, scenes, embs, index, res, latent)
    result.update({
        "noun_iou_mean": round(sum(ious) / len(ious), 3),
        "noun_iou_ge_0.5": round(sum(i >= 0.5 for i in ious) / len(ious), 3),
        "noun_mass_on_object": round(sum(inside) / len(inside), 3),
        "noun_mass_by_chance": round(sum(chance) / len(chance), 3),
    })
    result.update(binding_probe(unet, abar, ae, S.heldout_scenes(16, seed=40_000), embs, index, empty, res))
    result["eval_seconds"] = {"t2i": round(t_t2i), "attention_and_probe": round(time.time() - t0)}
    log("eval " + json.dumps(result))
    out = Path(args.out)
    (out / f"eval_{meta.get('steps')}_{res}.json").write_text(json.dumps(result, indent=2) + "\n")
    if imgs:
        grid = torch.cat(imgs)[:20]
        rows = [torch.cat(list(grid[r * 5:(r + 1) * 5]), dim=1) for r in range(len(grid) // 5)]
        from PIL import Image
        Image.fromarray((torch.cat(rows, 0) * 255).round().byte().numpy()).save(out / f"t2i_{meta.get('steps')}_{res}.png")
    return result


def oracle(args) -> dict:
    """The local-blend recipe's ceiling: the noun mask IoU if a noun's attention map were the
    object's own coverage of each cell of the latent/4 grid (no model involved), for grids
    of latents 32, 48, 64 and three map sharpnesses. Measured on the held-out scenes."""
    res = 256
    maps = {"coverage": lambda c: c, "interior (cov>0.5)": lambda c: (c > 0.5).float(),
            "core (cov>0.9)": lambda c: (c > 0.9).float()}
    result = {}
    scenes = S.heldout_scenes(60)
    for latent in (32, 48, 64):
        side = max(latent // 4, 8)  # Attention Store's grid (techniques/attention_maps/nodes.py)
        for name, fn in maps.items():
            per_shape: dict[str, list[float]] = {sh: [] for sh in S.SHAPES}
            for scene in scenes:
                _, masks = S.render(scene, res)
                for o, m in zip(scene.objects, masks):
                    cov = F.adaptive_avg_pool2d(S.object_coverage(o, res)[None, None], side)[0, 0]
                    lb = local_blend_mask(fn(cov)[None], 0.3)
                    up = F.interpolate(lb[None, None], size=(res, res), mode="nearest")[0, 0] > 0.5
                    per_shape[o.shape].append(S.mask_iou(up, m))
            allv = [v for vs in per_shape.values() for v in vs]
            row = {sh: round(sum(v) / len(v), 3) for sh, v in per_shape.items()}
            row["mean"] = round(sum(allv) / len(allv), 3)
            row["share_ge_0.5"] = round(sum(v >= 0.5 for v in allv) / len(allv), 3)
            result[f"latent {latent} (grid {side}), {name}"] = row
            log(f"oracle latent {latent} grid {side} {name}: {row}")
    (Path(args.out) / "oracle_local_blend.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


# ---------------------------------------------------------------------------------------------
# Text encoder subset + config
# ---------------------------------------------------------------------------------------------

def finish(args) -> None:
    out = Path(args.out)
    h = boot_host()
    save_text_encoder(text_setup(h, out, encoder=args.text_encoder)[0], S.all_captions() + [IDENTIFIER_CAPTION],
                      out / "toy_clip.safetensors")
    latent = preset_latent(args.preset)
    config = {
        "what": "Toy World 2 Model: the pack's built-in demo/test text-to-image model (issue 12). "
                "Trained only on toyworld scenes of two objects; not a general image model.",
        "world": {"module": "workshop.toyworld.scenes", "size": latent * args.factor, "colours": list(S.COLOURS),
                  "shapes": list(S.SHAPES), "templates": [S.TEMPLATE_2, S.TEMPLATE_1]},
        "unet_config": PRESETS[args.preset],
        "unet_overrides": UNET_OVERRIDES,
        "model_type": "EPS",
        "latent_format": "SD15",
        "clip": {"family": "sd1", "seed": CLIP_SEED,
                 "note": "tiny_models.build_tiny_clip('sd1', seed) with toy_clip.safetensors loaded over it"},
        "vae": {"class": "invertedit.demo.scenes_autoencoder.SceneAutoencoder", "downscale": args.factor, "latent_channels": 4,
                "kwargs": {"factor": args.factor}},
        "training": {"command": "python -m workshop.toyworld.train_scenes", "seed": args.seed, "preset": args.preset,
                     "vae_steps": args.vae_steps, "vae_batch": args.vae_batch,
                     "unet_steps": args.unet_steps, "unet_batch": args.unet_batch,
                     "unet_lr": args.unet_lr, "caption_dropout": args.dropout, "one_object": args.one_object,
                     "text_encoder": args.text_encoder, "device": args.device, "warmup": args.warmup,
                     "offset_noise": args.offset_noise, "ema": args.ema,
                     "lowres": args.lowres, "lowres_steps": args.lowres_steps, "init_from": args.init_from,
                     "attention_loss": args.attention_loss, "attention_max_t": args.attention_max_t,
                     "highres_every": args.highres_every, "fit_minutes": args.fit_minutes,
                     "train_only": args.train_only},
    }
    base = Path(args.init_from) / "config.json" if args.init_from else None
    if base is not None and base.is_file():   # the run this one started from, so both stages can be redone
        config["training"]["init_from_training"] = json.loads(base.read_text())["training"]
    from safetensors import safe_open
    for name in ("toy_vae", "toy_unet"):
        if (out / f"{name}.safetensors").is_file():
            with safe_open(str(out / f"{name}.safetensors"), "pt") as f:
                config["training"][f"{name}_metadata"] = f.metadata()
    from PIL import Image
    img, _ = S.render(S.SAMPLE, latent * args.factor)
    Image.fromarray((img * 255).round().byte().numpy()).save(out / "sample.png")
    config["sample"] = {"file": "sample.png", "caption": S.SAMPLE.caption,
                        "scene": {"background": S.SAMPLE.background,
                                  "objects": [{k: getattr(o, k) for k in ("colour", "shape", "cx", "cy", "size")}
                                              for o in S.SAMPLE.objects]}}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    log("wrote toy_clip.safetensors, sample.png and config.json")


def parse_args(argv=None) -> argparse.Namespace:
    """The command line's options (``--res`` filled in from the preset), without acting on them."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", default="all", choices=["all", "vae", "unet", "eval", "finish", "oracle"])
    p.add_argument("--out", default=str(OUT), help="output folder (weights, checkpoints, log)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS))
    p.add_argument("--factor", type=int, default=8, help="VAE downscale factor")
    p.add_argument("--res", type=int, default=None, help="VAE training image size (default: latent x factor)")
    p.add_argument("--vae-steps", type=int, default=2000)
    p.add_argument("--vae-batch", type=int, default=32, help="crops per step (4 per rendered scene)")
    p.add_argument("--vae-crop-cells", type=int, default=16, help="crop side in latent cells")
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--one-object", type=float, default=0.15, help="fraction of one-object training scenes")
    p.add_argument("--unet-steps", type=int, default=4750)
    p.add_argument("--unet-batch", type=int, default=16)
    p.add_argument("--unet-lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--lowres", type=int, default=256, help="image size of the first --lowres-steps steps")
    p.add_argument("--lowres-steps", type=int, default=4000, help="steps trained on --lowres images first")
    p.add_argument("--highres-every", type=int, default=4,
                   help="within the first --lowres-steps, every n-th step still uses full-size images")
    p.add_argument("--eval-res", type=int, default=0, help="image size for eval (default: the preset's)")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--text-encoder", default="frozen", choices=["frozen", "bound", "bound-nouns", "train"],
                   help="frozen: the seeded random SD1 text encoder as is; bound: its weights rewritten so "
                        "that each noun carries its colour (workshop/toyworld/bound_text.py), frozen; bound-nouns: the same, "
                        "but only nouns (and colour words) take in a colour; train: "
                        "its layers (not its token table) trained with the UNet, at the UNet's learning rate")
    p.add_argument("--device", default="cpu", help="where the UNet trains (cpu, cuda); the VAE and eval run on the CPU")
    p.add_argument("--offset-noise", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--ckpt-minutes", type=float, default=10.0)
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop a stage after this long (pilots)")
    p.add_argument("--fit-minutes", type=float, default=0.0,
                   help="pilots: time steps 101-200, then shorten the stage's steps (the cosine's horizon) to "
                        "what fits in this many minutes of the stage")
    p.add_argument("--eval-device", default="cpu", help="where --stage eval runs the UNet and the VAE (cpu, cuda)")
    p.add_argument("--stop-after", type=int, default=0, help="stop a stage after this step (testing resume)")
    p.add_argument("--force", action="store_true", help="retrain the VAE even if its weights exist")
    p.add_argument("--attention-loss", type=float, default=0.0,
                   help="weight of an auxiliary loss that teaches the cross-attention at latent/4 where each word "
                        "is: the share of a colour word's or noun's attention outside its region (0: off)")
    p.add_argument("--attention-max-t", type=int, default=800,
                   help="the attention loss applies below this timestep (above it the noise hides the layout)")
    p.add_argument("--train-only", default="",
                   help="comma-separated parameter-name fragments (e.g. attn2.to_q,attn2.to_k): the UNet stage "
                        "trains only the parameters whose names hold one; the rest frozen (default: all)")
    p.add_argument("--init-from", default="", help="a trained model's folder: the UNet stage starts from its EMA "
                                                   "weights (those the preset shares) instead of the seeded start")
    p.add_argument("--eval-captions", type=int, default=60)
    p.add_argument("--eval-scenes", type=int, default=60)
    p.add_argument("--eval-cfg", type=float, default=5.0)
    args = p.parse_args(argv)
    if args.res is None:
        args.res = preset_latent(args.preset) * args.factor
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    stages = ["vae", "unet", "finish", "eval"] if args.stage == "all" else [args.stage]
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    needs_host = {"eval", "finish"} | ({"unet"} if args.text_encoder == "train"
                                       or not (Path(args.out) / START_FILE).is_file() else set())
    if set(stages) & needs_host:
        boot_host()   # the host and the pack load now, once: a long run does not depend on the tree later
    for s in stages:
        done = {"vae": train_vae, "unet": train_unet, "eval": evaluate, "finish": finish, "oracle": oracle}[s](args)
        if done is False:
            break  # stopped early on purpose: the next stage needs this one finished


if __name__ == "__main__":
    main()

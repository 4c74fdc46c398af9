"""Train the toy world model: the one reproducible command (CPU, one thread, seeded).

    python -m workshop.toyworld.train            # all stages, writes models/toyworld/
    python -m workshop.toyworld.train --stage vae|latents|unet|finish

Stages
    vae      the small autoencoder (toyworld/ae.py) on freshly rendered scenes; then its
             per-channel latent affine (latent x 0.18215 -> mean 0, std 1) and held-out PSNR.
    latents  renders the UNet's training set once and encodes it (cache, not committed).
    unet     an SD1.x-architecture UNet built with the host's own classes
             (comfy.supported_models.SD15, small unet_config), eps prediction on the SD1.x
             noise schedule, offset noise, min-SNR weighting, 10% caption dropout with the
             real CLIPTextEncode("") embedding, EMA weights; the frozen text encoder is the
             pack's seeded random SD1 CLIP (invertedit/demo/tiny_models.build_tiny_clip), whose
             embeddings of every caption are computed once.
    finish   writes the text-encoder subset and config.json.
Checkpoints (EMA UNet weights) are written every few hundred steps, so a run stopped early
still leaves usable weights.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from invertedit.demo.toy_autoencoder import SD1_SCALE, ToyAutoencoder
from workshop.toyworld import world

REPO = Path(__file__).resolve().parents[2]

OUT = REPO / "models" / "toyworld"
CACHE = REPO / "models" / "toyworld" / ".cache"  # ignored by git (see .gitignore there)

CLIP_SEED = 3
SAMPLE = world.Scene("blue", "red", "circle", cx=56.0, cy=68.0, size=26.0)  # seed of the frozen random text encoder (tiny_models.build_tiny_clip("sd1", CLIP_SEED))

UNET_CONFIG = {
    "use_checkpoint": False,
    "image_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 32,
    "num_res_blocks": [1, 1, 1],
    "channel_mult": [1, 2, 4],
    "transformer_depth": [1, 1, 1],
    "transformer_depth_middle": 1,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1],
    "use_spatial_transformer": True,
    "legacy": False,
    "use_linear_in_transformer": False,
    "context_dim": 64,
    "adm_in_channels": None,
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}
UNET_OVERRIDES = {"num_heads": -1, "num_head_channels": 32}


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def to_nchw(images: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE [B, H, W, 3] in 0..1 -> [B, 3, H, W] in -1..1 (what comfy.sd.VAE feeds encode)."""
    return images.movedim(-1, 1) * 2 - 1


def save_file(tensors: dict, path: Path, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file as _save
    tmp = path.with_suffix(".tmp")
    _save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------------------------

def heldout_scenes(n: int = 256) -> list:
    rng = random.Random(10_000)
    return [world.random_scene(rng) for _ in range(n)]


@torch.no_grad()
def vae_psnr(ae: ToyAutoencoder, scenes: list) -> float:
    vals = []
    for i in range(0, len(scenes), 32):
        imgs = world.render_batch(scenes[i:i + 32])
        rec = ((ae.decode(ae.encode(to_nchw(imgs))) + 1) / 2).clamp(0, 1).movedim(1, -1)
        vals += [world.psnr(rec[j], imgs[j]) for j in range(len(imgs))]
    return sum(vals) / len(vals)


def train_vae(args) -> None:
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    ae = ToyAutoencoder()
    opt = torch.optim.AdamW(ae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    steps = args.vae_steps
    t0 = time.time()
    for step in range(1, steps + 1):
        lr = args.vae_lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / steps))) * min(1.0, step / 50)
        for g in opt.param_groups:
            g["lr"] = lr
        x = to_nchw(world.render_batch([world.random_scene(rng) for _ in range(args.vae_batch)]))
        z = ae.encode_raw(x)
        # decoder robustness: latents perturbed by 5% of their spread (the UNet's output is never exact)
        zn = z + 0.05 * z.detach().std() * torch.randn_like(z)
        loss = F.mse_loss(ae.decode_raw(zn), x) + 0.25 * F.mse_loss(ae.decode_raw(z), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps:
            log(f"vae step {step}/{steps} loss {loss.item():.5f} lr {lr:.2e} ({time.time() - t0:.0f}s)")
        if step % 300 == 0 or step == steps:
            finish_vae(ae, rng_seed=args.seed, final=(step == steps))
    log(f"vae done in {time.time() - t0:.0f}s")


def finish_vae(ae: ToyAutoencoder, rng_seed: int, final: bool) -> None:
    rng = random.Random(rng_seed + 1)
    calib = world.render_batch([world.random_scene(rng) for _ in range(512)])
    ae.eval()
    ae.calibrate(to_nchw(calib))
    p = vae_psnr(ae, heldout_scenes(256 if final else 64))
    ae.train()
    save_file(ae.state_dict(), OUT / "toy_vae.safetensors", metadata={"heldout_psnr_db": f"{p:.2f}"})
    log(f"vae checkpoint: held-out PSNR {p:.2f} dB")


def load_ae() -> ToyAutoencoder:
    from safetensors.torch import load_file
    ae = ToyAutoencoder()
    ae.load_state_dict(load_file(str(OUT / "toy_vae.safetensors")))
    return ae.eval()


# ---------------------------------------------------------------------------------------------
# Training set for the UNet: latents + caption indices
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def make_latents(args) -> None:
    ae = load_ae()
    rng = random.Random(args.seed + 2)
    captions = world.all_captions()
    index = {c: i for i, c in enumerate(captions)}
    lats, caps = [], []
    t0 = time.time()
    for i in range(0, args.n_train, 64):
        scenes = [world.random_scene(rng) for _ in range(min(64, args.n_train - i))]
        lats.append(ae.encode(to_nchw(world.render_batch(scenes))))
        caps += [index[s.caption] for s in scenes]
        if (i // 64) % 50 == 0:
            log(f"latents {i}/{args.n_train} ({time.time() - t0:.0f}s)")
    CACHE.mkdir(parents=True, exist_ok=True)
    lat = torch.cat(lats)
    torch.save({"latents": lat, "captions": torch.tensor(caps)}, CACHE / "train_latents.pt")
    s = lat * SD1_SCALE
    log(f"latents: {tuple(lat.shape)}, scaled mean {s.mean():.3f} std {s.std():.3f}")


# ---------------------------------------------------------------------------------------------
# UNet
# ---------------------------------------------------------------------------------------------

def boot_host():
    from workshop.headless.boot import boot
    return boot(base_dir=CACHE / "host")


def build_unet(tiny_models, seed: int):
    """The UNet as a host BaseModel (SD15 config class, shrunk)."""
    import copy
    import comfy.model_base
    import comfy.supported_models
    cfg = comfy.supported_models.SD15(copy.deepcopy(UNET_CONFIG))
    cfg.unet_config.update(UNET_OVERRIDES)
    cfg.set_inference_dtype(torch.float32, None)
    model = comfy.model_base.BaseModel(cfg, model_type=comfy.model_base.ModelType.EPS, device=torch.device("cpu"))
    if tiny_models is not None:
        tiny_models.init_weights(model.diffusion_model, tiny_models._generator("toyworld", "unet", seed))
        with torch.no_grad():
            model.diffusion_model.out[-1].weight.mul_(0.1)
            model.diffusion_model.out[-1].bias.zero_()
    return model


def caption_embeddings(h, clip) -> tuple[torch.Tensor, torch.Tensor]:
    """[n_captions, 77, 64] embeddings of world.all_captions() and the empty caption's [77, 64]."""
    from workshop.headless.calls import encode
    embs = torch.cat([encode(h, clip, c)[0][0] for c in world.all_captions()])
    empty = encode(h, clip, "")[0][0][0]
    return embs.float(), empty.float()


def train_unet(args) -> None:
    h = boot_host()
    tiny_models = h.pack.demo.tiny_models
    torch.manual_seed(args.seed)
    data = torch.load(CACHE / "train_latents.pt")
    x0_all = data["latents"] * SD1_SCALE
    caps_all = data["captions"]
    clip = tiny_models.build_tiny_clip("sd1", seed=CLIP_SEED)
    embs, empty = caption_embeddings(h, clip)
    log(f"embeddings {tuple(embs.shape)}; train set {tuple(x0_all.shape)}")

    model = build_unet(tiny_models, args.seed)
    unet = model.diffusion_model
    unet.train()
    unet.requires_grad_(True)
    n_params = sum(p.numel() for p in unet.parameters())
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    sigmas = model.model_sampling.sigmas.float()  # SD1.x schedule, 1000 steps
    abar = 1.0 / (1.0 + sigmas ** 2)
    snr = abar / (1 - abar)
    w_t = torch.clamp(snr, max=5.0) / snr  # min-SNR-5 weights for eps prediction
    opt = torch.optim.AdamW(unet.parameters(), lr=args.unet_lr, weight_decay=0.0)
    steps, bs = args.unet_steps, args.unet_batch
    gen = torch.Generator().manual_seed(args.seed)
    log(f"unet: {n_params / 1e6:.2f} M parameters, {steps} steps of batch {bs}")
    t0 = time.time()
    run_loss = None
    for step in range(1, steps + 1):
        lr = args.unet_lr * min(1.0, step / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, len(x0_all), (bs,), generator=gen)
        x0 = x0_all[idx]
        ctx = embs[caps_all[idx]]
        drop = torch.rand(bs, generator=gen) < args.dropout
        ctx = torch.where(drop.view(bs, 1, 1), empty.expand_as(ctx), ctx)
        loss = eps_loss(unet, x0, ctx, abar, w_t, gen, args.offset_noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        update_ema(ema, unet.state_dict(), decay)
        run_loss = loss.item() if run_loss is None else 0.98 * run_loss + 0.02 * loss.item()
        if step % 25 == 0:
            el = time.time() - t0
            log(f"unet step {step}/{steps} loss {run_loss:.5f} lr {lr:.2e} ({el:.0f}s, {el / step:.2f} s/step)")
        if step % args.ckpt_every == 0 or step == steps:
            save_unet(ema, {"steps": str(step), "loss": f"{run_loss:.5f}", "seconds": f"{time.time() - t0:.0f}"})
            log(f"unet checkpoint at step {step}")
    log(f"unet done in {time.time() - t0:.0f}s")


def save_unet(state: dict, meta: dict) -> None:
    # float16 on disk (the repo budget is 20 MB); loaded back as float32
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()},
              OUT / "toy_unet.safetensors", metadata=meta)


# ---------------------------------------------------------------------------------------------
# Text encoder subset + config
# ---------------------------------------------------------------------------------------------

def eps_loss(unet, x0: torch.Tensor, ctx: torch.Tensor, abar: torch.Tensor, w_t: torch.Tensor,
             gen: torch.Generator, offset_noise: float) -> torch.Tensor:
    """The weighted eps-prediction loss of ``x0`` noised at timesteps drawn from ``gen`` (the
    timesteps first, then the noise with its per-channel offset, so runs are reproducible)."""
    bs = x0.shape[0]
    t = torch.randint(0, 1000, (bs,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen) + offset_noise * torch.randn(bs, 4, 1, 1, generator=gen)
    t, noise = t.to(x0.device), noise.to(x0.device)   # drawn on the CPU: the same run on any device
    a = abar[t].view(bs, 1, 1, 1)
    pred = unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, timesteps=t.float(), context=ctx)
    return (((pred - noise) ** 2).mean(dim=(1, 2, 3)) * w_t[t]).mean()


@torch.no_grad()
def update_ema(ema: dict, state: dict, decay: float) -> None:
    """``ema`` <- decay * ``ema`` + (1 - decay) * ``state`` for floating tensors; others copied. The
    floating ones in two foreach kernels (a GPU's step is bound by the kernels it launches)."""
    floats = [k for k, v in state.items() if v.is_floating_point()]
    if floats:
        mine = [ema[k] for k in floats]
        torch._foreach_mul_(mine, decay)
        torch._foreach_add_(mine, [state[k].detach() for k in floats], alpha=1 - decay)
    for k, v in state.items():
        if not v.is_floating_point():
            ema[k].copy_(v)


def save_text_encoder(clip, captions: list[str], path: Path) -> None:
    """The text encoder as the pack ships it: every weight but the token table, and of the table
    only the rows of the tokens the captions (and the empty prompt) use."""
    sd = clip.cond_stage_model.state_dict()
    key = next(k for k in sd if k.endswith("token_embedding.weight"))
    ids = set()
    for text in captions + [""]:
        for chunk in clip.tokenize(text)["l"]:
            ids.update(int(tok[0]) for tok in chunk)
    ids = sorted(ids)
    tensors = {k: v.float() for k, v in sd.items() if k != key and v.is_floating_point()}
    tensors["token_ids"] = torch.tensor(ids, dtype=torch.int64)
    tensors["token_rows"] = sd[key][ids].float()
    save_file(tensors, path, metadata={"token_embedding_key": key})


def finish(args) -> None:
    h = boot_host()
    tiny_models = h.pack.demo.tiny_models
    clip = tiny_models.build_tiny_clip("sd1", seed=CLIP_SEED)
    save_text_encoder(clip, world.all_captions(), OUT / "toy_clip.safetensors")
    config = {
        "what": "Toy World Model: the pack's built-in demo/test text-to-image model (issue 3). "
                "Trained only on toyworld scenes; not a general image model.",
        "world": {"size": world.SIZE, "colours": list(world.COLOURS), "shapes": list(world.SHAPES),
                  "template": world.TEMPLATE},
        "unet_config": UNET_CONFIG,
        "unet_overrides": UNET_OVERRIDES,
        "model_type": "EPS",
        "latent_format": "SD15",
        "clip": {"family": "sd1", "seed": CLIP_SEED,
                 "note": "tiny_models.build_tiny_clip('sd1', seed) with toy_clip.safetensors loaded over it"},
        "vae": {"class": "toyworld.ae.ToyAutoencoder", "downscale": 8, "latent_channels": 4},
        "training": {"command": "python -m workshop.toyworld.train", "seed": args.seed,
                     "vae_steps": args.vae_steps, "vae_batch": args.vae_batch,
                     "unet_steps": args.unet_steps, "unet_batch": args.unet_batch,
                     "unet_lr": args.unet_lr, "caption_dropout": args.dropout,
                     "offset_noise": args.offset_noise, "ema": args.ema, "n_train": args.n_train},
    }
    from safetensors import safe_open
    for name in ("toy_vae", "toy_unet"):
        if (OUT / f"{name}.safetensors").is_file():
            with safe_open(str(OUT / f"{name}.safetensors"), "pt") as f:
                config["training"][f"{name}_metadata"] = f.metadata()
    # the bundled sample image the README's first command edits
    from PIL import Image
    img, _ = world.render(SAMPLE)
    Image.fromarray((img * 255).round().byte().numpy()).save(OUT / "sample.png")
    config["sample"] = {"file": "sample.png", "caption": SAMPLE.caption,
                        "scene": {k: getattr(SAMPLE, k) for k in ("background", "colour", "shape", "cx", "cy", "size")}}
    (OUT / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    log("wrote toy_clip.safetensors and config.json")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", default="all", choices=["all", "vae", "latents", "unet", "finish"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--vae-steps", type=int, default=1600)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--n-train", type=int, default=16000)
    p.add_argument("--unet-steps", type=int, default=3600)
    p.add_argument("--unet-batch", type=int, default=64)
    p.add_argument("--unet-lr", type=float, default=8e-4)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--offset-noise", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--ckpt-every", type=int, default=200)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    OUT.mkdir(parents=True, exist_ok=True)
    stages = ["vae", "latents", "unet", "finish"] if args.stage == "all" else [args.stage]
    for s in stages:
        {"vae": train_vae, "latents": make_latents, "unet": train_unet, "finish": finish}[s](args)


if __name__ == "__main__":
    main()

"""Toy World 2 Model's quality gates (issue 12), measured through the host's and the pack's nodes.

    python -m workshop.benchmarks.toyworld2_gates [--captions 60] [--scenes 60] [--cfg 5] [--steps 30]

- VAE: held-out reconstruction PSNR through stock VAEEncode / VAEDecode (gate >= 30 dB).
- Text-to-image: stock KSampler (ddim, ddim_uniform, ``--steps``, cfg ``--cfg``, seeds 0..n-1) on
  fixed held-out two-object captions; the exact judge reads every object. Gate: every object
  right (colour and shape) in >= 90% of 60 captions at cfg 5. Also: background right, and the
  exact caption (both objects, the background, no extra object).
- Attention points at its word: a held-out scene is rendered, VAE-encoded and inverted (DDIM
  Invert, 50 steps, source prompt); Attention Store gives the mask of one object's noun on that
  inversion (Prompt-to-Prompt's local-blend recipe: maps at latent/4 over every step, 3x3
  max-pool, normalised, > 0.3); its IoU with the object's true mask. Gate: >= 0.5 in >= 90% of
  the scenes. Both objects of every scene are measured: the figure per object and per scene
  (both objects >= 0.5) are reported.
- The same figure for DiffEdit Mask (strength 0.5, 10 samples, threshold 0.5: the paper's),
  with the object's colour changed in the target prompt (the region that edit changes is the
  object).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from workshop.benchmarks.toyworld import SCHEDULER, decode
from workshop.headless.boot import boot
from workshop.headless.calls import call, encode
from workshop.toyworld import scenes as S
from workshop.toyworld.scenes_judge import judge


def vae_gate(host, vae, n: int = 64) -> tuple[float, float]:
    held = S.heldout_scenes(n, seed=10_000)   # the VAE's held-out scenes (train_scenes.py)
    ps = []
    for i in range(0, n, 8):
        imgs = S.render_batch(held[i:i + 8])
        rec = call(host, "VAEDecode", vae=vae, samples=call(host, "VAEEncode", pixels=imgs, vae=vae)[0])[0]
        ps += [S.psnr(rec[j], imgs[j]) for j in range(len(imgs))]
    return statistics.fmean(ps), min(ps)


def t2i_gate(host, model, clip, vae, n: int, cfg: float, steps: int) -> dict:
    empty = encode(host, clip, "")
    every = background = exact = 0
    objects = [0, 0]
    for i, text in enumerate(S.heldout_captions(n)):
        latent = call(host, "EmptyLatentImage", width=S.SIZE, height=S.SIZE, batch_size=1)[0]
        out = call(host, "KSampler", model=model, seed=i, steps=steps, cfg=cfg, sampler_name="ddim", scheduler=SCHEDULER,
                   positive=encode(host, clip, text), negative=empty, latent_image=latent, denoise=1.0)[0]
        r = judge(decode(host, vae, out["samples"]))
        right, named = r.objects_right(text)
        objects[0] += right
        objects[1] += named
        every += right == named
        background += r.background == S.parse_caption(text)[1]
        exact += r.matches_caption(text)
    return {"every object right": every / n, "objects right": objects[0] / objects[1],
            "background right": background / n, "exact caption": exact / n}


def colour_edit(scene: S.Scene, index: int) -> S.Scene:
    """The scene with object ``index`` in the first colour the scene does not use (deterministic)."""
    used = {scene.background} | {o.colour for o in scene.objects}
    return scene.with_object(index, colour=next(c for c in S.COLOURS if c not in used))


def mask_gates(host, model, clip, vae, n: int, steps: int, pool: int = 3, diffedit_too: bool = True) -> dict:
    """Per object of ``n`` held-out scenes: (Attention Store noun-mask IoU, with its ``mask_pool``; DiffEdit
    mask IoU, where asked)."""
    store, diffedit = [], []
    for scene in S.heldout_scenes(n):
        img, masks = S.render(scene)
        latent = call(host, "VAEEncode", pixels=img[None], vae=vae)[0]
        src = encode(host, clip, scene.caption)
        inv = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=src, steps=steps,
                   scheduler=SCHEDULER, start_at_step=0, cfg=1.0)[0]
        row_store, row_diff = [], []
        for k, o in enumerate(scene.objects):
            m = call(host, "InvertEditAttentionStore", model=model, clip=clip, inversion=inv, prompt=scene.caption,
                     words=o.shape, start=0.0, end=1.0, threshold=0.3, mask_pool=pool)[1]
            row_store.append(S.mask_iou(_at(m, masks.shape[-1]), masks[k]))
            if not diffedit_too:
                continue
            tgt = encode(host, clip, colour_edit(scene, k).caption)
            d = call(host, "InvertEditDiffEditMask", model=model, latent=latent, source=src, target=tgt, strength=0.5,
                     samples=10, threshold=0.5, seed=0)[0]
            row_diff.append(S.mask_iou(_at(d, masks.shape[-1]), masks[k]))
        store.append(row_store)
        if diffedit_too:
            diffedit.append(row_diff)
    return {"attention_store": store, "diffedit": diffedit}


def _at(mask: torch.Tensor, res: int) -> torch.Tensor:
    m = mask.float().reshape(-1, *mask.shape[-2:])[:1]
    if m.shape[-1] != res:
        m = F.interpolate(m[None], size=(res, res), mode="nearest")[0]
    return m[0] > 0.5


def summarise(name: str, rows: list[list[float]]) -> str:
    flat = [v for r in rows for v in r]
    per_obj = sum(v >= 0.5 for v in flat) / len(flat)
    both = sum(all(v >= 0.5 for v in r) for r in rows) / len(rows)
    first = sum(r[0] >= 0.5 for r in rows) / len(rows)
    return (f"| {name} | {statistics.fmean(flat):.3f} | {100 * per_obj:.0f}% of {len(flat)} objects | "
            f"{100 * first:.0f}% | {100 * both:.0f}% of {len(rows)} scenes |")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--captions", type=int, default=60)
    p.add_argument("--scenes", type=int, default=60)
    p.add_argument("--cfg", type=float, default=5.0)
    p.add_argument("--steps", type=int, default=30, help="text-to-image sampling steps")
    p.add_argument("--invert-steps", type=int, default=50, help="DDIM Invert steps for the mask gates")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default="", help="vae, t2i, masks or store (Attention Store's alone; default: all "
                                                   "but store)")
    p.add_argument("--mask-pool", type=int, default=3, help="Attention Store's mask_pool (paper's local blend: 3)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    host = boot(base_dir=Path(tempfile.mkdtemp(prefix="toyworld2-gates-")))
    import comfy.utils
    comfy.utils.PROGRESS_BAR_ENABLED = False
    toy = host.pack.demo.toy_model
    model, clip, vae = toy.load_toy_model(toy.WORLD_2)
    only = args.only or "vae,t2i,masks"
    pool = f"; mask_pool {args.mask_pool}" if args.mask_pool != 3 else ""
    t0 = time.time()
    lines = []
    if "vae" in only:
        mean, low = vae_gate(host, vae)
        lines.append(f"VAE held-out PSNR (stock VAEEncode/VAEDecode, 64 scenes at 512 px): {mean:.2f} dB "
                     f"(min {low:.2f}); gate >= 30 dB: {'met' if mean >= 30 else 'NOT met'}")
    if "t2i" in only:
        r = t2i_gate(host, model, clip, vae, args.captions, args.cfg, args.steps)
        lines.append(f"Text-to-image (stock KSampler, ddim {args.steps} steps, cfg {args.cfg:g}, {args.captions} held-out "
                     f"captions, seeds 0..{args.captions - 1}): every object right {100 * r['every object right']:.0f}% "
                     f"(gate >= 90%: {'met' if r['every object right'] >= 0.9 else 'NOT met'}); objects right "
                     f"{100 * r['objects right']:.0f}%; background right {100 * r['background right']:.0f}%; exact "
                     f"caption {100 * r['exact caption']:.0f}%")
    if "masks" in only or "store" in only:
        m = mask_gates(host, model, clip, vae, args.scenes, args.invert_steps, args.mask_pool, "masks" in only)
        lines += ["", f"Masks on the DDIM inversion ({args.invert_steps} steps) of {args.scenes} held-out scenes, IoU with "
                      "the object's true mask (gate: >= 0.5 in >= 90% of scenes):", "",
                  "| mask | mean IoU | IoU >= 0.5 (objects) | first object | both objects |", "|---|---|---|---|---|",
                  summarise(f"Attention Store, the object's noun (threshold 0.3{pool})", m["attention_store"])]
        if m["diffedit"]:
            lines.append(summarise("DiffEdit Mask, the object's colour changed (strength 0.5, 10 samples, threshold 0.5)",
                                   m["diffedit"]))
    lines.append(f"\n({time.time() - t0:.0f}s on {torch.get_num_threads()} thread(s))")
    print("\n".join(lines))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

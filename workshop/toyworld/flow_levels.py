"""Where a toy flow model loses the scene: from which noise level it gives a rendered scene back.

Issue 26's text-to-image gate fails on the layout (docs/toyworld.md, "Where the drawing fails"). This
diagnostic separates the two things a sampler from noise asks of the model: to *keep* a layout that
is already in its input, and to *choose* one. Held-out scenes are rendered, encoded, noised to a level
``s0`` of the sampler's own schedule (Euler, 20 steps at the host's shift for the image's size, as
``train_flow --stage eval --eval-shift host``), and the rest of the schedule is run with the teacher at
CFG (or the student at guidance); world 2's judge then reads each result:

- every object right: each object's colour and shape as the caption says (the text-to-image gate's
  reading);
- scene kept: the same, and each object within 6 pixels (at 128 px) and a quarter of its size of
  where it was: the layout came back, not only the content.

At ``s0 = 1`` this is text to image. ``--grid`` also writes, for six scenes, the scene and the
model's one-step estimate of the clean latent, ``x - s v``, from five levels: what the model sees in
its input at each.

    python -m workshop.toyworld.flow_levels --out <train_flow --out> [--preset h128-d2s4] [--res 128]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workshop.toyworld import scenes as S, scenes_judge as J, train_flow as TF

LEVEL_STEPS = (0, 2, 4, 8, 12)      # start steps of the 20-step schedule (s0 1.0 .. about 0.5)
GRID_LEVELS = (0.95, 0.9, 0.86, 0.8, 0.7)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="a train_flow --out folder (its teacher or student)")
    p.add_argument("--preset", default=TF.DEFAULT_PRESET, choices=list(TF.PRESETS))
    p.add_argument("--res", type=int, default=128)
    p.add_argument("--scenes", type=int, default=60, help="held-out scenes (scenes.heldout_scenes)")
    p.add_argument("--cfg", type=float, default=4.0, help="CFG scale (teacher) or guidance (student)")
    p.add_argument("--student", action="store_true")
    p.add_argument("--grid", default="", help="also write the one-step estimates of six scenes here (PNG)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="where the model runs (cpu, cuda)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    args = TF.parse_args(["--out", a.out, "--res", str(a.res), "--preset", a.preset, "--device", a.device])
    ae, text, index = TF.setup(args)
    stem = "student" if a.student else "dit"
    net, meta = TF.load_dit(args, "final" if (Path(a.out) / f"toy_{stem}_ema.pt").is_file() else "ckpt", a.student)
    scenes = S.heldout_scenes(a.scenes)
    n, tol = len(scenes), 6.0 * S.SIZE / a.res
    ss = TF.shifted(torch.linspace(1, 0, 21, device=a.device), TF.host_shift(a.res, args.factor))
    with torch.no_grad():
        x0 = ae.to_model(ae.encode(TF.to_nchw(S.render_batch(scenes, a.res, device=TF.on_device(args)))))
    idx = torch.tensor([index[s.caption] for s in scenes], device=a.device)
    ctx, pooled = text["ctx"][idx], text["pooled"][idx]
    empty = (text["empty_ctx"], text["empty_pooled"])
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(7)).to(x0.device)
    result = {"model": a.out, "which": stem, "steps": meta["steps"], "res": a.res, "cfg": a.cfg, "scenes": n,
              "levels": {}}
    for start in LEVEL_STEPS:
        s0 = float(ss[start])
        x = TF.euler_from(net, (1 - s0) * x0 + s0 * noise, ss, start, ctx, pooled, *empty, a.cfg, a.student)
        reads = [J.judge(y) for y in TF.to_images(ae, x)]
        every = sum(a_ == b_ for a_, b_ in (r.objects_right(s.caption) for r, s in zip(reads, scenes)))
        kept = sum(r.matches_scene(s, pos_tol=tol, size_tol=0.25) for r, s in zip(reads, scenes))
        result["levels"][f"{s0:.2f}"] = {"every_object_right": round(every / n, 3), "scene_kept": round(kept / n, 3)}
    if a.grid:
        from PIL import Image
        k = min(6, n)
        cols = [TF.to_images(ae, x0[:k])]
        for s0 in GRID_LEVELS:
            x = (1 - s0) * x0[:k] + s0 * noise[:k]
            v = TF.guided_velocity(net, x, torch.tensor(s0, device=x.device), ctx[:k], pooled[:k], *empty, a.cfg,
                                   a.student)
            cols.append(TF.to_images(ae, x - s0 * v))
        grid = torch.cat([torch.cat(list(col), 0) for col in cols], 1)
        Image.fromarray((grid * 255).round().byte().numpy()).save(a.grid)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

"""Whether a toy flow model gives a scene back through inversion, and where its student leaves its teacher.

The flow benchmark's editors all start from an inversion at guidance 1 (``toyworld_flow``'s reconstruction
rows). This diagnostic reads the same thing at once on a ``train_flow --out`` folder's teacher and student,
on the source scenes of world 2's first ``--scenes`` edit cases (the benchmark's), at ``--res``:

- reconstruction: Euler inversion from the clean latent to the noise over ``--steps`` steps of the host's
  schedule at the image's shift (ModelSamplingFlux), then Euler back, the teacher at CFG 1 (its conditional
  velocity), the student at guidance 1; PSNR of the decoded result against the source's VAE round trip (so
  the autoencoder's own loss is not counted), per scene, and the share of scenes "lost" (under 20 dB: another
  picture came back);
- the student against its teacher: along the teacher's inversion path, the student's velocity at guidance 1
  against the teacher's conditional one, ``|v_student - v_teacher| / |v_teacher|`` averaged over the scenes,
  at each noise level: where the distillation moved guidance 1 away from the velocity it was taught.

    python -m workshop.toyworld.flow_recon --out <train_flow --out> [--student-weights toy_dit.safetensors] [--json F]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workshop.toyworld import scenes as S, train_flow as TF

LOST_DB = 20.0


def psnr(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per image PSNR (dB) of ``[N, H, W, 3]`` images in [0, 1]."""
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    return (10 * torch.log10(1 / mse)).tolist()


@torch.no_grad()
def invert(net, x0: torch.Tensor, ss: torch.Tensor, ctx, pooled, empty: tuple, distilled: bool,
           other=None) -> tuple[torch.Tensor, list[float]]:
    """Euler inversion over ``ss`` (1 -> 0) backwards, at guidance (CFG) 1: the noise it reaches, and with
    ``other`` (a student) that model's relative velocity deviation from ``net``'s at each step's level."""
    x, dev = x0, []
    for i in range(len(ss) - 1, 0, -1):
        v = TF.guided_velocity(net, x, ss[i], ctx, pooled, *empty, 1.0, distilled)
        if other is not None:
            w = TF.guided_velocity(other, x, ss[i], ctx, pooled, *empty, 1.0, True)
            dev.append(float(((w - v).flatten(1).norm(dim=1) / v.flatten(1).norm(dim=1).clamp_min(1e-8)).mean()))
        x = x + (ss[i - 1] - ss[i]) * v
    return x, dev[::-1]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="a train_flow --out folder (toy_dit_ema.pt, and a student)")
    p.add_argument("--student-weights", default="",
                   help="the student: a toy_dit.safetensors (with its config.json) or toy_student_ema.pt; default "
                        "the folder's toy_student_ema.pt")
    p.add_argument("--preset", default=TF.DEFAULT_PRESET, choices=list(TF.PRESETS))
    p.add_argument("--res", type=int, default=256)
    p.add_argument("--scenes", type=int, default=20, help="the source scenes of world 2's first edit cases")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="where the models run (cpu, cuda)")
    p.add_argument("--json", default="", help="also write the result here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    args = TF.parse_args(["--out", a.out, "--res", str(a.res), "--preset", a.preset, "--device", a.device])
    ae, text, index = TF.setup(args)
    teacher, meta = TF.load_dit(args)
    weights = a.student_weights or str(Path(a.out) / "toy_student_ema.pt")
    student = TF.build_dit(args.seed, student=True, preset=a.preset).to(a.device)
    student.load_state_dict(TF.of_preset(TF.load_student(weights, a.device), weights, args)["ema"])
    student.eval().requires_grad_(False)
    scenes = [c.source for c in S.edit_cases(100)[:a.scenes]]
    x0 = TF.latents(args, ae, scenes, a.res)
    idx = torch.tensor([index[s.caption] for s in scenes], device=a.device)
    ctx, pooled, empty = text["ctx"][idx], text["pooled"][idx], (text["empty_ctx"], text["empty_pooled"])
    ss = TF.shifted(torch.linspace(1, 0, a.steps + 1, device=a.device), TF.host_shift(a.res, args.factor))
    source = TF.to_images(ae, x0)
    result = {"teacher": meta, "res": a.res, "steps": a.steps, "scenes": len(scenes), "student_weights": weights}
    for name, net, distilled in (("teacher", teacher, False), ("student", student, True)):
        noise, dev = invert(net, x0, ss, ctx, pooled, empty, distilled, student if not distilled else None)
        back = TF.euler_from(net, noise, ss, 0, ctx, pooled, *empty, 1.0, distilled)
        per = psnr(TF.to_images(ae, back), source)
        result[name] = {"psnr_mean": round(sum(per) / len(per), 2), "lost": round(sum(v < LOST_DB for v in per) / len(per), 3),
                        "psnr": [round(v, 1) for v in per]}
        if dev:
            result["student_vs_teacher"] = {f"{float(ss[i + 1]):.3f}": round(d, 3) for i, d in enumerate(dev)}
    print(json.dumps(result))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()

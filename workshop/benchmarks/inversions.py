"""Every inversion method of the pack, reconstructing the bundled sample image under
classifier-free guidance: image-space PSNR, UNet passes, and cost relative to plain DDIM.

    python -m workshop.benchmarks.inversions [--model toy-one-object|demo-sd1|demo-sd2-v|demo-sdxl] [--steps 50] [--cfg 7.5] [--repeats 3]
                                             [--rows Fixed-point]

``toy-one-object`` (the default) is the built-in Toy World Model of one object at 128 px, whose
sample ``assets/sample.png`` is the image; the others are the random-weight demo models, whose images mean nothing (use them for
counts). UNet passes are counted as batch rows through the host's model wrapper (a guided
step is 2); backward passes are Null-Text Optimize's own count. Wall time is each method's
inversion + reconstruction, median of ``--repeats``, divided by plain DDIM's from the same run.

The fixed-point rows (``fixed_point_rows``) run at their own few steps, each beside plain DDIM at
the same number of model evaluations in the inversion (one guided prediction each) and, in the
first row, DDIM at ``--steps``; ``--rows`` keeps only the rows whose name contains one of its
comma-separated words (and the first row, which the times are relative to).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from workshop.headless.boot import boot
from workshop.headless.calls import add_model_argument, builtin_model, call, custom_sample, encode

SOURCE = "a red circle on a blue background"
SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "sample.png"


def counted(model):
    m = model.clone()
    m.rows = [0]

    def wrapper(apply_model, args):
        m.rows[0] += args["input"].shape[0]
        return apply_model(args["input"], args["timestep"], **args["c"])

    m.set_model_unet_function_wrapper(wrapper)
    return m


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def ksampler(host, model, latent, pos, neg, steps, cfg):
    return call(host, "KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=steps, cfg=cfg,
                sampler_name="ddim", scheduler="ddim_uniform", positive=pos, negative=neg, latent_image=latent,
                start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")[0]


def methods(host, model, src, pos, neg, steps, cfg):
    """name -> function running inversion + reconstruction, returning (LATENT, backward passes)."""
    def ddim_inv():
        return call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=pos, steps=steps,
                    scheduler="ddim_uniform", start_at_step=0, cfg=1.0)

    def apply(inv):
        return call(host, "InvertEditApplyInversion", model=model, inversion=inv)[0]

    def plain():
        inv, lat, _ = ddim_inv()
        return ksampler(host, model, lat, pos, neg, steps, cfg), 0

    def refined(node, **kw):
        def run():
            inv, lat, _ = ddim_inv()
            inv2 = call(host, node, inversion=inv, **kw)[0]
            return ksampler(host, apply(inv2), lat, pos, neg, steps, cfg), 0
        return run

    def null_text(early_stop):
        def run():
            inv, lat, _ = ddim_inv()
            nt = call(host, "InvertEditNullTextOptimize", model=model, inversion=inv, positive=pos, negative=neg,
                      cfg=cfg, inner_steps=10, learning_rate=0.01, early_stop=early_stop)[0]
            return ksampler(host, apply(nt), lat, pos, neg, steps, cfg), nt.settings["null_text"]["unet_backward"]
        return run

    def own_sampler(invert_node, sampler_node, **kw):
        def run():
            inv, lat, sigmas = call(host, invert_node, model=model, latent=src, positive=pos, negative=neg, steps=steps,
                                    scheduler="ddim_uniform", start_at_step=0, cfg=cfg, **kw)
            return {"samples": custom_sample(host, model, pos, neg, cfg, call(host, sampler_node, inversion=inv)[0], sigmas, lat)}, 0
        return run

    return {
        "DDIM (cfg 1 inversion)": plain,   # first: the others' times are relative to it
        "Negative-prompt": refined("InvertEditNegativePromptInversion", positive=pos),
        "Direct": refined("InvertEditDirectInversion"),
        "Null-text (early stop)": null_text(True),
        "Null-text (fixed 10 inner steps, paper)": null_text(False),
        "EDICT (p 0.93)": own_sampler("InvertEditEDICTInvert", "InvertEditEDICTSampler", mixing=0.93),
        "Edit-friendly DDPM": own_sampler("InvertEditDDPMInvert", "InvertEditDDPMSampler", seed=0),
    }


def ddim_uniform(model, steps: int) -> torch.Tensor:
    """The host's ``ddim_uniform`` sigmas for ``steps``."""
    import comfy.samplers

    return comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "ddim_uniform", steps).float().cpu()


def steps_run(model, steps: int) -> int:
    """The steps a ``ddim_uniform`` schedule of ``steps`` really has (timesteps 1000 // steps
    apart from timestep 1 up to 999: 6 requested give 7)."""
    return len(ddim_uniform(model, steps)) - 1


def ddim_steps_for(model, evaluations: int) -> int:
    """The ``steps`` to request for a ``ddim_uniform`` DDIM run of exactly ``evaluations`` steps
    (the largest that gives it; else ``evaluations``, which runs a few more)."""
    return next((n for n in range(evaluations, 0, -1) if steps_run(model, n) == evaluations), evaluations)


def fixed_point_rows(host, model, src, pos, neg, cfg, steps_list=(4, 6, 10)):
    """Fixed-Point Invert (ReNoise's defaults) at few steps, and DDIM at the same number of model
    evaluations in the inversion, each inverted at cfg 1 and (when ``cfg`` is not 1) at ``cfg``,
    and reconstructed at ``cfg``."""
    from invertedit.techniques.fixed_point.iteration import LOW_NOISE_TIMESTEP, model_evaluations

    low = float(model.get_model_object("model_sampling").sigma(torch.tensor(float(LOW_NOISE_TIMESTEP))))

    def fixed(steps, cfg_inv):
        def run():
            _, lat, _ = call(host, "InvertEditFixedPointInvert", model=model, latent=src, positive=pos, negative=neg,
                             steps=steps, scheduler="ddim_uniform", start_at_step=0, cfg=cfg_inv, iterations=9,
                             average=2, low_noise_rule=True, anderson=0)
            return ksampler(host, model, lat, pos, neg, steps, cfg), 0
        return run

    def ddim(steps, cfg_inv):
        def run():
            _, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=pos, negative=neg,
                             steps=steps, scheduler="ddim_uniform", start_at_step=0, cfg=cfg_inv)
            return ksampler(host, model, lat, pos, neg, steps, cfg), 0
        return run

    rows = {}
    for steps in steps_list:
        run = steps_run(model, steps)
        label = f"{run} steps" + (f" ({steps} requested)" if run != steps else "")
        n = model_evaluations(ddim_uniform(model, steps), 9, low)
        equal = ddim_steps_for(model, n)
        for cfg_inv in dict.fromkeys((1.0, cfg)):
            rows[f"Fixed-point (ReNoise defaults, cfg {cfg_inv:g} inversion), {label}, {n} evaluations"] = \
                fixed(steps, cfg_inv)
            rows[f"DDIM (cfg {cfg_inv:g} inversion), {steps_run(model, equal)} steps: the evaluations of {run} "
                 f"fixed-point steps"] = ddim(equal, cfg_inv)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_argument(ap)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--cfg", type=float, default=7.5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", default="", help="only the rows whose name contains one of these comma-separated words "
                                               "(and the first row, plain DDIM, the times are relative to)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    name = args.model
    model, clip, vae = builtin_model(host, name)
    from PIL import Image
    image = torch.from_numpy(np.asarray(Image.open(SAMPLE).convert("RGB"), dtype=np.float32) / 255.0)[None]
    src = call(host, "VAEEncode", pixels=image, vae=vae)[0]
    roundtrip = call(host, "VAEDecode", samples=src, vae=vae)[0]
    pos, neg = encode(host, clip, SOURCE), encode(host, clip, "")

    rows, base = [], None
    m = counted(model)
    rows_to_run = {**methods(host, m, src, pos, neg, args.steps, args.cfg),
                   **fixed_point_rows(host, m, src, pos, neg, args.cfg)}
    wanted = [w.strip() for w in args.rows.split(",") if w.strip()]
    if wanted:
        first = next(iter(rows_to_run))
        rows_to_run = {k: v for k, v in rows_to_run.items() if k == first or any(w in k for w in wanted)}
    for label, run in rows_to_run.items():
        times = []
        for _ in range(args.repeats):
            m.rows[0] = 0
            t0 = time.perf_counter()
            latent, backward = run()
            times.append(time.perf_counter() - t0)
        decoded = call(host, "VAEDecode", samples=latent, vae=vae)[0]
        t = statistics.median(times)
        base = base or t
        rows.append((label, psnr(decoded, roundtrip), psnr(decoded, image), m.rows[0], backward, t / base))

    print(f"\n### Inversion methods: reconstruction of assets/sample.png at cfg {args.cfg:g}, {args.steps} steps, "
          f"model '{name}', 1 CPU thread, median of {args.repeats}\n")
    print("| method | PSNR vs VAE round trip (dB) | PSNR vs image (dB) | UNet forward (rows) | UNet backward | time / DDIM |")
    print("|---|---|---|---|---|---|")
    for label, p_rt, p_img, fwd, bwd, ratio in rows:
        print(f"| {label} | {p_rt:.2f} | {p_img:.2f} | {fwd} | {bwd} | {ratio:.2f} |")


if __name__ == "__main__":
    main()

"""Dispatched torch operations and UNet calls per sampling step: each attention editor on an
inverted pair against the stock sampler on the same batch of 2 (issue 23).

    python -m workshop.benchmarks.dispatch_count [--model toy-one-object|demo-sd1|demo-sdxl] [--steps 10]
    python -m workshop.benchmarks.dispatch_count --flow [--steps 10]   # FlowEdit on the tiny Flux and SD3

A GPU run of ComfyUI is bound by the CPU issuing kernels (HOST-NOTES: 44k kernel launches for
50 stock SD1.5 steps, 0.89 s of GPU work in 3.3 s): its cost follows the number of operations
dispatched, not the arithmetic. Counted here on the CPU with a ``TorchDispatchMode`` (every
aten operation, views included), so the figures are exact and repeatable: a count, not a time.
Also counted: UNet calls per step (a second call per step doubles a GPU step) and the
operations that make the CPU wait for the device (``.item()``-like reads and ``nonzero``).

Every run is the pack's shipped chain: DDIM Invert (cfg 1), Direct Inversion, the editor,
Apply Inversion, stock KSampler (Advanced) at cfg 7.5 on the editor's pair. Stock is the same
KSampler run on the same pair latent and conditioning with the unpatched model.
"""
from __future__ import annotations

import argparse
import tempfile
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from workshop.headless.boot import boot
from workshop.headless.calls import add_model_argument, builtin_model, call, encode

SOURCE, TARGET = "a red circle and a blue square", "a yellow circle and a blue square"
REFINED = "a red circle and a blue square on grass"
#: Operations after which the CPU waits for the device's result.
SYNCS = {"aten::_local_scalar_dense", "aten::item", "aten::nonzero", "aten::is_nonzero", "aten::equal"}

EDITORS = {
    "Attention Inject: replace (0.8 / 0.4)": ("InvertEditAttentionInject", dict(
        mode="replace", reweight="", cross_replace=0.8, self_replace=0.4, local_blend=False)),
    "Attention Inject: replace + reweight": ("InvertEditAttentionInject", dict(
        mode="replace", reweight="yellow:2", cross_replace=0.8, self_replace=0.4, local_blend=False)),
    "Attention Inject: refine": ("InvertEditAttentionInject", dict(
        mode="refine", reweight="", cross_replace=0.8, self_replace=0.4, target_prompt=REFINED, local_blend=False)),
    "Attention Inject: replace + local blend": ("InvertEditAttentionInject", dict(
        mode="replace", reweight="", cross_replace=0.8, self_replace=0.4, blend_source_words="circle",
        blend_target_words="circle")),
    "MasaCtrl (step 2, layer 4)": ("InvertEditMasaCtrl", dict(start_step=2, start_layer=4)),
    "Plug-and-Play (0.8 / 0.5)": ("InvertEditPlugAndPlay", dict(feature_injection=0.8, self_attention_injection=0.5)),
}


def _cpu_attention_macs(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """torch's own SDPA formula for the CPU's fused attention kernel, which its counter leaves out."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def flop_counter() -> FlopCounterMode:
    """torch's ``FlopCounterMode`` that also counts the CPU's fused attention
    (``_scaled_dot_product_flash_attention_for_cpu``, where the host's attention runs on a CPU)."""
    return FlopCounterMode(display=False, custom_mapping={
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_macs})


class OpCounter(TorchDispatchMode):
    """Counts every aten operation dispatched while active."""

    def __init__(self):
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func._schema.name] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def syncs(self) -> int:
        return sum(n for name, n in self.ops.items() if name in SYNCS)


def counted_model(model, where: str = "DIFFUSION_MODEL"):
    """A clone of ``model`` that counts its UNet calls (a DIFFUSION_MODEL wrapper, or ``where``)."""
    import comfy.patcher_extension as pe

    m = model.clone()
    calls = []

    def count(executor, *args, **kwargs):
        calls.append(args[0].shape[0])
        return executor(*args, **kwargs)

    m.add_wrapper_with_key(getattr(pe.WrappersMP, where), "invertedit_count", count)
    return m, calls


def measure(host, model, clip, steps: int, cfg: float = 7.5) -> list[dict]:
    """One row per editor and one for stock: dispatched ops, device waits and UNet calls (with
    their rows) per sampling step, and the ops each run spends once (its checks and set-up).

    Per step is the difference of two runs, at ``2 * steps`` and ``steps`` steps, divided by
    ``steps``: work done once per run (Apply Inversion's checks, the model's fingerprint, the
    editors' per-run constants) cancels, and is reported apart as ``once``."""
    side = 16
    latent = {"samples": torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(0)) * 5.0}
    neg = encode(host, clip, "")
    direct, pairs = {}, {}
    for n in (steps, 2 * steps):
        inv, lat, _ = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=encode(host, clip, SOURCE),
                           steps=n, scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
        direct[n], pairs[n] = call(host, "InvertEditDirectInversion", inversion=inv)[0], lat

    def run(m, cond, pair, n) -> tuple:
        m, calls = counted_model(m)
        with OpCounter() as counter:
            call(host, "KSamplerAdvanced", model=m, add_noise="disable", noise_seed=0, steps=n, cfg=cfg,
                 sampler_name="ddim", scheduler="ddim_uniform", positive=cond, negative=neg, latent_image=pair,
                 start_at_step=0, end_at_step=10000, return_with_leftover_noise="disable")
        return counter.total, counter.syncs, calls

    def per_step(make) -> dict:
        (ops1, syncs1, calls1), (ops2, syncs2, calls2) = (run(*make(n), n) for n in (steps, 2 * steps))
        ops = (ops2 - ops1) / steps
        return {"ops": ops, "once": ops1 - ops * steps, "syncs": (syncs2 - syncs1) / steps,
                "calls": (len(calls2) - len(calls1)) / steps, "rows": sorted(set(calls1 + calls2))}

    rows = []
    for label, (node, kw) in EDITORS.items():
        kw = dict(kw)
        target = kw.pop("target_prompt", TARGET)

        def make(n, node=node, kw=kw, target=target):
            m, cond, pair = call(host, node, model=model, clip=clip, latent=pairs[n], source_prompt=SOURCE,
                                 target_prompt=target, **kw)
            return call(host, "InvertEditApplyInversion", model=m, inversion=direct[n])[0], cond, pair

        if not rows:
            rows.append(dict(per_step(lambda n: (model, *make(n)[1:])), label="stock KSampler, batch 2 (the pair)"))
        rows.append(dict(per_step(make), label=label))
    for row in rows:
        row["ratio"] = row["ops"] / rows[0]["ops"]
    return rows


FLOWEDIT_CHAIN = "FlowEdit's GUIDER against the host's CFGGuider, SamplerCustomAdvanced, euler"


def table(rows: list[dict], name: str, steps: int, chain: str | None = None) -> str:
    """The rows of ``measure`` / ``measure_flow`` as a markdown table; ``chain`` says what was run (by default
    FlowEdit's on the tiny flow models, the SD editors' chain otherwise)."""
    if chain is None:
        chain = (FLOWEDIT_CHAIN if name.startswith("demo-f") or name == "demo-sd3"
                 else "cfg 7.5, DDIM Invert + Direct Inversion + editor + Apply Inversion")
    lines = [f"\n### Dispatched operations per sampling step, model '{name}', 16x16 latent, per step = "
             f"(run of {2 * steps} steps - run of {steps}) / {steps} ({chain})\n",
             "| run | aten ops / step | vs stock batch 2 | UNet calls / step (rows per call) | device waits / step "
             "| ops once per run |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['ops']:,.0f} | {r['ratio']:.2f}x | {r['calls']:.1f} ({', '.join(map(str, r['rows']))}) "
                     f"| {r['syncs']:.1f} | {r['once']:,.0f} |")
    return "\n".join(lines)


def custom_per_step(host, model, make, latent: torch.Tensor, steps: int, label: str) -> dict:
    """Per step of SamplerCustomAdvanced runs of ``model`` (``make(model, n) -> (guider, sampler)``) on
    ``latent`` with the model's 'simple' schedule: ops, device waits, model calls (an APPLY_MODEL
    wrapper: the host's MMDiT does not run DIFFUSION_MODEL wrappers) and their rows, as ``measure``
    counts them; a first run loads the model, so that its loading is no step's work."""
    m, calls = counted_model(model, "APPLY_MODEL")

    def run(n) -> tuple:
        guider, sampler = make(m, n)
        sigmas = call(host, "BasicScheduler", model=m, scheduler="simple", steps=n, denoise=1.0)[0]
        with OpCounter() as counter:
            call(host, "SamplerCustomAdvanced", noise=call(host, "RandomNoise", noise_seed=0)[0], guider=guider,
                 sampler=sampler, sigmas=sigmas, latent_image={"samples": latent})
        return counter.total, counter.syncs

    run(steps)
    out = []
    for n in (steps, 2 * steps):
        calls.clear()
        out.append((*run(n), list(calls)))
    (ops1, syncs1, calls1), (ops2, syncs2, calls2) = out
    ops = (ops2 - ops1) / steps
    return {"label": label, "ops": ops, "once": ops1 - ops * steps, "syncs": (syncs2 - syncs1) / steps,
            "calls": (len(calls2) - len(calls1)) / steps, "rows": sorted(set(calls1 + calls2))}

def flow_sampler_rows(host, model, clip, target, latent: torch.Tensor, steps: int) -> tuple[list[dict], object, object]:
    """Per model evaluation (``per_nfe``), the stock euler sampler's, the Flow Sampler's three solvers' and
    RF-Inversion's patch's rows on a flow ``model`` under BasicGuider with ``target``; also the ``per_step(model,
    make_sampler, label)`` measure that made them and the stock euler sampler, for a caller's further rows."""

    def per_step(base, make_sampler, label: str) -> dict:
        row = custom_per_step(host, base, lambda m, n: (call(host, "BasicGuider", model=m, conditioning=target)[0],
                                                        make_sampler(m, n)), latent, steps, label)
        return dict(row, per_nfe=row["ops"] / row["calls"])

    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    rows = [per_step(model, lambda m, n: euler, "stock euler")]
    for solver in ("euler", "rf-solver", "fireflow"):
        sampler = call(host, "InvertEditFlowSampler", solver=solver)[0]
        rows.append(per_step(model, lambda m, n, s=sampler: s, f"Flow Sampler {solver}"))
    inversion = call(host, "InvertEditRFInversionInvert", model=model, latent={"samples": latent},
                     positive=encode(host, clip, ""), steps=4, scheduler="simple", gamma=0.5, guidance=0.0, seed=0)[0]
    patched = call(host, "InvertEditRFInversion", model=model, inversion=inversion, eta=0.9, start=0.0, stop=1.0,
                   eta_decay=0.0)[0]
    rows.append(per_step(patched, lambda m, n: euler, "RF-Inversion patch (eta at every step) + stock euler"))
    return rows, per_step, euler



#: Flux.1's (19 double-stream, 38 single-stream) and SD3 medium's (24 joint) blocks: the tiny width at a
#: real model's depth, for ``--real-depth`` (what a step dispatches grows with the blocks, not the width).
REAL_DEPTH = {"flux-dev": dict(double_blocks=19, single_blocks=38), "sd3": dict(double_blocks=24),
              "qwen-image": dict(double_blocks=60)}


def flow_models(host, family: str, real_depth: bool = False) -> tuple:
    """The tiny random flow model of ``family`` (MODEL, CLIP), at a real model's depth where asked."""
    model, clip, _ = host.pack.demo.tiny_flow_models.build_tiny_flow_models(
        family, seed=0, **(REAL_DEPTH[family] if real_depth else {}))
    return model, clip


def measure_flow(host, family: str, steps: int, real_depth: bool = False) -> list[dict]:
    """FlowEdit against the stock sampler on the tiny random flow model of ``family``, per step
    (the same difference of two runs as ``measure``). FlowEdit acts at every step (n_max = steps)
    and evaluates the source and the target (Flux: 2 rows; SD3, with each prompt's classifier-free
    guidance: 4) in one call; stock is SamplerCustomAdvanced with the host's CFGGuider on a batch of 2
    (Flux at cfg 1: 2 rows; SD3 at cfg 3.5: 4), the same rows a step."""
    model, clip = flow_models(host, family, real_depth)
    flux = family.startswith("flux")
    source, target, empty = (encode(host, clip, t) for t in (SOURCE, TARGET, ""))
    latent = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))

    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]

    def per_step(make, batch: int, label: str) -> dict:
        return custom_per_step(host, model, lambda m, n: (make(m, n), euler), latent.repeat(batch, 1, 1, 1), steps,
                               label)

    def stock(m, n):
        return call(host, "CFGGuider", model=m, positive=target, negative=empty, cfg=1.0 if flux else 3.5)[0]

    def flowedit(m, n):
        kw = dict(source_guidance=1.5, target_guidance=5.5) if flux else dict(
            source_guidance=3.5, target_guidance=13.5, negative=empty)
        return call(host, "InvertEditFlowEdit", model=m, source=source, target=target, n_max=2 * steps, n_min=0,
                    n_avg=1, **kw)[0]

    rows = [per_step(stock, 2, f"stock SamplerCustomAdvanced, batch 2, cfg {1.0 if flux else 3.5:g}"),
            per_step(flowedit, 1, "FlowEdit (acting at every step, n_avg 1)")]
    for row in rows:
        row["ratio"] = row["ops"] / rows[0]["ops"]
    return rows


def kv_edit_row(host, model, target, latent: torch.Tensor, steps: int, euler) -> dict:
    """KV-Edit's row of ``measure_flow_samplers``: every block's background keys and values from the inversion,
    every step (skip 0), a rectangle of about a third of the picture remade, with the stock euler sampler."""
    mask = torch.zeros(1, 128, 128)
    mask[:, 32:96, 40:88] = 1.0
    kv_kept = {n: call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=target,
                       solver="euler", steps=n, scheduler="simple", guidance=1.0, keep_keys_values=True)[0]
               for n in (steps, 2 * steps)}

    def kv_edited(m, n):
        m = call(host, "InvertEditKVEdit", model=m, inversion=kv_kept[n], mask=mask, skip_steps=0, attn_scale=1.0,
                 re_init=True, seed=0)[0]
        return call(host, "BasicGuider", model=m, conditioning=target)[0], euler

    row = custom_per_step(host, model, kv_edited, latent, steps, "KV-Edit (every step and block, attn_scale 1) + "
                                                                 "stock euler")
    return dict(row, per_nfe=row["ops"] / row["calls"])


def measure_flow_samplers(host, family: str, steps: int, real_depth: bool = False) -> list[dict]:
    """The Flow Sampler's solvers, RF-Inversion's patch and (Flux) Share Values and KV-Edit against the stock euler
    sampler, per step
    and per model evaluation (NFE), on a batch of 2 of the tiny random flow model of ``family``
    (cfg 1 with the target prompt alone, as the flow inversions sample)."""
    model, clip = flow_models(host, family, real_depth)
    target = encode(host, clip, TARGET)
    latent = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    inversion = call(host, "InvertEditRFInversionInvert", model=model, latent={"samples": latent},
                     positive=encode(host, clip, ""), steps=4, scheduler="simple", gamma=0.5, guidance=0.0, seed=0)[0]

    def per_step(base, sampler, label: str) -> dict:
        row = custom_per_step(host, base, lambda m, n: (call(host, "BasicGuider", model=m, conditioning=target)[0],
                                                        sampler), latent, steps, label)
        return dict(row, per_nfe=row["ops"] / row["calls"])

    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    rows = [per_step(model, euler, "stock euler")]
    for solver in ("euler", "rf-solver", "fireflow"):
        rows.append(per_step(model, call(host, "InvertEditFlowSampler", solver=solver)[0], f"Flow Sampler {solver}"))
    patched = call(host, "InvertEditRFInversion", model=model, inversion=inversion, eta=0.9, start=0.0, stop=1.0,
                   eta_decay=0.0)[0]
    rows.append(per_step(patched, euler, "RF-Inversion patch (eta at every step) + stock euler"))
    if family.startswith("flux"):   # RF-Solver-Edit: values shared in every step, every single block
        rf_solver = call(host, "InvertEditFlowSampler", solver="rf-solver")[0]
        kept = {n: call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=target,
                        solver="rf-solver", steps=n, scheduler="simple", guidance=1.0, share_steps=n,
                        share_from_block=0, keep_values_on="device")[0] for n in (steps, 2 * steps)}

        def shared(m, n):
            m = call(host, "InvertEditShareValues", model=m, inversion=kept[n])[0]
            return call(host, "BasicGuider", model=m, conditioning=target)[0], rf_solver

        row = custom_per_step(host, model, shared, latent, steps, "Share Values (every step and single block) + "
                                                                  "Flow Sampler rf-solver")
        rows.append(dict(row, per_nfe=row["ops"] / row["calls"]))
        rows.append(kv_edit_row(host, model, target, latent, steps, euler))
        # Stable Flow: the pair (batch 2) with every block vital, against stock euler on the same batch of 2
        source = call(host, "FluxGuidance", conditioning=target, guidance=1.0)[0]
        sf_kept = {n: call(host, "InvertEditStableFlowInvert", model=model, latent={"samples": latent[:1]},
                           positive=source, steps=n, scheduler="simple", guidance=1.0, nudge=1.15)[0]
                   for n in (steps, 2 * steps)}
        every = {kind: ", ".join(str(i) for i in range(len(host.pack.hostkit.dit_attention.dit_blocks(model, (kind,)))))
                 for kind in ("double_block", "single_block")}

        def stable_flowed(m, n):
            m, pair, _ = call(host, "InvertEditStableFlow", model=m, inversion=sf_kept[n], source=source, target=target,
                              double_blocks=every["double_block"], single_blocks=every["single_block"])
            return call(host, "BasicGuider", model=m, conditioning=pair)[0], euler

        row = custom_per_step(host, model, stable_flowed, latent, steps, "Stable Flow (every block vital, the pair) + "
                                                                         "stock euler")
        rows.append(dict(row, per_nfe=row["ops"] / row["calls"]))
    rows += joint_rows(host, model, clip, latent, steps, euler)
    for row in rows:
        row["ratio"] = row["per_nfe"] / rows[0]["per_nfe"]
    return rows


def joint_rows(host, model, clip, latent: torch.Tensor, steps: int, euler) -> list[dict]:
    """Joint Attention Inject's rows of ``measure_flow_samplers``: the pair on a flow inversion of
    ``latent``'s first row, every block edited at every step (cross_replace 1: the image's attention
    on the text from the source's; self_replace 0: on the image its own, so two extra rows per
    edited pair, the costlier case), then the node's defaults (cross_replace 0.8, self_replace 0.4:
    one extra row while self-attention is injected, two after, none in the last fifth of the
    steps: a run's average step), each without and with the local blend (reading every edited block,
    the node's default; at the defaults also the double-stream blocks only, where the model has single blocks)."""
    inverted = {n: call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent[:1]},
                        positive=encode(host, clip, SOURCE), solver="euler", steps=n, scheduler="simple",
                        guidance=1.0)[0] for n in (steps, 2 * steps)}

    def joint(cross: float, self_: float, blend: str | None):
        def make(m, n):
            m, pair, _ = call(host, "InvertEditJointAttentionInject", model=m, clip=clip, inversion=inverted[n],
                              source_prompt=SOURCE, target_prompt=TARGET, mode="replace", reweight="",
                              cross_replace=cross, self_replace=self_, blocks="all", guidance=3.5,
                              blend_source_words="circle" if blend else "", blend_target_words="circle" if blend else "",
                              blend_blocks=blend or "all", local_blend=bool(blend))
            return call(host, "BasicGuider", model=m, conditioning=pair)[0], euler
        return make

    rows = []
    singles = bool(host.pack.hostkit.dit_attention.dit_blocks(model, ("single_block",)))   # SD3: all joint blocks
    for (cross, self_), what in (((1.0, 0.0), "replace, every step and block"),
                                 ((0.8, 0.4), "the node's defaults: replace, cross 0.8, self 0.4, all blocks")):
        for blend in (None, "all") + (("double",) if self_ and singles else ()):
            reads = {None: "", "all": ", local blend", "double": ", local blend reading the double blocks"}[blend]
            row = custom_per_step(host, model, joint(cross, self_, blend), latent, steps,
                                  f"Joint Attention Inject ({what}{reads}, the pair) + stock euler")
            rows.append(dict(row, per_nfe=row["ops"] / row["calls"]))
    return rows


def measure_joint(host, family: str, steps: int, real_depth: bool = False) -> list[dict]:
    """The stock euler row and ``joint_rows`` alone (per evaluation, ``ratio`` to stock), on the tiny
    random flow model of ``family``, at a real model's depth where asked; on Qwen-Image KV-Edit's row too."""
    model, clip = flow_models(host, family, real_depth)
    latent = torch.randn(2, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    target = encode(host, clip, TARGET)
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    stock = custom_per_step(host, model, lambda m, n: (call(host, "BasicGuider", model=m, conditioning=target)[0], euler),
                            latent, steps, "stock euler")
    rows = [dict(stock, per_nfe=stock["ops"] / stock["calls"])] + joint_rows(host, model, clip, latent, steps, euler)
    if family == "qwen-image":   # KV-Edit on Qwen-Image (on Flux in measure_flow_samplers)
        rows.append(kv_edit_row(host, model, target, latent, steps, euler))
    for row in rows:
        row["ratio"] = row["per_nfe"] / rows[0]["per_nfe"]
    return rows


def nfe_table(rows: list[dict], name: str, steps: int) -> str:
    lines = [f"\n### Dispatched operations per model evaluation, model '{name}', batch 2, 16x16 latent, per step = "
             f"(run of {2 * steps} steps - run of {steps}) / {steps}\n",
             "| sampler | aten ops / step | evaluations / step | ops / evaluation | vs stock euler | device waits / step |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['ops']:,.0f} | {r['calls']:.1f} | {r['per_nfe']:,.0f} | {r['ratio']:.2f}x "
                     f"| {r['syncs']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_argument(ap)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--flow", action="store_true", help="FlowEdit on the tiny Flux and SD3 models instead")
    ap.add_argument("--real-depth", action="store_true",
                    help="with --flow: the tiny models at Flux.1's (19 + 38) and SD3 medium's (24) blocks")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-bench-"))
    if args.flow:
        for family in ("flux-dev", "sd3"):
            name = f"demo-{family}" + (" at real depth" if args.real_depth else "")
            print(table(measure_flow(host, family, args.steps, args.real_depth), name, args.steps))
            print(nfe_table(measure_flow_samplers(host, family, args.steps, args.real_depth), name, args.steps))
        return
    model, clip, _ = builtin_model(host, args.model)
    print(table(measure(host, model, clip, args.steps), args.model, args.steps))


if __name__ == "__main__":
    main()

"""One joint-attention call of Joint Attention Inject at real size, piece by piece and kernel by kernel
(issue 27's cost): what its attention call costs against the host's, on the pair (2 rows), per block call.

The H100 timings (docs/measurements.md, "The flow editors on a GPU") put Joint Attention Inject at
1.05-1.10x a stock evaluation of Flux.1 dev at 1024 px but 1.36-1.38x of SD3 medium at 1024 px, the same
for every variant, where the CPU's operation counts differ between them. This separates the call's
parts at each model's shapes, so that a device call says which part costs it: the host's attention
(SDPA in the host's kernel order, cuDNN first, ``comfy.ops.SDPA_BACKEND_PRIORITY``) against the same
call with its log-sum-exp (``attention_lse.attention_with_lse``), each kernel alone with and without it,
the call over the text keys, and the policy's whole call (``JointPromptToPrompt.attention``: replace with
cross-attention injected, the same with the local blend, and with self-attention injected too, its
extra row). The host's attention is its own ``optimized_attention`` and the call with the log-sum-exp the
DiT driver's (``hostkit/dit_attention._attention_lse``), as a sampling run calls them (the host booted
here with its defaults for the device). Inputs are laid out as the host hands them over: SD3's ``[batch, heads, tokens, dim]`` as
views of its ``[batch, tokens, heads * dim]`` projections, Flux's contiguous (after its rotary embedding).

Per case: wall milliseconds a call (``--repeats`` calls in a loop, the device synchronised at its ends,
the median of ``--rounds`` loops) and the CPU's milliseconds to issue a call (the same loop, not
synchronised: where it is near the wall time the call waits on dispatch, not arithmetic).

    python -m workshop.benchmarks.lse_kernels [--device cuda] [--shapes sd3-1024,flux-1024] [--json F]
    python -m workshop.benchmarks.lse_kernels --device cpu --tiny      # the code path, on a CPU, in seconds
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from workshop.headless.boot import boot

#: The pair's joint attention at each model's size (text tokens as the benchmarks' models give them: SD3's
#: 77 CLIP tokens, or with T5's 256 as a user's; Flux's T5 padded to 256), in the dtype the host picks on an H100.
SHAPES = {
    "sd3-1024": dict(heads=24, dim=64, text=77, grid=(64, 64), dtype=torch.float16, layout="sd3"),
    "sd3-1024-t5": dict(heads=24, dim=64, text=333, grid=(64, 64), dtype=torch.float16, layout="sd3"),
    "flux-1024": dict(heads=24, dim=128, text=256, grid=(64, 64), dtype=torch.bfloat16, layout="flux"),
    "flux-512": dict(heads=24, dim=128, text=256, grid=(32, 32), dtype=torch.bfloat16, layout="flux"),
}
TINY = {"tiny-sd3": dict(heads=2, dim=64, text=77, grid=(4, 4), dtype=torch.float32, layout="sd3"),
        "tiny-flux": dict(heads=2, dim=64, text=16, grid=(4, 4), dtype=torch.float32, layout="flux")}
KERNELS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
           "efficient": SDPBackend.EFFICIENT_ATTENTION}
STEPS = 10
SCHEDULE = [1.0 - i / STEPS for i in range(STEPS + 1)]


def inputs(shape: dict, device: torch.device, seed: int = 0) -> tuple:
    """q, k, v of the pair ``[2, heads, tokens, dim]`` in the host's layout for the model."""
    g = torch.Generator(device=device).manual_seed(seed)
    heads, dim, tokens = shape["heads"], shape["dim"], shape["text"] + shape["grid"][0] * shape["grid"][1]
    out = []
    for _ in range(3):
        if shape["layout"] == "sd3":   # views of [batch, tokens, heads * dim]
            t = torch.randn(2, tokens, heads * dim, generator=g, device=device).to(shape["dtype"])
            out.append(t.view(2, tokens, heads, dim).transpose(1, 2))
        else:
            out.append(torch.randn(2, heads, tokens, dim, generator=g, device=device).to(shape["dtype"]))
    return tuple(out)


def cases(host, shape: dict, device: torch.device) -> dict:
    """{label: fn} for one shape (every fn runs one call), with the booted ``host``'s attention."""
    import comfy.ldm.modules.attention as attention
    import comfy.ops

    pack = host.pack
    attention_with_lse = pack.attention.attention_lse.attention_with_lse
    heads_attention_with_lse = pack.attention.attention_lse.heads_attention_with_lse
    q, k, v = inputs(shape, device)
    text, grid, heads = shape["text"], shape["grid"], shape["heads"]
    priority = getattr(comfy.ops, "SDPA_BACKEND_PRIORITY", None) if device.type == "cuda" else None

    def in_order(fn, order=priority):
        def run():
            with sdpa_kernel(order, set_priority=True) if order is not None else nullcontext():
                return fn()
        return run

    def host_attention(q, k, v, mask=None):   # what the driver's ``where.attend`` runs with no other override
        return attention.optimized_attention(q, k, v, heads, mask=mask, skip_reshape=True)

    host_lse = pack.hostkit.dit_attention._attention_lse   # the driver's plain path (the kernel's layout)

    k_text, v_text = k[:, :, :text], v[:, :, :text]
    out = {"host attention (SDPA, the host's kernel order)": lambda: host_attention(q, k, v),
           "the same with its log-sum-exp (the driver's plain path)": lambda: host_lse(q, k, v),
           "the call over the text keys, SDPA": in_order(lambda: F.scaled_dot_product_attention(q, k_text, v_text)),
           "the call over the text keys with its log-sum-exp": in_order(lambda: heads_attention_with_lse(q, k_text,
                                                                                                         v_text))}
    if device.type == "cuda":
        for name, backend in KERNELS.items():
            out[f"{name} alone, SDPA"] = in_order(lambda: F.scaled_dot_product_attention(q, k, v), [backend])
            out[f"{name} alone, with its log-sum-exp"] = in_order(lambda: attention_with_lse(q, k, v), [backend])

    def policy_call(cross: float, self_: float, blend: bool, step: int):
        schedule = pack.attention.prompt_to_prompt.ReplaceSchedule(cross=cross, self_=self_, length=text)
        local = pack.attention.local_blend.LocalBlend((2,), (2,), blocks=frozenset({("double_block", 0)})) \
            if blend else None
        policy = pack.techniques.joint_prompt_to_prompt.policy.JointPromptToPrompt(
            pack.attention.controllers.AttentionReplace(schedule, blend=local))
        where = pack.attention.policy.JointWhere(block=("double_block", 0), chunks=(0,), rows=2, heads=heads,
                                                 text=text, grid=grid, attend=host_attention,
                                                 time=lambda: (SCHEDULE[step], SCHEDULE), plain_lse=host_lse)

        state = policy.make_state()   # the blend's sum over the run's calls

        def run():
            return policy.attention(q, k, v, where, state)
        return run

    out["Joint Attention Inject: replace, cross-attention injected"] = policy_call(1.0, 0.0, False, 1)
    out["the same with the local blend"] = policy_call(1.0, 0.0, True, 1)
    out["the same with self-attention injected too (its extra row)"] = policy_call(1.0, 1.0, False, 1)
    return out


def measure(fns: dict, device: torch.device, repeats: int, rounds: int) -> dict:
    """{label: {"wall_ms", "issue_ms"}}: the median over ``rounds`` of a loop of ``repeats`` calls, synchronised
    at its ends (wall) and not (the CPU's issue time), every case warmed up first, rounds interleaved."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    errors = {}
    for label, fn in fns.items():
        try:   # a kernel that cannot run these inputs (SDPA's "no available kernel") is reported, not fatal
            fn()
        except RuntimeError as e:
            errors[label] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    fns = {label: fn for label, fn in fns.items() if label not in errors}
    wall: dict = {label: [] for label in fns}
    issue: dict = {label: [] for label in fns}
    with torch.inference_mode():
        for _ in range(rounds):
            for label, fn in fns.items():
                sync()
                started = time.perf_counter()
                for _ in range(repeats):
                    fn()
                issued = time.perf_counter()
                sync()
                ended = time.perf_counter()
                wall[label].append((ended - started) / repeats * 1e3)
                issue[label].append((issued - started) / repeats * 1e3)
    return {**{label: {"wall_ms": statistics.median(wall[label]), "issue_ms": statistics.median(issue[label])}
               for label in fns}, **errors}


def table(result: dict) -> str:
    lines = []
    for name, rows in result["shapes"].items():
        base = rows["host attention (SDPA, the host's kernel order)"]["wall_ms"]
        lines += [f"### {name} ({result['device']})", "", "| call | wall ms | vs host attention | CPU issue ms |",
                  "|---|---|---|---|"]
        for label, row in rows.items():
            if "error" in row:
                lines.append(f"| {label} | {row['error']} | | |")
                continue
            lines.append(f"| {label} | {row['wall_ms']:.3f} | {row['wall_ms'] / base:.2f}x | {row['issue_ms']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--tiny", action="store_true", help="small shapes: the code path, on a CPU")
    ap.add_argument("--shapes", default="", help="comma-separated names of SHAPES (default: all)")
    ap.add_argument("--repeats", type=int, default=None, help="calls a loop (default 50; --tiny 5)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here (use --device cpu --tiny for the code path)")
    shapes = TINY if args.tiny else SHAPES
    if args.shapes:
        unknown = [s for s in args.shapes.split(",") if s not in shapes]
        if unknown:
            raise SystemExit(f"--shapes: unknown {unknown}; known: {', '.join(shapes)}")
        shapes = {s: shapes[s] for s in args.shapes.split(",")}
    repeats = args.repeats or (5 if args.tiny else 50)
    host = boot(base_dir=tempfile.mkdtemp(prefix="invertedit-lse-kernels-"), cpu=device.type == "cpu")
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "repeats": repeats, "rounds": args.rounds, "shapes": {}}
    for name, shape in shapes.items():
        result["shapes"][name] = measure(cases(host, shape, device), device, repeats, args.rounds)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
    print(table(result))
    return result


if __name__ == "__main__":
    main()

"""The optimisation loop every fine-tuning technique of the pack shares (Imagic, DreamBooth).

torch only. A technique gives its parameters and a loss of the step index; ``optimize`` runs
Adam (Imagic's reference code) or AdamW with gradient-norm clipping (diffusers' training
scripts) and reports each step's loss."""
from __future__ import annotations

from typing import Callable, Optional

import torch

LossFn = Callable[[int], torch.Tensor]                          # step index -> loss to minimise
StepHook = Callable[[int, int, float], None]                    # (step done, total, loss) -> None
Moments = list[tuple[torch.Tensor, torch.Tensor]]               # Adam's (exp_avg, exp_avg_sq) per param
KeepHook = Callable[[int, Moments], None]                       # (steps done, the moments) -> None


def optimize(params: list[torch.Tensor], loss_fn: LossFn, steps: int, lr: float,
             before_step: Optional[Callable[[int], None]] = None,
             after_step: Optional[StepHook] = None, *,
             weight_decay: Optional[float] = None, max_grad_norm: Optional[float] = None,
             base: Optional[Callable[[], list[torch.Tensor]]] = None,
             start: int = 0, moments: Optional[Moments] = None,
             keep: Optional[KeepHook] = None, keep_every: int = 0) -> list[float]:
    """``steps`` optimiser steps on ``params`` minimising ``loss_fn(i)``; returns the loss of each
    step (measured before its update).

    ``weight_decay`` None: Adam with torch's defaults (betas 0.9/0.999, eps 1e-8; Imagic's
    reference). A number: AdamW with that decoupled weight decay (diffusers' training scripts:
    1e-2). ``max_grad_norm``: the gradients' total norm is clipped to it before each update
    (``clip_grad_norm_``; diffusers' scripts: 1.0). The learning rate is constant (the scripts'
    default scheduler).

    ``before_step(i)`` runs before every step (a caller's interrupt check: at most one forward
    and backward run after an interrupt), ``after_step(i + 1, steps, loss)`` after it (a
    progress bar). Call with gradients enabled; ``params`` must require them. With ``steps`` 0
    or ``lr`` 0 (and no weight decay) the parameters are left bit for bit as they were.

    ``base``: the params are differences from frozen weights (a full fine-tune kept as a patch), and
    ``base()`` gives those weights, one per param: AdamW's decoupled decay then acts on the whole
    weight ``base + param``, as the scripts' AdamW acts on the weight it trains
    (``param -= lr * weight_decay * (base + param)`` before the Adam update, which is torch's order).

    Resuming (the scripts' ``--resume_from_checkpoint``): ``start`` steps were done by an earlier
    run, which left the params as they are and Adam's ``moments``; the run goes on from step
    ``start`` exactly as an unbroken run would (the caller's ``loss_fn`` draws what step ``i``
    draws). ``keep(done, moments)`` is called every ``keep_every`` steps, after the last step, and
    when a step raises (an interrupt), with the steps done and Adam's moments: what a resumed run
    needs besides the params. The returned losses are those of steps ``start`` to ``steps - 1``."""
    losses: list[float] = []
    if steps <= start:
        return losses
    # fused: torch's one-kernel implementation of the same update (CPU and CUDA, floating-point
    # parameters); the default for-loop takes about a fifth of a full fine-tune's step on a CPU (4 M
    # parameters: eight passes over each tensor), the fused kernel a third of that
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if weight_decay is None:
        opt = torch.optim.Adam(params, lr=lr, fused=fused or None)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0 if base is not None else weight_decay,
                                fused=fused or None)
    if start > 0 and moments is not None:
        for param, (exp_avg, exp_avg_sq) in zip(params, moments, strict=True):
            step = torch.tensor(float(start), dtype=torch.float32, device=param.device if fused else "cpu")
            opt.state[param] = {"step": step, "exp_avg": exp_avg.to(param).clone(),
                                "exp_avg_sq": exp_avg_sq.to(param).clone()}

    def state() -> Moments:
        found = [opt.state.get(p, {}) for p in params]
        return [(s["exp_avg"], s["exp_avg_sq"]) if s else (torch.zeros_like(p), torch.zeros_like(p))
                for s, p in zip(found, params)]

    done = start
    try:
        for i in range(start, steps):
            if before_step is not None:
                before_step(i)
            loss = loss_fn(i)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            if base is not None and weight_decay:
                with torch.no_grad():
                    for param, weight in zip(params, base()):
                        param.sub_(weight.to(param) + param, alpha=lr * weight_decay)
            opt.step()  # sampling-path-ok: Adam's step count is on the parameters' device (fused) or the CPU: no device wait
            done = i + 1
            losses.append(float(loss.detach()))  # sampling-path-ok: the reported loss, once per forward + backward
            if after_step is not None:
                after_step(done, steps, losses[-1])
            if keep is not None and keep_every > 0 and done % keep_every == 0 and done < steps:
                keep(done, state())
    except BaseException:
        if keep is not None and done > start:
            keep(done, state())
        raise
    if keep is not None:
        keep(done, state())
    opt.zero_grad(set_to_none=True)
    return losses

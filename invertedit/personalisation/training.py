"""The optimisation loop every fine-tuning technique of the pack shares (Imagic, DreamBooth).

torch only. A technique gives its parameters and a loss of the step index; ``optimize`` runs
Adam (Imagic's reference code) or AdamW with gradient-norm clipping (diffusers' training
scripts) and reports each step's loss."""
from __future__ import annotations

from typing import Callable, Optional

import torch

LossFn = Callable[[int], torch.Tensor]                          # step index -> loss to minimise
StepHook = Callable[[int, int, float], None]                    # (step done, total, loss) -> None


def optimize(params: list[torch.Tensor], loss_fn: LossFn, steps: int, lr: float,
             before_step: Optional[Callable[[int], None]] = None,
             after_step: Optional[StepHook] = None, *,
             weight_decay: Optional[float] = None, max_grad_norm: Optional[float] = None,
             base: Optional[Callable[[], list[torch.Tensor]]] = None) -> list[float]:
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
    (``param -= lr * weight_decay * (base + param)`` before the Adam update, which is torch's order)."""
    losses: list[float] = []
    if steps <= 0:
        return losses
    if weight_decay is None:
        opt = torch.optim.Adam(params, lr=lr)
    else:
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0 if base is not None else weight_decay)
    for i in range(steps):
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
        opt.step()  # sampling-path-ok: Adam's step count is a CPU tensor (no device wait)
        losses.append(float(loss.detach()))  # sampling-path-ok: the reported loss, once per forward + backward
        if after_step is not None:
            after_step(i + 1, steps, losses[-1])
    opt.zero_grad(set_to_none=True)
    return losses

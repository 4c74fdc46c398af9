"""Running an inverter (``inversion/contract.py``) inside the host and building the INVERSION
record from it: the one body every inverter node shares (DDIM, EDICT, edit-friendly DDPM)."""
from __future__ import annotations

import logging
from typing import Callable

import comfy.samplers
import torch

from ..inversion.contract import Inverted
from ..inversion.methods import Method
from ..inversion.record import Inversion
from .errors import (NodeInputError, check_at_least, check_choice, check_conditioning, check_finite, check_finite_tensor,
                     check_made_with)
from .family import ModelFamily, parameterisation_of
from .fingerprint import conditioning_fingerprint, model_stamp
from .sampling import check_latent_size, check_model_family, run_loop, schedule
from .schemas import INVERT_CFG_MAX


PNP_SCHEDULE_NOTE = (
    "The inversion starts from the image at sigma 0 (alpha_bar 1, diffusers' set_alpha_to_one=True). The schedule of "
    "the PnPInversion / PIE-Bench code (set_alpha_to_one=False, steps_offset=0: timesteps 980..0 at 50 steps, ending "
    "at sigma_min 0.029 with a last step that does not move) has no counterpart among the host's schedulers. Use "
    "'ddim_uniform': diffusers' DDIM timesteps with steps_offset=1 (981..1), from and to sigma 0, the setting the "
    "pack's parity tests run the PnPInversion code with.")


def check_invert_inputs(model, samples: torch.Tensor, steps: int, start_at_step: int, cfg: float, negative,
                        node: str, scheduler: str | None = None, positive=None) -> ModelFamily:
    """The checks every inversion node makes on its inputs, with messages naming the node; returns
    the model's family."""
    family = check_model_family(model, node)
    check_finite(node, cfg=cfg)
    if not 0.0 <= cfg <= INVERT_CFG_MAX:
        raise NodeInputError(node, f"input 'cfg' is {cfg:g}; give 0 to {INVERT_CFG_MAX:g} (1 for a DDIM-like inversion, "
                                   f"the papers' setting; EDICT: 3, edit-friendly DDPM: 3.5).")
    check_at_least(node, 1, steps=steps)
    check_at_least(node, 0, start_at_step=start_at_step)
    if scheduler is not None:
        check_choice(node, "scheduler", scheduler, comfy.samplers.KSampler.SCHEDULERS)
    if start_at_step >= steps:
        raise NodeInputError(node, f"start_at_step ({start_at_step}) must be smaller than steps ({steps}).")
    if abs(cfg - 1.0) > 1e-6 and negative is None:
        raise NodeInputError(node, f"cfg is {cfg:g}, which needs a 'negative' conditioning; connect one or set cfg to 1.")
    for name, conditioning in (("positive", positive), ("negative", negative)):
        if conditioning is not None:
            check_conditioning(node, name, conditioning, model)
    if samples.ndim != 4:
        raise NodeInputError(node, f"input 'latent' has shape {tuple(samples.shape)}; an image latent [batch, channels, height, width] is needed.")
    check_finite_tensor(node, "input 'latent'", samples,
                        "connect the image's latent from VAE Encode (a latent with NaN inverts to a black image).")
    check_latent_size(node, "latent", samples, model)
    return family


# A LATENT an inverter outputs carries the inversion's sampling sigmas and fingerprint under these
# keys, so a node given only the LATENT (the pair editors, Cross-Attention Guidance) can check the
# model it is given and the steps it is sampled with. The host's nodes pass LATENT dicts on and
# ignore keys they do not know (a stock KSampler cannot check: Apply Inversion does).
INVERTED_SIGMAS = "invertedit_sigmas"
INVERTED_WITH = "invertedit_fingerprint"


def inverted_latent(inversion: Inversion) -> dict:
    """The LATENT output of an inverter: the inverted latent, marked with its sigmas and fingerprint."""
    return {"samples": inversion.latent, INVERTED_SIGMAS: inversion.sampling_sigmas,
            INVERTED_WITH: inversion.fingerprint}


def check_latent_made_with(node: str, latent: dict, model) -> None:
    """A LATENT from an inverter must be used with the model it was inverted with (an unmarked
    LATENT, from VAE Encode or another node, has nothing to check)."""
    stamp = latent.get(INVERTED_WITH) if isinstance(latent, dict) else None
    if stamp is not None:
        check_made_with(node, stamp, model, "input 'model' is not the model input 'latent' was inverted with",
                        "Connect the model you inverted with (the same checkpoint), or invert again with this one.")


def inversion_fingerprint(model, positive) -> dict:
    return {**model_stamp(model), "positive": conditioning_fingerprint(positive)}


def invert(method: Method, inverter: Callable[..., Inverted], model, samples: torch.Tensor, positive, negative,
           steps: int, scheduler: str, start_at_step: int, cfg: float, settings: dict | None = None,
           node: str | None = None, **inverter_args) -> Inversion:
    """Invert a LATENT tensor with the host's model and ``inverter`` (called as
    ``inverter(denoise, x, sigmas, callback, **inverter_args)``); returns the INVERSION record.
    ``settings`` are the method's own, stored with the common ones; ``node`` names the node in
    messages (default: the method's maker; Pix2Pix-Zero Invert makes a DDIM record). An inversion the
    host's samplers retrace (``method.own_sampler`` None: DDIM-type loops of the host's DDIM/Euler
    step) is also given the model's ``parameterisation`` (``inversion/parameterisation.py``)."""
    node = node or method.made_by
    family = check_invert_inputs(model, samples, steps, start_at_step, cfg, negative, node, scheduler, positive)
    if method.own_sampler is None:
        inverter_args["parameterisation"] = parameterisation_of(family)
    if cfg > 1.0 and method.own_sampler is None:
        # an inversion the host's samplers retrace (DDIM, fixed-point) drifts under guidance
        logging.warning("%s: inverting at cfg %g; an inversion the host's samplers retrace reconstructs well only at cfg "
                        "1 (toy world, 50 DDIM steps: 45 dB at cfg 1, 30 at 3.5, 17 at 7.5; Fixed-Point Invert at 10 "
                        "steps: 50, 39, 20). Invert at cfg 1, and sample under guidance through Null-Text Optimize, "
                        "Negative-Prompt Inversion or Direct Inversion.", node, cfg)
    sigmas = schedule(model, scheduler, steps)
    run = sigmas[start_at_step:]
    if float(run[-1]) != 0.0:
        raise NodeInputError(node, f"scheduler '{scheduler}' does not end at sigma 0, where the image's latent sits; "
                                   f"{PNP_SCHEDULE_NOTE}")
    found: dict = {}

    def loop(denoise, x, run_sigmas, step_callback):
        found["inverted"] = inverter(denoise, x, run_sigmas, step_callback, **inverter_args)
        return found["inverted"].latent

    out = run_loop(model, positive, negative, cfg, samples, run, loop)
    inverted = found["inverted"]
    if not (bool(torch.isfinite(out).all()) and bool(torch.isfinite(inverted.trajectory).all())):
        raise NodeInputError(node, f"the inversion ran into NaN or infinite values (cfg {cfg:g}, {steps} steps); the "
                                   f"model overflows on this input. Invert at cfg 1, or load the model in float32 or "
                                   f"bfloat16 rather than float16.")
    return Inversion(
        method=method.name, sigmas=sigmas, start_step=start_at_step,
        trajectory=inverted.trajectory.to(out.device, torch.float32), latent=out,
        settings={"steps": steps, "scheduler": scheduler, "cfg": cfg, "start_at_step": start_at_step, **(settings or {})},
        fingerprint=inversion_fingerprint(model, positive),
        clues={k: v.to(out.device, torch.float32) for k, v in inverted.clues.items()},
    )

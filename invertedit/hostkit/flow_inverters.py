"""Flow inversions inside the host (solvers in ``inversion/flow.py``): the one body every flow
inverter shares (Flow Invert's solvers, RF-Inversion's controlled ODE, Stable Flow's nudged Euler),
building an INVERSION record with what the registered keepers keep for their editors
(``keepers.py``), and the NOISE object SamplerCustomAdvanced starts from to sample one back.

Why a NOISE and not a LATENT: the host starts a flow model's run at ``sigma_0 * noise + (1 -
sigma_0) * latent`` (``CONST.noise_scaling``); at ``sigma_0 = 1`` the latent drops out, so an
inverted latent given as the LATENT (KSampler with add_noise off) would start the run at zero.
SamplerCustomAdvanced takes the inversion as its NOISE instead, and the image's latent as its LATENT.

Why the model's raw output: the inversions evaluate the velocity at ``t = 0`` (the image itself),
where the host's denoised prediction ``x - t v`` no longer says what ``v`` is. The inverter runs on a
clone whose ``model_sampling`` hands back the model's output (the velocity) instead.
"""
from __future__ import annotations

import copy

import torch

from ..inversion.methods import Method
from ..inversion.record import Inversion
from .dit_attention import reference_tokens
from .errors import NodeInputError, check_conditioning, check_finite_tensor
from .family import ModelFamily
from .inverters import inversion_fingerprint
from .keepers import KeepRequest, keeper_values, keepings
from .sampling import (check_flow_family, check_image_latent_shape, check_latent_channels, check_plain_prompt,
                       check_references, image_latent, repeat_rows, run_loop, schedule, with_guidance)


def _raw_output(sigma, model_output, model_input):
    return model_output


def velocity_model(model):
    """A clone of ``model`` whose host calls return the model's own output (a flow model's velocity)
    in place of the denoised prediction."""
    clone = model.clone()
    sampling = copy.copy(model.get_model_object("model_sampling"))
    sampling.calculate_denoised = _raw_output
    clone.add_object_patch("model_sampling", sampling)
    return clone


#: At fewer steps than these an inversion wrecks the picture (the toy flow model, world 2's first cases; the
#: reconstruction's PSNR to the image, or an edit's background PSNR to the target: docs/measurements.md, "How few
#: steps"): Euler 4.3 dB at 1 step and 12.7 at 2 (21.6 at 3); RF-Solver 5.7 at 1 (23.0 at 2); Stable Flow's nudged
#: Euler 7.5 at 1 (22.8 at 2); RF-Inversion's edit 2.4-12.8 at 1-3 steps (19.9 at 4, 18.6 at its 28).
FEWEST_STEPS = {"euler": 3, "rf-solver": 2, "fireflow": 2, "uni-inv": 2, "rf-inversion": 4, "stable-flow": 2}


def check_flow_inputs(node: str, model, samples: torch.Tensor, positive, steps: int, fewest: int = 2,
                      references: bool = False) -> ModelFamily:
    """``references``: the prompt may carry an instruction editor's reference images (Kontext's, Qwen-Image-Edit's),
    which the model then reads at every step of the inversion as it does while sampling."""
    family = check_flow_family(model, node)
    check_conditioning(node, "positive", positive, model)
    if references:
        check_references(node, "positive", positive, model)
    else:
        check_plain_prompt(node, "positive", positive)
    if steps < fewest:
        raise NodeInputError(node, f"input 'steps' is {steps}; give at least {fewest}: at fewer steps the inversion "
                                   f"cannot retrace the image and the picture comes back wrecked (measured on the toy "
                                   f"flow model: docs/measurements.md, \"How few steps\").")
    check_image_latent_shape(node, "latent", samples, model)
    check_finite_tensor(node, "input 'latent'", samples, "connect the image's latent from VAE Encode.")
    if torch.count_nonzero(samples) == 0:
        raise NodeInputError(node, "input 'latent' is empty (all zeros); connect VAE Encode of the image to invert.")
    check_latent_channels(node, "latent", samples, model)
    return family


def flow_invert(node: str, method: Method, model, samples: torch.Tensor, positive, steps: int, scheduler: str,
                guidance: float, loop, settings: dict, clues: dict | None = None, keep: dict | None = None,
                fewest: int = 2, references: bool = False, start_step: int = 0) -> Inversion:
    """Run ``loop(velocity, x0, sigmas, callback) -> states`` (image first, along ``sigmas`` run
    backwards) on the host's model and build the INVERSION record (trajectory in sampling order),
    with what the keepers that ``keep`` (the keeper inputs' values) turns on keep among its clues. ``fewest``: the
    fewest steps the method retraces an image at (``FEWEST_STEPS``); ``references``: the prompt may carry an
    instruction editor's reference images (the tokens they add are the record's ``reference_tokens`` setting);
    ``start_step``: invert only up to ``sigmas[start_step]`` of the ``steps``-step schedule (an early stop, UniEdit-Flow's
    alpha): the record starts there, its SIGMAS from there."""
    samples = image_latent(samples, model)
    family = check_flow_inputs(node, model, samples, positive, steps, fewest, references)
    settings = {**settings, "reference_tokens": reference_tokens(check_references(node, "positive", positive, model),
                                                                 family.patch_size)} if references else settings
    if family.distilled_guidance:
        positive = with_guidance(positive, guidance)
    sigmas = schedule(model, scheduler, steps)
    found: dict = {}
    velocity = velocity_model(model)
    kept = keepings(KeepRequest(node, model, samples, steps, method, settings, keeper_values(keep or {})))
    for keeping in kept:
        keeping.install(velocity)
        settings = {**settings, **keeping.settings()}

    def run(velocity, x, run_sigmas, callback):
        found["states"] = loop(velocity, x, run_sigmas, callback)
        return found["states"][-1]

    out = run_loop(velocity, positive, None, 1.0, samples, sigmas[start_step:], run, from_latent=True)
    trajectory = torch.stack(found["states"][::-1]).to(out.device, torch.float32)
    if not (bool(torch.isfinite(trajectory).all())):   # sampling-path-ok: once per inversion, after its loop
        raise NodeInputError(node, f"the inversion ran into NaN or infinite values ({steps} steps); load the model in "
                                   f"bfloat16 or float32 rather than float16.")
    kept_clues = {name: value for keeping in kept for name, value in keeping.clues().items()}
    return Inversion(method=method.name, sigmas=sigmas, start_step=start_step, trajectory=trajectory, latent=out,
                     settings={"steps": steps, "scheduler": scheduler, "cfg": 1.0, "start_at_step": start_step,
                               "guidance": guidance, **settings},
                     fingerprint=inversion_fingerprint(model, positive),
                     clues={**{k: v.to(out.device, torch.float32) for k, v in (clues or {}).items()}, **kept_clues})


class InvertedNoise:
    """A NOISE for SamplerCustomAdvanced that starts the run at the inverted latent: at the first
    sigma the host's run starts at ``sigma_0 * noise + (1 - sigma_0) * latent``, and with the
    image's latent as the sampler's LATENT this noise makes that the inversion's state."""

    def __init__(self, inversion: Inversion, node: str, start: int = 0, state: int | None = None, rows: int = 1):
        """The run starts at sigma ``start`` of the inversion's schedule, at its latent ``state``
        (``start``'s own by default), in each of ``rows`` copies (2: a source/target pair)."""
        self.inversion, self.node, self.seed = inversion, node, 0
        self.start, self.state, self.rows = start, start if state is None else state, rows

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        inv = self.inversion
        samples = input_latent["samples"]
        want = (inv.latent_shape[0] * self.rows, *inv.latent_shape[1:])
        if tuple(samples.shape) != want:
            how = ("the image's latent (VAE Encode of the inverted image)" if self.rows == 1 else
                   f"the image's latent repeated {self.rows} times (Repeat Latent Batch, amount {self.rows})")
            raise NodeInputError(self.node, f"the sampler's latent_image is {tuple(samples.shape)}, but the inversion "
                                            f"was made from a latent {inv.latent_shape}; connect {how} as "
                                            f"latent_image.")
        sigma0 = float(inv.sampling_sigmas[self.start])
        start = inv.trajectory[self.state]
        if sigma0 < 1.0:   # x = sigma0 * noise + (1 - sigma0) * latent_in, latent_in the image's latent (model space)
            start = (start - (1.0 - sigma0) * inv.trajectory[-1]) / sigma0
        noise = repeat_rows(start, self.rows)
        _ISSUED.append((noise, inv.sampling_sigmas[self.start:].clone(), self.node))
        del _ISSUED[:-_ISSUED_KEPT]
        return noise


#: The last NOISE tensors the inversions issued, with the sigmas they were inverted on and the inverter's name (not
#: the inversion: its clues may hold a KV-Edit cache of gigabytes): a sampler handed one of them can check the run's
#: sigmas (``check_run_schedule``).
_ISSUED: list[tuple[torch.Tensor, torch.Tensor, str]] = []
_ISSUED_KEPT = 8


def check_run_schedule(node: str, noise: torch.Tensor | None, sigmas: torch.Tensor) -> None:
    """Refuse a run that starts from an inversion's NOISE (``noise`` equal to one an ``InvertedNoise`` issued) on
    sigmas other than the inversion's from its start: the reconstruction would be distorted (another schedule or
    number of steps integrates another path). A run from any other noise is not checked."""
    if noise is None:
        return
    for issued, want, inverter in reversed(_ISSUED):
        if issued.shape == noise.shape and torch.equal(issued.to(noise), noise):  # sampling-path-ok: once, before a run's first step
            got = sigmas.detach().float()
            if got.shape != want.shape or not torch.allclose(got, want.to(got), rtol=1e-4, atol=1e-6):  # sampling-path-ok: once, before a run's first step
                raise NodeInputError(node, f"the run's sigmas ({len(got) - 1} steps, from {float(got[0]):.4g}) are not "
                                           f"those {inverter} inverted on ({len(want) - 1} steps, from "
                                           f"{float(want[0]):.4g}); connect {inverter}'s SIGMAS output to the "
                                           f"sampler's sigmas (the same steps and scheduler).")
            return


def random_noise(seed: int):
    """The host's seeded NOISE (Random Noise's): a run that starts at the image noised afresh."""
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise
    return Noise_RandomNoise(seed)

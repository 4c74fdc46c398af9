"""Flow inversions inside the host (math in ``inversion/flow.py``): Euler, RF-Solver, FireFlow and
RF-Inversion's controlled forward ODE, each building an INVERSION record, and what samples them
back: the NOISE object SamplerCustomAdvanced starts from, the flow solvers as a SAMPLER, and
RF-Inversion's controlled reverse as a post-CFG function on a cloned model.

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
from dataclasses import dataclass

import comfy.samplers
import torch

from ..attention.value_sharing import KeepValues, ShareValues, key_name, name_key
from ..inversion import flow as F
from ..inversion.methods import FLOW_EULER, Method
from ..inversion.record import Inversion
from .dit_attention import dit_blocks, install_dit_policy, keeper
from .errors import NodeInputError, check_at_least, check_conditioning, check_finite_tensor
from .family import ModelFamily, model_family
from .inverters import inversion_fingerprint
from .kv_edit import KeepKV, keep_keys_values, kv_clues
from .run_state import run_state
from .sampling import check_flow_family, check_plain_prompt, run_loop, schedule, with_guidance
from .steps import sigma_list, step_at

FLOW_Y1 = "rf.y1"   # RF-Inversion's target noise (a clue of its record)


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


def check_flow_inputs(node: str, model, samples: torch.Tensor, positive, steps: int) -> ModelFamily:
    family = check_flow_family(model, node)
    check_conditioning(node, "positive", positive, model)
    check_plain_prompt(node, "positive", positive)
    check_at_least(node, 1, steps=steps)
    if samples.ndim != 4:
        raise NodeInputError(node, f"input 'latent' has shape {tuple(samples.shape)}; an image latent [batch, channels, "
                                   f"height, width] is needed.")
    check_finite_tensor(node, "input 'latent'", samples, "connect the image's latent from VAE Encode.")
    if torch.count_nonzero(samples) == 0:
        raise NodeInputError(node, "input 'latent' is empty (all zeros); connect VAE Encode of the image to invert.")
    return family


@dataclass(frozen=True)
class Sharing:
    """RF-Solver-Edit's feature sharing while inverting (``attention/value_sharing.py``): the values
    of the single blocks from ``first_block`` on, for the first ``steps`` sampling steps, kept on
    ``keep_on``: "device" (the model's: no copy, no wait) or "cpu" (the authors' offload to the CPU: an
    offload for memory, paid with a copy and a device wait per block call, inverting and editing)."""
    steps: int = 0
    first_block: int = 20
    keep_on: str = "device"


SHARE_PLACES = ("device", "cpu")


def _sharing_blocks(node: str, model, sharing: Sharing, steps: int) -> list[tuple[str, int]]:
    family = model_family(model)
    singles = dit_blocks(model, ("single_block",))
    if not singles:
        raise NodeInputError(node, f"input 'share_steps' is {sharing.steps}, but RF-Solver-Edit shares the values of "
                                   f"Flux's single-stream blocks and this {family.config_name} model has none; set "
                                   f"share_steps to 0 (or load a Flux.1 model).")
    if sharing.steps > steps:
        raise NodeInputError(node, f"input 'share_steps' is {sharing.steps}, more than the {steps} steps; give 0 to "
                                   f"{steps} (authors: 20 of 25).")
    if not 0 <= sharing.first_block < len(singles):
        raise NodeInputError(node, f"input 'share_from_block' is {sharing.first_block}, but the model has "
                                   f"{len(singles)} single blocks (0 to {len(singles) - 1}); the authors share from "
                                   f"20 of Flux's 38.")
    return singles[sharing.first_block:]


def flow_invert(node: str, method: Method, model, samples: torch.Tensor, positive, steps: int, scheduler: str,
                guidance: float, loop, settings: dict, clues: dict | None = None,
                sharing: Sharing = Sharing(), kv: KeepKV | None = None) -> Inversion:
    """Run ``loop(velocity, x0, sigmas, callback) -> states`` (image first, along ``sigmas`` run
    backwards) on the host's model and build the INVERSION record (trajectory in sampling order),
    keeping the attention values ``sharing`` asks for, and KV-Edit's keys and values (``kv``),
    among its clues."""
    family = check_flow_inputs(node, model, samples, positive, steps)
    if family.distilled_guidance:
        positive = with_guidance(positive, guidance)
    sigmas = schedule(model, scheduler, steps)
    found: dict = {}
    velocity, kept = velocity_model(model), {}
    if kv is not None and sharing.steps:
        raise NodeInputError(node, "inputs 'share_steps' and 'keep_keys_values' are both on; an inversion keeps "
                                   "RF-Solver-Edit's values or KV-Edit's keys and values: turn one off.")
    if kv is not None and method.name != FLOW_EULER.name:
        raise NodeInputError(node, f"input 'keep_keys_values' is on with solver {settings.get('solver')}; KV-Edit "
                                   f"inverts with euler (the authors'): set solver to euler.")
    if sharing.steps:
        blocks = _sharing_blocks(node, model, sharing, steps)
        install_dit_policy(velocity, KeepValues(sharing.steps, kept, keeper(sharing.keep_on)), blocks, node)
        settings = {**settings, "share_steps": sharing.steps, "share_from_block": sharing.first_block}
    kv_sink: dict = {}
    if kv is not None:
        kv_sink = keep_keys_values(node, velocity, samples, steps, kv)
        settings = {**settings, "keep_keys_values": True, "kv_mask": kv.mask is not None}

    def run(velocity, x, run_sigmas, callback):
        found["states"] = loop(velocity, x, run_sigmas, callback)
        return found["states"][-1]

    out = run_loop(velocity, positive, None, 1.0, samples, sigmas, run, from_latent=True)
    trajectory = torch.stack(found["states"][::-1]).to(out.device, torch.float32)
    if not (bool(torch.isfinite(trajectory).all())):   # sampling-path-ok: once per inversion, after its loop
        raise NodeInputError(node, f"the inversion ran into NaN or infinite values ({steps} steps); load the model in "
                                   f"bfloat16 or float32 rather than float16.")
    return Inversion(method=method.name, sigmas=sigmas, start_step=0, trajectory=trajectory, latent=out,
                     settings={"steps": steps, "scheduler": scheduler, "cfg": 1.0, "start_at_step": 0,
                               "guidance": guidance, **settings},
                     fingerprint=inversion_fingerprint(model, positive),
                     clues={**{k: v.to(out.device, torch.float32) for k, v in (clues or {}).items()},
                            **{key_name(key): v for key, v in kept.items()}, **kv_clues(kv_sink)})


def solver_loop(solver: str):
    """The inversion loop of a flow solver: ``inversion/flow.py``'s ``solve`` up the schedule."""
    def loop(velocity, x, sigmas, callback):
        return F.solve(velocity, x, sigmas.flip(0), solver, callback)
    return loop


# ----------------------------------------------------------------------------- sampling back

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
        return start.repeat(self.rows, 1, 1, 1)


def random_noise(seed: int):
    """The host's seeded NOISE (Random Noise's): a run that starts at the image noised afresh."""
    from comfy_extras.nodes_custom_sampler import Noise_RandomNoise
    return Noise_RandomNoise(seed)


def flow_sampler_function(solver: str):
    """A k-diffusion sampler function (the host's SAMPLER contract) of ``solver``: the model gives
    denoised predictions ``D``; a flow model's velocity is ``(x - D) / t`` (t > 0 on the way down)."""
    def sample(model, x, sigmas, extra_args=None, callback=None, disable=None):
        extra_args = extra_args or {}
        s_in = x.new_ones([x.shape[0]])

        last: dict = {}

        def velocity(z, t):
            last["denoised"] = model(z, t * s_in, **extra_args)
            return (z - last["denoised"]) / t.reshape(-1, *([1] * (z.ndim - 1)))

        def step(i, total, z):
            if callback is not None:   # the step's last prediction: the host's preview and progress
                callback({"x": z, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": last["denoised"]})

        return F.solve(lambda z, t: velocity(z, t[:1]), x, sigmas, solver, step)[-1]
    sample.__name__ = f"sample_flow_{solver.replace('-', '_')}"
    sample.euler_step = solver == "euler"   # each step the DDIM/Euler step (inversion_patches.steps_as_euler)
    return sample


def flow_sampler(solver: str) -> comfy.samplers.KSAMPLER:
    return comfy.samplers.KSAMPLER(flow_sampler_function(solver))


class RFInversionControl:
    """sampler_post_cfg_function: RF-Inversion's controlled reverse ODE (``inversion/flow.py``'s
    ``rf_controlled``): the denoised prediction pulled towards the source ``y0`` by the step's eta."""

    def __init__(self, y0: torch.Tensor, eta: float, start: float, stop: float, decay: float, node: str):
        self.y0, self.eta, self.start, self.stop, self.decay, self.node = y0, eta, start, stop, decay, node

    def __call__(self, args: dict) -> torch.Tensor:
        denoised = args["denoised"]
        options = args["model_options"]["transformer_options"]
        step, steps = step_at(options["sample_sigmas"], args["sigma"])
        eta = F.eta_at(step, steps, self.eta, self.start, self.stop, self.decay)
        if eta == 0:
            return denoised
        y0 = run_state(options, self, lambda: {}, self.node).setdefault("y0", self.y0.to(denoised))
        if y0.shape != denoised.shape:
            raise NodeInputError(self.node, f"the latent being sampled is {tuple(denoised.shape)}, the inverted image's "
                                            f"{tuple(y0.shape)}; sample the inversion's NOISE with the image's latent.")
        return F.rf_controlled(denoised, y0, eta)



def share_values(node: str, model, inversion: Inversion):
    """A clone of ``model`` whose single blocks attend with the values ``inversion`` kept (Flow
    Invert's ``share_steps``), in the steps and blocks it kept them for."""
    values = {}
    for name, tensor in inversion.clues.items():
        key = name_key(name)
        if key is not None:
            values[key] = tensor
    if not values:
        raise NodeInputError(node, f"input 'inversion' kept no attention values ({inversion.describe()}); invert with "
                                   f"Flow Invert's share_steps above 0 (authors: 20 of 25 steps).")
    check_flow_family(model, node)
    singles = dict.fromkeys(b for b in dit_blocks(model, ("single_block",)))
    wanted = sorted({("single_block", key[2]) for key in values})
    if any(block not in singles for block in wanted):
        raise NodeInputError(node, f"the inversion kept values of single blocks {wanted[0][1]} to {wanted[-1][1]}, but "
                                   f"the model has {len(singles)} single blocks; use the model it was inverted with.")
    patched = model.clone()
    schedule = sigma_list(inversion.sampling_sigmas)
    install_dit_policy(patched, ShareValues(values, schedule), wanted, node)
    return patched

"""DragonDiffusion / DiffEditor inside the host (math in ``energy.py`` and ``schedule.py``): a GUIDER
for the stock SamplerCustomAdvanced that retraces a DDIM inversion (its sigmas, DisableNoise, the
ddim or euler sampler) from the start latent the node made (the object's inverted latent pasted
where it goes), and at every step, as the authors' ``Sampler.edit`` does:

1. the memory bank (from the code's step 5): the model evaluates the prompt at the inversion's
   latent of this step as the inversion evaluated it (the latent one step cleaner, seen at this
   step's sigma), and every decoder self-attention layer keeps its keys and values; in the edit's
   CFG call those layers then take them (move: in place of the edit's own; drag: after them). The
   code stores them during the inversion; here they are computed again from the inversion's
   latents, one row a step, so an INVERSION carries no attention tensors (the same values: the
   inversion made them from these latents);
2. the edit's prediction under classifier-free guidance (the host's pre- and post-CFG functions act);
3. on the guided steps, the energy guidance: one batched call (the edited latent, with gradients,
   and the inversion's latent at this step) of the prompt alone runs the UNet up to the decoder
   features the energies read (and stops there, as the authors' feature estimator does), and the
   two energies' gradients (two backward passes) with respect to the edited latent make the
   guidance added to the predicted noise;
4. the step (``schedule.guided_step``), with DiffEditor's regional SDE noise and time travel where
   the schedule says, returned as the prediction for which the host's DDIM/Euler step lands there.

The decoder features: the UNet's first output at half the latent's size and its first at the
latent's size (the outputs of SD1.5's second and third up blocks, the code's ``up_ft_index``
[1, 2]; the same rule picks SDXL's first and second), read entering the next output block.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ...hostkit.attention_maps import host_attention
from ...hostkit.branch_inputs import BranchInputs, with_branch_inputs
from ...hostkit.errors import NodeInputError
from ...hostkit.family import model_family, parameterisation_of
from ...hostkit.gradients import with_weight_copies
from ...hostkit.guidance_driver import BatchedGuider, cfg_combine, predict_conds
from ...hostkit.inversion_patches import is_host_euler, sampler_name
from ...hostkit.layout import transformer_blocks
from ...hostkit.patches import on_output_blocks, replace_attention
from ...hostkit.run_state import keep_run_state, run_state
from ...hostkit.steps import step_at
from ...inversion.record import Inversion
from .energy import ENERGY_UNIT, guidance, on_device
from .schedule import DragonSchedule, guided_step, host_denoised, travel_back


class _FeaturesTaken(Exception):
    """Raised by the feature patch once it holds the features: the rest of the UNet is not needed."""


@dataclass
class DragonState:
    """One sampling run's state: what the model calls are for (``mode``), the memory bank of the
    step (decoder self-attention keys and values by layer), the features of a guidance call, the
    regional SDE's noise generator."""
    mode: str = "plain"      # plain | record | bank | features
    bank: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    generator: torch.Generator | None = None
    masks: object = None


@dataclass(frozen=True)
class DragonEdit:
    """What one edit asks of the guider: ``energies(cur, ref, masks) -> (edit, content)`` on the decoder
    features and the edit's ``masks`` (``energy.MoveMasks``, ``energy.DragMasks``), the latent-size ``region`` where the edit energy guides (the content energy guides the
    rest), the ``noise_region`` of DiffEditor's regional SDE, ``factor`` (the code's factor on the
    gradients), ``concat`` (drag: the bank's keys and values after the edit's own; move: in place)."""
    energies: Callable
    masks: object
    region: torch.Tensor
    noise_region: torch.Tensor
    factor: float
    concat: bool


class Patches:
    """The guider's patches on the model: the bank on the decoder's self-attention, the feature
    reader entering the output blocks. Their run state is the guider's (``run_state`` by this owner)."""

    def __init__(self, node: str):
        self.node = node

    def state(self, options: dict) -> DragonState:
        return run_state(options, self, DragonState, self.node)

    def attention(self, q, k, v, extra_options):
        state = self.state(extra_options)
        if state.mode == "record":
            state.bank[(extra_options["block"][1], extra_options.get("block_index", 0))] = (k[:1], v[:1])
        elif state.mode == "bank":
            k_src, v_src = state.bank[(extra_options["block"][1], extra_options.get("block_index", 0))]
            k_src, v_src = k_src.to(k).expand(k.shape[0], -1, -1), v_src.to(v).expand(v.shape[0], -1, -1)
            if self.concat:
                k, v = torch.cat([k, k_src], dim=1), torch.cat([v, v_src], dim=1)
            else:
                k, v = k_src, v_src
        return host_attention(q, k, v, extra_options)

    def features(self, h, hsp, transformer_options):
        state = self.state(transformer_options)
        if state.mode == "features":
            size = transformer_options["original_shape"][-2]
            for name, want in (("half", size // 2), ("full", size)):
                if name not in state.features and h.shape[-2] == want:
                    state.features[name] = h
            if "full" in state.features:
                raise _FeaturesTaken()
        return h, hsp

    concat = False


def patched_model(model, node: str, concat: bool):
    """A clone of ``model`` with the guider's patches (``Patches``) and a fresh state every run;
    refuses a model whose decoder self-attention another node already replaces."""
    blocks = [b for b in transformer_blocks(model) if b[0] == "output"]
    existing = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn1", {})
    taken = [key for key in existing if key[:2] in blocks]
    if taken:
        raise NodeInputError(node, f"the input MODEL already has self-attention replace patches (attn1 of block "
                                   f"{taken[0]}), from another node; the memory bank needs the decoder's self-attention. "
                                   f"Connect the model without them.")
    if model.model_options.get("transformer_options", {}).get("patches", {}).get("output_block_patch"):
        raise NodeInputError(node, "the input MODEL already has output-block patches (FreeU, Plug-and-Play, ...); the "
                                   "energies read the decoder's features unpatched. Connect the model without them.")
    m = with_weight_copies(model)
    m = m.clone() if m is model else m
    patches = Patches(node)
    patches.concat = concat
    for block, number in blocks:
        replace_attention(m, patches.attention, "attn1", block, number)
    on_output_blocks(m, patches.features)
    keep_run_state(m)
    return m, patches


class DragonGuider(BatchedGuider):
    """DragonDiffusion / DiffEditor on an inverted image; conds ``positive`` (the inversion's prompt)
    and ``negative``."""

    def __init__(self, model, patches: Patches, edit: DragonEdit, inversion: Inversion, energy_scale: float,
                 sde_strength: float, seed: int, variant: str, node: str):
        super().__init__(model)
        self.NAME = node
        self.patches, self.edit, self.inversion = patches, edit, inversion
        self.energy_scale, self.sde_strength, self.seed, self.variant = energy_scale, sde_strength, seed, variant
        self.parameterisation = parameterisation_of(model_family(model))

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        inv = self.inversion
        want = inv.sampling_sigmas
        if len(sigmas) != len(want) or not torch.allclose(sigmas.float(), want.to(sigmas).float(), rtol=1e-4,  # sampling-path-ok: once per run, before its first step
                                                          atol=1e-6):
            raise NodeInputError(self.NAME, f"the sampler runs {len(sigmas) - 1} steps on sigmas from "
                                            f"{float(sigmas[0]):.4g}, but the inversion retraced here was made over "
                                            f"{len(want) - 1} steps from {float(want[0]):.4g}; connect DDIM Invert's "
                                            f"SIGMAS (its steps, scheduler and start step).")
        if not is_host_euler(sampler):
            raise NodeInputError(self.NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' steps "
                                            f"differently from DDIM; the guidance takes the code's DDIM step, which only "
                                            f"the ddim or euler sampler (KSamplerSelect) lets through.")
        if torch.count_nonzero(noise) > 0:
            raise NodeInputError(self.NAME, "the sampler adds noise to the start latent; connect DisableNoise (the edit "
                                            "starts from the inverted latent).")
        if latent_image.shape[0] != 1 or tuple(latent_image.shape[1:]) != tuple(inv.latent.shape[1:]):
            raise NodeInputError(self.NAME, f"the latent being sampled is {tuple(latent_image.shape)}; sample this "
                                            f"node's LATENT (one image, {tuple(inv.latent.shape[1:])}).")
        self.schedule = DragonSchedule(inv.steps, self.variant, self.energy_scale > 0)
        return super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)

    # -- one step ---------------------------------------------------------------------------
    def predict_noise(self, x, timestep, model_options={}, seed=None, **kwargs):
        if x.shape[0] != 1:
            raise NodeInputError(self.NAME, f"the sampler runs a batch of {x.shape[0]}; sample this node's LATENT.")
        options = model_options["transformer_options"]
        state = self.patches.state(options)
        if state.generator is None:   # once a run, on the sampler's device
            state.generator = torch.Generator(device=x.device).manual_seed(int(self.seed))
            with torch.inference_mode(False):   # the energies index features with them under autograd
                state.masks = on_device(self.edit.masks, x.device)
        sigmas = options["sample_sigmas"]
        i, _ = step_at(sigmas, timestep)
        code_step = i + self.inversion.start_step   # the step of the inversion's whole schedule
        sigma, sigma_next = timestep[:1], sigmas[i + 1].reshape(1).to(timestep)
        schedule, model = self.schedule, self.inner_model
        positive, negative = self.conds["positive"], self.conds.get("negative")
        trajectory = self.inversion.trajectory
        bank = schedule.bank(code_step)
        if bank:   # 1: the memory bank of this step
            source = trajectory[i + 1].to(x)
            source = self.parameterisation.at_level(source, sigma_next, sigma)
            state.mode = "record"
            try:
                predict_conds(model, [positive], source, sigma, model_options)
            finally:
                state.mode = "plain"
        x_cur = x
        x_next = x
        tries = schedule.tries(code_step)
        for attempt in range(tries):
            state.mode = "bank" if bank else "plain"   # 2: the edit's prediction
            try:
                outs = predict_conds(model, [positive, negative], x_cur, timestep, model_options)
            finally:
                state.mode = "plain"
            cond, uncond = self.pre_cfg([positive, negative], outs, x_cur, timestep, model_options)[:2]
            denoised = cfg_combine(model, cond, uncond, self.cfg, x_cur, timestep, model_options, positive, negative)
            eps = (x_cur - denoised) / sigma.reshape(-1, 1, 1, 1).to(x_cur)
            guide = None
            if schedule.guide(code_step):   # 3: the energies' guidance
                guide = self.energy_guidance(x_cur, trajectory[i].to(x), sigma, model_options, state)
            eta, noise = 0.0, None
            if schedule.sde(code_step):   # 4: DiffEditor's regional SDE
                region = self.edit.noise_region.to(x_cur)
                eta = self.sde_strength * region
                noise = torch.randn(x_cur.shape, generator=state.generator, device=x_cur.device, dtype=x_cur.dtype)
            x_next = guided_step(x_cur, eps, guide, sigma, sigma_next, eta, noise)
            if attempt < tries - 1:   # DiffEditor's time travel: back up one step, the prompt alone
                back = predict_conds(model, [positive], x_next, sigma_next, model_options)[0]
                x_cur = travel_back(x_next, (x_next - back) / sigma_next.to(x_next), sigma, sigma_next)
        state.bank.clear()
        return host_denoised(x, x_next, sigma, sigma_next)

    def energy_guidance(self, x: torch.Tensor, reference: torch.Tensor, sigma: torch.Tensor, model_options: dict,
                        state: DragonState) -> torch.Tensor:
        """The guidance on the predicted noise at ``x``: the energies' gradients with respect to the
        latent the code differentiates (the UNet's input, ``x / sqrt(1 + sigma^2)``), one batched
        call of the prompt for the edited latent and the inversion's ``reference``."""
        with torch.inference_mode(False), torch.enable_grad():
            track = BranchInputs(track=True)
            state.mode, state.features = "features", {}
            try:
                predict_conds(self.inner_model, [self.conds["positive"]], torch.cat([x, reference]).clone(),
                              sigma.expand(2).clone(), with_branch_inputs(model_options, track))
            except _FeaturesTaken:
                pass
            finally:
                state.mode = "plain"
            found = [state.features.get(name) for name in ("half", "full")]
            state.features = {}
            if any(f is None for f in found):
                raise NodeInputError(self.NAME, "the UNet has no decoder output at half and at the full latent size to "
                                                "read the energies' features from; DragonDiffusion works on SD1.x/SD2.x/SDXL "
                                                "UNets.")
            cur = [f[:1] for f in found]
            ref = [f[1:2].detach() for f in found]
            e_edit, e_content = self.edit.energies(cur, ref, state.masks)
            leaf = track.leaves[0][0]
            scale = self.energy_scale * ENERGY_UNIT
            g_edit = _grad(e_edit * scale, leaf, retain=True)
            g_content = _grad(e_content * scale, leaf, retain=False)
        # the code differentiates with respect to the DDPM latent z = x / sqrt(1 + sigma^2)
        to_z = (1 + sigma.to(torch.float32) ** 2).sqrt().reshape(-1, 1, 1, 1)
        g_edit, g_content = (g[:1].float() * to_z for g in (g_edit, g_content))
        return guidance(g_edit, g_content, self.edit.region.to(g_edit), self.edit.factor).to(x)


def _grad(loss: torch.Tensor, leaf: torch.Tensor, retain: bool) -> torch.Tensor:
    if not loss.requires_grad:
        return torch.zeros_like(leaf)
    (g,) = torch.autograd.grad(loss, leaf, retain_graph=retain, allow_unused=True)
    return torch.zeros_like(leaf) if g is None else g.detach()

"""Self-Guidance inside the host (math in ``terms.py``): a GUIDER for SamplerCustomAdvanced that
samples the edit from a DDIM inversion's latent and, at every guided step,

1. evaluates the source prompt on the inversion's latent of this step (the real image's trajectory,
   the paper's real-image procedure), without gradients, and reads the source's properties: the
   cross-attention maps of the moved word and of every kept word (mean over heads, over the
   map layers and over each word's tokens) and the decoder's features;
2. evaluates the edit's conditional and unconditional predictions in one batched call with
   gradients (``BranchInputs(track=True)``), reads the same properties of the conditional row, and
   differentiates the energy ``g`` (``terms.energy``) with respect to the latent;
3. combines the predictions as the host does (pre-CFG functions, CFG, post-CFG functions) and adds
   ``v * sigma_t * grad_z g`` to the noise (``terms.guided_denoised``).

The maps are recorded by an attn2 replace patch on the blocks whose maps the pack's word maps read
(``layout.map_blocks``: latent/4, the down and up blocks); the features are those entering the last
output block of the UNet (the decoder's penultimate activations).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from ...attention.policy import AttentionPolicy, Where
from ...guidance.spatial import check_move, region_box
from ...hostkit.attention_driver import install_policy
from ...hostkit.sampling import run_loop
from ...hostkit.branch_inputs import BranchInputs, with_branch_inputs
from ...hostkit.errors import NodeInputError
from ...hostkit.guidance_driver import BatchedGuider, cfg_combine, predict_conds
from ...hostkit.inversion_patches import is_host_euler, sampler_name
from ...hostkit.run_state import run_state
from ...hostkit.steps import step_at
from . import terms as T

NAME = "Self-Guidance"


class MapState:
    """One sampling run's readings of one model call: the summed maps of the conditional row
    (``[N, K]`` per layer grid), the number of layers summed, the features, and the mode
    (plain: nothing is read; read: the conditional row's maps and features are kept)."""

    def __init__(self):
        self.mode = "plain"
        self.maps: torch.Tensor | None = None
        self.layers = 0
        self.features: torch.Tensor | None = None
        self.offset: torch.Tensor | None = None   # the move in [0, 1] coordinates, made once per run

    def begin(self) -> None:
        self.mode, self.maps, self.layers, self.features = "read", None, 0, None

    def end(self) -> None:
        self.mode = "plain"

    def add(self, maps: torch.Tensor) -> None:
        self.maps = maps if self.maps is None else self.maps + maps
        self.layers += 1


class WordMaps(AttentionPolicy[MapState]):
    """On cross-attention: plain attention; while the guider reads, the conditional row's maps of the
    words' tokens (mean over heads, then over each word's tokens: ``words [T, K]``) are added to the
    run's ``MapState``."""

    pair = False

    def __init__(self, words: torch.Tensor):
        self.words = words   # [tokens, K]: column k averages the tokens of word k (object first)
        self._on: dict = {}

    def words_on(self, device: torch.device) -> torch.Tensor:
        """The word matrix on ``device``, made once per device as a normal tensor (the node made it under
        inference mode, and the guided pass takes gradients through its product)."""
        words = self._on.get(device)
        if words is None:
            with torch.inference_mode(False):
                words = self._on[device] = self.words.to(device).clone()
        return words

    @property
    def keeps_state(self) -> bool:
        return True

    def make_state(self) -> MapState:
        return MapState()

    def attention(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, where: Where, state: MapState) -> torch.Tensor:
        out = where.attend(q, k, v)
        if state.mode == "plain" or 0 not in where.chunks:
            return out
        i = where.chunks.index(0)
        s = slice(i * where.rows, i * where.rows + 1)
        maps = where.maps(q[s], k[s]).mean(dim=1)[0]          # [N, tokens]
        words = self.words_on(maps.device)
        state.add(maps[:, :words.shape[0]] @ words)           # [N, K]
        return out


class Features:
    """Output-block patch: while the guider reads, the conditional row's activations entering the
    UNet's last output block go to the run's ``MapState`` of ``policy``."""

    def __init__(self, policy: WordMaps, block: int):
        self.policy, self.block = policy, block

    def __call__(self, h, hsp, transformer_options):
        if tuple(transformer_options.get("block", ("", -1))) == ("output", self.block):
            state = run_state(transformer_options, self.policy, self.policy.make_state, NAME)
            chunks = list(transformer_options.get("cond_or_uncond", [0]))
            if state.mode != "plain" and 0 in chunks:
                rows = h.shape[0] // len(chunks)
                i = chunks.index(0)
                state.features = h[i * rows:i * rows + 1].float()[0]
        return h, hsp


def grid_maps(maps: torch.Tensor, layers: int, latent_hw: tuple[int, int]) -> torch.Tensor:
    """The summed ``[N, K]`` maps as ``[K, h, w]`` (the mean over layers), on the latent's aspect."""
    n, k = maps.shape
    lh, lw = latent_hw
    factor = round((lh * lw / n) ** 0.5)
    h = -(-lh // factor)
    return (maps / max(layers, 1)).T.reshape(k, h, n // h)


class SelfGuider(BatchedGuider):
    """Self-Guidance from an inversion: conds ``positive`` (the source prompt) and ``negative``."""

    NAME = NAME

    def __init__(self, model, policy: WordMaps, inversion, offset: tuple[float, float], scale: float,
                 weights: T.Weights, amount: float, sharpness: float, guide_until: float):
        super().__init__(model)
        self.policy, self.inversion = policy, inversion
        self.offset, self.scale, self.weights = offset, scale, weights
        self.amount, self.sharpness, self.guide_until = amount, sharpness, guide_until

    def outer_sample(self, noise, latent_image, sampler, sigmas, *args, **kwargs):
        inv = self.inversion
        run = sigmas.detach().float()
        ref = inv.sampling_sigmas.detach().to(run)   # compared where the run's sigmas are: no copy to the CPU
        if len(run) != len(ref) or not torch.allclose(run[:-1], ref[:-1], rtol=1e-4, atol=1e-6):
            s = inv.settings
            raise NodeInputError(NAME, f"the sampler runs {len(run) - 1} steps on sigmas from {float(run[0]):.4g}, but "
                                       f"the inversion was made over {len(ref) - 1} steps from {float(ref[0]):.4g} "
                                       f"(steps={s.get('steps', inv.steps)}, scheduler={s.get('scheduler', '?')}, "
                                       f"start_at_step={inv.start_step}); connect this node's SIGMAS (the inversion's) "
                                       f"to the sampler, so the edit follows the inversion's trajectory step by step.")
        if not is_host_euler(sampler):
            raise NodeInputError(NAME, f"sampler '{sampler_name(sampler).removeprefix('sample_')}' evaluates the model "
                                       f"between the inversion's steps, where the source has no latent; use the ddim or "
                                       f"euler sampler (KSamplerSelect).")
        if torch.count_nonzero(noise) > 0:
            raise NodeInputError(NAME, "the sampler adds noise to the inverted latent; connect DisableNoise (the edit "
                                       "starts from the inversion's latent, as the source's trajectory does).")
        if latent_image.shape[0] != 1:
            raise NodeInputError(NAME, f"the latent being sampled has a batch of {latent_image.shape[0]}; sample this "
                                       f"node's LATENT (the inverted latent, batch 1).")
        return super().outer_sample(noise, latent_image, sampler, sigmas, *args, **kwargs)

    # ------------------------------------------------------------------ readings
    def read(self, x: torch.Tensor, sigma: torch.Tensor, conds: list, model_options: dict, state: MapState,
             latent_hw) -> tuple[list, torch.Tensor, torch.Tensor | None]:
        """One batched call of ``conds`` at ``x`` with the conditional row's maps ``[K, h, w]`` and features read."""
        state.begin()
        try:
            outs = predict_conds(self.inner_model, conds, x, sigma, model_options)
            if state.maps is None:
                raise NodeInputError(NAME, "the model's cross-attention layers were not called with the prompt; "
                                           "connect the model without nodes that replace its cross-attention.")
            maps = grid_maps(state.maps, state.layers, latent_hw)
            return outs, maps, state.features
        finally:
            state.end()

    def predict_noise(self, x, timestep, model_options={}, seed=None, **kwargs):
        options = model_options["transformer_options"]
        state = run_state(options, self.policy, self.policy.make_state, NAME)
        step, steps = step_at(options["sample_sigmas"], timestep)
        guided = not (abs(self.cfg - 1.0) < 1e-9 and not model_options.get("disable_cfg1_optimization", False))
        conds = [self.conds.get("positive"), self.conds.get("negative") if guided else None]
        sigma = timestep
        latent_hw = tuple(x.shape[-2:])
        guide = step < self.guide_until * steps and self.amount != 0
        if not guide:
            outs = predict_conds(self.inner_model, conds, x, sigma, model_options)
        else:
            source = self.inversion.trajectory[step].to(x)
            with torch.no_grad():
                _, src_maps, src_features = self.read(source, sigma, [conds[0], None], model_options, state, latent_hw)
            with torch.inference_mode(False), torch.enable_grad():
                src = T.properties(src_maps.float().clone(), None if src_features is None else src_features.clone(),
                                   self.sharpness)
                if state.offset is None:
                    state.offset = torch.tensor(self.offset, device=src.centroid.device, dtype=torch.float32)
                target = T.targets(src, state.offset, self.scale)
                track = BranchInputs(track=True)
                outs, maps, features = self.read(x.clone(), sigma.clone(), conds,
                                                 with_branch_inputs(model_options, track), state, latent_hw)
                edit = T.properties(maps.float(), features, self.sharpness)
                g = T.energy(edit, target, self.weights)
                grad = track.gradients(g)[0]
                outs = [o.detach() if o is not None else None for o in outs]
        cond, uncond = outs[0], outs[1]
        if guided:   # the host's pre-CFG functions see [cond, uncond]; at cfg 1 there is no uncond
            cond, uncond = self.pre_cfg(conds, [cond, uncond], x, timestep, model_options)[:2]
        denoised = cfg_combine(self.inner_model, cond, uncond if guided else cond, self.cfg if guided else 1.0, x,
                               timestep, model_options, conds[0], conds[1])
        if guide:
            s = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(torch.float32)
            denoised = T.guided_denoised(denoised.float(), grad.float(), s, self.amount).to(denoised.dtype)
        return denoised


class RegionMaps(WordMaps):
    """At node time: the conditional row's word maps of one model call, kept by the policy itself (a private
    clone's one-off run; nothing the host caches)."""

    def __init__(self, words: torch.Tensor):
        super().__init__(words)
        self.read = MapState()
        self.read.begin()

    @property
    def keeps_state(self) -> bool:
        return False

    def attention(self, q, k, v, where: Where, state) -> torch.Tensor:
        return super().attention(q, k, v, where, self.read)


def object_maps(model, words: torch.Tensor, blocks, inversion, positive) -> torch.Tensor:
    """``[K, h, w]``: the words' maps on the inversion's last step (its cleanest latent but the image), read
    with the prompt in one model call at node time."""
    recorder = RegionMaps(words)
    m = model.clone()
    install_policy(m, recorder, blocks, NAME, ("attn2",))
    sigmas = inversion.sampling_sigmas
    last = max(len(sigmas) - 2, 0)

    def loop(denoise, x, run_sigmas, step_callback):
        denoise.part("positive", inversion.trajectory[last].to(x), run_sigmas[last].to(x))
        step_callback(0, 1, x)
        return x

    run_loop(m, positive, None, 1.0, inversion.latent, sigmas, loop)
    if recorder.read.maps is None:
        raise NodeInputError(NAME, "the model's cross-attention layers were not called with the prompt; connect the "
                                   "model without nodes that replace its cross-attention.")
    return grid_maps(recorder.read.maps, recorder.read.layers, tuple(inversion.latent.shape[-2:])).float()


#: Above this share of the picture a word's attention region's box is no object's outline (a model whose maps spread, a
#: random one): the move is then checked on the region's centre alone.
SPREAD = 0.5


def check_word_move(maps: torch.Tensor, sharpness: float, dx: float, dy: float, scale: float,
                    size: tuple[int, int]) -> None:
    """Without a mask: the object's region (its source shape above 0.5, at the image's ``size``) must move
    inside the picture (``spatial.check_move``, naming input 'word'); a region over ``SPREAD`` of the picture
    only its centroid (logged)."""
    region = T.shape(maps[:1], sharpness)
    mask = F.interpolate(region[None], size=size, mode="bilinear", align_corners=False)[0, 0]
    box = region_box(mask)   # node time: once
    share = 0.0 if box is None else box.size[0] * box.size[1] / (size[0] * size[1])
    if share > SPREAD:
        height, width = size
        x, y = (T.centroid(maps[0]).float() * torch.tensor([width, height], dtype=torch.float32, device=maps.device)).tolist()  # sampling-path-ok: node time, once, for the message
        logging.warning("%s: the attention of input 'word' spreads over %.0f%% of the picture, no object's outline; the move "
                        "is checked on its centre (%.0f, %.0f px) alone. Connect a mask of the object to check its "
                        "whole region.", NAME, 100 * share, x, y)
        if not (0 <= x + dx < width and 0 <= y + dy < height):
            raise NodeInputError(NAME, f"inputs 'dx' {dx:g} and 'dy' {dy:g} take the centre of input 'word''s object "
                                       f"({x:.0f}, {y:.0f} px, from its attention) to ({x + dx:.0f}, {y + dy:.0f}), off "
                                       f"the {width}x{height} picture; give dx from {-x:.0f} to {width - x:.0f} and dy "
                                       f"from {-y:.0f} to {height - y:.0f}.")
        return
    check_move(NAME, mask, dx, dy, scale, "word")


def word_matrix(object_positions: list[int], kept: list[list[int]], tokens: int) -> torch.Tensor:
    """``[tokens, K]``: column 0 averages the moved object's token positions, column k each kept word's."""
    columns = [object_positions] + kept
    out = torch.zeros(tokens, len(columns))
    for k, positions in enumerate(columns):
        for p in positions:
            out[p, k] = 1.0 / len(positions)
    return out


def warn_prompt(inversion, fingerprint: str) -> None:
    """A prompt other than the inversion's is allowed (the source's properties are read with this one);
    the reconstruction is then not the image's, which the log says."""
    made = inversion.fingerprint.get("positive")
    if made is not None and made != fingerprint:
        logging.warning("%s: input 'prompt' is not the prompt the inversion was made with; the source's attention "
                        "is read with this prompt on the inversion's trajectory, and the rest of the image may drift.",
                        NAME)

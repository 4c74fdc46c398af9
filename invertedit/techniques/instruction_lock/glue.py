"""Region Lock inside the host (attention in ``policies.py``): a clone of an instruction editor's model whose output
outside a region is the image, at the image's size, with no inversion: an APPLY_MODEL wrapper puts the latent
outside the region on the straight path from the run's starting noise to the image's latent (``(1 - sigma) image +
sigma noise``) and hands back the image as the prediction there, so every step of a flow sampler stays on that path
and the run ends on the image (a blend, as Latent Blend's; on a flow model's straight path it is exact at the end);
inside it the editor samples as usual. With ``region_cache``, after ``warmup_steps`` (and outside the refresh
steps) the blocks run on the text and the region's tokens alone against the keys and values the last full step
kept (``RegionCache``, the host kit's ``SubsetBlock``): RegionE's region-instruction KV cache.
"""
from __future__ import annotations

import torch

from ...attention.policy import schedule_position
from ...attention.regions import edited_tokens
from ...hostkit.dit_attention import LAYOUT_KEY, REFERENCE_KEY, dit_blocks, install_subset_policy
from ...hostkit.errors import NodeInputError
from ...hostkit.family import model_family
from ...hostkit.patches import wrap_model_calls
from ...hostkit.region_masks import cell_mask
from ...hostkit.run_state import keep_run_state, run_state
from ...hostkit.sampling import check_flow_family, check_image_latent_shape, model_space
from ...hostkit.steps import sigma_list, sigma_value
from .policies import RegionCache, RegionState

WRAPPER_KEY = "invertedit_region_lock"


class RegionLatents:
    """APPLY_MODEL wrapper of Region Lock: once per model call, whether the step computes every token, the latent
    outside the region on the straight path to the image, and the image handed back there."""

    def __init__(self, policy: RegionCache, image: torch.Tensor, cells: torch.Tensor, warmup: int,
                 refresh: tuple[int, ...], cache: bool, node: str):
        self.policy, self.image, self.cells, self.node = policy, image, cells, node
        self.warmup, self.refresh, self.cache = warmup, refresh, cache

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                 **kwargs):
        state: RegionState = run_state(transformer_options, self.policy, self.policy.make_state, self.node)
        schedule = sigma_list(transformer_options["sample_sigmas"])
        sigma = sigma_value(transformer_options.get("sigmas", t))
        step, half = schedule_position(schedule, sigma)
        if half:
            raise NodeInputError(self.node, "the model was called between the run's steps (a second-order sampler); "
                                            "Region Lock keeps its region's path step by step: use the euler sampler.")
        if state.noise is None:   # the run's first call: the image's latent on its device, the starting noise
            if tuple(x.shape[1:]) != tuple(self.image.shape[1:]):
                raise NodeInputError(self.node, f"the latent being sampled is {tuple(x.shape)} and the image's "
                                                f"{tuple(self.image.shape)}; sample with the image's latent (VAE "
                                                f"Encode of the picture given to this node) as the sampler's latent.")
            if schedule[0] <= 0.0:
                raise NodeInputError(self.node, "the run starts at sigma 0: there is nothing to sample; give the "
                                                "sampler the editor's schedule (denoise 1).")
            image = self.image.to(x)
            # the host starts a flow run at sigma_0 * noise + (1 - sigma_0) * latent (the image's latent given)
            state.image, state.cells = image, self.cells.to(x.device)
            state.noise = (x[:1] - (1.0 - schedule[0]) * image) / schedule[0]
        state.full = not self.cache or step < self.warmup or step in self.refresh
        text = 0 if c_crossattn is None else c_crossattn.shape[1]
        state.signature = (text, tuple(transformer_options.get("cond_or_uncond", ())), x.shape[0])
        path = (1.0 - sigma) * state.image + sigma * state.noise
        x = torch.where(state.cells, x, path)
        out = executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        return torch.where(state.cells, out, state.image)


class RegionSubset:
    """Which tokens Region Lock's blocks run on at a cached step (the host kit's ``SubsetBlock``): the text and the
    region's; every token at a full step."""

    def __init__(self, policy: RegionCache, node: str):
        self.policy, self.node = policy, node

    def __call__(self, options: dict, img: torch.Tensor):
        state: RegionState = run_state(options, self.policy, self.policy.make_state, self.node)
        if state.full:
            return None
        text, grid = options[LAYOUT_KEY]
        references = options.get(REFERENCE_KEY, 0)
        rows, image_rows, _ = self.policy.rows(text, references, img.device, state)
        return rows, image_rows, text + grid[0] * grid[1] + references, state


def region_lock(node: str, model, latent: torch.Tensor, mask, warmup: int, refresh: tuple[int, ...], cache: bool):
    """A clone of ``model`` that keeps the image ``latent`` (an image's LATENT samples) outside the region ``mask``
    (a MASK of the image's shape) and, with ``cache``, computes the region's tokens alone after ``warmup`` steps but
    at the ``refresh`` steps."""
    family = check_flow_family(model, node)
    if cache and family.layout == "dit-cross":   # Wan (issue 82): no joint block to run on the region's tokens
        raise NodeInputError(node, f"input 'region_cache' is on, but {family.config_name}'s blocks attend twice (a "
                                   f"self-attention, then a cross-attention to the text), not jointly, and the region "
                                   f"cache runs joint blocks on the region's tokens; turn region_cache off (the "
                                   f"region's blend alone keeps a Wan clip outside the mask).")
    check_image_latent_shape(node, "latent", latent, model)
    cells = cell_mask(node, mask, tuple(latent.shape[-2:]), latent.device, whole="sample the editor as it is")
    policy = RegionCache(edited_tokens(cells, model_family(model).patch_size))
    patched = model.clone()
    if cache:
        install_subset_policy(patched, policy, dit_blocks(model), RegionSubset(policy, node), node)
    else:   # the blend alone: no block is touched
        keep_run_state(patched)
    image = model_space(latent, model)
    frames = image.ndim == 5
    wrap_model_calls(patched, WRAPPER_KEY, RegionLatents(policy, image, cells[:, :, None] if frames else cells,
                                                         warmup, refresh, cache, node))
    return patched


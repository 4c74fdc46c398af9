"""LayerVerse inside the host (policies in ``policy.py``, allocations in ``allocation.py``): its keeper, which keeps
the image keys and values of the allocation's blocks while Flow Invert inverts (``layerverse_keep``), and the
patched clone of the model whose masked and global blocks attend with them while the edit samples back.

Defined for Flux.1 (double and single blocks, the authors' FLUX code) and SD3/SD3.5 (joint blocks, their SD3.5
code); other families are refused by name."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...hostkit.dit_attention import dit_blocks, install_dit_policy
from ...hostkit.errors import NodeInputError
from ...hostkit.family import model_family
from ...hostkit.keepers import KeepRequest, Keeper, keep_on, place_input, register_keeper
from ...hostkit.region_masks import cell_mask
from ...hostkit.sampling import check_flow_family
from ...hostkit.schemas import io
from ...hostkit.steps import sigma_list
from ...inversion.record import Inversion
from .allocation import CUSTOM, PRESET_DEPTHS, PRESETS, Allocation, AllocationError, format_blocks, parse_blocks, \
    preset_allocation
from .policy import InjectKeysValues, KeepKeysValues, key_name, name_key

#: the keeper's choices: off, the blocks of an authors' allocation, or every block (for a custom allocation)
EVERY_BLOCK = "every block"
KEEP_CHOICES = ("off", *PRESETS, EVERY_BLOCK)
#: the families LayerVerse is defined for, by their text sequence: the keying of their authors' code
KEYINGS = {"t5xxl": "flux", "clip+t5xxl": "sd3"}


def _keying(node: str, model, name: str = "model") -> str:
    family = check_flow_family(model, node)
    keying = KEYINGS.get(family.text_sequence)
    if keying is None:
        raise NodeInputError(node, f"input '{name}' is {family.config_name}; LayerVerse is defined for Flux.1 and "
                                   f"SD3/SD3.5 (the authors' code): load Flux dev (or schnell) or SD3.5 medium.")
    return keying


def _depth(model) -> tuple[int, int]:
    return len(dit_blocks(model, ("double_block",))), len(dit_blocks(model, ("single_block",)))


def _named(kind: str) -> str:
    return {"double_block": "double", "single_block": "single"}[kind]


def check_blocks(node: str, model, blocks, name: str, preset: str = CUSTOM) -> None:
    """Every block of ``blocks`` (an input's, ``name``) is one of the model's; the refusal names the model's depth
    and, for a preset, the preset that fits or ``custom``."""
    have = set(dit_blocks(model))
    doubles, singles = _depth(model)
    for kind, i in blocks:
        if (kind, i) in have:
            continue
        joint = "joint" if not singles else "double"
        depth = f"{doubles} {joint} blocks (0 to {doubles - 1})" + (
            f" and {singles} single blocks (0 to {singles - 1})" if singles else " and no single blocks")
        if preset != CUSTOM:
            fits = [p for p, d in PRESET_DEPTHS.items() if d == (doubles, singles)]
            fix = (f"choose '{fits[0]}'" if fits else
                   "choose custom and name this model's blocks in masked_blocks and global_blocks (the authors' "
                   "allocations are for Flux.1 dev's 19 + 38 blocks and SD3.5 medium's 24)")
            raise NodeInputError(node, f"input '{name}' is '{preset}', whose {_named(kind)} block {i} this model does "
                                       f"not have: it has {depth}; {fix}.")
        if kind == "single_block" and not singles:
            raise NodeInputError(node, f"input '{name}' names single block {i}, but the model has {depth}: SD3's "
                                       f"joint blocks are written without a kind, e.g. '0, 1, 3-4'.")
        raise NodeInputError(node, f"input '{name}' names {_named(kind) if singles else 'joint'} block {i}, but the "
                                   f"model has {depth}; name blocks it has.")


# ----------------------------------------------------------------------------- the keeper (on Flow Invert)
def _inputs() -> list:
    return [
        io.Combo.Input("layerverse_keep", options=list(KEEP_CHOICES), default="off", optional=True,
                       tooltip="LayerVerse (Flux.1, SD3/SD3.5): keep the image keys and values of an allocation's "
                               "blocks at every step while inverting, for the LayerVerse KV Inject node (off: keep "
                               "none). 'LayerVerse (Flux.1 dev)': its 8 blocks, about 0.4 GB per evaluation per "
                               "megapixel in bfloat16 (FireFlow's 15 steps: 16 evaluations, 6.4 GB); 'LayerVerse "
                               "(SD3.5 medium)': its 13 blocks and their 5 second attentions, about 0.45 GB per "
                               "evaluation (28 steps: 13 GB); 'every block': for a custom allocation (Flux: 57 blocks, "
                               "about 7 times the preset's). Computed; keep_values_on cpu offloads them, as the "
                               "authors' code does."),
        place_input(),
    ]


@dataclass
class Keeping:
    """One inversion's LayerVerse keeping: the image keys and values of ``blocks`` at every evaluation."""
    node: str
    blocks: list
    choice: str
    keying: str
    place: str
    sink: dict = field(default_factory=dict)

    def install(self, velocity) -> None:
        install_dit_policy(velocity, KeepKeysValues(self.sink, keep_on(self.place), self.keying), self.blocks,
                           self.node)

    def settings(self) -> dict:
        return {"layerverse_keep": self.choice, "layerverse_keying": self.keying}

    def clues(self) -> dict:
        clues = {}
        for key, (k, v) in self.sink.items():
            clues[key_name(key) + ".k"], clues[key_name(key) + ".v"] = k, v
        return clues


def _check(node: str, values: dict) -> None:
    choice = values.get("layerverse_keep", "off")
    if choice not in KEEP_CHOICES:
        raise NodeInputError(node, f"input 'layerverse_keep' is {choice!r}; choose one of {', '.join(KEEP_CHOICES)}.")


def _start(request: KeepRequest) -> Keeping:
    node, model, choice = request.node, request.model, request.inputs["layerverse_keep"]
    keying = _keying(node, model)
    if choice == EVERY_BLOCK:
        blocks = dit_blocks(model)
    else:
        blocks = list(preset_allocation(choice, "", "").blocks)
        check_blocks(node, model, blocks, "layerverse_keep", choice)
    return Keeping(node, blocks, choice, keying, request.inputs["keep_values_on"])


class _Keeper(Keeper):
    """A keeper whose switch is a choice: on for any but 'off'."""

    def on(self, values: dict) -> bool:
        return values.get(self.switch, "off") not in (None, "off")


KEEPER = register_keeper(_Keeper(what="LayerVerse's keys and values", switch="layerverse_keep", inputs=_inputs,
                                 defaults={"layerverse_keep": "off"}, check=_check, start=_start))


# ----------------------------------------------------------------------------- the edit
def kept_keys_values(clues: dict) -> dict:
    """``key -> (keys, values)`` from an INVERSION's clues (the keeper's)."""
    pairs: dict = {}
    for name, tensor in clues.items():
        found = name_key(name)
        if found is not None:
            key, which = found
            pairs.setdefault(key, [None, None])[which == "v"] = tensor
    return {key: tuple(pair) for key, pair in pairs.items() if None not in pair}


def edited_patches(node: str, mask, latent: torch.Tensor, patch: int) -> torch.Tensor:
    """The MASK as the image's patch grid ``[rows, cols]``, True where a patch has a masked cell (the editing region:
    the edit's own keys and values)."""
    cells = cell_mask(node, mask, tuple(latent.shape[-2:]), latent.device,
                      whole="disconnect the mask: the masked blocks then take the source's keys and values everywhere "
                            "(the authors' use_mask off)")
    pooled = F.max_pool2d(cells.float(), patch, ceil_mode=True)
    return pooled[0, 0] > 0


def layerverse(node: str, model, inversion: Inversion, preset: str, masked: str, global_: str, mask=None,
               steps: int = 1000) -> object:
    """A clone of ``model`` whose allocation's blocks attend with the keys and values ``inversion`` kept (Flow
    Invert's ``layerverse_keep``): global blocks everywhere, masked blocks outside ``mask`` (everywhere without one),
    in the first ``steps`` sampling steps."""
    keying = _keying(node, model)
    if preset not in (*PRESETS, CUSTOM):
        raise NodeInputError(node, f"input 'preset' is {preset!r}; choose one of {', '.join((*PRESETS, CUSTOM))}.")
    try:
        plan: Allocation = preset_allocation(preset, masked, global_)
    except AllocationError as e:
        raise NodeInputError(node, f"{e}; write e.g. 'double 1; single 32-37' (Flux) or '0, 1, 3-4' (SD3's joint "
                                   f"blocks).") from None
    if not plan.blocks:
        raise NodeInputError(node, "inputs 'masked_blocks' and 'global_blocks' are both empty; name the blocks that "
                                   "take the source's keys and values (authors, Flux.1 dev: masked 'double 1; single "
                                   "32-37', global 'double 2').")
    if preset == CUSTOM:
        check_blocks(node, model, parse_blocks(masked), "masked_blocks")
        check_blocks(node, model, parse_blocks(global_), "global_blocks")
    else:
        check_blocks(node, model, plan.blocks, "preset", preset)
    if steps < 1:
        raise NodeInputError(node, f"input 'inject_steps' is {steps}; give 1 or more (authors: every step).")
    kept = kept_keys_values(inversion.clues)
    if not kept:
        raise NodeInputError(node, f"input 'inversion' kept no LayerVerse keys and values ({inversion.describe()}); "
                                   f"invert with Flow Invert's layerverse_keep set to the allocation's preset (or "
                                   f"'every block' for a custom one).")
    made = inversion.settings.get("layerverse_keying", keying)
    if made != keying:
        raise NodeInputError(node, "the inversion was made with another model family; use the model it was inverted "
                                   "with.")
    have = {key[2:4] for key in kept}
    missing = [b for b in plan.blocks if b not in have]
    if missing:
        raise NodeInputError(node, f"the inversion kept no keys and values of {format_blocks(missing)} (it kept "
                                   f"{format_blocks(sorted(have))}); invert with Flow Invert's layerverse_keep set to "
                                   f"this allocation's preset, or to 'every block' for a custom allocation.")
    edited = None
    if mask is not None:
        edited = edited_patches(node, mask, inversion.latent, model_family(model).patch_size)
    ours = {key: pair for key, pair in kept.items() if key[2:4] in set(plan.blocks)}
    patched = model.clone()
    policy = InjectKeysValues(ours, sigma_list(inversion.sampling_sigmas), keying, plan.global_, edited, steps)
    install_dit_policy(patched, policy, list(plan.blocks), node)
    return patched

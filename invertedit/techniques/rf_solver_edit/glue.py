"""RF-Solver-Edit inside the host (policies in ``value_sharing.py``): its keeper, which keeps the
attention values of Flux's last single blocks while Flow Invert inverts (``share_steps``), and the
patched clone of the model whose single blocks attend with them while the edit samples back."""
from __future__ import annotations

from dataclasses import dataclass

from ...hostkit.dit_attention import dit_blocks, install_dit_policy
from ...hostkit.errors import NodeInputError
from ...hostkit.family import model_family
from ...hostkit.keepers import KeepRequest, Keeper, keep_on, place_input, register_keeper
from ...hostkit.sampling import check_flow_family
from ...hostkit.schemas import io
from ...hostkit.steps import sigma_list
from ...inversion.record import Inversion
from . import ROW
from .value_sharing import KeepValues, ShareValues, key_name, name_key

PAPER = ROW.settings_of("InvertEditFlowInvert")


def _inputs() -> list:
    return [
        io.Int.Input("share_steps", default=0, min=0, max=1000, optional=True,
                     tooltip="RF-Solver-Edit's feature sharing (Flux): keep the attention values of the single "
                             "blocks for the first N sampling steps, for Share Values to reuse while editing "
                             "(authors' code: 20 of 25 steps; their examples 2 to 5). 0: keep none. Memory: "
                             "about 1 GB per step per megapixel in bfloat16 (18 blocks, 2 evaluations a step "
                             "with rf-solver)."),
        io.Int.Input("share_from_block", default=PAPER["share_from_block"], min=0, max=1000, optional=True,
                     tooltip=f"The first single block whose values are kept (authors: {PAPER['share_from_block']}, "
                             f"i.e. blocks {PAPER['share_from_block']} to 37 of Flux's 38)."),
        place_input(),
    ]


@dataclass
class Sharing:
    """One inversion's feature sharing (``Keeping``): the values of the single blocks from
    ``first_block`` on, for the first ``steps`` sampling steps, kept on ``place``: "device" (the
    model's: no copy, no wait) or "cpu" (the authors' offload to the CPU: an offload for memory, paid
    with a copy and a device wait per block call, inverting and editing)."""
    node: str
    blocks: list
    steps: int
    first_block: int
    place: str

    def __post_init__(self):
        self.kept: dict = {}

    def install(self, velocity) -> None:
        install_dit_policy(velocity, KeepValues(self.steps, self.kept, keep_on(self.place)), self.blocks, self.node)

    def settings(self) -> dict:
        return {"share_steps": self.steps, "share_from_block": self.first_block}

    def clues(self) -> dict:
        return {key_name(key): v for key, v in self.kept.items()}


def _check(node: str, values: dict) -> None:
    return None


def _start(request: KeepRequest) -> Sharing:
    node, model, steps = request.node, request.model, request.steps
    share, first = request.inputs["share_steps"], request.inputs["share_from_block"]
    family = model_family(model)
    singles = dit_blocks(model, ("single_block",))
    if not singles:
        raise NodeInputError(node, f"input 'share_steps' is {share}, but RF-Solver-Edit shares the values of "
                                   f"Flux's single-stream blocks and this {family.config_name} model has none; set "
                                   f"share_steps to 0 (or load a Flux.1 model).")
    if share > steps:
        raise NodeInputError(node, f"input 'share_steps' is {share}, more than the {steps} steps; give 0 to "
                                   f"{steps} (authors: 20 of 25).")
    if not 0 <= first < len(singles):
        raise NodeInputError(node, f"input 'share_from_block' is {first}, but the model has "
                                   f"{len(singles)} single blocks (0 to {len(singles) - 1}); the authors share from "
                                   f"20 of Flux's 38.")
    return Sharing(node, singles[first:], share, first, request.inputs["keep_values_on"])


KEEPER = register_keeper(Keeper(what="RF-Solver-Edit's values", switch="share_steps", inputs=_inputs,
                                defaults={"share_steps": 0, "share_from_block": PAPER["share_from_block"]},
                                check=_check, start=_start))


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

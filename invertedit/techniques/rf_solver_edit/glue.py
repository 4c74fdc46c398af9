"""RF-Solver-Edit inside the host (policies in ``value_sharing.py``): its keeper, which keeps the
attention values of Flux's last single blocks while Flow Invert inverts (``share_steps``), and the
patched clone of the model whose single blocks attend with them while the edit samples back.

Where the values are shared (``shared_blocks``): Flux's single blocks from ``share_from_block`` (the
authors'), text and image; Qwen-Image's joint blocks from ``share_from_block``, the image tokens' values
alone (its text is not padded: the source's and the target's differ in length). SD3 (joint blocks on a
padded text) is refused, as before Qwen-Image: no one has shown the sharing there."""
from __future__ import annotations

from dataclasses import dataclass

from ...hostkit.dit_attention import dit_blocks, install_dit_policy
from ...hostkit.errors import NodeInputError
from ...hostkit.family import model_family
from ...hostkit.keepers import KeepRequest, Keeper, keep_on, place_input, register_keeper
from ...hostkit.patches import wrap_model_calls
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
                     tooltip="RF-Solver-Edit's feature sharing (Flux, Qwen-Image): keep the attention values of "
                             "the blocks from share_from_block for the first N sampling steps, for Share Values to "
                             "reuse while editing (authors' code: 20 of 25 steps; their examples 2 to 5). 0: keep "
                             "none. Memory in bfloat16, per step per megapixel, 2 evaluations a step with "
                             "rf-solver: Flux about 1 GB (18 blocks), Qwen-Image about 2 GB (40 blocks, the image's "
                             "tokens). SD3: refused."),
        io.Int.Input("share_from_block", default=PAPER["share_from_block"], min=0, max=1000, optional=True,
                     tooltip=f"The first block whose values are kept. Flux: a single block (authors: "
                             f"{PAPER['share_from_block']}, i.e. blocks {PAPER['share_from_block']} to 37 of Flux's "
                             f"38; text and image values). Qwen-Image, which has joint blocks only (60): a joint "
                             f"block, and only the image tokens' values are kept and shared (its prompts are not "
                             f"padded, so the source's and the target's text differ in length); "
                             f"{PAPER['share_from_block']} keeps blocks {PAPER['share_from_block']} to 59 (no "
                             f"authors' setting for Qwen-Image)."),
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
    image_only: bool = False

    def __post_init__(self):
        self.kept: dict = {}

    def install(self, velocity) -> None:
        policy = KeepValues(self.steps, self.kept, keep_on(self.place), image_only=self.image_only)
        install_dit_policy(velocity, policy, self.blocks, self.node)

    def settings(self) -> dict:
        return {"share_steps": self.steps, "share_from_block": self.first_block}

    def clues(self) -> dict:
        return {key_name(key): v for key, v in self.kept.items()}


def _check(node: str, values: dict) -> None:
    return None


#: The families whose joint blocks share their image tokens' values (by the host's config): Qwen-Image's
JOINT_IMAGE_VALUES = ("QwenImage",)


def shared_blocks(model) -> tuple[list, bool]:
    """(the blocks whose values RF-Solver-Edit shares on ``model``, whether only the image tokens' values): Flux's
    single blocks (text and image, the authors'), else Qwen-Image's joint blocks (the image's), else none."""
    singles = dit_blocks(model, ("single_block",))
    if singles:
        return singles, False
    if model_family(model).config_name in JOINT_IMAGE_VALUES:
        return dit_blocks(model, ("double_block",)), True
    return [], False


def _blocks_named(image_only: bool) -> str:
    return "joint blocks" if image_only else "single blocks"


def _start(request: KeepRequest) -> Sharing:
    node, model, steps = request.node, request.model, request.steps
    share, first = request.inputs["share_steps"], request.inputs["share_from_block"]
    family = model_family(model)
    blocks, image_only = shared_blocks(model)
    if not blocks:
        raise NodeInputError(node, f"input 'share_steps' is {share}, but RF-Solver-Edit shares the values of "
                                   f"Flux's single-stream blocks and this {family.config_name} model has none; set "
                                   f"share_steps to 0 (or load a Flux.1 model, or Qwen-Image, whose joint blocks "
                                   f"share their image tokens' values).")
    if share > steps:
        raise NodeInputError(node, f"input 'share_steps' is {share}, more than the {steps} steps; give 0 to "
                                   f"{steps} (authors: 20 of 25).")
    if not 0 <= first < len(blocks):
        named = _blocks_named(image_only)
        authors = ("; the authors share from 20 of Flux's 38" if not image_only else
                   " (Qwen-Image shares the image tokens' values of its joint blocks from this one)")
        raise NodeInputError(node, f"input 'share_from_block' is {first}, but the model has "
                                   f"{len(blocks)} {named} (0 to {len(blocks) - 1}){authors}.")
    return Sharing(node, blocks[first:], share, first, request.inputs["keep_values_on"], image_only)


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
    family = check_flow_family(model, node)
    blocks, image_only = shared_blocks(model)
    named = _blocks_named(image_only)
    if not blocks:
        raise NodeInputError(node, f"input 'model' is {family.config_name}; Share Values shares Flux's single blocks' "
                                   f"values and Qwen-Image's joint blocks' image values, and this model has neither: "
                                   f"use the Flux.1 or Qwen-Image model the image was inverted with.")
    kind = blocks[0][0]
    have = dict.fromkeys(blocks)
    wanted = sorted({(kind, key[2]) for key in values})
    if any(block not in have for block in wanted):
        raise NodeInputError(node, f"the inversion kept values of {named} {wanted[0][1]} to {wanted[-1][1]}, but "
                                   f"the model has {len(have)} {named}; use the model it was inverted with.")
    patched = model.clone()
    schedule = sigma_list(inversion.sampling_sigmas)
    install_dit_policy(patched, ShareValues(values, schedule, image_only=image_only), wanted, node)
    wrap_model_calls(patched, REFERENCE_CHECK_KEY, NoReferenceImages(node))
    return patched


REFERENCE_CHECK_KEY = "invertedit_share_values_references"


class NoReferenceImages:
    """APPLY_MODEL wrapper: refuses a run whose prompt carries reference images (Flux Kontext's ReferenceLatent,
    Qwen-Image-Edit's TextEncodeQwenImageEdit). Their tokens join the image's in every block, the blocks' calls are
    then no longer the text and the inverted image's tokens, and the kept values would be silently not shared."""

    def __init__(self, node: str):
        self.node = node

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                 **kwargs):
        if kwargs.get("ref_latents") is not None:
            raise NodeInputError(self.node, "the run's prompt carries reference images (ReferenceLatent or "
                                            "TextEncodeQwenImageEdit: Flux Kontext's or Qwen-Image-Edit's instruction "
                                            "editing), whose tokens join the image's, so the kept values no longer "
                                            "line up with the blocks' tokens; sample with the plain text prompt (CLIP "
                                            "Text Encode; FluxGuidance for Flux).")
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)

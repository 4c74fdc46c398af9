"""LayerVerse's block allocations (Zhirnov et al. 2026, "LayerVerse: Finding the Sweet Spot for KV-Injection in
Training-Free Image Editing", ``v-gen-ai/LayerVerse``): which transformer blocks take the source's image keys and
values, and in which role. *Masked* blocks take them outside the editing mask (the background is kept); *global*
blocks take them everywhere (a few structural anchors); the other blocks are left as they are. The authors calibrate
the allocation once per backbone (a quadratic surrogate of background preservation and object structure, solved as
a mixed-integer program under a fixed budget) and ship two, in their ``configs/selected_combinations_config.yaml``:

- FLUX.1 dev: masked double block 1 and single blocks 32 to 37, global double block 2 (8 active, 1 global);
- SD3.5 medium: masked joint blocks 0, 1, 3, 4, 12, 14, 17, 18, 19, global 20 to 23 (13 active, 4 global).

Block numbers are 0-based and per stream, as the authors' KV-injection numbers them (Flux's double and single
blocks each from 0), which is how the host names them: ``("double_block", i)``, ``("single_block", i)``; SD3's
joint blocks are the host's ``double_block``s. A block in both lists is global (their code's ``is_global`` wins).

A list is written as text, one group per block kind: ``"double 1; single 32-37"``; numbers without a kind are the
double-stream (Flux) or joint (SD3) blocks: ``"0, 1, 3-4"``. The allocations themselves are ``attention/block_presets.py``'s (Stable Flow offers them too). Pure: no host
import.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...attention.block_presets import LAYERVERSE, LAYERVERSE_DEPTHS

Block = tuple[str, int]

KINDS = {"double": "double_block", "joint": "double_block", "single": "single_block"}

CUSTOM = "custom"
#: The depth each preset was calibrated on: (double or joint blocks, single blocks)
PRESET_DEPTHS = dict(LAYERVERSE_DEPTHS)


class AllocationError(ValueError):
    """A block list that does not parse, or names a block the model does not have (the glue names the input)."""


def parse_blocks(text: str) -> list[Block]:
    """The blocks a list names, in order, each once: ``"double 1; single 32-37"`` -> ``[("double_block", 1),
    ("single_block", 32), ...]``; an empty text names none."""
    blocks: list[Block] = []
    for group in text.replace("\n", ";").split(";"):
        group = group.strip()
        if not group:
            continue
        kind = "double_block"
        head, _, rest = group.partition(" ")
        word = head.rstrip(":").lower()
        if word in KINDS:
            kind, group = KINDS[word], rest
        elif not head[:1].isdigit():
            raise AllocationError(f"{head!r} is not a block kind (double, single or joint) nor a block number")
        for part in group.replace(" ", "").split(","):
            if not part:
                continue
            first, dash, last = part.partition("-")
            try:
                a, b = int(first), int(last) if dash else int(first)
            except ValueError:
                raise AllocationError(f"{part!r} is not a block number or a range such as 32-37") from None
            if b < a:
                raise AllocationError(f"the range {part!r} runs backwards; write it low to high")
            for i in range(a, b + 1):
                if (kind, i) not in blocks:
                    blocks.append((kind, i))
    return blocks


def format_blocks(blocks: list[Block]) -> str:
    """The text of a block list (``parse_blocks``'s inverse, ranges joined)."""
    groups = []
    for kind, word in (("double_block", "double"), ("single_block", "single")):
        numbers = sorted(i for k, i in blocks if k == kind)
        parts, start = [], None
        for n, i in enumerate(numbers):
            if start is None:
                start = i
            if n + 1 == len(numbers) or numbers[n + 1] != i + 1:
                parts.append(str(start) if start == i else f"{start}-{i}")
                start = None
        if parts:
            groups.append(f"{word} {', '.join(parts)}")
    return "; ".join(groups)


@dataclass(frozen=True)
class Allocation:
    """The blocks of each role; ``masked`` holds no global block (a block in both is global)."""
    masked: tuple[Block, ...]
    global_: tuple[Block, ...]

    @property
    def blocks(self) -> tuple[Block, ...]:
        return self.masked + self.global_


def allocation(masked: str, global_: str) -> Allocation:
    """The allocation two lists give (``AllocationError`` naming ``masked_blocks`` / ``global_blocks``)."""
    lists = {}
    for name, text in (("masked_blocks", masked), ("global_blocks", global_)):
        try:
            lists[name] = parse_blocks(text)
        except AllocationError as e:
            raise AllocationError(f"input '{name}' is {text!r}: {e}") from None
    glob = tuple(lists["global_blocks"])
    return Allocation(tuple(b for b in lists["masked_blocks"] if b not in glob), glob)


def preset_allocation(preset: str, masked: str, global_: str) -> Allocation:
    """The allocation of ``preset`` (the two lists where it is ``custom``)."""
    if preset == CUSTOM:
        return allocation(masked, global_)
    return allocation(*PRESETS[preset])


def scaled_blocks(blocks: list[Block], depth: tuple[int, int], to: tuple[int, int]) -> list[Block]:
    """``blocks`` of a model of ``depth`` (double, single) at the same relative depth in a model of ``to``: block
    ``i`` of ``n`` becomes ``round(i (m - 1) / (n - 1))`` of ``m`` (a shallower model's nearest block; several may
    meet in one). For the workshop's toy model, which has few blocks; not the authors'."""
    out: list[Block] = []
    for kind, i in blocks:
        n, m = depth[kind == "single_block"], to[kind == "single_block"]
        j = round(i * (m - 1) / max(n - 1, 1))
        if (kind, j) not in out:
            out.append((kind, j))
    return out


def _preset_text(blocks: dict, joint: bool) -> str:
    listed = [(kind, i) for kind in ("double_block", "single_block") for i in blocks[kind]]
    text = format_blocks(listed)
    return text.replace("double ", "", 1) if joint else text   # SD3's joint blocks: numbers without a kind


#: The authors' allocations, as written on the node (masked, global)
PRESETS = {name: tuple(_preset_text(roles[role], LAYERVERSE_DEPTHS[name][1] == 0) for role in ("masked", "global"))
           for name, roles in LAYERVERSE.items()}
PRESET_NAMES = (*PRESETS, CUSTOM)

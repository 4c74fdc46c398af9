"""KV-Edit inside the host (policies in ``policies.py``): Flow Invert keeps every block's
image keys and values while it inverts (``KeepKV``), and KV-Edit patches a clone of the model so
that the masked tokens are made anew against the kept background: the attention policy on every
Flux block, a block patch around it that runs the block on the text and the edited tokens alone (as
the authors' code runs the transformer: ``KVEditSubset`` for the host kit's ``SubsetBlock``), and an APPLY_MODEL wrapper that, once per
model call, finds the step, gives the model the inversion's latent outside the mask and hands back
the image's own latent there, so the host's Euler step ends on the image's background.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...attention.policy import same_schedule, schedule_position
from ...hostkit.devices import compute_device, free_memory
from ...hostkit.dit_attention import LAYOUT_KEY, dit_blocks, install_dit_policy, install_subset_policy, reference_tokens
from ...hostkit.errors import NodeInputError
from ...hostkit.family import model_family
from ...hostkit.keepers import KeepRequest, Keeper, keep_on, place_device, place_input, register_keeper, stored_bytes
from ...hostkit.patches import wrap_model_calls
from ...hostkit.region_masks import cell_mask
from ...hostkit.run_state import run_state
from ...hostkit.sampling import check_flow_family
from ...hostkit.schemas import io
from ...hostkit.steps import sigma_list, sigma_value
from ...inversion.methods import FLOW_EULER
from ...inversion.record import Inversion
from .policies import EditState, KeepKeysValues, KVEdit, edited_tokens

# an INVERSION's clues: "kv.k.<step>.<block kind>.<index>", "kv.v.<...>" and, with the attention mask, "kv.mask"
MASK_CLUE = "kv.mask"
WRAPPER_KEY = "invertedit_kv_edit"


def kv_name(kind: str, key: tuple[int, str, int]) -> str:
    step, block, index = key
    return f"kv.{kind}.{step}.{block}.{index}"


def kv_cache(clues: dict) -> dict:
    """``(step, block kind, index) -> (keys, values)`` from an INVERSION's clues."""
    cache: dict = {}
    for name, tensor in clues.items():
        parts = name.split(".")
        if len(parts) == 5 and parts[0] == "kv" and parts[1] in ("k", "v"):
            key = (int(parts[2]), parts[3], int(parts[4]))
            pair = cache.setdefault(key, [None, None])
            pair[parts[1] == "v"] = tensor
    return {key: tuple(pair) for key, pair in cache.items() if None not in pair}


#: The families KV-Edit edits, by their text sequence (``hostkit/family.py``): Flux.1, the authors' code's; Qwen-Image,
#: whose joint blocks take the same rotary embedding of the text and image tokens, so the same method runs on them.
#: SD3 is not among them: its positions are added to the image before the blocks, and it is outside the authors' code.
KV_FAMILIES = {"t5xxl": "Flux.1", "qwen25_7b": "Qwen-Image"}


def _check_family(node: str, model) -> None:
    family = check_flow_family(model, node)
    if family.text_sequence not in KV_FAMILIES:
        raise NodeInputError(node, f"input 'model' is {family.config_name}; KV-Edit is defined for Flux.1 (the "
                                   f"authors' code) and runs on Qwen-Image: load Flux dev or schnell, or Qwen-Image.")


def _inputs() -> list:
    return [
        place_input(),
        io.Boolean.Input("keep_keys_values", default=False, optional=True,
                         tooltip="KV-Edit (Flux or Qwen-Image, solver euler): keep every block's image keys and "
                                 "values at every step, for the KV-Edit node. Memory: about 2.9 GB per step per "
                                 "megapixel in bfloat16 (Flux's 57 blocks, Qwen-Image's 60 alike; computed): choose "
                                 "keep_values_on cpu on a consumer GPU, as the authors' code offloads."),
        io.Mask.Input("kv_mask", optional=True,
                      tooltip="KV-Edit's attn_mask option (authors: off): while inverting, the masked region "
                              "and the background do not attend to each other. Give KV-Edit the same mask."),
        io.Boolean.Input("keep_reference", default=False, optional=True,
                         tooltip="Instruction edits (Flux.1 Kontext, Qwen-Image-Edit: the prompt carries the image's "
                                 "ReferenceLatent): keep the reference's keys and values too, which KV-Edit's "
                                 "cache_reference reads instead of computing the reference at every step. About as "
                                 "much memory again as the image's (a reference of the image's size); off, KV-Edit "
                                 "computes the reference and does not need them."),
    ]


@dataclass
class KeepKV:
    """One inversion's KV-Edit keeping (``Keeping``): every block's image keys and values at every
    step, waiting on ``place`` ("device" or "cpu", the authors' offload) and, for their ``attn_mask``
    option, the mask's tokens kept apart (``edited``)."""
    node: str
    steps: int
    place: str
    edited: torch.Tensor | None
    reference: bool = False   # the reference images' keys and values kept too (KV-Edit's cache_reference reads them)
    sink: dict = field(default_factory=dict)

    def install(self, velocity) -> None:
        blocks = dit_blocks(velocity)
        if self.edited is not None:
            self.sink["mask"] = self.edited
        device = compute_device()
        on_gpu = place_device(self.place) != "cpu" and device.type != "cpu"
        fp8 = stored_bytes(self.place) == 1
        if on_gpu:   # the GPU's memory, then the system's where it does not fit
            where, budget = "the GPU", free_memory(device)
            fix = ("set keep_values_on to 'cpu, fp8' (the authors' offload, in 8 bits)" if fp8 else
                   "set keep_values_on to 'device, fp8' (half the memory) or 'cpu' (the authors' offload)")
        else:        # kept in the system's memory (the authors' offload, or a machine without a GPU)
            where, budget = "the system's memory", free_memory(torch.device("cpu"))
            fix = "keep them in 8 bits (keep_values_on 'cpu, fp8': half the memory)" if not fp8 else "free memory"
        install_dit_policy(velocity, KeepKeysValues(self.sink, keep_on(self.place), len(blocks), self.steps,
                                                    self.edited, budget, stored_bytes(self.place), where, fix,
                                                    self.reference),
                           blocks, self.node)

    def settings(self) -> dict:
        return {"keep_keys_values": True, "kv_mask": self.edited is not None, "kv_reference": self.reference}

    def clues(self) -> dict:
        clues = {}
        for key, value in self.sink.items():
            if key == "mask":
                clues[MASK_CLUE] = value.to(torch.float32)   # an inversion file holds floating-point tensors
            else:
                clues[kv_name("k", key)], clues[kv_name("v", key)] = value
        return clues


def _check(node: str, values: dict) -> None:
    if values.get("kv_mask") is not None and not values.get("keep_keys_values"):
        raise NodeInputError(node, "input 'kv_mask' is connected but keep_keys_values is off; the mask is "
                                   "KV-Edit's attention mask while keeping keys and values: turn it on, or "
                                   "disconnect the mask.")
    if values.get("keep_reference") and not values.get("keep_keys_values"):
        raise NodeInputError(node, "input 'keep_reference' is on but keep_keys_values is off; it keeps the reference "
                                   "image's keys and values with the image's for KV-Edit: turn keep_keys_values on, "
                                   "or keep_reference off.")


def _start(request: KeepRequest) -> KeepKV:
    node, samples = request.node, request.samples
    if request.method.name != FLOW_EULER.name:
        raise NodeInputError(node, f"input 'keep_keys_values' is on with solver {request.settings.get('solver')}; "
                                   f"KV-Edit inverts with euler (the authors'): set solver to euler.")
    _check_family(node, request.model)
    edited = None
    mask = request.inputs.get("kv_mask")
    if mask is not None:
        cells = cell_mask(node, mask, tuple(samples.shape[-2:]), samples.device)
        edited = edited_tokens(cells, model_family(request.model).patch_size)
    reference = bool(request.inputs.get("keep_reference"))
    if reference and not request.settings.get("reference_tokens"):
        raise NodeInputError(node, "input 'keep_reference' is on and the prompt carries no reference image; it is for "
                                   "instruction edits (the prompt through ReferenceLatent of the image's latent): "
                                   "turn it off, or give the instruction editor's prompt.")
    return KeepKV(node, request.steps, request.inputs["keep_values_on"], edited, reference)


KEEPER = register_keeper(Keeper(what="KV-Edit's keys and values", switch="keep_keys_values", inputs=_inputs,
                                defaults={"keep_keys_values": False, "kv_mask": None, "keep_reference": False},
                                check=_check, start=_start))


class KVEditLatents:
    """APPLY_MODEL wrapper of KV-Edit: once per model call, the step (``EditState.step``), the model
    given the inversion's latent in the masked tokens' unmasked cells and the background (the
    authors' blend), and the image's own latent handed back outside the mask."""

    def __init__(self, policy: KVEdit, inversion: Inversion, cells: torch.Tensor, skip: int, node: str,
                 width: int | None = None, patch: int = 2, pooled: bool = False):
        self.policy, self.node, self.skip, self.width, self.patch = policy, node, skip, width, patch
        self.pooled = pooled   # the model takes a pooled text vector (Flux's CLIP-L), which its prompt must carry
        self.trajectory, self.cells = inversion.trajectory, cells
        self.schedule = sigma_list(inversion.sampling_sigmas)

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options={},
                 **kwargs):
        state: EditState = run_state(transformer_options, self.policy, self.policy.make_state, self.node)
        references = reference_tokens(kwargs.get("ref_latents"), self.patch)
        if references != self.policy.references:
            raise NodeInputError(self.node, self._references_message(references))
        if state.trajectory is None:
            if self.width is not None and c_crossattn is not None and c_crossattn.shape[-1] != self.width:
                raise NodeInputError(self.node, f"the prompt the edit is sampled with is an embedding "
                                                f"{c_crossattn.shape[-1]} wide; the model takes {self.width}. It was "
                                                f"encoded by another model's text encoder: encode it with this model's.")
            if self.pooled and kwargs.get("y") is None:
                raise NodeInputError(self.node, "the prompt the edit is sampled with carries no pooled text vector "
                                                "(CLIP's), which this Flux model takes: it was encoded by another "
                                                "model's text encoder (Qwen-Image's: TextEncodeQwenImageEdit); encode "
                                                "it with this model's (CLIP Text Encode on Flux's DualCLIPLoader, then "
                                                "ReferenceLatent for Kontext).")
            run = sigma_list(transformer_options["sample_sigmas"])
            want = self.schedule[self.skip:]
            if not same_schedule(run, want):
                raise NodeInputError(self.node, f"the model is sampled on {len(run) - 1} steps that are not KV-Edit's "
                                                f"({len(want) - 1}: the inversion's from step {self.skip}); sample with "
                                                f"KV-Edit's SIGMAS and NOISE and the euler sampler.")
            if x.shape[-2:] != self.trajectory.shape[-2:]:
                raise NodeInputError(self.node, f"the latent being sampled is {tuple(x.shape)}, the inverted image's "
                                                f"{tuple(self.trajectory.shape[1:])}; give the image's latent as "
                                                f"latent_image.")
            state.trajectory, state.cells = self.trajectory.to(x), self.cells.to(x.device)
        step, half = schedule_position(self.schedule, sigma_value(transformer_options.get("sigmas", t)))
        if half or step >= len(self.schedule) - 1:
            raise NodeInputError(self.node, "the model was called between the inversion's steps; KV-Edit samples with "
                                            "euler (the authors'): use the euler sampler.")
        state.step = step
        trajectory, cells = state.trajectory, state.cells
        x = torch.where(cells, x, trajectory[step + 1])
        out = executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        return torch.where(cells, out, trajectory[-1])


    def _references_message(self, found: int) -> str:
        """What is wrong where the prompt the edit is sampled with carries reference images of ``found`` tokens and
        the inversion's prompt carried ``policy.references``."""
        kept = self.policy.references
        if not kept:
            return ("the prompt the edit is sampled with carries reference images (ReferenceLatent, "
                    "TextEncodeQwenImageEdit: an instruction edit) and the image was inverted without them; invert it "
                    "with the same prompt (Flow Invert's positive: the ReferenceLatent of the image's latent), so that "
                    "the kept keys and values are the instruction editor's.")
        if not found:
            return (f"the image was inverted with reference images ({kept} tokens: an instruction edit) and the "
                    f"prompt the edit is sampled with (or its negative) carries none; sample with the same prompt "
                    f"(ReferenceLatent of the image's latent after the instruction; on Qwen-Image-Edit the negative "
                    f"through TextEncodeQwenImageEdit with the image too).")
        return (f"the prompt the edit is sampled with carries reference images of {found} tokens and the inversion's "
                f"{kept}; give the edit the reference the image was inverted with (the same latent, at the same size).")


class KVEditSubset:
    """Which tokens KV-Edit's blocks run on (``hostkit/dit_attention.py``'s ``SubsetBlock``): the text, the edited
    tokens and the reference's unless cached, as the authors' code runs the transformer on the text and the edited
    tokens; the background's rows keep the block's input (the image's latent replaces their outputs:
    ``KVEditLatents``)."""

    def __init__(self, policy: KVEdit, node: str):
        self.policy, self.node = policy, node

    def __call__(self, options: dict, img: torch.Tensor):
        state: EditState = run_state(options, self.policy, self.policy.make_state, self.node)
        text, grid = options[LAYOUT_KEY]
        if state.text != text:
            self.policy.constants(text, grid[0] * grid[1], img.device, img.dtype, state)
        return state.rows, state.image_rows, text + grid[0] * grid[1] + self.policy.references, state


def kv_edit(node: str, model, inversion: Inversion, mask, skip: int, scale: float, cache_reference: bool = False):
    """A clone of ``model`` that remakes the masked region against the background ``inversion``
    kept, and the sigmas to sample it on (the inversion's from step ``skip``). An inversion made with an
    instruction editor's reference images (``reference_tokens``) is edited with them, computed at every step or
    with ``cache_reference`` taken from the inversion."""
    _check_family(node, model)
    references = int(inversion.settings.get("reference_tokens", 0))
    if cache_reference and not references:
        raise NodeInputError(node, "input 'cache_reference' is on and the image was inverted without reference "
                                   "images: it takes an instruction editor's reference tokens (Flux.1 Kontext's "
                                   "ReferenceLatent, Qwen-Image-Edit's) from the inversion; turn it off, or invert "
                                   "with the instruction's prompt and the image's ReferenceLatent.")
    if cache_reference and not inversion.settings.get("kv_reference"):
        raise NodeInputError(node, "input 'cache_reference' is on and the inversion kept no keys and values of the "
                                   "reference image; invert with Flow Invert's keep_reference on (it keeps them with "
                                   "the image's), or turn cache_reference off.")
    cache = kv_cache(inversion.clues)
    if not cache:
        raise NodeInputError(node, f"input 'inversion' kept no keys and values ({inversion.describe()}); invert with "
                                   f"Flow Invert's keep_keys_values on (solver euler).")
    steps = len(inversion.sampling_sigmas) - 1
    if not 0 <= skip < steps:
        raise NodeInputError(node, f"input 'skip_steps' is {skip}; give 0 to {steps - 1} (the inversion has {steps} "
                                   f"steps; authors: 4 of 28).")
    blocks = dit_blocks(model)
    kept_blocks = sorted({key[1:] for key in cache})
    if kept_blocks != sorted(blocks):
        raise NodeInputError(node, f"the inversion kept keys and values of {len(kept_blocks)} blocks and the model has "
                                   f"{len(blocks)}; use the model it was inverted with.")
    missing = [s for s in range(skip, steps) if (s, *blocks[0]) not in cache]
    if missing:
        raise NodeInputError(node, f"the inversion kept no keys and values for steps {missing[0]} to {missing[-1]}; "
                                   f"invert again with keep_keys_values on.")
    cells = cell_mask(node, mask, tuple(inversion.latent_shape[-2:]), inversion.trajectory.device)
    edited = edited_tokens(cells, model_family(model).patch_size)
    kept_mask = inversion.clues.get(MASK_CLUE)
    if kept_mask is not None and not torch.equal(kept_mask.to(edited.device).bool(), edited):
        raise NodeInputError(node, "input 'mask' is not the mask the inversion kept apart (Flow Invert's kv_mask, "
                                   "KV-Edit's attn_mask option); give the same mask, or invert again with this one.")
    policy = KVEdit(cache, edited, scale, references, cache_reference, bool(inversion.settings.get("kv_reference")))
    patched = model.clone()
    install_subset_policy(patched, policy, blocks, KVEditSubset(policy, node), node)
    wrap_model_calls(patched, WRAPPER_KEY, KVEditLatents(policy, inversion, cells, skip, node,
                                                         model_family(model).context_dim, model_family(model).patch_size,
                                                         model_family(model).pooled_dim is not None))
    return patched, inversion.sampling_sigmas[skip:]


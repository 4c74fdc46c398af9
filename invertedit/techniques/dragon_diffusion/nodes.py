"""DragonDiffusion / DiffEditor: Move (and resize) and Drag on an inverted image (the energies in
``energy.py``, the schedule and step in ``schedule.py``, the GUIDER in ``glue.py``)."""
from __future__ import annotations

from functools import partial

import torch

from ...guidance.spatial import (
    POINTS_FORMAT,
    check_move,
    check_points,
    moved_mask,
    parse_points,
    points_from_masks,
    region_box,
)
from ...hostkit.errors import (
    NodeInputError,
    check_conditioning,
    check_finite,
    check_inversion,
)
from ...hostkit.gradients import check_no_control
from ...hostkit.sampling import check_model_family
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import DDIM
from . import DRAG, MOVE, ROW
from .energy import (
    GUIDANCE_FACTOR,
    RegionError,
    code_shift,
    drag_energies,
    drag_masks,
    drag_region,
    dragged_start,
    move_edit_region,
    move_energies,
    move_masks,
    move_noise_region,
    moved_start,
)
from .glue import DragonEdit, DragonGuider, patched_model
from .schedule import DIFFEDITOR, VARIANTS

PIXELS_PER_CELL = 8   # the SD family's VAE (check_model_family admits no other): a latent cell is 8x8 pixels

WIRING = ("Wire it: Load Image -> VAE Encode -> DDIM Invert (the prompt, cfg 1; its steps and scheduler) -> this node's "
          "'inversion'; the same model and prompt here, an empty prompt as 'negative'. Then SamplerCustomAdvanced with "
          "this node's GUIDER and LATENT, DisableNoise, KSamplerSelect 'ddim' (or 'euler') and DDIM Invert's SIGMAS; "
          "VAE Decode.")


def _common_inputs(node: str, energy_default: float) -> list:
    s = ROW.settings_of(node)
    return [
        io.Model.Input("model", tooltip="The model the image was inverted with (an SD1.x, SD2.x or SDXL UNet; the "
                                        "authors use SD1.5)."),
        io.Conditioning.Input("positive", tooltip="The prompt the image was inverted with (the code edits with the "
                                                  "inversion's prompt: it describes the image, not the edit)."),
        io.Conditioning.Input("negative", tooltip="The unconditional prompt (the code's: empty)."),
        InversionSocket.Input("inversion", tooltip="DDIM Invert's INVERSION of the image (the code inverts with the "
                                                  "prompt alone: cfg 1, 50 DDIM steps); its latents are the memory "
                                                  "bank and the features' reference."),
    ], [
        io.Float.Input("cfg", default=s["cfg"], min=1.0, max=30.0, step=0.1, round=0.01,
                       tooltip=f"Classifier-free guidance of the edit (code: {s['cfg']:g})."),
        io.Float.Input("energy_scale", default=s["energy_scale"], min=0.0, max=100.0, step=0.05, round=0.001,
                       tooltip=f"Strength of the energy guidance, in thousands as the demo's slider (code: "
                               f"{energy_default:g}, i.e. {energy_default * 1e3:g}); 0 samples the start latent with the "
                               f"memory bank alone."),
        io.Float.Input("w_edit", default=s["w_edit"], min=0.0, max=100.0, step=0.1,
                       tooltip=f"Weight of the edit energy (code: {s['w_edit']:g})."),
        io.Float.Input("w_content", default=s["w_content"], min=0.0, max=100.0, step=0.1,
                       tooltip=f"Weight of the content energy that keeps the rest of the image (code: {s['w_content']:g})."),
    ], [
        io.Float.Input("sde_strength", default=s["sde_strength"], min=0.0, max=1.0, step=0.05,
                       tooltip=f"DiffEditor's regional SDE: DDIM's eta inside the edited region on steps 11-19 of 50 "
                               f"(code: {s['sde_strength']:g}); 0: deterministic DDIM."),
        io.Int.Input("seed", default=s["seed"], min=0, max=0xFFFFFFFF,
                     tooltip=f"Seed of the regional SDE's noise (code: {s['seed']})."),
        io.Combo.Input("variant", options=list(VARIANTS), default=DIFFEDITOR,
                       tooltip="DiffEditor: the released code's default (alg 'D+': guidance every step before 10, then "
                               "every other one before 30, regional SDE, time travel on the even steps 22-28). "
                               "DragonDiffusion: the code's alg 'D' (guidance at every step before 30, plain DDIM)."),
    ]


_OUTPUTS = [io.Guider.Output(tooltip="For SamplerCustomAdvanced (DisableNoise, ddim, DDIM Invert's SIGMAS)."),
            io.Latent.Output(display_name="latent", tooltip="The start latent: the inverted latent with the object's "
                                                           "part pasted where it goes; sample it with the GUIDER.")]


def _checks(node: str, node_id: str, model, positive, negative, inversion, **numbers) -> object:
    check_model_family(model, node)
    inversion = check_inversion(node, inversion, model=model, methods=(DDIM,))
    for name, cond in (("positive", positive), ("negative", negative)):
        check_conditioning(node, name, cond, model)
        check_no_control(node, name, cond)
    check_finite(node, **numbers)
    for name, value in numbers.items():
        if value < 0:
            raise NodeInputError(node, f"input '{name}' is {value:g}; give 0 or more (code: "
                                       f"{ROW.settings.get(f'{node_id}.{name}', 0)}).")
    return inversion


def _one_mask(node: str, name: str, mask: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """A single MASK plane ``[H, W]`` at the image's size (the latent's aspect)."""
    if mask.ndim == 3:
        if mask.shape[0] != 1:
            raise NodeInputError(node, f"input '{name}' is a batch of {mask.shape[0]} masks; connect one.")
        mask = mask[0]
    if mask.ndim != 2:
        raise NodeInputError(node, f"input '{name}' has shape {tuple(mask.shape)}; connect a MASK.")
    (height, width), (h, w) = mask.shape, latent.shape[-2:]
    if (height, width) != (h * PIXELS_PER_CELL, w * PIXELS_PER_CELL):
        raise NodeInputError(node, f"input '{name}' is {width}x{height} px but the inverted image's latent is {w}x{h} "
                                   f"(an image of {w * PIXELS_PER_CELL}x{h * PIXELS_PER_CELL} px); paint the mask on the "
                                   f"inverted image (Load Image's MASK) or scale it to the image's size.")
    return mask.float()


def _guider(node, model, positive, negative, inversion, edit, cfg, energy_scale, sde_strength, seed, variant, concat):
    m, patches = patched_model(model, node, concat)
    guider = DragonGuider(m, patches, edit, inversion, energy_scale, sde_strength, seed, variant, node)
    guider.set_named_conds({"positive": positive, "negative": negative})
    guider.set_cfg(cfg)
    return guider


class DragonDiffusionMove(io.ComfyNode):
    NAME = "DragonDiffusion Move"

    @classmethod
    def define_schema(cls) -> io.Schema:
        s = ROW.settings_of(MOVE)
        head, guidance, tail = _common_inputs(MOVE, s["energy_scale"])
        return io.Schema(
            node_id=MOVE,
            display_name=cls.NAME,
            category="InvertEdit/spatial",
            description=("DragonDiffusion / DiffEditor (Mou et al.) move and resize: the object in 'mask' goes dx, dy "
                         "pixels and is scaled by 'scale' about its centre, its appearance kept. The inverted latent of the "
                         "object is pasted where it goes, then sampling is guided by energies on the UNet decoder's "
                         "features (the moved object like the original, the rest unchanged, the old place filled like "
                         "the background) while the decoder's self-attention reads the inversion's keys and values. " +
                         WIRING + " Costs about 4 UNet rows and 2 backward passes a guided step."),
            inputs=[
                *head,
                io.Mask.Input("mask", tooltip="The object to move, at the image's size (Load Image's painted MASK, or "
                                              "Attention Store's mask of its word)."),
                io.Float.Input("dx", default=0.0, min=-8192.0, max=8192.0, step=1.0,
                               tooltip="Offset to the right, in image pixels (the demo: the drag's end minus its start)."),
                io.Float.Input("dy", default=0.0, min=-8192.0, max=8192.0, step=1.0,
                               tooltip="Offset down, in image pixels."),
                io.Float.Input("scale", default=s["scale"], min=0.05, max=8.0, step=0.05,
                               tooltip="Resize factor about the object's centre (code's resize_scale: 1)."),
                *guidance,
                io.Float.Input("w_contrast", default=s["w_contrast"], min=0.0, max=100.0, step=0.05,
                               tooltip=f"Weight of the contrast energy: the old place unlike the object (code: "
                                       f"{s['w_contrast']:g})."),
                io.Float.Input("w_inpaint", default=s["w_inpaint"], min=0.0, max=100.0, step=0.05,
                               tooltip=f"Weight of the inpainting energy: the old place like the background on average "
                                       f"(code: {s['w_inpaint']:g})."),
                *tail,
                io.Mask.Input("reference_mask", optional=True,
                              tooltip="Optional (the demo's mask_ref): the region whose look the old place should take; "
                                      "default: everything the object does not cover."),
            ],
            outputs=[*_OUTPUTS, io.Mask.Output(display_name="moved_mask",
                                               tooltip="Where the object goes (the mask moved and scaled).")],
        )

    @classmethod
    def execute(cls, model, positive, negative, inversion, mask, dx, dy, scale, cfg, energy_scale, w_edit, w_content,
                w_contrast, w_inpaint, sde_strength, seed, variant, reference_mask=None) -> io.NodeOutput:
        node = cls.NAME
        inversion = _checks(node, MOVE, model, positive, negative, inversion, cfg=cfg, energy_scale=energy_scale,
                            w_edit=w_edit, w_content=w_content, w_contrast=w_contrast, w_inpaint=w_inpaint,
                            sde_strength=sde_strength)
        latent = inversion.latent
        plane = _one_mask(node, "mask", mask, latent)
        check_move(node, plane, dx, dy, scale)
        reference = None if reference_mask is None else _one_mask(node, "reference_mask", reference_mask, latent)
        if reference is not None and region_box(reference) is None:
            raise NodeInputError(node, "input 'reference_mask' marks no region; paint the background the old place "
                                       "should look like, or disconnect it.")
        height, width = plane.shape
        h, w = latent.shape[-2:]
        cdx, cdy = code_shift(width, height, region_box(plane).centre, dx, dy, scale)
        try:
            masks = move_masks(plane, cdx, cdy, scale, (2 * h, 2 * w), reference)
            start = moved_start(latent, plane, cdx, cdy, scale)
        except RegionError:
            raise NodeInputError(node, f"inputs 'dx' {dx:g}, 'dy' {dy:g} and 'scale' {scale:g} take part of the region "
                                       f"off the picture on the model's grid; move it a little less.") from None
        if not bool(masks.current.any()):
            raise NodeInputError(node, f"input 'mask' covers less than one cell of the energies' grid ({2 * w}x{2 * h}) "
                                       f"once scaled by {scale:g}; paint a larger region or give a larger scale.")
        edit = DragonEdit(partial(move_energies, w_edit=w_edit, w_content=w_content, w_contrast=w_contrast,
                                  w_inpaint=w_inpaint), masks, move_edit_region(masks, (h, w)),
                          move_noise_region(masks, (h, w)), GUIDANCE_FACTOR["move"], concat=False)
        guider = _guider(node, model, positive, negative, inversion, edit, cfg, energy_scale, sde_strength, seed,
                         variant, concat=False)
        moved = moved_mask(plane, dx, dy, scale)[None]
        return io.NodeOutput(guider, {"samples": start}, moved)


class DragonDiffusionDrag(io.ComfyNode):
    NAME = "DragonDiffusion Drag"

    @classmethod
    def define_schema(cls) -> io.Schema:
        s = ROW.settings_of(DRAG)
        head, guidance, tail = _common_inputs(DRAG, s["energy_scale"])
        return io.Schema(
            node_id=DRAG,
            display_name=cls.NAME,
            category="InvertEdit/spatial",
            description=("DragonDiffusion / DiffEditor (Mou et al.) drag: each handle point's content goes to its target "
                         "point inside the editable 'mask', the rest kept. Energies on the UNet decoder's features pull a "
                         "3x3 patch at each target towards the original's at its handle; the decoder's self-attention also "
                         "reads the inversion's keys and values. " + WIRING),
            inputs=[
                *head,
                io.Mask.Input("mask", tooltip="The region that may change (the demo's mask), at the image's size."),
                io.String.Input("points", default="", multiline=True,
                                tooltip=f"Handle -> target pairs: {POINTS_FORMAT}; e.g. '150,170 -> 200,170'. Leave "
                                        f"empty and connect handle_mask and target_mask instead."),
                *guidance,
                io.Float.Input("w_inpaint", default=s["w_inpaint"], min=0.0, max=100.0, step=0.05,
                               tooltip=f"Weight of the energy that makes the handle's old place unlike before (code: "
                                       f"{s['w_inpaint']:g})."),
                *tail,
                io.Mask.Input("handle_mask", optional=True, tooltip="Optional: a dot where the handle is (its centre is "
                                                                    "the point), instead of 'points'."),
                io.Mask.Input("target_mask", optional=True, tooltip="Optional: a dot where the target is, with handle_mask."),
            ],
            outputs=list(_OUTPUTS),
        )

    @classmethod
    def execute(cls, model, positive, negative, inversion, mask, points, cfg, energy_scale, w_edit, w_content,
                w_inpaint, sde_strength, seed, variant, handle_mask=None, target_mask=None) -> io.NodeOutput:
        node = cls.NAME
        inversion = _checks(node, DRAG, model, positive, negative, inversion, cfg=cfg, energy_scale=energy_scale,
                            w_edit=w_edit, w_content=w_content, w_inpaint=w_inpaint, sde_strength=sde_strength)
        latent = inversion.latent
        plane = _one_mask(node, "mask", mask, latent)
        if region_box(plane) is None:
            raise NodeInputError(node, "input 'mask' marks no region (no pixel above 0.5); paint the region that may "
                                       "change, around the handles and targets.")
        height, width = plane.shape
        if (handle_mask is None) != (target_mask is None):
            raise NodeInputError(node, "connect both 'handle_mask' and 'target_mask', or neither (and write 'points').")
        if handle_mask is not None:
            if points.strip():
                raise NodeInputError(node, "input 'points' is written and handle_mask/target_mask are connected; use one "
                                           "of the two.")
            pairs = points_from_masks(node, handle_mask, target_mask)
        else:
            pairs = parse_points(node, points)
        check_points(node, pairs, width, height)
        h, w = latent.shape[-2:]
        masks = drag_masks(plane, pairs, (2 * h, 2 * w))
        start = dragged_start(latent, masks)
        region = drag_region(masks, (h, w))
        edit = DragonEdit(partial(drag_energies, w_edit=w_edit, w_content=w_content, w_inpaint=w_inpaint), masks,
                          region, region, GUIDANCE_FACTOR["drag"], concat=True)
        guider = _guider(node, model, positive, negative, inversion, edit, cfg, energy_scale, sde_strength, seed,
                         variant, concat=True)
        return io.NodeOutput(guider, {"samples": start})


NODES = [DragonDiffusionMove, DragonDiffusionDrag]

"""DragDiffusion (Shi et al., CVPR 2024; the authors' code Yujun-Shi/DragDiffusion): the identity LoRA and the
drag (math in ``drag.py``, the final denoising's attention in ``reference.py``, host glue in ``glue.py``)."""
from __future__ import annotations

from ...guidance.spatial import POINTS_FORMAT, check_points, parse_points, points_from_masks
from ...hostkit.errors import NodeInputError, check_at_least, check_conditioning, check_finite, check_inversion
from ...hostkit.gradients import check_no_control
from ...hostkit.inverters import inverted_latent
from ...hostkit.keys import PAIR_RUN_KEY
from ...hostkit.attention_driver import install_policy
from ...hostkit.decoder_features import pixels_per_latent
from ...hostkit.layout import self_attention_layers
from ...hostkit.pair import PairRun, prepare_pair_model
from ...hostkit.patches import wrap_runs
from ...hostkit.quantised import check_trainable
from ...hostkit.sampling import check_latents, check_model_family
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import DDIM
from . import ROW
from .drag import DragSettings, image_points
from .glue import LORA_NODE, NODE, drag, feature_entry, train_lora, warn_other_prompt
from .reference import ReferenceSchedule, ReferenceSelfAttention

_LORA = ROW.settings_of("InvertEditDragDiffusionLoRA")
_DRAG = ROW.settings_of("InvertEditDragDiffusion")


class DragDiffusionLoRA(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDragDiffusionLoRA",
            display_name=LORA_NODE,
            category="InvertEdit/spatial",
            description=("DragDiffusion's identity LoRA (the authors' train_lora): a rank-16 LoRA on the UNet's attention "
                         "projections, fitted to the one image with its prompt (80 AdamW steps, lr 5e-4, batches of 4), "
                         "so that the inversion and the drag keep the image's identity. Outputs the MODEL with the "
                         "LoRA: invert the image with it (DDIM Invert) and give it to DragDiffusion; the LoRA output "
                         "can be saved (Save LoRA Weights) and loaded again (LoraLoaderModelOnly) instead of training."),
            inputs=[
                io.Model.Input("model", tooltip="The checkpoint's MODEL (SD1.5 in the code)."),
                io.Conditioning.Input("positive", tooltip="The image's prompt (CLIP Text Encode), the one the drag uses "
                                                          "too (the code trains with the prompt the user types)."),
                io.Latent.Input("latent", tooltip="VAE Encode of the image (one image)."),
                io.Int.Input("steps", default=_LORA["steps"], min=0, max=10000,
                             tooltip="Training steps (code: 80); 0 returns the model with an identity LoRA."),
                io.Float.Input("learning_rate", default=_LORA["learning_rate"], min=0.0, max=1.0, step=0.00001,
                               tooltip="AdamW's learning rate (code: 5e-4; weight decay 1e-2)."),
                io.Int.Input("rank", default=_LORA["rank"], min=1, max=256, tooltip="The LoRA's rank (code: 16)."),
                io.Int.Input("batch_size", default=_LORA["batch_size"], min=1, max=64,
                             tooltip="Copies of the image per step, each with its own noise and timestep (code: 4)."),
                io.Int.Input("seed", default=0, min=0, max=2 ** 31 - 1,
                             tooltip="Seed of the LoRA's initialisation and the noise draws (code: 0)."),
            ],
            outputs=[io.Model.Output(display_name="model", tooltip="The input model with the image's LoRA."),
                     io.LoraModel.Output(display_name="lora", tooltip="The LoRA (Save LoRA Weights writes it)."),
                     io.LossMap.Output(display_name="loss", tooltip="The loss at each step (Plot Loss Graph).")],
        )

    @classmethod
    def execute(cls, model, positive, latent, steps, learning_rate, rank, batch_size, seed) -> io.NodeOutput:
        family = check_model_family(model, LORA_NODE)
        check_trainable(LORA_NODE, model)
        check_finite(LORA_NODE, learning_rate=learning_rate)
        check_at_least(LORA_NODE, 0, steps=steps)
        check_at_least(LORA_NODE, 1, rank=rank, batch_size=batch_size)
        if learning_rate < 0:
            raise NodeInputError(LORA_NODE, "input 'learning_rate' must be 0 or more (code: 0.0005).")
        samples = check_latents(LORA_NODE, "latent", latent, model, "connect VAE Encode of the image to drag.")
        if samples.shape[0] != 1:
            raise NodeInputError(LORA_NODE, f"input 'latent' holds {samples.shape[0]} images; connect VAE Encode of "
                                            f"the one image to drag.")
        check_conditioning(LORA_NODE, "positive", positive, model)
        check_no_control(LORA_NODE, "positive", positive)
        patched, lora, losses = train_lora(model, samples, positive, steps, learning_rate, rank, batch_size, seed,
                                           family.parameterisation == "v")
        return io.NodeOutput(patched, lora, {"loss": list(losses)})


class DragDiffusion(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditDragDiffusion",
            display_name=NODE,
            category="InvertEdit/spatial",
            description=(
                "DragDiffusion (Shi et al.): moves handle points of a real image to target points. It optimises the "
                "latent DDIM Invert left at its start step (motion supervision on the UNet decoder's features, point "
                "tracking), then the final denoising takes the original latent as the self-attention reference.\n"
                "Wiring (the code's defaults): Load Checkpoint -> DragDiffusion LoRA (optional; the code trains it) "
                "-> DDIM Invert (that MODEL, the image's prompt, steps 50, scheduler ddim_uniform, start_at_step 15 = "
                "inversion strength 0.7, cfg 1) -> DragDiffusion (the same MODEL, the prompt, the INVERSION, the "
                "points) -> KSamplerAdvanced (this node's MODEL and LATENT pair, the same prompt as positive, cfg 1, "
                "sampler ddim, scheduler ddim_uniform, steps 50, start_at_step 15, add_noise disable) -> VAE Decode: "
                "row 0 is the reconstruction, row 1 the drag."),
            inputs=[
                io.Model.Input("model", tooltip="The MODEL the image was inverted with (with the DragDiffusion LoRA "
                                                "where you trained one)."),
                io.Conditioning.Input("positive", tooltip="The image's prompt: the one it was inverted with (the code "
                                                          "uses one prompt throughout, no guidance)."),
                InversionSocket.Input("inversion", tooltip="From DDIM Invert with this model: steps 50, start_at_step 15 "
                                                          "(the code's inversion strength 0.7); the drag optimises the "
                                                          "latent there."),
                io.String.Input("points", multiline=True, default="",
                                tooltip=f"Handle -> target points in image pixels: {POINTS_FORMAT}, e.g. "
                                        f"'120,200 -> 160,200'. Or leave empty and connect handle_mask and "
                                        f"target_mask."),
                io.Int.Input("n_pix_step", default=_DRAG["n_pix_step"], min=0, max=10000,
                             tooltip="Optimisation steps of the latent (code: 80); the loop stops earlier when every "
                                     "handle is within 2 px of the half-size supervision grid of its target."),
                io.Float.Input("lr", default=_DRAG["lr"], min=0.0, max=10.0, step=0.001,
                               tooltip="Adam's learning rate on the latent (code: 0.01)."),
                io.Float.Input("lam", default=_DRAG["lam"], min=0.0, max=100.0, step=0.01,
                               tooltip="Weight of the term that keeps the step's result outside the editable mask "
                                       "(code: 0.1); without a mask there is no such term."),
                io.Int.Input("r_m", default=_DRAG["r_m"], min=0, max=32,
                             tooltip="Motion supervision's patch radius, in pixels of the half-size grid (code: 1)."),
                io.Int.Input("r_p", default=_DRAG["r_p"], min=0, max=64,
                             tooltip="Point tracking's search radius, in pixels of the half-size grid (code: 3)."),
                io.Int.Input("feature_idx", default=_DRAG["feature_idx"], min=0, max=16,
                             tooltip="The decoder level whose features supervise (code: 3, SD1.5's third up block; "
                                     "0 is the middle block). The toy model has levels 0-2: give 2."),
                io.Int.Input("start_step", default=_DRAG["start_step"], min=0, max=1000,
                             tooltip="First step of the final denoising whose self-attention reads the original "
                                     "latent's keys and values (code: 0)."),
                io.Int.Input("start_layer", default=_DRAG["start_layer"], min=0, max=200,
                             tooltip="First self-attention layer that does, in execution order (code: 10 of SD1.5's "
                                     "16; the toy model has 10 layers: 6)."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional editable region (the code's mask): outside it the latent's denoising "
                                      "step is kept (weight lam). Without it, or empty, the whole image may change. "
                                      "Any size (Load Image's painted mask too): resized to the image."),
                io.Mask.Input("handle_mask", optional=True,
                              tooltip="Optional, with target_mask: a painted dot whose centre is a handle point "
                                      "(added to the text's points; any size, rescaled to the image)."),
                io.Mask.Input("target_mask", optional=True,
                              tooltip="Optional, with handle_mask: a painted dot whose centre is its target point."),
            ],
            outputs=[
                io.Model.Output(display_name="model", tooltip="The model with the reference self-attention: sample "
                                                              "the LATENT pair with it."),
                io.Latent.Output(display_name="latent", tooltip="Row 0 the inverted latent (reconstruction), row 1 "
                                                                "the dragged one: KSamplerAdvanced from the inversion's "
                                                                "start step, add_noise disable."),
                io.String.Output(display_name="tracked_points",
                                 tooltip="Where point tracking left the handles (image pixels), handle -> target."),
            ],
        )

    @classmethod
    def execute(cls, model, positive, inversion, points, n_pix_step, lr, lam, r_m, r_p, feature_idx, start_step,
                start_layer, mask=None, handle_mask=None, target_mask=None) -> io.NodeOutput:
        check_model_family(model, NODE)
        check_finite(NODE, lr=lr, lam=lam)
        check_at_least(NODE, 0, n_pix_step=n_pix_step, r_m=r_m, r_p=r_p, start_step=start_step,
                       start_layer=start_layer)
        if lr < 0 or lam < 0:
            raise NodeInputError(NODE, "inputs 'lr' and 'lam' must be 0 or more (code: 0.01 and 0.1).")
        inversion = check_inversion(NODE, inversion, model=model, methods=(DDIM,))
        if inversion.start_step >= inversion.steps:
            raise NodeInputError(NODE, "input 'inversion' did not invert (start_at_step equals its steps); invert with "
                                       "start_at_step 15 of 50 steps (the code's inversion strength 0.7).")
        if inversion.latent.shape[0] != 1:
            raise NodeInputError(NODE, f"input 'inversion' holds {inversion.latent.shape[0]} images; invert one image.")
        check_conditioning(NODE, "positive", positive, model)
        check_no_control(NODE, "positive", positive)
        scale = pixels_per_latent(model)
        height, width = inversion.latent.shape[-2] * scale, inversion.latent.shape[-1] * scale
        pairs = parse_points(NODE, points) if points.strip() or (handle_mask is None and target_mask is None) else []
        if (handle_mask is None) != (target_mask is None):
            raise NodeInputError(NODE, f"input '{'handle_mask' if handle_mask is not None else 'target_mask'}' is "
                                       f"connected without the other; connect both (a dot each), or neither.")
        if handle_mask is not None:   # masks of another size (Load Image's, before the image was scaled): rescaled
            (hx, hy), (tx, ty) = points_from_masks(NODE, handle_mask, target_mask)
            sx, sy = width / handle_mask.shape[-1], height / handle_mask.shape[-2]
            ux, uy = width / target_mask.shape[-1], height / target_mask.shape[-2]
            pairs += [((hx * sx, hy * sy), (tx * ux, ty * uy))]
        check_points(NODE, pairs, width, height)
        layers = self_attention_layers(model)
        if start_layer >= len(layers):
            raise NodeInputError(NODE, f"input 'start_layer' is {start_layer} but this UNet has {len(layers)} "
                                       f"self-attention layers (0 to {len(layers) - 1}).")
        feature_entry(model, feature_idx)
        warn_other_prompt(positive, inversion)
        settings = DragSettings(n_pix_step=n_pix_step, lr=lr, r_m=r_m, r_p=r_p, lam=lam, feature_idx=feature_idx)
        dragged, tracked, _, _ = drag(model, positive, inversion, pairs, mask, settings)
        m, blocks, pair_latent = prepare_pair_model(model, inverted_latent(inversion), ("attn1",), NODE)
        install_policy(m, ReferenceSelfAttention(ReferenceSchedule(start_step, start_layer), layers), blocks, NODE,
                       ("attn1",))
        wrap_runs(m, PAIR_RUN_KEY, PairRun(positive, NODE))
        pair_latent["samples"] = pair_latent["samples"].clone()
        pair_latent["samples"][1:] = dragged.to(pair_latent["samples"])
        text = "; ".join(f"{hx:.0f},{hy:.0f} -> {tx:.0f},{ty:.0f}" for (hx, hy), (_, (tx, ty))
                         in zip(image_points(tracked, height, width), pairs))
        return io.NodeOutput(m, pair_latent, text)


NODES = [DragDiffusionLoRA, DragDiffusion]

"""KV-Edit (Zhu et al.): the masked region of a Flux (or Qwen-Image) image made anew while the background keeps
its own keys, values and latent. Policies in ``policies.py``, host glue in
``glue.py``."""
from __future__ import annotations

from ...hostkit.errors import check_finite, check_inversion
from ...hostkit.flow_inverters import InvertedNoise, random_noise
from ...hostkit.schemas import io
from ...hostkit.sockets import Inversion as InversionSocket
from ...inversion.methods import FLOW_EULER
from . import ROW
from .glue import kv_edit


class KVEditNode(io.ComfyNode):
    NAME = "KV-Edit"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditKVEdit",
            display_name=cls.NAME,
            category="InvertEdit/flow",
            description=(
                "KV-Edit (Zhu et al.) on a Flux or Qwen-Image model: only the masked region is made anew; in every block the "
                "background's keys and values are those Flow Invert kept (keep_keys_values on, solver euler), and its "
                "latent is the image's, so the background is kept as it is. Sample with SamplerCustomAdvanced: this "
                "node's MODEL with the target prompt (FluxGuidance, authors: 5.5; Qwen-Image: CFGGuider), its NOISE and SIGMAS, the euler "
                "sampler, the image's latent as latent_image. On an instruction editor (Flux.1 Kontext, "
                "Qwen-Image-Edit) it locks the edit: invert the image with the instruction's prompt and its "
                "ReferenceLatent, sample with the same; outside the mask the output is the input, at its own size."),
            inputs=[
                io.Model.Input("model", tooltip="The Flux or Qwen-Image model the image was inverted with."),
                InversionSocket.Input("inversion", tooltip="Flow Invert's inversion, made with keep_keys_values on "
                                                           "(authors: euler, 28 steps, guidance 1.5)."),
                io.Mask.Input("mask", tooltip="The region to edit (white); the rest is kept. Painted (the authors' "
                                                      "brush): right click the image in Load Image > Open in "
                                                      "MaskEditor, paint, save, and connect Load Image's MASK (any "
                                                      "size of the image's shape: scaled to the latent); or Attention "
                                                      "Store's mask of a word on the same inversion. Empty or whole: "
                                                      "refused."),
                io.Int.Input("skip_steps", default=ROW.settings["InvertEditKVEdit.skip_steps"], min=0, max=1000,
                             tooltip="Steps of the schedule skipped: the edit starts at the inversion's latent this "
                                     "far down (authors: 4 of 28). More keeps more of the masked region's layout; fewer "
                                     "lets the edit follow the text more, at the risk of a region that does not join "
                                     "its background (the authors' advice; then raise attn_scale)."),
                io.Float.Input("attn_scale", default=ROW.settings["InvertEditKVEdit.attn_scale"], min=0.0, max=10.0, step=0.1,
                               tooltip="Added to the attention logits of the background's keys (authors: 1; raise it "
                                       "where a large edit does not join the background; too high and the region is "
                                       "redrawn as background)."),
                io.Boolean.Input("re_init", default=False,
                                 tooltip="Start the masked region from the image noised with fresh noise (seed) "
                                         "instead of its inversion (authors: off). On, the edit follows the text more, at the "
                                         "risk of a region that does not join its background (the authors' advice)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="The fresh noise's seed, with re_init."),
                io.Boolean.Input("cache_reference", default=False, optional=True,
                                 tooltip="Instruction edits (Flux.1 Kontext, Qwen-Image-Edit: the image inverted with "
                                         "the instruction and its ReferenceLatent): take the reference image's keys and "
                                         "values from the inversion instead of computing its tokens at every step "
                                         "(RegionE's and CacheEdit's idea; off: computed, the lock's exact reading). On, a "
                                         "step computes the text and the edited region alone: docs/measurements.md gives "
                                         "its speed and its difference to the computed one."),
            ],
            outputs=[io.Model.Output(tooltip="The model to sample the edit with."),
                     io.Noise.Output(tooltip="Where the edit starts: SamplerCustomAdvanced's noise, with the image's "
                                             "latent as latent_image."),
                     io.Sigmas.Output(tooltip="The schedule to sample on: the inversion's from skip_steps.")],
        )

    @classmethod
    def execute(cls, model, inversion, mask, skip_steps, attn_scale, re_init, seed,
                cache_reference=False) -> io.NodeOutput:
        check_inversion(cls.NAME, inversion, model=model, methods=(FLOW_EULER,),
                        why={"rf-solver": " (KV-Edit keeps Euler's evaluations: invert with solver euler)",
                             "fireflow": " (KV-Edit keeps Euler's evaluations: invert with solver euler)"})
        check_finite(cls.NAME, attn_scale=attn_scale)
        patched, sigmas = kv_edit(cls.NAME, model, inversion, mask, skip_steps, attn_scale, bool(cache_reference))
        # the authors' start: the latent kept for the first step (the inversion's one step further down)
        noise = random_noise(seed) if re_init else InvertedNoise(inversion, cls.NAME, start=skip_steps,
                                                                 state=skip_steps + 1)
        return io.NodeOutput(patched, noise, sigmas)


NODES = [KVEditNode]

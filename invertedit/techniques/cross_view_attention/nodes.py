"""Cross-View Attention's node: the view count from the view set's LATENT, the reference views from
the user (``attention/cross_view.py``), the patch from the host kit (``hostkit/views.py``)."""
from __future__ import annotations

from ...attention.cross_view import MODES, parse_views
from ...attention.cross_view import reference_views as pick_references
from ...hostkit.errors import NodeInputError, check_at_least, check_choice
from ...hostkit.sampling import check_model_family
from ...hostkit.schemas import io
from ...hostkit.dit_views import cross_view_dit_model, flow_view_count, is_flow_view_model
from ...hostkit.views import cross_view_model, view_count
from . import ROW

PAPER = ROW.settings_of("InvertEditCrossViewAttention")


class CrossViewAttention(io.ComfyNode):
    NAME = "Cross-View Attention"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditCrossViewAttention",
            display_name="Cross-View Attention",
            category="InvertEdit/attention",
            description=("GaussCtrl's attention-based latent alignment (Wu et al., ECCV 2024): every view's "
                         "self-attention is a blend of its own attention and the mean of its attention on reference "
                         "views' keys and values, so the views of one asset are edited alike (then fit them in 3D). "
                         "Composes with every attention editor (Attention Inject, Plug-and-Play, MasaCtrl), applied "
                         "before or after it, and with a depth ControlNet (GaussCtrl's recipe). Cost: (R + 1) x each "
                         "self-attention's multiply-adds (R references); memory: R x its queries and attention "
                         "outputs during the call, nothing kept between steps. On Flux.1, SD3/SD3.5 and Qwen-Image every "
                         "joint-attention block is aligned (each view's text and image queries on each reference "
                         "view's whole sequence); it composes with FlowEdit, RF-Inversion and the Flow Sampler; apply "
                         "it after a DiT attention editor."),
            inputs=[
                io.Model.Input("model", tooltip="The model that samples the views: SD1.x/SD2.x/SDXL (or an editor's "
                                                "patched MODEL), or Flux.1, SD3/SD3.5, Qwen-Image (FlowEdit, "
                                                "RF-Inversion and the Flow Sampler run on it)."),
                io.Latent.Input("latent",
                                tooltip="The view set's LATENT (VAE Encode of the views, or the inverter's LATENT): "
                                        "its batch is the view count V. The sampler then runs V rows (the set) or "
                                        "2V (a pair editor's source views, then target views)."),
                io.Int.Input("references", default=PAPER["references"], min=1, max=64,
                             tooltip="How many reference views every view reads (paper: 4, GaussCtrl's ref_view_num): "
                                     "the first view of each of R equal parts of the set (GaussCtrl draws one at "
                                     "random in each part). Ignored where reference_views lists them."),
                io.Float.Input("self_weight", default=PAPER["self_weight"], min=0.0, max=1.0, step=0.05,
                               tooltip="The share of a view's own attention in the blend (paper: 0.6, GaussCtrl's "
                                       "self_attn_coeff on the UNet; 0: only the references, as GaussCtrl runs its "
                                       "ControlNet; 1: no alignment)."),
                io.Combo.Input("mode", options=list(MODES), default=MODES[0],
                               tooltip="'mean of references (GaussCtrl)' (paper): one softmax per reference, "
                                       "averaged, blended with the view's own by self_weight; 'extended keys (one "
                                       "softmax)': one softmax over the view's keys and the references' (Tune-A-Video "
                                       "/ DGE's extended attention; self_weight unused)."),
                io.String.Input("reference_views", default="", optional=True,
                                tooltip="The reference views by number, e.g. '0, 2' (-1: the last); empty: "
                                        "'references' views spread over the set (the paper's)."),
            ],
            outputs=[io.Model.Output(display_name="MODEL", tooltip="The model with cross-view self-attention.")],
        )

    @classmethod
    def execute(cls, model, latent, references=PAPER["references"], self_weight=PAPER["self_weight"], mode=MODES[0],
                reference_views="") -> io.NodeOutput:
        listed = reference_views or ""
        flow = is_flow_view_model(model)   # Flux.1, SD3, Qwen-Image: their joint attention (hostkit/dit_views.py)
        if not flow:
            check_model_family(model, cls.NAME)
        check_choice(cls.NAME, "mode", mode, MODES)
        check_at_least(cls.NAME, 1, references=references)
        if not 0.0 <= self_weight <= 1.0:
            raise NodeInputError(cls.NAME, f"input 'self_weight' is {self_weight}; use 0 to 1 (paper: 0.6).")
        views = (flow_view_count(cls.NAME, "latent", latent["samples"], model) if flow else
                 view_count(cls.NAME, "latent", latent["samples"]))
        try:
            refs = pick_references(views, references, parse_views(listed))
        except ValueError as e:
            raise NodeInputError(cls.NAME, f"input 'reference_views' ('{listed}'): {e}.") from None
        patch = cross_view_dit_model if flow else cross_view_model
        return io.NodeOutput(patch(model, views, refs, self_weight, mode, cls.NAME))


NODES = [CrossViewAttention]

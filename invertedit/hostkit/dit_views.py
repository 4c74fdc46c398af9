"""A view set on a flow transformer (Flux.1, SD3/SD3.5, Qwen-Image): GaussCtrl's cross-view attention carried to
joint attention (issue 83), the DiT counterpart of ``views.py``.

GaussCtrl (Wu et al., ECCV 2024, "attention-based latent code alignment"; ActiveVisionLab/gaussctrl,
``utils.py`` ``CrossViewAttnProcessor``) replaces every self-attention of its UNet by ``w * A(q, k, v) + (1 - w) *
mean_j A(q, k_j, v_j)``: a view's own attention blended with its queries' attention on each reference view's keys
and values. A flow transformer has no separate self-attention: each block attends jointly over the text's tokens
and the image's (``dit_attention.py``). The same rule is taken to that joint call: a view's queries (text and
image) attend to its own text + image keys, and to each reference view's whole key/value sequence (that row's text
+ image tokens), one softmax per reference, averaged and blended by ``self_weight`` (``attention/cross_view.py``'s
``aligned_attention`` with the tokens on axis 2 of ``[batch, heads, tokens, dim]``). The references' attentions
are one host attention call over R x the call's rows (R references).

The rows of a model call: every chunk (``cond_or_uncond``) holds V views, or k blocks of V: FlowEdit evaluates its
source and target prompts as chunks of their own (each prompt a chunk of V rows; n_avg noises are k blocks of V in
each), a source/target pair in blocks holds 2V (``frames.py``'s layout). Row r is view r % V of block r // V, and
its references are the rows of the same chunk and block: a view of the target reads target views, never the
source's (``reference_rows``). A chunk whose rows are not a multiple of V is refused (the sampler's batch is not
this view set's).

It is a policy of the DiT driver (``dit_attention.py``) on every block, so it composes with the flow editors that
act at the sampler (FlowEdit's guider, RF-Inversion's post-CFG control, the Flow Sampler's solvers): they call the
patched model on V (or kV) rows a chunk and never touch its attention. A DiT attention editor installed before it
(Joint Attention Inject, Stable Flow, KV-Edit) hands it the attention it computes, which it then aligns; installed
after it, that editor would be handed the references' rows: apply Cross-View Attention last. SD3.5's image-only
second attention (``x_block_self_attn``) is not a joint call and runs as it was.
"""
from __future__ import annotations

import torch

from ..attention.cross_view import ReferenceIndex, aligned_attention
from ..attention.policy import AttentionPolicy, JointWhere, PolicyInputError
from .dit_attention import dit_blocks, install_dit_policy
from .errors import NodeInputError
from .family import FLOW_EDITABLE, model_family

#: the DiT layouts whose joint attention the policy aligns (Flux.1's double/single blocks; SD3's and Qwen-Image's
#: joint blocks), in the host configs they were tested on
VIEW_LAYOUTS = ("dit-double-single", "dit-joint")


def is_flow_view_model(model) -> bool:
    """Whether ``model`` is a DiT (any: a family this module refuses is named by ``check_view_family``), not an SD
    UNet: the Cross-View Attention node's dispatch."""
    return model_family(model).layout != "unet"


def check_view_family(model, node: str):
    """The family of ``model`` where cross-view attention on its joint attention is supported (Flux.1 dev and
    schnell, SD3/SD3.5, Qwen-Image); a clear refusal naming what works otherwise."""
    family = model_family(model)
    if family.layout == "dit-cross":
        raise NodeInputError(node, f"input 'model' is {family.config_name} ({family.denoiser_name}), a video model "
                                   f"whose latent is one clip; a view set is a batch of images: edit it with Flux.1, "
                                   f"SD3/SD3.5, Qwen-Image or an SD checkpoint (a Wan clip's frames are kept alike by "
                                   f"its own attention across frames).")
    if family.layout not in VIEW_LAYOUTS or family.config_name not in FLOW_EDITABLE["config"] \
            or family.parameterisation != "flow":
        raise NodeInputError(node, f"input 'model' is {family.config_name} ({family.denoiser_name}, "
                                   f"{family.sampling_name} sampling), which this node does not support; it aligns the "
                                   f"views of SD1.x/SD2.x/SDXL UNets and of the flow transformers Flux.1 (dev, "
                                   f"schnell), SD3/SD3.5 and Qwen-Image.")
    return family


def flow_view_count(node: str, name: str, samples: torch.Tensor, model) -> int:
    """The view count of a view set's LATENT on a flow model: its batch (``[V, C, h, w]``; Qwen-Image's
    ``[V, C, 1, h, w]``), refused below 2 or where the batch is one clip of frames (Qwen-Image's VAE encodes an
    IMAGE batch as the frames of one clip); a model of a family not supported is refused first."""
    check_view_family(model, node)
    frames = model.get_model_object("latent_format").latent_dimensions == 3
    if frames and samples.ndim == 5 and samples.shape[2] > 1:
        raise NodeInputError(node, f"input '{name}' has shape {tuple(samples.shape)}: one clip of {samples.shape[2]} "
                                   f"frames (this model's VAE encodes an IMAGE batch as a clip's frames); encode each "
                                   f"view alone (Image From Batch, VAE Encode) and join the latents with Latent Batch, "
                                   f"so that the LATENT holds one view per row [views, channels, 1, height, width].")
    if samples.ndim not in (4, 5) or (samples.ndim == 5 and not frames):
        want = "[views, channels, 1, height, width]" if frames else "[views, channels, height, width]"
        raise NodeInputError(node, f"input '{name}' has shape {tuple(samples.shape)}; connect a view set's LATENT "
                                   f"{want} (VAE Encode of the views).")
    if samples.shape[0] < 2:
        raise NodeInputError(node, f"input '{name}' holds {samples.shape[0]} view; connect 2 views or more (an IMAGE "
                                   f"batch of the views of one asset through VAE Encode).")
    return int(samples.shape[0])


class CrossViewJoint(AttentionPolicy[None]):
    """The joint attention of a view set's rows aligned with their reference views' (the module's docstring): one
    ``aligned_attention`` a call, the reference rows' index made once per layout and device."""

    pair = False

    def __init__(self, views: int, refs: tuple[int, ...], self_weight: float, mode: str):
        self.views, self.refs, self.self_weight, self.mode = views, tuple(refs), float(self_weight), mode
        self.index = ReferenceIndex(self.refs, views)
        self.masks: dict = {}

    def _padded(self, where: JointWhere):
        """``where.attend`` with the call's padded text keys masked (a Qwen-Image pair of two prompt lengths,
        ``PaddedPair``): a reference row is of the row's own branch, so of its prompt, and has its padding; the
        bias is repeated over the references' rows and, for extended keys, over their key sequences."""
        pad = where.pad

        def attend(q, k, v):
            key = (q.shape[0], k.shape[2], pad.dtype, pad.device)
            made = self.masks.get(key)
            if made is None or made[0] is not pad:   # once per call layout and pad (``TextPad`` keeps its bias)
                made = self.masks[key] = (pad, pad.repeat(q.shape[0] // pad.shape[0], 1, 1, k.shape[2] // pad.shape[3]))
            return where.attend(q, k, v, mask=made[1])
        return attend

    def attention(self, q, k, v, where: JointWhere, state: None):
        chunks = max(len(where.chunks), 1)
        batch = q.shape[0]
        if batch % chunks or where.rows % self.views:
            raise PolicyInputError(
                f"the sampler runs a batch of {batch} rows in {chunks} chunk(s), {where.rows} a chunk: not the view "
                f"set's {self.views} views (or a multiple: a source/target pair of them, FlowEdit's n_avg noises); "
                f"connect the same view set's LATENT to this node and the sampler (input 'latent' sets the view count).")
        attend = where.attend if where.pad is None else self._padded(where)
        return aligned_attention(q, k, v, self.index(chunks, where.rows, q.device), len(self.refs), self.self_weight,
                                 attend, self.mode, token_dim=2)


def cross_view_dit_model(model, views: int, refs: tuple[int, ...], self_weight: float, mode: str, node: str):
    """A clone of the flow ``model`` whose every joint-attention block (Flux.1's double and single blocks, SD3's and
    Qwen-Image's joint blocks) aligns each view with ``refs`` (``CrossViewJoint``, through the DiT driver)."""
    check_view_family(model, node)
    m = model.clone()
    install_dit_policy(m, CrossViewJoint(views, refs, self_weight, mode), dit_blocks(m), node)
    return m

"""Views to 3D's nodes: View Set (an IMAGE batch of an asset's views and its layout, the VIEWS record) and Views to
Hunyuan3D (the edited views into Hunyuan3D-2mv's multi-view conditioning). The layout's rules: ``layout.py``; the
host's encoder and conditioning: ``glue.py``."""
from __future__ import annotations

import torch

from ...hostkit.errors import NodeInputError, check_choice
from ...hostkit.schemas import io
from ...hostkit.views_3d import Views, is_dinov2
from .glue import hunyuan3d_conditioning
from .layout import DEFAULT_LAYOUT, ViewSet, parse_angles, parse_names, pick_views

CROPS = ("none", "center")   # CLIPVisionEncode's; ComfyUI's Hunyuan3D-2mv template: none


def _image(node: str, name: str, image) -> torch.Tensor:
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        raise NodeInputError(node, f"input '{name}' is not an IMAGE batch [views, height, width, channels]; connect "
                                   f"the views (Load Image, Batch Images, an edit's Image From Batch).")
    return image


class ViewSetNode(io.ComfyNode):
    NAME = "View Set"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditViewSet",
            display_name=cls.NAME,
            category="InvertEdit/attention",
            description=("The views of one asset as a view set (issue 83): an IMAGE batch of V views of the same size "
                         "(views, then more_views appended) and its layout, the VIEWS record (each view's name, and "
                         "its camera's azimuth and elevation where given). VAE Encode the IMAGE to invert and edit "
                         "every view in one run (Cross-View Attention keeps them alike); Views to Hunyuan3D reads the "
                         "record to give Hunyuan3D-2mv its front, left, back and right views."),
            inputs=[
                io.Image.Input("views", tooltip="The views, an IMAGE batch (an animated image in Load Image, Batch "
                                                "Images of single views, SV3D's orbit frames)."),
                io.String.Input("layout", default=DEFAULT_LAYOUT,
                                tooltip="Each view's name, in the batch's order, separated by commas (ComfyUI's "
                                        "Hunyuan3D-2mv template: front, left, back, right). Hunyuan3D-2mv takes "
                                        "views named front, left, back, right, or picks them by azimuth."),
                io.Image.Input("more_views", optional=True,
                               tooltip="More views appended after 'views' (the same size), e.g. one Load Image a "
                                       "view."),
                io.String.Input("azimuths", default="", optional=True,
                                tooltip="Each view's camera azimuth in degrees, e.g. '0, 90, 180, 270' (0 front, 90 "
                                        "left, 180 back, 270 right, Hunyuan3D-2mv's order; SV3D's orbit: i x 360 / "
                                        "frames). Empty: none (views are picked by name)."),
                io.String.Input("elevations", default="", optional=True,
                                tooltip="Each view's camera elevation in degrees (recorded for the 3D nodes; "
                                        "Hunyuan3D-2mv's views are at 0). Empty: none."),
            ],
            outputs=[io.Image.Output(display_name="IMAGE", tooltip="The view set's IMAGE batch (V views)."),
                     Views.Output(display_name="VIEWS",
                                  tooltip="The view set's record: names, angles, count and size, for Views to "
                                          "Hunyuan3D.")],
        )

    @classmethod
    def execute(cls, views, layout=DEFAULT_LAYOUT, more_views=None, azimuths="", elevations="") -> io.NodeOutput:
        images = _image(cls.NAME, "views", views)
        if more_views is not None:
            more = _image(cls.NAME, "more_views", more_views)
            if more.shape[1:] != images.shape[1:]:
                raise NodeInputError(cls.NAME, f"input 'more_views' holds views of {more.shape[2]}x{more.shape[1]} px "
                                               f"({more.shape[3]} channels), 'views' of {images.shape[2]}x"
                                               f"{images.shape[1]} px ({images.shape[3]}); bring every view to one "
                                               f"size first (Upscale Image to the same width and height).")
            images = torch.cat([images, more.to(images.device, images.dtype)])
        count = images.shape[0]
        if count < 2:
            raise NodeInputError(cls.NAME, f"input 'views' holds {count} view; a view set has 2 views or more (add "
                                           f"them in more_views, or batch them with Batch Images).")
        try:
            names = parse_names(layout)
        except ValueError as e:
            raise NodeInputError(cls.NAME, f"input 'layout': {e}.") from None
        if len(names) != count:
            named = f"{len(names)} view{'s' if len(names) != 1 else ''}"
            raise NodeInputError(cls.NAME, f"input 'layout' names {named} ({', '.join(names)}) but the views hold "
                                           f"{count}; name each view once, in the batch's order (or connect {named}).")
        angles = {}
        for name, text in (("azimuths", azimuths), ("elevations", elevations)):
            try:
                angles[name] = parse_angles(text or "")
            except ValueError as e:
                raise NodeInputError(cls.NAME, f"input '{name}': {e}; give one number of degrees a view, separated "
                                               f"by commas, or leave it empty.") from None
            if angles[name] and len(angles[name]) != count:
                raise NodeInputError(cls.NAME, f"input '{name}' gives {len(angles[name])} angles for {count} views; "
                                               f"give one a view, in the batch's order, or leave it empty.")
        record = ViewSet(names=names, azimuths=angles["azimuths"], elevations=angles["elevations"], count=count,
                         size=(images.shape[1], images.shape[2]))
        return io.NodeOutput(images, record)


class ViewsToHunyuan3D(io.ComfyNode):
    NAME = "Views to Hunyuan3D"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditViewsToHunyuan3D",
            display_name=cls.NAME,
            category="InvertEdit/attention",
            description=("The (edited) views of a view set as Hunyuan3D-2mv's conditioning (issue 83): the views "
                         "named front, left, back and right (or nearest those azimuths) through CLIP Vision Encode "
                         "and the host's Hunyuan3Dv2ConditioningMultiView, as ComfyUI's Hunyuan3D-2mv template "
                         "wires them. Then EmptyLatentHunyuan3Dv2, KSampler, VAE Decode Hunyuan3D, VoxelToMesh and "
                         "SaveGLB make the mesh."),
            inputs=[
                io.ClipVision.Input("clip_vision", tooltip="Hunyuan3D-2mv's image encoder (Image Only Checkpoint "
                                                           "Loader's CLIP_VISION: DINOv2 giant)."),
                io.Image.Input("views", tooltip="The view set's views after the edit (the edit's rows V to 2V-1: "
                                                "Image From Batch), V views in the View Set's order and size."),
                Views.Input("view_set", tooltip="The View Set's VIEWS record of these views."),
                io.Combo.Input("crop", options=list(CROPS), default=CROPS[0],
                               tooltip="How CLIP Vision Encode fits each view to the encoder's square: none (stretched;"
                                       " ComfyUI's Hunyuan3D-2mv template: none) or center (cropped)."),
            ],
            outputs=[io.Conditioning.Output(display_name="positive",
                                            tooltip="The views' tokens with their view embeddings (Hunyuan3D-2mv)."),
                     io.Conditioning.Output(display_name="negative", tooltip="Zeros of the same shape (the host's).")],
        )

    @classmethod
    def execute(cls, clip_vision, views, view_set, crop=CROPS[0]) -> io.NodeOutput:
        check_choice(cls.NAME, "crop", crop, CROPS)
        if not is_dinov2(clip_vision):
            raise NodeInputError(cls.NAME, f"input 'clip_vision' is a {type(getattr(clip_vision, 'model', clip_vision)).__name__}"
                                           f", not the DINOv2 image encoder Hunyuan3D-2 conditions on; connect the "
                                           f"CLIP_VISION of Image Only Checkpoint Loader with the Hunyuan3D-2mv file "
                                           f"(not SV3D's, nor a CLIP vision file).")
        images = _image(cls.NAME, "views", views)
        if not isinstance(view_set, ViewSet):
            raise NodeInputError(cls.NAME, "input 'view_set' is not a View Set's VIEWS record; connect View Set's "
                                           "VIEWS output.")
        size = (images.shape[1], images.shape[2])
        if images.shape[0] != view_set.count or size != view_set.size:
            raise NodeInputError(cls.NAME, f"input 'views' holds {images.shape[0]} views of {size[1]}x{size[0]} px but "
                                           f"'view_set' is {view_set.describe()}; connect the edited views of that "
                                           f"set (Image From Batch of the edit's rows V to 2V-1: batch_index "
                                           f"{view_set.count}, length {view_set.count}), or a View Set of these views.")
        try:
            picked = pick_views(view_set)
        except ValueError as e:
            raise NodeInputError(cls.NAME, f"input 'view_set': {e}.") from None
        positive, negative = hunyuan3d_conditioning(clip_vision, images, picked, crop)
        return io.NodeOutput(positive, negative)


NODES = [ViewSetNode, ViewsToHunyuan3D]

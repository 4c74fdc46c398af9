"""The parts of the view-set edit workflows (issue 83): the views of one asset (an IMAGE batch of V views) inverted in
one batched run, edited as a pair of view sets (2V rows: source views, then target views) by a pair editor with
Cross-View Attention (GaussCtrl's alignment) on its MODEL, sampled in one KSampler (Advanced) run; the edited views are
rows V to 2V-1 of the decode (node key ``edited_frames``). Plain data."""
from __future__ import annotations

from .clips import Wording, clip_nodes

VIEW_ASSET = "toy_views_two_objects.png"   # workshop/toyworld/views.py's sample: 4 views of the sample scene, APNG
VIEW_COUNT = 4
VIEWS = Wording("views", "V", VIEW_COUNT, "invertedit/view_edit")

#: Cross-View Attention at the paper's (GaussCtrl's) settings
CROSS_VIEW = {"type": "InvertEditCrossViewAttention",
              "widgets": {"references": 4, "self_weight": 0.6, "mode": "mean of references (GaussCtrl)",
                          "reference_views": ""}}

#: the tests' quick run of a view-set workflow: the 4 views, 10 steps
QUICK_VIEWS = {"InvertEditDDIMInvert": {"steps": 10}, "KSamplerAdvanced": {"steps": 10}}

HOW = ("**VAE Encode** and **DDIM Invert** invert every view in one batched run, **Direct Inversion** keeps the source "
       "views on their trajectories, and **Attention Inject** (Prompt-to-Prompt replace; local blend off: it masks one "
       "image) makes the pair of view sets: the source views, then the target views, with their prompts. **Cross-View "
       "Attention** (GaussCtrl's attention alignment: every view's self-attention is 0.6 its own and 0.4 the mean of "
       "its attention on 4 reference views) edits the views alike, so the asset can be fitted in 3D. One stock "
       "**KSampler (Advanced)** run samples all 2V rows. The edited views are rows V to 2V-1 of the batch (**Image From "
       "Batch**: set batch_index and length to your view count V). GaussCtrl also conditions every view on its depth "
       "with a depth ControlNet: wire the host's **Apply ControlNet** with a depth map of each view (an IMAGE batch "
       "of V maps) into the prompts where you have one.")


def view_edit_nodes(intro: str, front: list[dict], source: str, editor: dict, pixels: str = "image",
                    aligner: dict | None = CROSS_VIEW) -> list[dict]:
    """The view-set edit after ``front`` (the model's loader ``model``, the views' Load Image ``image``, and what
    ``pixels`` names): ``clip_nodes`` with the views' wording and ``aligner`` (Cross-View Attention; None: view by
    view). The edited views are the node ``edited_frames``."""
    return clip_nodes(intro, front, source, editor, pixels=pixels, cross_frame=False, aligner=aligner, wording=VIEWS)

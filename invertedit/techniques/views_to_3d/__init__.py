"""Views to 3D (issue 83): a view set (an IMAGE batch of an asset's views with its layout: names, camera angles)
edited consistently and rebuilt in 3D by the host's Hunyuan3D-2mv nodes (Zhao et al. 2025, Hunyuan3D 2.0; its
multi-view model conditions on the front, left, back and right views), as GaussCtrl (Wu et al. 2024) edits the views
of an asset together before fitting it in 3D.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Views to 3D", "attention", ("InvertEditViewSet", "InvertEditViewsToHunyuan3D"),
    "Zhao et al. 2025 (Hunyuan3D 2.0, 2mv)",
    "layout front, left, back, right; crop none (ComfyUI's Hunyuan3D-2mv template)",
    "one image encoder call per view (4) + the 3D model's sampling",
    ("Toy - Views to 3D (Hunyuan3D-2)", "Hunyuan3D-2 - Edit four views and rebuild in 3D (your models)",
     "SV3D - Edit the orbit views of one image (your models)"), None,
    "A view set (the views of an asset and their names or camera angles) edited in one run, its front, left, back "
    "and right views then given to the host's Hunyuan3D-2mv nodes for a mesh (GLB).")

"""Cross-View Attention, Wu et al. 2024 (GaussCtrl's attention-based latent code alignment): every
view's self-attention also reads reference views' keys and values, so that the views of one asset
are edited alike and can be fitted in 3D.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Cross-View Attention", "attention", ("InvertEditCrossViewAttention",),
    "Wu et al. 2024 (GaussCtrl)",
    "4 reference views, self weight 0.6, every self-attention layer and step",
    "(R + 1) x the self-attention per view (R references)",
    ("Toy - View set edit (cross-view attention)", "SD1.5 - View set edit (your checkpoint)",
     "Toy - View set edit (FlowEdit + cross-view attention)"),
    ("toyworld2_views", "Cross-View Attention (mean of references, GaussCtrl"),
    "Every view's self-attention is 0.6 its own and 0.4 the mean of its attention on 4 reference views' keys and "
    "values (GaussCtrl), composing with every SD attention editor, so the views of one asset are edited alike.",
    settings={"InvertEditCrossViewAttention.references": 4, "InvertEditCrossViewAttention.self_weight": 0.6})

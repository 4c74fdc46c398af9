"""The keys under which the pack marks the host's options and wrappers: markers that are not
per-run state (that lives in ``run_state.py``) and the keys of the wrappers other patches look up."""
from __future__ import annotations

# OUTER_SAMPLE wrapper keys: Apply Inversion's run checks (``InversionGuard``; the pair editors read
# the inversion from it) and the pair editors' run checks (``PairRun``)
INVERSION_KEY = "invertedit_inversion"
PAIR_RUN_KEY = "invertedit_pair_run"
# APPLY_MODEL wrapper key of Cross-Attention Guidance's per-branch inputs (``BranchInputs``)
BRANCH_INPUTS_KEY = "invertedit_cross_guidance_inputs"

# transformer_options markers: Direct Inversion's mark that the first row's prediction is replaced
# after CFG (its value: how many rows), and the mark of a model call that runs target rows only.
SOURCE_ON_TRAJECTORY = "invertedit_source_on_trajectory"
TARGET_ONLY = "invertedit_target_only"

"""Attention control, host-agnostic: maps, injection policies and masks (torch/numpy/einops only)."""

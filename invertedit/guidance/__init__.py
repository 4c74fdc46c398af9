"""Per-step score and latent edits, host-agnostic: SEGA, latent blending (torch/numpy/einops only)."""

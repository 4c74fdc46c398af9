"""Guidance's generic pieces, host-agnostic (torch/numpy/einops only): the guidance policy contract,
concepts (SEGA's and LEDITS++'s) and guidance on an inversion's trajectory (ProxEdit's and NMG's
base). Each technique's own policy is in its folder."""

"""Inversion math, host-agnostic: torch, numpy and einops only.

A model is seen as ``denoise(x, sigma) -> denoised`` in the host's sampler space
(``x = x0 + sigma * eps``), and a schedule as a 1-D tensor of sigmas.
"""

"""Inversion's generic pieces, host-agnostic (torch, numpy and einops only): the inverter contract,
the DDIM and flow solvers, the parameterisations, the method table and the INVERSION record. Each
inversion technique's own math is in its folder.

A model is seen as ``denoise(x, sigma) -> denoised`` in the host's sampler space
(``x = x0 + sigma * eps``), and a schedule as a 1-D tensor of sigmas.
"""

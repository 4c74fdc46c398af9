"""Noise Map Guidance, Cho et al. 2024: A GUIDER that pulls the source towards the inversion's latents
by a gradient step before CFG.

This technique's folder; its row of the technique table (``invertedit/techniques/__init__.py``) is
``ROW``."""
from __future__ import annotations

from ...technique_row import Technique

ROW = Technique(
    "Noise Map Guidance", "guidance", ("InvertEditNoiseMapGuidance",), "Cho et al. 2024",
    "cfg 10, scale 10, grad scale 5000 (64×64 latent), L1", "4N + 2N with backward", ("Toy - Noise Map Guidance edit",),
    ("toyworld", "DDIM inversion + Prompt-to-Prompt (PIE-Bench) + Noise Map Guidance"),
    "A GUIDER that pulls the source towards the inversion's latents by a gradient step before CFG.",
    settings={"InvertEditNoiseMapGuidance.cfg": 10.0, "InvertEditNoiseMapGuidance.noise_map_scale": 10.0,
              "InvertEditNoiseMapGuidance.grad_scale": 5000.0},
    # its loss is a mean over the latent, its defaults for a 64x64 one: at QUICK_SIZE (32x32) the
    # same pull per element is a quarter of the scale; at 5 steps its gradient step overshoots
    quick={"InvertEditNoiseMapGuidance": {"grad_scale": 1250.0}}, quick_steps=10)

"""Personalisation's generic pieces, host-agnostic (torch only): the optimisation loop and the
denoising loss with its prior preservation, which DreamBooth, Textual Inversion, Custom Diffusion
and Imagic share. Each technique's own math is in its folder."""

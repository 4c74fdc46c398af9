"""Personalisation as inversion: a subject captured in weights (DreamBooth) from a few images.

Pure math (torch only), written for the host's sampler space like the other pure layers."""

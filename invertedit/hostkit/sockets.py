"""Custom socket types of the pack."""
from comfy_api.latest import io


Inversion = io.Custom("INVERSION")
Concepts = io.Custom("SEGA_CONCEPTS")   # SEGA and LEDITS++ concepts, chained

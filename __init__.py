"""ComfyUI-InvertEdit: invert real images into Stable Diffusion's noise space and edit them.

ComfyUI entry point. It registers the nodes and nothing else; the code is in ``invertedit/``.
"""
from .invertedit.extension import comfy_entrypoint  # noqa: F401

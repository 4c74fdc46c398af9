"""Demo Model's example workflows (``example_workflows/``), built from ``invertedit/workflows``' parts;
``python -m workshop.make_workflows`` writes them."""
from __future__ import annotations

from ...workflows.toy import ONE_OBJECT_WORLD, decode_and_save, inversion_nodes, ksampler_advanced, vae_roundtrip


def demo_model_sdxl() -> dict:
    intro = (
        "# SDXL mechanics with the Demo Model\n\n"
        "The **Demo Model** (tiny, seeded random weights; families sd1, sd2-v, sdxl) runs the pack's nodes without "
        "downloads. Here the SDXL layout (two text encoders, pooled output): **DDIM Invert** and the stock **KSampler "
        "(Advanced)** reconstruct the inverted latent. It makes noise, not pictures: compare with the VAE round trip.")
    nodes = inversion_nodes(intro, ONE_OBJECT_WORLD)   # the small sample: random weights draw noise at any size
    for n in nodes:
        if n["key"] == "model":
            n.clear()
            n.update({"key": "model", "type": "InvertEditDemoModel", "widgets": {"family": "sdxl", "seed": 0},
                      "title": "Demo Model (tiny, random weights, SDXL layout)"})
    nodes += [ksampler_advanced("sample", "prompt")]
    nodes += decode_and_save("rec", "sample", "invertedit/demo_sdxl_reconstruction", "Reconstruction")
    return {"nodes": nodes + vae_roundtrip()}


WORKFLOWS = {"Toy - SDXL demo model (random weights)": demo_model_sdxl}

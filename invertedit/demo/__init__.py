"""The pack's built-in models: the Toy World models (``worlds``: the table of worlds;
``toy_autoencoder`` / ``scenes_autoencoder``: their autoencoders; ``toy_model``: loading them) and
the tiny seeded random-weight SD1 / SD2-v / SDXL models (``tiny_models``). The builders reach the
host only through the host kit (``hostkit/loaders.py``); ``worlds`` and the autoencoders are plain
torch, importable without the host, so this package's ``__init__`` imports nothing (the node files
import the loaders)."""

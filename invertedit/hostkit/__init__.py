"""The host kit: the one package that imports the host (ComfyUI), and only what is generic. The
sampling loop and step lookup, per-run state, the host's patch points as verbs (``patches.py``),
the drivers that run the pure attention and guidance policies (UNet and DiT), the source/target
pair, tokens, the model family and layout, attention maps, keepers (what an inversion keeps for a
later editor), the inverters and the inversions' patches and files, training helpers and state,
errors and checks, schemas and the node API, fingerprints and loaders. A technique's folder
(``invertedit/techniques/<name>/``) reaches the host through these; the kit imports no technique."""

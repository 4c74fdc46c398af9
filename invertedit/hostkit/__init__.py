"""The host kit: the one package that imports the host (ComfyUI). The sampling loop and step
lookup, per-run state, the generic drivers that run the pure attention and guidance policies,
the source/target pair, tokens, the model family and the denoiser's layout, attention-map
capture, errors and checks, schemas and the node API, fingerprints, loaders, and each
technique's small host glue. Node files import from here; the pure layers (inversion/,
attention/, guidance/) never do."""

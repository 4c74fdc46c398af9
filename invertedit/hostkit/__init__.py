"""The one layer that talks to the host (ComfyUI): errors, the UNet's layout, tokens, the
source/target pair, step lookup, sampling loops, guiders, fingerprints, socket types and shared
node schemas. Node files import from here; the pure layers (inversion/, attention/, guidance/)
never do."""

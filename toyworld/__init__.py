"""Toy world: procedural images whose every edit has a known exact answer (issue 3).

``world``  renders scenes (flat background + one object) with exact masks and captions.
``judge``  reads a scene back from any image (palette matching + mask fitting).
``ae``     the toy model's small normalisation-free autoencoder (pure torch).
``train``  the one reproducible training command (needs the host).
Everything here except ``train`` is pure (torch / numpy / PIL).
"""

"""Toy worlds: procedural images whose every edit has a known exact answer.

``world`` / ``judge``   world 1 (issue 3): a flat background and one object; the exact judge.
``scenes`` / ``scenes_judge``   world 2 (issue 12): two objects per scene, every word bound to
                        its place; edits of one object's colour or shape, the background, and
                        dropping an object (a token-count change, for refine).
``train`` / ``train_scenes``   the reproducible training commands (need the host):
                        ``python -m workshop.toyworld.train`` and ``... .train_scenes``.
The models' autoencoders are pack code (``invertedit/demo/toy_autoencoder.py``,
``invertedit/demo/scenes_autoencoder.py``): the loader nodes need them.
"""

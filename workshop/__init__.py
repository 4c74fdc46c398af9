"""What we develop the pack with and a user never loads: the headless runner and canvas
converter (``headless/``), benchmarks, the workflow and sample generators, and the toy world's
training and judge. Run its tools from the repository root as ``python -m workshop.<tool>``."""

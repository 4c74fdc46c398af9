"""PIE-Bench on your own checkpoint (issue 84): run the pack's workflows on a PIE-Bench-format folder with the
user's model and write PnPInversion's metrics table.

    python -m workshop.piebench --data PIE-Bench_v1 --workflows "Flux - FlowEdit,Flux - RF-Solver-Edit" \\
        --ckpt flux1-dev-fp8.safetensors --out results/ [--limit N] [--categories 0-8] \\
        [--clip DIR] [--dino DIR] [--lpips-squeezenet FILE]
    python -m workshop.piebench.toyset OUT [--cases N]     (a small PIE-Bench-format set from the toy world)

``format`` reads PIE-Bench's mapping file and masks as PnPInversion does, ``metrics`` computes its metrics as its
calculator does, ``run`` runs the workflows headlessly, ``table`` writes its CSV and the paper's table.
"""

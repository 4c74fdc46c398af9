"""Running the pack's workflows headlessly through ComfyUI's own executor (tests, CLI, benchmarks)."""

"""The pack's code: ``techniques/`` (one folder per technique: its row, math, host glue, nodes and
workflows), ``hostkit/`` (the one layer that talks to the host, generic), the generic pure layers
``inversion/``, ``attention/``, ``guidance/`` and ``personalisation/`` (torch only; importable and
testable without ComfyUI), ``workflows/`` (the example workflows' shared parts) and ``demo/`` (the
built-in models)."""

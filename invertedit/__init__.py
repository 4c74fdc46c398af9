"""The pack's code: ``nodes/`` (the ComfyUI nodes, thin), ``hostkit/`` (the one layer that
talks to the host), and the pure layers ``inversion/``, ``attention/`` and ``guidance/``
(torch only; importable and testable without ComfyUI)."""

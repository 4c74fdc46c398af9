"""Runs KV-Edit's own code (``Xilluill/KV-Edit``: ``models/kv_edit.py``'s ``Flux_kv_edit`` on its
``flux`` package's ``Flux_kv``) on given weights, for the pack's parity test
(``tests/host/test_kv_edit.py``). Never imported by the pack.

    PYTHONPATH=<the repository's root> python kv_edit_runner.py JOB OUT

JOB (``torch.save``):
- ``state_dict``, ``params``: the host's tiny Flux weights and their ``FluxParams`` (as in
  ``rf_solver_runner.py``); their ``Flux_kv`` has the host's key layout and is loaded strictly;
- ``img`` (packed, model space), ``img_ids``, ``txt_ids``; ``source`` / ``target``: (txt, vec),
  the text 512 tokens long, as their code assumes;
- ``mask``: ``[1, 1, H, W]`` at the image's size; ``opts``: their ``SamplingOptions`` fields.

OUT gets ``{"edit": <their Flux_kv_edit.forward output, [1, 16, h, w]>}``: inversion with the
source prompt, then the edit with the target, with the same options, as ``forward`` runs them.

Adapters, none changing what the reference computes:
- ``Flux_kv_edit.__init__`` loads Flux from the hub; the object is made without it, with the
  same attributes (``device``, ``name``, ``model``: their ``Flux_kv`` with the given weights).
- ``flux.util`` (imported by ``models/kv_edit.py`` for the loader) imports ``imwatermark``, which
  the method never uses (one is made at import); a stand-in that does nothing is registered where
  it is not installed.
- Their ``attn_scale`` bias is made in bfloat16 (their runs are bfloat16 on CUDA); in this float32
  run PyTorch's attention refuses a bias of another dtype, so a floating ``attn_mask`` is cast to
  the query's dtype (the biases 0 and 1 are exact in both).
- Their kept features go to the CPU with ``.cpu()``, where everything runs here. Float32, one
  torch thread.
"""
from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import torch
import torch.nn.functional as F


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    try:
        import imwatermark  # noqa: F401
    except ImportError:
        class WatermarkEncoder:   # flux.util builds one at import; KV-Edit never calls it
            def set_watermark(self, *args, **kwargs):
                pass

        stand_in = types.ModuleType("imwatermark")
        stand_in.WatermarkEncoder = WatermarkEncoder
        sys.modules["imwatermark"] = stand_in

    sdpa = F.scaled_dot_product_attention

    def attention(q, k, v, attn_mask=None, **kwargs):
        if attn_mask is not None and attn_mask.is_floating_point():
            attn_mask = attn_mask.to(q.dtype)
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    F.scaled_dot_product_attention = attention

    from flux.model import Flux_kv, FluxParams
    from models.kv_edit import Flux_kv_edit

    editor = Flux_kv_edit.__new__(Flux_kv_edit)
    torch.nn.Module.__init__(editor)
    editor.device, editor.name = torch.device("cpu"), "flux-dev"
    editor.model = Flux_kv(FluxParams(**job["params"])).float().eval().requires_grad_(False)
    missing, unexpected = editor.model.load_state_dict(job["state_dict"], strict=True)
    assert not missing and not unexpected

    def inputs(prompt):
        txt, vec = job[prompt]
        return {"img": job["img"].clone(), "img_ids": job["img_ids"], "txt": txt, "txt_ids": job["txt_ids"], "vec": vec}

    with torch.no_grad():
        edit = editor(inputs("source"), inputs("target"), job["mask"].clone(), SimpleNamespace(**job["opts"]))
    torch.save({"edit": edit.detach().clone()}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Runs the flow-inversion solvers of the authors' Flux code (BFL's ``flux`` package as
``HolmesShuan/FireFlow-Fast-Inversion-of-Rectified-Flow-for-Image-Semantic-Editing`` and
``wangjiangshan0725/RF-Solver-Edit`` ship it, ``src/flux`` / ``FLUX_Image_Edit/src/flux``) on given
weights, for the pack's parity test (``tests/host/test_flow_invert_parity.py``). Never imported by
the pack.

    PYTHONPATH=<the folder holding the repository's ``flux`` package> python rf_solver_runner.py JOB OUT

JOB (``torch.save``):
- ``state_dict``, ``params``: the host's tiny Flux weights (``model.diffusion_model.state_dict()``,
  float32) and its ``FluxParams`` fields as the authors' ``FluxParams`` names them
  (``in_channels`` is the packed width, 64 for 16 latent channels); the authors' ``Flux`` has the
  same key layout as the host's and is loaded strictly;
- ``img``: the image's latent in the model's space, packed (B, H/2 * W/2, 64) as their
  ``prepare`` packs it, with ``img_ids`` (B, H/2 * W/2, 3) and the text's ``txt_ids`` (zeros);
- ``source`` / ``target``: (txt, vec) = the host's T5 context and pooled CLIP vector of each prompt;
- ``timesteps``: the schedule, descending, both ends included (their ``get_schedule`` format);
- ``inversion_guidance`` / ``guidance``: Flux dev's distilled guidance while inverting / sampling;
- ``functions``: {name: the ``flux.sampling`` function to run}, e.g. ``{"fireflow": "denoise_fireflow"}``;
- ``inject_step`` (optional, default 0): RF-Solver-Edit's feature sharing, their ``--inject``: the
  values of the single blocks after the 19th are stored while inverting and used while sampling in
  the first ``inject_step`` steps, as their ``edit.py`` sets ``info``.

For each function: invert ``img`` with ``inverse=True`` (the source prompt), then sample the
inverted latent back with ``inverse=False`` (the target prompt), as their ``edit.py`` does. OUT gets
``{name: {"inverted": ..., "sample": ...}}`` (packed).

Adapters, none changing what the reference computes:
- No text encoders, no autoencoder: the embeddings and the latent come from the host (the encoders
  are not part of the method).
- Without ``inject_step``, ``info`` injects nothing: ``{"inject_step": 0, ...}`` makes every step's
  ``inject`` False, so the feature store/replace branches of their ``SingleStreamBlock`` never run.
- Their ``SingleStreamBlock`` keeps the stored values with ``v.cpu()`` and reads them back with
  ``.cuda()``; on this CUDA-less machine ``torch.Tensor.cuda`` is made the identity for the run (the
  values stay on the CPU, where everything runs).
- Float32 on the CPU (their code runs bfloat16 on CUDA); one torch thread.
"""
from __future__ import annotations

import sys

import torch


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)

    from flux import sampling
    from flux.model import Flux, FluxParams

    model = Flux(FluxParams(**job["params"])).float().eval().requires_grad_(False)
    missing, unexpected = model.load_state_dict(job["state_dict"], strict=True)
    assert not missing and not unexpected

    inject = int(job.get("inject_step", 0))
    if inject and not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    img, img_ids, txt_ids = job["img"], job["img_ids"], job["txt_ids"]
    out = {}
    with torch.no_grad():
        for name, function in job["functions"].items():
            denoise = getattr(sampling, function)
            info = {"inject_step": inject, "feature": {}, "reuse_v": True, "editing_strategy": "", "qkv_ratio": [1, 1, 1],
                    "start_layer_index": 0, "end_layer_index": -1, "feature_path": ""}
            txt, vec = job["source"]
            inverted, info = denoise(model, img=img, img_ids=img_ids, txt=txt, txt_ids=txt_ids, vec=vec,
                                     timesteps=list(job["timesteps"]), inverse=True, info=info,
                                     guidance=job["inversion_guidance"])
            txt, vec = job["target"]
            sample, info = denoise(model, img=inverted, img_ids=img_ids, txt=txt, txt_ids=txt_ids, vec=vec,
                                   timesteps=list(job["timesteps"]), inverse=False, info=info,
                                   guidance=job["guidance"])
            assert bool(info["feature"]) == bool(inject), "the reference stored features only where asked to"
            out[name] = {"inverted": inverted.detach().clone(), "sample": sample.detach().clone()}
    torch.save(out, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Runs LayerVerse's FLUX code (``v-gen-ai/LayerVerse``'s ``LayerVerse_FLUX/src/flux``: ``sampling.py``'s
``denoise_fireflow`` / ``denoise_rf_solver`` / ``denoise_with_mask`` with their ``layers.py`` KV-injection) on given
weights, for the pack's parity test (``tests/host/test_layerverse.py``). Never imported by the pack.

    PYTHONPATH=<LayerVerse_FLUX/src>:<tests/reference> python layerverse_runner.py JOB OUT

JOB (``torch.save``): as ``rf_solver_runner.py``'s (``state_dict``, ``params``, ``img``, ``img_ids``, ``txt_ids``,
``source``, ``target``, ``timesteps``, ``inversion_guidance``, ``guidance``), and
- ``function``: the ``flux.sampling`` function (their ``SAMPLERS``: ``denoise_fireflow`` ...);
- ``selected_double_blocks`` / ``selected_single_blocks`` / ``global_double_blocks`` / ``global_single_blocks``:
  the allocation as their ``selected_combinations_config.yaml`` lists it (selected: every active block);
- ``mask``: the editing mask on the patch grid (H/2, W/2), 1 in the region the edit changes, or None (their
  ``use_mask`` off);
- ``inject_step``: their ``--inject`` (the steps with KV-injection; theirs: every step).

The inversion (source prompt, ``inversion_guidance``) keeps the source keys and values in ``info['feature']``, the
edit (target prompt, ``guidance``) injects them, as their ``edit_run_benchmark.py`` sets ``info``. OUT gets
``{"inverted": ..., "sample": ..., "features": the number of kept tensors}`` (packed).

Adapters, none changing what the reference computes on this path:
- No text encoders, no autoencoder: the embeddings and the latent come from the host.
- The automatic editing mask (``create_editing_mask``: a forward pass reading cross-attention, then Otsu, closing,
  hole filling with OpenCV and scikit-image) is not part of this comparison: the pack takes the mask as a MASK
  input. ``flux.sampling.create_editing_mask`` is replaced by a function returning the job's mask, so their
  ``denoise_*`` sets ``info['edit_map_indices']`` from it exactly as from theirs. Where ``cv2`` / ``skimage`` /
  ``flux.modules.conditioner`` are not installed or not shipped, empty stand-ins are put in ``sys.modules`` so that
  ``flux.sampling`` imports (nothing on this path calls them).
- Float32 on the CPU (their code runs bfloat16 on CUDA); one torch thread.
"""
from __future__ import annotations

import importlib.util
import sys
import types

import torch


def _stand_in(name: str, **attrs) -> None:
    """An empty module ``name`` (with ``attrs``) in ``sys.modules``, for an import that nothing on this path calls."""
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    sys.modules[name] = module


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _unused(*args, **kwargs):
    raise RuntimeError("stand-in called: the parity run takes the mask as given")


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    if not _installed("cv2"):
        _stand_in("cv2", threshold=_unused, THRESH_BINARY=0, THRESH_OTSU=0)
    if not _installed("skimage"):
        _stand_in("skimage")
        _stand_in("skimage.morphology", closing=_unused, remove_small_holes=_unused)
    try:
        import flux.modules.conditioner  # noqa: F401
    except ImportError:
        _stand_in("flux.modules.conditioner", HFEmbedder=object)

    from flux import sampling
    from flux.model import Flux, FluxParams

    model = Flux(FluxParams(**job["params"])).float().eval().requires_grad_(False)
    missing, unexpected = model.load_state_dict(job["state_dict"], strict=True)
    assert not missing and not unexpected

    mask = job["mask"]
    grid = (job["img"].shape[1],)
    if mask is not None:
        sampling.create_editing_mask = lambda *args, **kwargs: mask.to(job["img"].dtype)
    steps = len(job["timesteps"]) - 1
    info = {"feature": {}, "inject_step": int(job["inject_step"]), "use_KV_injection": True,
            "use_mask": mask is not None,
            "selected_single_blocks": list(job["selected_single_blocks"]),
            "selected_double_blocks": list(job["selected_double_blocks"]),
            "global_single_blocks": list(job["global_single_blocks"]),
            "global_double_blocks": list(job["global_double_blocks"]),
            "global_timestep_start": 0, "global_timestep_end": steps - 1,
            "new_token_indices": [0] if mask is not None else [], "deleted_token_indices": [],
            "orig_latent_size": tuple(job["latent_size"])}
    if mask is not None:
        info["masking_timesteps"] = list(job["timesteps"])   # read only by the replaced create_editing_mask
    denoise = getattr(sampling, job["function"])
    img, img_ids, txt_ids = job["img"], job["img_ids"], job["txt_ids"]
    with torch.no_grad():
        txt, vec = job["source"]
        inverted, info = denoise(model, img=img, img_ids=img_ids, txt=txt, txt_ids=txt_ids, vec=vec,
                                 timesteps=list(job["timesteps"]), inverse=True, info=info,
                                 guidance=job["inversion_guidance"])
        kept = len(info["feature"])
        src_txt, src_vec = txt, vec
        txt, vec = job["target"]
        sample, info = denoise(model, img=inverted.clone(), img_ids=img_ids, txt=txt, txt_ids=txt_ids, vec=vec,
                               timesteps=list(job["timesteps"]), inverse=False, info=info, guidance=job["guidance"],
                               src_img=img, init_noise=inverted.clone(), src_txt=src_txt, src_txt_ids=txt_ids,
                               src_vec=src_vec)
    assert grid and kept
    torch.save({"inverted": inverted.detach().clone(), "sample": sample.detach().clone(), "features": kept}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

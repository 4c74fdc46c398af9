"""Runs DragonDiffusion / DiffEditor's released code (MC-E/DragonDiffusion) on given weights, for the pack's
parity test (``tests/host/test_dragon_diffusion.py``). Never imported by the pack.

    PYTHONPATH=<checkout>:<this folder> python dragon_diffusion_runner.py JOB OUT

What runs, unchanged: ``src/utils/utils.py``'s ``process_move`` (the move's masks) and
``src/models/Sampler.py``'s ``Sampler.guidance_move`` (the energies and their gradients: the guidance added to
the predicted noise at one step), with ``src/unet/estimator.py``'s ``MyUNet2DConditionModel`` as the feature
estimator, built from the job's diffusers UNet (the host's tiny model converted by ``tests/diffusers_bridge.py``)
as ``DragonPipeline`` builds it (``from_pretrained`` of the same weights). ``guidance_move`` is called on a
stand-in for the pipeline that holds only the estimator, the one attribute it reads.

What cannot run: ``Sampler.edit`` (the whole sampling loop) needs the code's UNet fork
(``src/unet/unet_2d_condition.py``), built on diffusers 0.1x's ``diffusers.models.cross_attention``, which the
installed diffusers no longer has; the parity test says so when it skips that part.

Adapters, none changing what the reference computes:
- ``diffusers.models.unet_2d_condition`` (the path the estimator imports ``UNet2DConditionModel`` from) is the
  installed diffusers' ``diffusers.models.unets.unet_2d_condition``, where that class now lives.
- ``basicsr`` and ``cv2`` are not installed: ``basicsr.utils.img2tensor`` is its conversion of an HxWxC array to a
  CxHxW float tensor (the job's mask has three equal channels, so its BGR -> RGB swap changes nothing), and
  ``cv2.resize`` is the identity at the array's own size (the only size the job passes; any other raises).
- The code puts its masks on ``'cuda'``; on a machine without one, ``Tensor.to('cuda', ...)`` goes to the CPU.

JOB (``torch.save``): ``unet`` (diffusers ``UNet2DConditionModel``), ``mask`` (uint8 HxWx3, 0/255), ``dx``,
``dy``, ``resize_scale``, ``w_edit``, ``w_content``, ``w_contrast``, ``w_inpaint``, ``energy_scale`` (already
times 1e3, as ``run_move`` passes it), ``latent`` and ``latent_ref`` (DDPM latents ``[1, 4, h, w]``), ``t`` (the
integer timestep), ``text`` (the prompt's embeddings ``[1, 77, C]``). OUT: ``guidance`` and the masks.
"""
from __future__ import annotations

import sys
import types

import diffusers.models.unets.unet_2d_condition as _unet_module
import numpy as np
import torch

sys.modules.setdefault("diffusers.models.unet_2d_condition", _unet_module)

if "basicsr" not in sys.modules:
    try:
        import basicsr
    except ImportError:
        basicsr = sys.modules["basicsr"] = types.ModuleType("basicsr")
        utils = sys.modules["basicsr.utils"] = types.ModuleType("basicsr.utils")
        basicsr.utils = utils

        def img2tensor(img, bgr2rgb=True, float32=True):
            if isinstance(img, list):
                return [img2tensor(i, bgr2rgb, float32) for i in img]
            if img.shape[2] == 3 and bgr2rgb:
                img = img[:, :, ::-1].copy()
            out = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
            return out.float() if float32 else out

        utils.img2tensor = img2tensor
        utils.tensor2img = None

try:
    import cv2
except ImportError:
    cv2 = sys.modules["cv2"] = types.ModuleType("cv2")

    def resize(img, size, *args, **kwargs):
        if tuple(size) != (img.shape[1], img.shape[0]):
            raise NotImplementedError("the cv2 stand-in resizes only to the array's own size")
        return img

    cv2.resize = resize

if not torch.cuda.is_available():
    _to = torch.Tensor.to

    def _to_cpu(self, *args, **kwargs):
        args = tuple("cpu" if a == "cuda" else a for a in args)
        if kwargs.get("device") == "cuda":
            kwargs["device"] = "cpu"
        return _to(self, *args, **kwargs)

    torch.Tensor.to = _to_cpu


def main(job_path: str, out_path: str) -> None:
    from src.models.Sampler import Sampler
    from src.unet.estimator import MyUNet2DConditionModel
    from src.utils.utils import process_move

    job = torch.load(job_path, weights_only=False)
    unet = job["unet"]
    estimator = MyUNet2DConditionModel.from_config(unet.config)
    estimator.load_state_dict(unet.state_dict())
    estimator = estimator.float().eval()
    mask = job["mask"]
    height, width = mask.shape[:2]
    up_ft_index, up_scale = [1, 2], 2                  # src/demo/model.py: "fixed in gradio demo"
    sizes = {0: 4, 1: 2, 2: 1, 3: 1}                   # src/demo/model.py's SIZES
    scale = 8 * sizes[max(up_ft_index)] / up_scale
    kwargs = process_move(path_mask=mask, h=width, w=height, dx=job["dx"], dy=job["dy"], scale=scale, input_scale=1.0,
                          resize_scale=job["resize_scale"], up_scale=up_scale, up_ft_index=up_ft_index,
                          w_edit=job["w_edit"], w_content=job["w_content"], w_contrast=job["w_contrast"],
                          w_inpaint=job["w_inpaint"], precision=torch.float32, path_mask_ref=None)
    pipe = types.SimpleNamespace(estimator=estimator)
    guidance = Sampler.guidance_move(pipe, latent=job["latent"].float(), latent_noise_ref=job["latent_ref"].float(),
                                     t=torch.tensor(job["t"]), text_embeddings=job["text"].float(),
                                     energy_scale=job["energy_scale"], **kwargs)
    torch.save({"guidance": guidance.detach(), "mask_cur": kwargs["mask_cur"], "mask_tar": kwargs["mask_tar"],
                "mask_other": kwargs["mask_other"], "mask_non_overlap": kwargs["mask_non_overlap"]}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

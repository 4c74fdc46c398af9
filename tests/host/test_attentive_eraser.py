"""Attentive Eraser (Sun et al., AAAI 2025; ``invertedit/techniques/attentive_eraser/``) in the host: its parity with
the authors' code, the removal on toy world 2, one batched UNet call a step, the layers it takes by default.

Parity: the authors' ``AAS`` editor (``AAS/AAS.py``) and its registration (``AAS/AAS_utils.py``'s
``regiter_attention_editor_diffusers``), imported unchanged from a copy of their repository
(``ATTENTIVEERASER_PATH``: a checkout; else the snapshot the ``fetch`` tool leaves at
``/work/.mirror/Anonym0u3+AttentiveEraser/repo``), on the diffusers UNet carrying the tiny SD1 model's weights
(``tests/diffusers_bridge.py``). The adapters, none changing what their code computes:
- their modules import ``cv2`` and ``torchvision.utils.save_image`` at the top and use neither here (no mask is
  saved): empty stand-ins are on ``sys.modules`` while they are imported;
- no pipeline: their ``pipelines/pipeline_inversion.py`` needs SD's full pipeline (tokenizer, safety checker, their
  diffusers version); its denoising loop (``__call__``, guidance 1 as ``inference/DIP.py`` runs it) is driven here as
  written: before each step the latent outside the mask is the inversion's (``record_list``), the batch is the
  latent twice with the same (empty) prompt, ``eps_wo + rm_guidance_scale (eps_w - eps_wo)``, their ``step`` (DDIM
  on the scheduler's ``alphas_cumprod``), and after the last step the source outside the mask;
- the inversion is the pack's DDIM inversion (the same DDIM as their ``invert``: ``steps_offset=1``,
  ``set_alpha_to_one=True`` make their scheduler's timesteps and final alpha the host's ``ddim_uniform``'s), its
  trajectory converted to diffusers' scale (``x / sqrt(1 + sigma^2)``);
- their mask is given at the 512 px their ``AAS`` pools from (kernel ``512 // H``), ours at the image's 256 px: the
  same box on cell boundaries; no blur on either side (their loader's blur is ``tests/pure``'s Gaussian check).
"""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from workshop.headless.calls import call, encode

STEPS = 4
LATENT = 32           # 256 px: their masks at every grid of the tiny UNet (32 and 16 tokens a side)
TOLERANCE = 1e-4      # relative, over the final latent (measured 6.7e-7 here; 7.8e-7 at 64x64, 4 steps)
DECODER = 5           # the tiny SD1 UNet's first decoder self-attention layer (of 11)
ERASER = dict(removal_scale=9.0, ss_steps=1, ss_scale=0.3, start_step=0, end_step=-1, start_layer=-1, end_layer=-1,
              mask_blur=0)


def _box(side: int, scale: int) -> torch.Tensor:
    mask = torch.zeros(1, side * scale, side * scale)
    mask[:, 8 * scale * 3:8 * scale * 9, 8 * scale * 2:8 * scale * 11] = 1
    return mask


@pytest.fixture(scope="module")
def reference(tmp_path_factory, reference_copy, skip_loudly, host):
    tmp = tmp_path_factory.mktemp("attentive_eraser")
    if reference_copy(tmp, "ATTENTIVEERASER", "Anonym0u3/AttentiveEraser", ("AAS",), "AAS/AAS.py") is None:
        skip_loudly("ATTENTIVE ERASER PARITY SKIPPED: the authors' code was not found (set ATTENTIVEERASER_PATH to a "
                    "checkout of github.com/Anonym0u3/AttentiveEraser, or fetch it to "
                    "/work/.mirror/Anonym0u3+AttentiveEraser)")
    stand_ins = {"cv2": types.ModuleType("cv2"), "torchvision": types.ModuleType("torchvision"),
                 "torchvision.utils": types.ModuleType("torchvision.utils")}
    stand_ins["torchvision.utils"].save_image = lambda *a, **k: None
    saved = {name: sys.modules.get(name) for name in stand_ins}
    for name, module in stand_ins.items():
        if name in ("cv2", "torchvision.utils") or name not in sys.modules:
            sys.modules[name] = module
    sys.path.insert(0, str(tmp))
    try:
        for name in [m for m in sys.modules if m == "AAS" or m.startswith("AAS.")]:
            del sys.modules[name]
        return SimpleNamespace(aas=importlib.import_module("AAS.AAS"), utils=importlib.import_module("AAS.AAS_utils"))
    finally:
        sys.path.remove(str(tmp))
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _sample(host, guider, sigmas, latent) -> torch.Tensor:
    return call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider,
                sampler=call(host, "KSamplerSelect", sampler_name="ddim")[0], sigmas=sigmas, latent_image=latent)[0]["samples"]


def test_attentive_eraser_matches_the_authors_code(host, tiny, bridge, reference):
    from diffusers import DDIMScheduler

    model, clip, _ = tiny("sd1")
    empty = encode(host, clip, "")
    src = {"samples": torch.randn(1, 4, LATENT, LATENT, generator=torch.Generator().manual_seed(0)) * 5.0}
    inv, lat, sigmas = call(host, "InvertEditDDIMInvert", model=model, latent=src, positive=empty, steps=STEPS,
                            scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    guider, _ = call(host, "InvertEditAttentiveEraser", model=model, conditioning=empty, inversion=inv,
                     mask=_box(LATENT, 8), **ERASER)
    ours = model.model.process_latent_in(_sample(host, guider, sigmas, lat))

    unet = bridge.diffusers_unet(model)
    big = _box(LATENT, 16)[None]   # their AAS pools a 512 px mask
    editor = reference.aas.AAS(None, 0, STEPS, layer_idx=list(range(DECODER, 11)), mask=big, ss_steps=1, ss_scale=0.3)
    reference.utils.regiter_attention_editor_diffusers(SimpleNamespace(unet=unet), editor)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=True, steps_offset=1)
    scheduler.set_timesteps(STEPS)
    record = [inv.trajectory[i] / (1 + float(inv.sigmas[i]) ** 2) ** 0.5 for i in range(STEPS + 1)]
    m = F.max_pool2d(_box(LATENT, 8)[None], (8, 8)).round()   # their test_mask (mask at the image's size)
    cond = torch.cat([empty[0][0]] * 2)
    x = record[0]
    pipe = SimpleNamespace(scheduler=scheduler)
    for i, t in enumerate(scheduler.timesteps):
        x = x * m + record[i] * (1 - m)
        eps = unet(torch.cat([x] * 2), t, encoder_hidden_states=cond).sample
        wo, w = eps.chunk(2)
        eps = wo + 9.0 * (w - wo)
        x = _their_step(pipe, eps, int(t), x)
    theirs = x * m + record[-1] * (1 - m)
    err = float((ours - theirs).norm() / theirs.norm())
    assert err < TOLERANCE, err
    plain = float(((record[-1] - theirs) * m).norm() / (theirs * m).norm())
    assert plain > 0.05   # the removal changed the region (so the parity is not of two reconstructions)


def _their_step(pipe, model_output, timestep: int, x):
    """``pipelines/pipeline_inversion.py``'s ``step`` (model_opt_output None) as written, its module not importable
    here (it imports their diffusers version's internals)."""
    prev_timestep = timestep - pipe.scheduler.config.num_train_timesteps // pipe.scheduler.num_inference_steps
    alpha_prod_t = pipe.scheduler.alphas_cumprod[timestep]
    alpha_prod_t_prev = pipe.scheduler.alphas_cumprod[prev_timestep] if prev_timestep > 0 else pipe.scheduler.final_alpha_cumprod
    beta_prod_t = 1 - alpha_prod_t
    pred_x0 = (x - beta_prod_t ** 0.5 * model_output) / alpha_prod_t ** 0.5
    pred_dir = (1 - alpha_prod_t_prev) ** 0.5 * model_output
    return alpha_prod_t_prev ** 0.5 * pred_x0 + pred_dir


def test_the_red_circle_is_redrawn_as_the_background_in_one_call_a_step(host):
    """Toy world 2 (the workflow's settings at 10 steps): inside the circle's mask the picture is the background's
    green, outside it the latent is the source's exactly; one UNet call of 2 rows a step."""
    from PIL import Image

    from invertedit.techniques.attentive_eraser.workflows import RED, TOY_START_LAYER
    from workshop.headless.calls import builtin_model

    model, clip, vae = builtin_model(host, "toy")
    image = Image.open(Path(__file__).resolve().parents[2] / "assets" / "sample_two_objects.png").convert("RGB")
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)[None]
    mask = call(host, "ImageColorToMask", image=pixels, color=RED)[0]
    empty = encode(host, clip, "")
    latent = call(host, "VAEEncode", pixels=pixels, vae=vae)[0]
    inv, lat, sigmas = call(host, "InvertEditDDIMInvert", model=model, latent=latent, positive=empty, steps=10,
                            scheduler="ddim_uniform", start_at_step=0, cfg=1.0)
    calls = []
    counted = model.clone()
    counted.set_model_unet_function_wrapper(
        lambda apply, a: calls.append(a["input"].shape[0]) or apply(a["input"], a["timestep"], **a["c"]))
    guider, shown = call(host, "InvertEditAttentiveEraser", model=counted, conditioning=empty, inversion=inv, mask=mask,
                         **dict(ERASER, ss_steps=9, mask_blur=7, start_layer=TOY_START_LAYER))
    out = _sample(host, guider, sigmas, lat)
    assert calls == [2] * 10
    inside = F.max_pool2d(shown[None, :, ::8, ::8], 1)[0, 0] > 0   # the latent cells redrawn
    source = latent["samples"]
    assert torch.allclose(out[..., ~inside], source[..., ~inside], atol=1e-4)
    picture = call(host, "VAEDecode", samples={"samples": out}, vae=vae)[0][0]
    circle = mask[0] > 0.5
    green = torch.tensor([26, 191, 51]) / 255
    assert float((picture[circle] - green).abs().mean()) < 0.06
    assert float(picture[circle][:, 0].mean()) < 0.2   # no red left


def test_the_default_layers_are_the_decoders(host, tiny):
    from invertedit.techniques.attentive_eraser.glue import layer_range

    model = tiny("sd1")[0]
    layers, start, end = layer_range(model, -1, -1)
    assert (start, end) == (DECODER, 11) and len(layers) == 11
    assert layer_range(model, 2, 4)[1:] == (2, 4)

"""Runs DragDiffusion's reference code on given weights, for the pack's parity test
(``tests/host/test_drag_diffusion.py``). Never imported by the pack.

    PYTHONPATH=<checkout>:<this folder> python drag_diffusion_runner.py JOB OUT

The authors' code, Yujun-Shi/DragDiffusion, unchanged: ``drag_pipeline.py``'s ``DragPipeline`` (a
``StableDiffusionPipeline`` whose UNet forward also returns the up blocks' features: ``modify_unet_forward``) and
``utils/drag_utils.py``'s ``drag_diffusion_update``, called as ``utils/ui_utils.py``'s ``run_drag`` calls them
(the DDIM scheduler it builds; guidance 1; ``unet_feature_idx`` [3]; the supervision grid half the image; the mask
at the grid's size; points as (row, column) tensors in the grid), then, where the job asks for it, the final
denoising as ``run_drag`` does it: ``utils/attn_utils.py``'s ``MutualSelfAttentionControl`` registered by
``register_attention_editor_diffusers`` and the pipeline called on the pair (original, dragged) from the drag's step.

JOB (``torch.save``; ``tests/conftest.py``'s ``reference_run``): the diffusers UNet, text encoder, VAE and
tokenizer path of the host's tiny SD1.5-layout model (``tests/diffusers_bridge.py``), the prompt's embedding as
the host's text encoder made it, ``init_code`` (the inverted latent at the drag's step, DDPM space), the grid
points, the mask, the settings. OUT: the updated latent, the handle points where tracking left them, and the
final denoising's latents.

Stand-ins, none changing what the reference computes:
- ``utils/ui_utils.py`` (gradio, the UI) is not imported; its ``run_drag``'s settings are given by the job.
- No CUDA: the code's ``torch.autocast(device_type='cuda')`` and ``torch.cuda.amp.GradScaler`` disable themselves
  (torch warns), so the loop runs in float32 with plain Adam steps, what a GPU run's scaler does to within its
  fp16 rounding.
- The checkout's ``utils`` folder, a namespace package, is registered as the package ``utils`` before its modules
  are imported (a regular package of that name elsewhere on the path, ComfyUI's, would shadow it).
- No safety checker or feature extractor in the pipeline (``requires_safety_checker=False``): the drag never
  calls them, and the final denoising is read as latents (``return_intermediates``), not as pictures.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch


def main(job_path: str, out_path: str) -> None:
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer

    import drag_pipeline
    from drag_pipeline import DragPipeline

    # the checkout's utils/ has no __init__.py (a namespace package), which any regular package named utils on the
    # path wins over (ComfyUI's, on this machine): it is put in place as the package its folder is
    package = types.ModuleType("utils")
    package.__path__ = [str(Path(drag_pipeline.__file__).resolve().parent / "utils")]
    sys.modules["utils"] = package
    from utils.drag_utils import drag_diffusion_update

    job = torch.load(job_path, weights_only=False)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    model = DragPipeline(vae=job["vae"], text_encoder=job["text_encoder"], tokenizer=CLIPTokenizer.from_pretrained(
        job["tokenizer"]), unet=job["unet"], scheduler=scheduler, safety_checker=None, feature_extractor=None,
                         requires_safety_checker=False)
    model.modify_unet_forward()
    s = job["settings"]
    args = SimpleNamespace(prompt="", n_inference_step=s["steps"], n_actual_inference_step=s["steps"] - s["start"],
                           guidance_scale=1.0, unet_feature_idx=[s["feature_idx"]], r_m=s["r_m"], r_p=s["r_p"],
                           lam=s["lam"], lr=s["lr"], n_pix_step=s["n_pix_step"], sup_res_h=s["sup"][0],
                           sup_res_w=s["sup"][1])
    model.scheduler.set_timesteps(args.n_inference_step)
    t = model.scheduler.timesteps[args.n_inference_step - args.n_actual_inference_step]
    emb = job["embedding"].float()
    init_code = job["init_code"].float().clone()
    init_orig = init_code.clone()
    handles = [torch.tensor(p, dtype=torch.float32) for p in job["handles"]]
    targets = [torch.tensor(p, dtype=torch.float32) for p in job["targets"]]
    torch.manual_seed(0)
    updated = drag_diffusion_update(model, init_code, emb, t, handles, targets, job["mask"].float(), args)
    out = {"updated": updated.detach().clone(), "handles": [h.tolist() for h in handles], "t": int(t)}
    if job.get("final"):
        from utils.attn_utils import MutualSelfAttentionControl, register_attention_editor_diffusers

        editor = MutualSelfAttentionControl(start_step=s["start_step"], start_layer=s["start_layer"],
                                            total_steps=args.n_inference_step, guidance_scale=args.guidance_scale)
        register_attention_editor_diffusers(model, editor, attn_processor="attn_proc")
        with torch.no_grad():
            _, latents = model(prompt=args.prompt, encoder_hidden_states=torch.cat([emb] * 2, dim=0), batch_size=2,
                               latents=torch.cat([init_orig, updated.detach()], dim=0),
                               guidance_scale=args.guidance_scale, num_inference_steps=args.n_inference_step,
                               num_actual_inference_steps=args.n_actual_inference_step, return_intermediates=True)
        out["final"] = [x.detach().clone() for x in latents]
    torch.save(out, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

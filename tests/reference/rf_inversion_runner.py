"""Runs RF-Inversion (Rout et al. 2025) as diffusers' community pipeline writes it
(``examples/community/pipeline_flux_rf_inversion.py``, ``RFInversionFluxPipeline.invert`` and
``__call__``, unchanged) on given weights, for the pack's parity test
(``tests/host/test_flow_invert_parity.py``). Never imported by the pack.

    PYTHONPATH=<folder holding pipeline_flux_rf_inversion.py> python rf_inversion_runner.py JOB OUT

JOB (``torch.save``): the diffusers ``transformer`` (the host's tiny Flux dev, converted by
``tests/reference/flow_diffusers.py``), the image's latent ``x0`` in the model's space (B, 16, H, W:
the host's ``process_latent_in``), the fixed noise ``y1`` the pack drew (B, 16, H, W), the
prompts' ``embeddings`` as the host's text encoders made them, ``source`` / ``target`` prompts,
``steps``, ``gamma``, ``eta``, ``start``, ``stop``, ``source_guidance`` and ``guidance``.
OUT gets the inverted latent, the image latents and the edited latent (all packed, as the
pipeline returns them with ``output_type="latent"``), and the scheduler's sigmas of the inversion
and of the sampling.

Adapters, none changing what the method computes:
- The pipeline holds the transformer and diffusers' ``FlowMatchEulerDiscreteScheduler`` with Flux's
  released configuration (dynamic shifting, base_shift 0.5, max_shift 1.15, base_image_seq_len 256,
  max_image_seq_len 4096), no text encoders, no VAE (so its ``vae_scale_factor`` is the default 8,
  which the pipeline's size arithmetic assumes: height = 8 x the latent's).
- ``encode_prompt`` returns the host's embeddings of the prompt (context, pooled, ``txt_ids`` zeros):
  the text encoders are not part of the method.
- ``encode_image`` returns the host's model-space latent (what the pipeline's own
  ``(vae.encode(image).sample() - shift_factor) * scaling_factor`` gives); the pipeline packs it
  itself (``prepare_latents_inversion``).
- ``torch.randn_like``, for the one call ``invert`` makes (``y_1 = torch.randn_like(Y_t)``), returns
  the pack's ``y1`` packed the pipeline's way: the pack draws its noise unpacked (B, 16, H, W) from a
  seeded CPU generator, the pipeline packed (B, HW/4, 64) from the global generator, so the two
  draws cannot coincide; the noise is an input of the method, not part of it.
- ``dtype=torch.float32`` is given to ``invert`` (its default reads the absent text encoder's).
"""
from __future__ import annotations

import sys

import torch


def run_rf_inversion(pipeline_class, transformer, job: dict) -> dict:
    """The community pipeline (``pipeline_class``, unchanged) around ``transformer``: ``invert`` of ``job["x0"]`` with
    the fixed noise ``job["y1"]``, then the controlled ``__call__`` with ``job["target"]``; the prompts' embeddings are
    ``job["embeddings"]`` (prompt -> (context, pooled)). Returns the packed latents and both schedules."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    embeds = job["embeddings"]
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    pipe = pipeline_class(scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None,
                          text_encoder_2=None, tokenizer_2=None, transformer=transformer.eval())
    x0, y1 = job["x0"].float(), job["y1"].float()
    b, c, h, w = x0.shape
    height, width = h * pipe.vae_scale_factor, w * pipe.vae_scale_factor

    def encode_prompt(prompt, prompt_2=None, device=None, **kwargs):
        context, pooled = embeds[prompt]
        return context, pooled, torch.zeros(context.shape[1], 3)

    def encode_image(image, dtype=None, height=None, width=None, **kwargs):
        return x0.to(dtype), None

    pipe.encode_prompt, pipe.encode_image = encode_prompt, encode_image

    packed_y1 = pipe._pack_latents(y1, b, c, h, w)
    randn_like, drawn = torch.randn_like, []

    def pack_noise(t, *args, **kwargs):
        assert not drawn and t.shape == packed_y1.shape, "the pipeline drew other noise than y_1"
        drawn.append(True)
        return packed_y1.to(t)

    torch.randn_like = pack_noise
    try:
        with torch.inference_mode():
            inverted, image_latents, ids = pipe.invert(image=None, source_prompt=job["source"],
                                                       source_guidance_scale=job["source_guidance"],
                                                       num_inversion_steps=job["steps"], gamma=job["gamma"],
                                                       height=height, width=width, dtype=torch.float32)
    finally:
        torch.randn_like = randn_like
    assert drawn, "invert drew no y_1"
    inversion_sigmas = scheduler.sigmas.detach().clone()
    with torch.inference_mode():
        edited = pipe(prompt=job["target"], inverted_latents=inverted, image_latents=image_latents,
                      latent_image_ids=ids, height=height, width=width, eta=job["eta"], start_timestep=job["start"],
                      stop_timestep=job["stop"], num_inference_steps=job["steps"], guidance_scale=job["guidance"],
                      output_type="latent", return_dict=False)[0]
    return {"inverted": inverted.detach().clone(), "image_latents": image_latents.detach().clone(),
            "latent": edited.detach().clone(), "inversion_sigmas": inversion_sigmas,
            "sigmas": scheduler.sigmas.detach().clone(),
            "unpack": lambda x: pipe._unpack_latents(x, height, width, pipe.vae_scale_factor)}


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    from pipeline_flux_rf_inversion import RFInversionFluxPipeline

    out = run_rf_inversion(RFInversionFluxPipeline, job["transformer"], job)
    out.pop("unpack")
    torch.save(out, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

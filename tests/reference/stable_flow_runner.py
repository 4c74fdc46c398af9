"""Runs Stable Flow's own code (``snap-research/stable-flow``: its vendored diffusers, ``src/diffusers``,
with their ``FluxPipeline`` inversion and edit, their attention processors' key/value copy and
their scheduler's ``step_forward``) on given weights, for the pack's parity test
(``tests/host/test_stable_flow.py``). Never imported by the pack.

    PYTHONPATH=<the repository's src> python stable_flow_runner.py JOB OUT

JOB (``torch.save``):
- ``state_dict``, ``config``: the host's tiny Flux as a diffusers ``FluxTransformer2DModel``
  (converted by the host's own key map, ``tests/reference/flow_diffusers.py``); loaded strictly;
- ``latent``: the image's latent in the model's space, ``[1, 16, h, w]``; ``size``: the image's side;
- ``source`` / ``target``: (T5 embeddings ``[1, 512, d]``, pooled ``[1, d']``);
- ``steps``, ``guidance`` ([source, target]), ``mm_copy_blocks``, ``single_copy_blocks``, ``nudge``;
- or, for their generated-image edit (``infer_and_save``), ``noise`` ``[1, 16, h, w]`` in place of
  ``latent``: tiled over the two prompts, sampled at the target's guidance with the copy blocks.

As their ``run_stable_flow.py`` ``invert_and_save`` does: the latent times ``nudge`` and packed
(their ``image2latent`` after the VAE), inverted with the source prompt at guidance 1
(``invert_image=True``), then the pair edited from the last inverted latent with
``inverted_latent_list`` and the copy blocks. OUT gets ``{"inverted": [...], "edit": [2, 16, h, w]}``.

Adapters, none changing what the reference computes:
- Their vendored diffusers imports ``transformers.utils.FLAX_WEIGHTS_NAME``, a file-name constant
  the installed transformers no longer has; it is set to its old value before the import.
- No text encoders, tokenizers or VAE: the pipeline is built with the transformer and the
  scheduler (Flux dev's scheduler configuration), and takes the host's embeddings; without a VAE
  the pipeline's ``vae_scale_factor`` is its default, 16, Flux's.
- The transformer's configuration keys that their older class does not take are left out (their
  defaults are the same values).
- Float32 on the CPU (their code runs float16 on CUDA); one torch thread.
"""
from __future__ import annotations

import inspect
import sys

import torch


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    import transformers.utils
    if not hasattr(transformers.utils, "FLAX_WEIGHTS_NAME"):
        transformers.utils.FLAX_WEIGHTS_NAME = "flax_model.msgpack"

    from diffusers.models.transformers.transformer_flux import FluxTransformer2DModel
    from diffusers.pipelines.flux.pipeline_flux import FluxPipeline
    from diffusers.schedulers.scheduling_flow_match_euler_discrete import FlowMatchEulerDiscreteScheduler

    takes = inspect.signature(FluxTransformer2DModel.__init__).parameters
    config = {k: v for k, v in job["config"].items() if k in takes}
    transformer = FluxTransformer2DModel(**config).float().eval().requires_grad_(False)
    missing, unexpected = transformer.load_state_dict(job["state_dict"], strict=True)
    assert not missing and not unexpected
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    pipe = FluxPipeline(scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None, text_encoder_2=None,
                        tokenizer_2=None, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)

    (src, src_pooled), (tgt, tgt_pooled) = job["source"], job["target"]
    size, steps = job["size"], job["steps"]
    if "noise" in job:   # their infer_and_save: one noise tiled over the prompts, no inversion
        b, c, h, w = job["noise"].shape
        noise = pipe._pack_latents(latents=job["noise"], batch_size=1, num_channels_latents=c, height=h, width=w)
        with torch.no_grad():
            edit = pipe(prompt_embeds=torch.cat([src, tgt]), pooled_prompt_embeds=torch.cat([src_pooled, tgt_pooled]),
                        height=size, width=size, guidance_scale=job["guidance"][1], num_inference_steps=steps,
                        max_sequence_length=512, latents=noise.tile(2, 1, 1), mm_copy_blocks=job["mm_copy_blocks"],
                        single_copy_blocks=job["single_copy_blocks"], output_type="latent", return_dict=False)[0]
        torch.save({"edit": pipe._unpack_latents(edit, size, size, pipe.vae_scale_factor).clone()}, out_path)
        return
    latent = job["latent"] * job["nudge"]
    b, c, h, w = latent.shape
    latent = pipe._pack_latents(latents=latent, batch_size=1, num_channels_latents=c, height=h, width=w)
    with torch.no_grad():
        inverted = pipe(prompt_embeds=src, pooled_prompt_embeds=src_pooled, height=size, width=size,
                        guidance_scale=job["guidance"][0], num_inference_steps=steps, max_sequence_length=512,
                        latents=latent, invert_image=True)
        edit = pipe(prompt_embeds=torch.cat([src, tgt]), pooled_prompt_embeds=torch.cat([src_pooled, tgt_pooled]),
                    height=size, width=size, guidance_scale=list(job["guidance"]), num_inference_steps=steps,
                    max_sequence_length=512, latents=inverted[-1].tile(2, 1, 1), inverted_latent_list=inverted,
                    mm_copy_blocks=job["mm_copy_blocks"], single_copy_blocks=job["single_copy_blocks"],
                    output_type="latent", return_dict=False)[0]
    edit = pipe._unpack_latents(edit, size, size, pipe.vae_scale_factor)
    torch.save({"inverted": [x.detach().clone() for x in inverted], "edit": edit.detach().clone()}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Runs omerbt/TokenFlow's code (``run_tokenflow_pnp.py``, ``tokenflow_utils.py``) on given weights,
for the pack's parity test. Never imported by the pack.

    PYTHONPATH=<TokenFlow checkout>:<this folder> python tokenflow_runner.py JOB OUT

JOB (``torch.save``): the diffusers UNet (``unet``), the source's inverted latents per timestep
(``source``: ``[steps, F, C, h, w]``, diffusers scale, in the order of the scheduler's timesteps),
the start latent ``x`` (diffusers scale), the prompts' embeddings (``source_emb``: the inversion
prompt's, ``uncond_emb``, ``cond_emb``), and the settings (``steps``, ``batch_size``, ``guidance``,
``pnp_attn_t``, ``pnp_f_t``, ``seed``). OUT: ``{"final": x_0, "keyframes": [per step]}``, plus
``{"module": ...}`` for the module-level case (``job["module"]``).

Adapters, none changing what the reference computes:
- ``util.py`` imports cv2, kornia and torchvision for its video helpers, which the functions run
  here never call; where a package is not installed, an empty stand-in module takes its name.
- The ``TokenFlow`` object is made without its ``__init__`` (which downloads Stable Diffusion and
  reads frames from disk); its attributes are set as ``__init__`` would: the UNet, the DDIM
  scheduler (configured as the host's ``ddim_uniform``: ``steps_offset=1``, ``set_alpha_to_one``),
  the text embeddings, the config, and a latents folder holding ``noisy_latents_{t}.pt`` per
  timestep as ``preprocess.py`` writes them. The sampling is ``sample_loop``'s loop without its
  decoding: ``x = batched_denoise_step(x, t, indices)`` per timestep, after ``init_method`` as
  ``edit_video`` calls it and ``torch.manual_seed(seed)``.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import tempfile
import types
from pathlib import Path

import torch


def stand_ins() -> None:
    """Empty modules for the video packages ``util.py`` imports, where absent."""
    names = {"cv2": (), "kornia": (), "kornia.geometry": (), "kornia.geometry.transform": ("remap",),
             "kornia.utils": (), "kornia.utils.grid": ("create_meshgrid",), "torchvision": (),
             "torchvision.transforms": (), "torchvision.io": ("read_video", "write_video")}
    for name, attributes in names.items():
        root = name.split(".")[0]
        if root in sys.modules and not getattr(sys.modules[root], "_stand_in", False):
            continue
        if name == root and importlib.util.find_spec(root) is not None:
            continue
        module = types.ModuleType(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        module._stand_in = True
        for attribute in attributes:
            setattr(module, attribute, None)
        sys.modules[name] = module
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(sys.modules[parent], child, module)


def editor(job: dict, latents: Path):
    import run_tokenflow_pnp as reference
    from diffusers import DDIMScheduler

    tf = reference.TokenFlow.__new__(reference.TokenFlow)
    torch.nn.Module.__init__(tf)
    tf.config = {"batch_size": job["batch_size"], "guidance_scale": job["guidance"], "n_timesteps": job["steps"],
                 "pnp_attn_t": job["pnp_attn_t"], "pnp_f_t": job["pnp_f_t"], "sd_version": "1.5",
                 "n_frames": job["x"].shape[0], "device": "cpu"}
    tf.device, tf.sd_version = "cpu", "1.5"
    tf.unet = job["unet"].eval().requires_grad_(False)
    tf.scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                                 set_alpha_to_one=True, steps_offset=1)
    tf.scheduler.set_timesteps(job["steps"])
    for t, z in zip(tf.scheduler.timesteps, job["source"]):
        torch.save(z, latents / f"noisy_latents_{t}.pt")   # as preprocess.py names them
    tf.latents_path = str(latents)
    tf.text_embeds = torch.cat([job["uncond_emb"], job["cond_emb"]])
    tf.pnp_guidance_embeds = job["source_emb"]
    return tf, reference


def main(job_path: str, out_path: str) -> None:
    import diffusers  # noqa: F401 (before the stand-ins: diffusers looks for torchvision itself)
    import transformers  # noqa: F401

    job = torch.load(job_path, weights_only=False)
    stand_ins()
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        tf, reference = editor(job, Path(folder))
        # edit_video: the thresholds as step counts, then init_method
        tf.init_method(conv_injection_t=int(tf.config["n_timesteps"] * tf.config["pnp_f_t"]),
                       qk_injection_t=int(tf.config["n_timesteps"] * tf.config["pnp_attn_t"]))
        torch.manual_seed(job["seed"])
        x, indices = job["x"], torch.arange(job["x"].shape[0])
        draws = []
        randint = torch.randint

        def recorded(*args, **kwargs):   # the keyframes the reference draws, recorded as they are drawn
            out = randint(*args, **kwargs)
            draws.append(out.clone())
            return out

        reference.torch.randint = recorded
        try:
            for t in tf.scheduler.timesteps:   # sample_loop's loop
                x = tf.batched_denoise_step(x, t, indices)
        finally:
            reference.torch.randint = randint
    torch.save({"final": x, "keyframes": draws}, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

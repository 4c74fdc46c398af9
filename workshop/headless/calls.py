"""Calling single ComfyUI nodes (stock and ours) the way the executor does: for tests and benchmarks."""
from __future__ import annotations

import torch


def call(host, class_type: str, **inputs) -> tuple:
    """Run one node by its class_type under inference mode, as the executor would; returns its outputs."""
    cls = host.nodes.NODE_CLASS_MAPPINGS[class_type]
    with torch.inference_mode():
        if hasattr(cls, "define_schema"):   # V3 node
            out = cls.execute(**inputs)
            return tuple(out.args)
        obj = cls()
        return tuple(getattr(obj, cls.FUNCTION)(**inputs))


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def reconstruct(host, model, latent: dict, positive, negative=None, *, steps=50, scheduler="ddim_uniform",
                start_at_step=0, cfg=1.0, sampler_name="ddim", add_noise="disable", seed=0) -> torch.Tensor:
    """Stock KSamplerAdvanced from an inverted latent; returns the LATENT samples."""
    return call(host, "KSamplerAdvanced", model=model, add_noise=add_noise, noise_seed=seed, steps=steps, cfg=cfg,
                sampler_name=sampler_name, scheduler=scheduler, positive=positive,
                negative=negative if negative is not None else positive, latent_image=latent,
                start_at_step=start_at_step, end_at_step=10000, return_with_leftover_noise="disable")[0]["samples"]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def custom_sample(host, model, positive, negative, cfg: float, sampler, sigmas, latent: dict) -> torch.Tensor:
    """Stock SamplerCustomAdvanced with DisableNoise and a CFGGuider; returns the LATENT samples."""
    guider = call(host, "CFGGuider", model=model, positive=positive, negative=negative, cfg=cfg)[0]
    return call(host, "SamplerCustomAdvanced", noise=call(host, "DisableNoise")[0], guider=guider, sampler=sampler,
                sigmas=sigmas, latent_image=latent)[0]["samples"]


# the benchmarks' built-in models: world 1's toy model (their tables' model) and the demo models
MODELS = ("toy-one-object", "demo-sd1", "demo-sd2-v", "demo-sdxl")


def add_model_argument(parser) -> None:
    """A benchmark's ``--model``: one of ``MODELS``, world 1's toy model by default."""
    parser.add_argument("--model", default=MODELS[0], choices=MODELS,
                        help="a built-in model (default: the one-object Toy World Model, 128 px, the tables' model; "
                             "the demo models have random weights)")


def builtin_model(host, name: str) -> tuple:
    """(MODEL, CLIP, VAE) of the runner's built-in model ``name``, a key of
    ``runner.BUILTIN_SWAPS``: "toy" (the Toy World Model's default world, two objects at 512 px),
    "toy-one-object" (world 1, 128 px) or a random-weight demo model ("demo-sd1", "demo-sd2-v",
    "demo-sdxl")."""
    from .runner import BUILTIN_SWAPS, TOY_MODEL

    if name not in BUILTIN_SWAPS:
        raise ValueError(f"unknown built-in model {name!r}; use one of {', '.join(BUILTIN_SWAPS)}")
    builtin = BUILTIN_SWAPS[name]
    if builtin.class_type == TOY_MODEL:
        return host.pack.demo.toy_model.load_toy_model(builtin.widgets["world"])
    return host.pack.demo.tiny_models.build_tiny_models(builtin.widgets["family"], seed=builtin.widgets["seed"])

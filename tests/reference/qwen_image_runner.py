"""Runs the authors' flow-editing loops on a Qwen-Image (diffusers' ``QwenImageTransformer2DModel``
carrying the host's tiny Qwen-Image's weights, ``tests/reference/flow_diffusers.py``), by adapters, for
the pack's Qwen-Image parity tests (``tests/host/test_qwen_image_parity.py``). Never imported by the pack.

    PYTHONPATH=<the reference code>:<this folder> python qwen_image_runner.py JOB OUT

The authors wrote their loops for Flux and SD3 only; neither loop reads anything of the model but its
velocity, so each runs here unchanged with the model's call adapted (the velocity is Qwen-Image's, as
diffusers' ``QwenImagePipeline`` calls its transformer: latents packed in 2x2 patches, ``img_shapes``
(1, H/2, W/2), ``timestep`` = sigma, prompts of different lengths padded with their mask).

JOB (``torch.save``), ``mode`` one of:

- ``"flowedit"``: fallenshock/FlowEdit's ``FlowEditSD3`` (``FlowEdit_utils.py``): Qwen-Image is guided
  as SD3 is, by classifier-free guidance with a negative prompt at a scale per prompt (its pipeline's
  ``true_cfg_scale``), on latents the loop never packs. ``transformer``, ``x_src`` (the model's space:
  the host's ``process_latent_in``, (1, 16, 1, H, W)), ``embeddings`` {prompt: context}, ``source``,
  ``target``, ``negative``, ``settings`` (``T_steps``, ``n_avg``, guidance scales, ``n_min``,
  ``n_max``), ``seed``, ``shift`` (the scheduler's). OUT: the edited latent and the scheduler's sigmas.
- ``"solvers"``: the ``flux.sampling`` solvers of FireFlow's / RF-Solver-Edit's code (``denoise``,
  ``denoise_rf_solver``, ``denoise_fireflow``), as ``rf_solver_runner.py`` runs them on Flux: invert
  ``img`` with the source prompt, sample back with the target. ``transformer``, ``img`` (the model's
  space, packed (1, H/2 * W/2, 64)), ``height`` / ``width`` (the latent's), ``source`` / ``target``
  (contexts), ``timesteps`` (descending, both ends), ``functions`` {name: function}. OUT: ``{name:
  {"inverted": ..., "sample": ...}}`` (packed).

Adapters, none changing what the reference computes:
- FlowEdit: the pipeline is diffusers' own ``StableDiffusion3Pipeline`` (its ``do_classifier_free_guidance``,
  its attributes) holding the scheduler and, as its ``transformer``, ``QwenAsSD3``: SD3's call (unpacked
  latents, ``timestep`` = 1000 sigma, a pooled vector) turned into Qwen-Image's (packed, sigma, no pooled
  vector: the zeros ``encode_prompt`` hands over are never read). No text encoders: ``encode_prompt``
  returns the host's embeddings of each prompt, padded with zero rows to the longest (the loop
  concatenates negative, source, negative, target in one batch); ``QwenAsSD3`` passes each row's own
  length as the mask diffusers' Qwen-Image pipeline passes, so each row sees exactly its own prompt
  (tests/host/test_tiny_flow_models.py: padded and masked equals unpadded to 2e-7).
  ``torch.manual_seed(seed)`` before the call: the loop draws its noises with ``randn_like``. The
  scheduler is diffusers' ``FlowMatchEulerDiscreteScheduler`` with a static ``shift`` (the authors' SD3
  loop calls ``retrieve_timesteps`` without ``mu``, so the dynamic shift of diffusers' Qwen-Image
  pipeline cannot be asked for; the pack's run is given the same sigmas).
- Solvers: ``model`` is ``QwenAsFlux``, BFL's ``Flux`` call (packed ``img``, ``img_ids``, ``txt``,
  ``txt_ids``, ``y``, ``timesteps`` = sigma, ``guidance``, ``info``) turned into Qwen-Image's: the same
  packed latent (Flux's and Qwen-Image's 2x2 packing are the same), ``img_shapes`` for the rope in
  place of the ids (Qwen-Image makes its positions itself), no pooled vector and no guidance embedding
  (``y`` and ``guidance`` are ignored: Qwen-Image takes neither), ``info`` handed back unchanged (its
  ``inject_step`` is 0: the feature sharing of their Flux blocks has no Qwen-Image counterpart here).
- Float32 on the CPU; one torch thread.
"""
from __future__ import annotations

import sys
import types

import torch

for name in ("cv2",):
    try:
        __import__(name)
    except ImportError:
        sys.modules[name] = types.ModuleType(name)


def pack(x: torch.Tensor) -> torch.Tensor:
    """(B, C, [1,] H, W) -> (B, H/2 * W/2, 4C), diffusers' ``_pack_latents``."""
    b, c, h, w = x.shape[0], x.shape[1], x.shape[-2], x.shape[-1]
    return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, H/2 * W/2, 4C) -> (B, C, H, W)."""
    b, _, d = x.shape
    return x.view(b, h // 2, w // 2, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, d // 4, h, w)


def text_lengths(context: torch.Tensor) -> torch.Tensor | None:
    """Each row's own length in a batch padded with zero rows (None where nothing is padded)."""
    real = context.abs().amax(-1) != 0
    lengths = real.sum(1)
    if not torch.equal(real, torch.arange(context.shape[1])[None] < lengths[:, None]):
        raise ValueError("text rows padded other than at the end")
    return None if bool((lengths == context.shape[1]).all()) else lengths


def qwen_velocity(transformer, latent: torch.Tensor, sigma: torch.Tensor, context: torch.Tensor, h: int,
                  w: int) -> torch.Tensor:
    """Qwen-Image's velocity, packed, for a packed ``latent`` of an (H, W) latent, as its pipeline calls it."""
    lengths = text_lengths(context)
    mask = None if lengths is None else torch.arange(context.shape[1])[None] < lengths[:, None]
    return transformer(hidden_states=latent, encoder_hidden_states=context, encoder_hidden_states_mask=mask,
                       timestep=sigma.to(latent.dtype), img_shapes=[(1, h // 2, w // 2)] * latent.shape[0],
                       return_dict=False)[0]


class QwenAsSD3(torch.nn.Module):
    """SD3's transformer call (what ``FlowEdit_utils.calc_v_sd3`` makes) on a Qwen-Image."""

    def __init__(self, transformer):
        super().__init__()
        self.qwen = transformer
        # what StableDiffusion3Pipeline reads of its transformer's config when built
        self.config = types.SimpleNamespace(sample_size=128, patch_size=2)

    @property
    def dtype(self):
        return self.qwen.dtype

    def forward(self, hidden_states, timestep, encoder_hidden_states, pooled_projections=None,
                joint_attention_kwargs=None, return_dict=False):
        h, w = hidden_states.shape[-2:]
        v = qwen_velocity(self.qwen, pack(hidden_states), timestep / 1000, encoder_hidden_states, h, w)
        return (unpack(v, h, w).reshape(hidden_states.shape),)


class QwenAsFlux:
    """BFL's ``Flux`` call (what ``flux.sampling``'s solvers make) on a Qwen-Image."""

    def __init__(self, transformer, h: int, w: int):
        self.qwen, self.h, self.w = transformer, h, w

    def __call__(self, img, img_ids, txt, txt_ids, y, timesteps, guidance=None, info=None):
        return qwen_velocity(self.qwen, img, timesteps, txt, self.h, self.w), info


def run_flowedit(job: dict) -> dict:
    from diffusers import FlowMatchEulerDiscreteScheduler, StableDiffusion3Pipeline

    from FlowEdit_utils import FlowEditSD3

    embeds = job["embeddings"]
    longest = max(c.shape[1] for c in embeds.values())
    padded = {p: torch.nn.functional.pad(c, (0, 0, 0, longest - c.shape[1])) for p, c in embeds.items()}
    scheduler = FlowMatchEulerDiscreteScheduler(shift=float(job["shift"]))
    pipe = StableDiffusion3Pipeline(scheduler=scheduler, vae=None, text_encoder=None, tokenizer=None,
                                    text_encoder_2=None, tokenizer_2=None, text_encoder_3=None, tokenizer_3=None,
                                    transformer=QwenAsSD3(job["transformer"].eval()))

    def encode_prompt(prompt, prompt_2=None, prompt_3=None, negative_prompt=None, do_classifier_free_guidance=True,
                      device=None, **kwargs):
        context, negative = padded[prompt], padded[negative_prompt]
        return context, negative, torch.zeros(1, 1), torch.zeros(1, 1)   # Qwen-Image has no pooled vector

    pipe.encode_prompt = encode_prompt
    torch.manual_seed(job["seed"])
    out = FlowEditSD3(pipe, scheduler, job["x_src"], job["source"], job["target"], job["negative"], **job["settings"])
    return {"latent": out.detach(), "sigmas": scheduler.sigmas.detach().clone()}


def run_solvers(job: dict) -> dict:
    from flux import sampling

    model = QwenAsFlux(job["transformer"].eval(), job["height"], job["width"])
    img = job["img"]
    ids = torch.zeros(1, img.shape[1], 3)   # read by no one: Qwen-Image makes its own positions
    out = {}
    for name, function in job["functions"].items():
        denoise = getattr(sampling, function)
        info = {"inject_step": 0, "feature": {}, "reuse_v": True, "editing_strategy": "", "qkv_ratio": [1, 1, 1],
                "start_layer_index": 0, "end_layer_index": -1, "feature_path": ""}
        txt = job["source"]
        inverted, info = denoise(model, img=img, img_ids=ids, txt=txt, txt_ids=torch.zeros(1, txt.shape[1], 3),
                                 vec=torch.zeros(1, 1), timesteps=list(job["timesteps"]), inverse=True, info=info,
                                 guidance=1.0)
        txt = job["target"]
        sample, info = denoise(model, img=inverted, img_ids=ids, txt=txt, txt_ids=torch.zeros(1, txt.shape[1], 3),
                               vec=torch.zeros(1, 1), timesteps=list(job["timesteps"]), inverse=False, info=info,
                               guidance=1.0)
        out[name] = {"inverted": inverted.detach().clone(), "sample": sample.detach().clone()}
    return out


def main(job_path: str, out_path: str) -> None:
    torch.set_num_threads(1)
    job = torch.load(job_path, weights_only=False)
    with torch.no_grad():
        out = {"flowedit": run_flowedit, "solvers": run_solvers}[job["mode"]](job)
    torch.save(out, out_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""Parity on Wan 2.1 (issue 82): the host's tiny Wan against diffusers' ``WanTransformer3DModel`` holding its weights
(diffusers' own key renames, ``tests/reference/wan_diffusers.py``), and FlowEdit on a Wan clip (FiVE's "Wan-Edit")
against the authors' FlowEdit loop run unchanged on that diffusers model.

FiVE-Bench's own Wan-Edit (``models/wan-edit/wan/text2video.py``) is not FlowEdit's loop as written: it noises the
source a step early and integrates with UniPC (``test_five_wan_edit_is_flowedit_noised_a_step_early_and_integrated_by_
unipc`` reads it and says so loudly). What its scripts fix is read from them: 50 steps, shift 5, source guidance 5
and target 10 with Wan's negative prompt, 16 steps skipped (n_max 34), 41 frames at 832 x 480. fallenshock/FlowEdit has no Wan code either; its SD3 loop (``FlowEditSD3``: per-prompt
classifier-free guidance with a negative, the scheme FiVE's Wan-Edit uses) is model-agnostic but for its
transformer, so it runs unchanged on a pipeline over diffusers' Wan (``WanAsSD3Pipeline``)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from workshop.headless.calls import call

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
SOURCE = "a red circle on a green field"
TARGET = "a yellow circle on a green field"
TOLERANCE = 5e-4   # relative: max |ours - reference| / max |reference|


def _diffusers_wan(model):
    sys.path.insert(0, str(REFERENCE))
    try:
        import wan_diffusers
    finally:
        sys.path.remove(str(REFERENCE))
    return wan_diffusers.wan_transformer(model.model.diffusion_model)


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def test_the_tiny_wan_is_diffusers_wan_on_the_same_weights(host, tiny):
    model, clip, _ = tiny("wan21")
    reference = _diffusers_wan(model)
    context = encode(host, clip, SOURCE)[0][0]
    x = torch.randn(2, 16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([900.0, 250.0])
    with torch.no_grad():
        ours = model.model.diffusion_model(x, t, context=context.expand(2, -1, -1))
        theirs = reference(hidden_states=x, timestep=t, encoder_hidden_states=context.expand(2, -1, -1),
                           return_dict=False)[0]
    err = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    print(f"\nwan21 vs diffusers WanTransformer3DModel: relative error {err:.1e}")
    assert err < 1e-5


class WanAsSD3Pipeline:
    """What the authors' ``FlowEditSD3`` asks of its pipeline, over diffusers' ``WanTransformer3DModel``: each
    prompt's embedding (the host's UMT5 made them, 512 tokens each, so the authors' concatenation holds) and the
    transformer called as diffusers' Wan takes it (timestep in 0-1000, as the authors pass it)."""

    def __init__(self, transformer, embeddings: dict):
        self.wan, self.embeddings = transformer, embeddings
        self._guidance_scale = 1.0

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1

    def encode_prompt(self, prompt, negative_prompt, **kwargs):
        pooled = torch.zeros(1, 1)
        return self.embeddings[prompt], self.embeddings[negative_prompt], pooled, pooled

    def transformer(self, hidden_states, timestep, encoder_hidden_states, **kwargs):
        return self.wan(hidden_states=hidden_states, timestep=timestep, encoder_hidden_states=encoder_hidden_states,
                        return_dict=False)


def test_flowedit_on_a_wan_clip_matches_the_authors_loop_on_diffusers_wan(host, tiny, reference_copy, skip_loudly,
                                                                         tmp_path):
    checkout = reference_copy(tmp_path / "code", "FLOWEDIT", "fallenshock/FlowEdit", ("FlowEdit_utils.py",),
                              "FlowEdit_utils.py")
    if checkout is None:
        skip_loudly("WAN FLOWEDIT PARITY SKIPPED: the FlowEdit code was not found (set FLOWEDIT_PATH to a checkout of "
                    "github.com/fallenshock/FlowEdit, or fetch it)")
    sys.path.insert(0, str(checkout))
    try:
        from diffusers import FlowMatchEulerDiscreteScheduler
        from FlowEdit_utils import FlowEditSD3
    finally:
        sys.path.remove(str(checkout))

    model, clip, _ = tiny("wan21")
    conds = {p: encode(host, clip, p) for p in (SOURCE, TARGET, "")}
    raw = torch.randn(1, 16, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    x_src = model.model.process_latent_in(raw)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=8.0)   # the host's Wan sampling: shift 8
    pipe = WanAsSD3Pipeline(_diffusers_wan(model), {p: c[0][0].float() for p, c in conds.items()})
    settings = dict(T_steps=8, n_avg=2, src_guidance_scale=5.0, tar_guidance_scale=10.0, n_min=0, n_max=6)
    torch.manual_seed(11)
    with torch.inference_mode():
        theirs = FlowEditSD3(pipe, scheduler, x_src, SOURCE, TARGET, "", **settings)
    guider = call(host, "InvertEditFlowEdit", model=model, source=conds[SOURCE], target=conds[TARGET],
                  negative=conds[""], source_guidance=5.0, target_guidance=10.0, n_max=6, n_min=0, n_avg=2)[0]
    out = call(host, "SamplerCustomAdvanced", noise=call(host, "RandomNoise", noise_seed=11)[0], guider=guider,
               sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=scheduler.sigmas.float(),
               latent_image={"samples": raw})[0]["samples"]
    ours = model.model.process_latent_in(out)
    moved = ((theirs - x_src).abs().max() / x_src.abs().max()).item()
    err = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    print(f"\nFlowEdit wan21 (a clip of 3 latent frames) vs fallenshock/FlowEdit's FlowEditSD3 on diffusers' Wan: "
          f"relative error {err:.2e} (the edit moved the latent by {moved:.2f} of its range)")
    assert moved > 1e-2
    assert err <= TOLERANCE


def test_five_wan_edit_is_flowedit_noised_a_step_early_and_integrated_by_unipc(skip_loudly):
    """FiVE-Bench's Wan-Edit (``models/wan-edit/wan/text2video.py``, ``WanT2V.edit``) is FlowEdit with per-prompt
    classifier-free guidance, but (1) it noises the source at the previous step's level (``t_prev``, 1000 at the
    first step) while the model is evaluated at the step's own timestep, (2) it integrates the velocity difference
    with its UniPC multistep scheduler (``sample_solver='unipc'``, its default; or DPM++), not Euler, and (3) it
    draws its noises unseeded from the device's default generator, one every step, skipped steps included. The
    node is Kulikov et al.'s FlowEdit (Euler, the step's own level, seeded noises), whose authors' loop it matches on
    Wan above; this test reads FiVE's code for the three points (it fails if they change) and says, loudly, that
    its loop is not run for parity."""
    mirror = Path("/work/.mirror/Harvard-AI-and-Robotics-Lab+FiVE-Bench/repo")
    if not mirror.is_dir():
        skip_loudly("FIVE WAN-EDIT PARITY SKIPPED: FiVE-Bench was not fetched (github.com/Harvard-AI-and-Robotics-Lab/"
                    "FiVE-Bench)")
    code = subprocess.run(["git", "--git-dir", str(mirror), "show", "HEAD:models/wan-edit/wan/text2video.py"],
                          capture_output=True, text=True, check=True).stdout
    edit = code[code.index("def edit("):]
    assert "t_prev = 1000 if i==0 else timesteps[i-1]" in edit
    assert "sample_solver='unipc'" in edit and "sample_scheduler.step(" in edit
    assert "torch.randn(" in edit and "generator=seed_g" not in edit.split("torch.randn(")[1].split(")")[0]
    skip_loudly("FIVE WAN-EDIT PARITY SKIPPED: FiVE's Wan-Edit noises the source a step early and integrates with "
                "UniPC (models/wan-edit/wan/text2video.py); the node is FlowEdit's Euler loop, matched against "
                "fallenshock/FlowEdit's on diffusers' Wan (test_flowedit_on_a_wan_clip_matches_the_authors_loop_on_"
                "diffusers_wan). FiVE's settings are the Wan workflow's: 50 steps, shift 5, n_max 34, cfg 5 / 10")

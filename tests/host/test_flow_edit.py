"""FlowEdit (``InvertEditFlowEdit``) on the tiny random Flux.1, SD3 and Qwen-Image models: what it costs (one
batched model call per acting step, none for skipped ones; on Qwen-Image, whose prompts are not padded, one per
token count, as the host batches them), exact properties (the same prompt
twice gives the source back), and parity with the authors' code
(``fallenshock/FlowEdit``'s ``FlowEditFLUX`` / ``FlowEditSD3``, fetched at test time and run
unchanged by ``tests/reference/flowedit_runner.py`` on the same weights, converted to diffusers).
Its refusals are cases of the bad-input table (``tests/host/test_bad_inputs.py``, ``flowedit-*``)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from workshop.benchmarks.dispatch_count import counted_model
from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "flowedit_runner.py"
TOLERANCE = 5e-4   # relative: max |ours - reference| / max |reference|


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def raw_latent(seed: int = 0, size: int = 8, family: str = "flux-dev") -> torch.Tensor:
    """An image's latent as the family's VAE Encode gives it: Qwen-Image's (its Wan VAE) with a frame axis of 1."""
    latent = torch.randn(1, 16, size, size, generator=torch.Generator().manual_seed(seed))
    return latent.unsqueeze(2) if family == "qwen-image" else latent


def flow_edit(host, model, clip, family, source=SOURCE, target=TARGET, **change):
    flux = family.startswith("flux")
    kw = dict(source_guidance=1.5 if flux else 3.5, target_guidance=5.5 if flux else 13.5, n_max=4, n_min=0, n_avg=1)
    kw.update(change)
    if not flux and "negative" not in kw:
        kw["negative"] = encode(host, clip, "")
    if kw.get("negative", "") is None:   # without guidance: no negative
        del kw["negative"]
    return call(host, "InvertEditFlowEdit", model=model, source=encode(host, clip, source),
                target=encode(host, clip, target), **kw)[0]


def run(host, model, guider, latent, steps=5, seed=7, sigmas=None, sampler="euler"):
    if sigmas is None:
        sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    noise = call(host, "RandomNoise", noise_seed=seed)[0]
    sampler = call(host, "KSamplerSelect", sampler_name=sampler)[0]
    return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


@pytest.mark.parametrize("family", ["flux-dev", "flux-schnell", "sd3", "qwen-image"])
def test_one_batched_call_per_acting_step_and_the_source_back_from_the_same_prompt_twice(host, tiny, family):
    model, clip, _ = tiny(family)
    m, rows = counted_model(model, "APPLY_MODEL")
    latent = raw_latent(family=family)
    out = run(host, m, flow_edit(host, m, clip, family, n_max=3, n_avg=2), latent, steps=5)
    per_row = 2 * 2 * (1 if family.startswith("flux") else 2)   # source + target, 2 noises, SD3's CFG doubles
    if family == "qwen-image":   # the prompts (12 tokens each) in one call, their empty negative (5) in another
        assert rows == [per_row // 2] * 6, rows
    else:
        assert rows == [per_row] * 3, rows
    assert torch.isfinite(out).all() and not torch.allclose(out, latent, atol=1e-3)
    same = flow_edit(host, model, clip, family, target=SOURCE, target_guidance=1.5 if family.startswith("flux") else 3.5)
    same = run(host, model, same, latent, steps=5)
    assert torch.allclose(same, latent, atol=1e-5), (same - latent).abs().max()


def per_step(rows: list[int], calls: int) -> list[list[int]]:
    """The rows of each step's model calls (``calls`` a step), each step's sorted."""
    return [sorted(rows[i:i + calls]) for i in range(0, len(rows), calls)]


def test_on_qwen_image_prompts_of_one_token_count_share_a_call_and_others_cost_the_same_evaluations(host, tiny):
    """Qwen-Image's prompts are not padded (Qwen2.5-VL's tokens as they are) and the host's model reads no text
    mask, so the host batches conds of one token count only: FlowEdit's source and target share a call where their
    counts agree, and take one each where they differ, the same rows in all (what a stock CFG run on Qwen-Image does
    with its prompt and its negative). Counted on the tiny Qwen-Image: without guidance, then with its negative."""
    model, clip, _ = tiny("qwen-image")
    lengths = {text: encode(host, clip, text)[0][0].shape[1] for text in (SOURCE, TARGET, "a cat", "")}
    assert lengths[SOURCE] == lengths[TARGET] != lengths["a cat"] != lengths[""] != lengths[SOURCE], lengths
    latent = raw_latent(family="qwen-image")
    calls = {}
    for label, target, cfg in (("same length", TARGET, False), ("other length", "a cat", False),
                               ("same length, cfg", TARGET, True), ("other length, cfg", "a cat", True)):
        m, rows = counted_model(model, "APPLY_MODEL")
        guidance = {} if cfg else dict(source_guidance=1.0, target_guidance=1.0, negative=None)
        guider = flow_edit(host, m, clip, "qwen-image", target=target, n_max=3, n_avg=2, **guidance)
        assert torch.isfinite(run(host, m, guider, latent, steps=5)).all()
        calls[label] = rows
    assert per_step(calls["same length"], 1) == [[4]] * 3               # source + target, 2 noises: one call
    assert per_step(calls["other length"], 2) == [[2, 2]] * 3           # a call per prompt, the same 4 rows
    assert per_step(calls["same length, cfg"], 2) == [[4, 4]] * 3       # the prompts, then their negatives
    assert per_step(calls["other length, cfg"], 3) == [[2, 2, 4]] * 3   # each prompt, then both negatives
    # a stock CFG step on Qwen-Image splits the same way: the prompt and its negative in a call each
    m, rows = counted_model(model, "APPLY_MODEL")
    stock = call(host, "CFGGuider", model=m, positive=encode(host, clip, TARGET), negative=encode(host, clip, ""),
                 cfg=3.5)[0]
    run(host, m, stock, latent, steps=3)
    assert rows == [1, 1] * 3, rows


def test_n_min_samples_the_target_alone_in_its_last_steps(host, tiny):
    model, clip, _ = tiny("flux-dev")
    m, rows = counted_model(model, "APPLY_MODEL")
    out = run(host, m, flow_edit(host, m, clip, "flux-dev", n_max=4, n_min=2), raw_latent(), steps=5)
    assert rows == [2, 2, 1, 1], rows
    assert torch.isfinite(out).all()


# ------------------------------------------------------------------ parity with the authors' code

@pytest.fixture(scope="module")
def reference(tmp_path_factory, skip_loudly, reference_copy):
    tmp = tmp_path_factory.mktemp("flowedit")
    checkout = reference_copy(tmp / "code", "FLOWEDIT", "fallenshock/FlowEdit", ("FlowEdit_utils.py",),
                              "FlowEdit_utils.py")
    if checkout is None:
        skip_loudly("FLOWEDIT PARITY SKIPPED: the FlowEdit code was not found (set FLOWEDIT_PATH to a checkout of "
                    "github.com/fallenshock/FlowEdit, or fetch it)")

    def run_reference(job: dict) -> dict:
        import os
        import subprocess

        path = tmp / f"job_{job['family']}.pt"
        torch.save(job, path)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(RUNNER.parent)]))
        done = subprocess.run([sys.executable, str(RUNNER), str(path), str(tmp / "out.pt")], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
        return torch.load(tmp / "out.pt")
    return run_reference


@pytest.mark.parametrize("family,settings", [
    ("flux-dev", dict(T_steps=8, n_avg=2, src_guidance_scale=1.5, tar_guidance_scale=5.5, n_min=0, n_max=6)),
    ("sd3", dict(T_steps=8, n_avg=1, src_guidance_scale=3.5, tar_guidance_scale=13.5, n_min=0, n_max=6)),
])
def test_flowedit_matches_the_authors_code(host, tiny, reference, family, settings):
    sys.path.insert(0, str(RUNNER.parent))
    from flow_diffusers import diffusers_transformer

    model, clip, _ = tiny(family)
    flux = family.startswith("flux")
    prompts = [SOURCE, TARGET] + ([] if flux else [""])
    conds = {p: encode(host, clip, p) for p in prompts}
    embeddings = {p: (c[0][0].float(), c[0][1]["pooled_output"].float()) for p, c in conds.items()}
    raw = raw_latent(seed=3, size=8)
    x_src = model.model.process_latent_in(raw)
    job = {"family": "flux" if flux else "sd3", "transformer": diffusers_transformer(model), "x_src": x_src,
           "embeddings": embeddings, "source": SOURCE, "target": TARGET, "negative": "", "settings": settings,
           "seed": 11}
    ref = reference(job)
    kw = dict(source_guidance=settings["src_guidance_scale"], target_guidance=settings["tar_guidance_scale"],
              n_max=settings["n_max"], n_min=settings["n_min"], n_avg=settings["n_avg"])
    if not flux:
        kw["negative"] = conds[""]
    guider = call(host, "InvertEditFlowEdit", model=model, source=conds[SOURCE], target=conds[TARGET], **kw)[0]
    ours = run(host, model, guider, raw, seed=11, sigmas=ref["sigmas"].float())
    ours = model.model.process_latent_in(ours)
    theirs = ref["latent"]
    moved = (theirs - x_src).abs().max() / x_src.abs().max()
    err = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    print(f"\nFlowEdit {family} vs fallenshock/FlowEdit, {settings}: relative error {err:.2e} "
          f"(the edit moved the latent by {moved:.2f} of its range)")
    assert moved > 1e-2
    assert err <= TOLERANCE


class QwenImageAsSD3Pipeline:
    """What the authors' ``FlowEditSD3`` asks of its pipeline, over the host's tiny Qwen-Image: its transformer is
    the host's denoiser (Qwen-Image's output is the velocity, at timestep sigma), each prompt's embedding a
    placeholder holding its number (the authors concatenate the prompts' embeddings, which Qwen-Image's unpadded
    prompts of different lengths cannot be), and each row is evaluated with its own prompt's embedding, alone."""

    def __init__(self, model, contexts: dict):
        self.model, self.names = model, list(contexts)
        self.contexts = [contexts[name] for name in self.names]
        self._guidance_scale = 1.0

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1

    def encode_prompt(self, prompt, negative_prompt, **kwargs):
        ids = [torch.full((1, 1, 1), float(self.names.index(p))) for p in (prompt, negative_prompt)]
        return ids[0], ids[1], ids[0], ids[1]

    def transformer(self, hidden_states, timestep, encoder_hidden_states, **kwargs):
        net = self.model.model.diffusion_model
        rows = [net(x[None], (t / 1000)[None], context=self.contexts[int(i)])
                for x, t, i in zip(hidden_states, timestep, encoder_hidden_states[:, 0, 0])]
        return (torch.cat(rows),)


@pytest.mark.parametrize("target", [TARGET, "a cat"])
def test_flowedit_on_qwen_image_matches_the_authors_sd3_code_run_on_it(host, tiny, reference_copy, skip_loudly,
                                                                      tmp_path, target):
    """The authors have no Qwen-Image code; their SD3 loop (``FlowEditSD3``: per-prompt classifier-free guidance
    with a negative, as this node guides Qwen-Image) is model-agnostic but for its transformer, so it runs
    unchanged on the host's tiny Qwen-Image (``QwenImageAsSD3Pipeline``) against the node, with a target of the
    source's token count (the node batches the prompts) and of another (a call each)."""
    checkout = reference_copy(tmp_path / "code", "FLOWEDIT", "fallenshock/FlowEdit", ("FlowEdit_utils.py",),
                              "FlowEdit_utils.py")
    if checkout is None:
        skip_loudly("FLOWEDIT PARITY SKIPPED: the FlowEdit code was not found (set FLOWEDIT_PATH to a checkout of "
                    "github.com/fallenshock/FlowEdit, or fetch it)")
    sys.path.insert(0, str(checkout))
    try:
        from diffusers import FlowMatchEulerDiscreteScheduler
        from FlowEdit_utils import FlowEditSD3
    finally:
        sys.path.remove(str(checkout))

    model, clip, _ = tiny("qwen-image")
    settings = dict(T_steps=8, n_avg=2, src_guidance_scale=3.5, tar_guidance_scale=13.5, n_min=0, n_max=6)
    conds = {p: encode(host, clip, p) for p in (SOURCE, target, "")}
    raw = raw_latent(seed=3, family="qwen-image")
    x_src = model.model.process_latent_in(raw)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    pipe = QwenImageAsSD3Pipeline(model, {p: c[0][0].float() for p, c in conds.items()})
    torch.manual_seed(11)
    with torch.inference_mode():
        theirs = FlowEditSD3(pipe, scheduler, x_src, SOURCE, target, "", **settings)
    guider = call(host, "InvertEditFlowEdit", model=model, source=conds[SOURCE], target=conds[target],
                  negative=conds[""], source_guidance=3.5, target_guidance=13.5, n_max=6, n_min=0, n_avg=2)[0]
    ours = model.model.process_latent_in(run(host, model, guider, raw, seed=11, sigmas=scheduler.sigmas.float()))
    moved = ((theirs - x_src).abs().max() / x_src.abs().max()).item()
    err = ((ours - theirs).abs().max() / theirs.abs().max()).item()
    print(f"\nFlowEdit qwen-image vs fallenshock/FlowEdit's FlowEditSD3 on it, target {target!r} "
          f"({conds[target][0][0].shape[1]} tokens, the source {conds[SOURCE][0][0].shape[1]}): relative error "
          f"{err:.2e} (the edit moved the latent by {moved:.2f} of its range)")
    assert moved > 1e-2
    assert err <= TOLERANCE


def test_the_workflows_schedulers_give_the_authors_schedules(host, tiny):
    """What the FlowEdit workflows' BasicScheduler gives against the schedules of the authors' pipelines
    (diffusers' FlowMatchEulerDiscreteScheduler as FluxPipeline and StableDiffusion3Pipeline set it)."""
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler

    from workshop.make_workflows import SCHEDULES

    sd3 = tiny("sd3")[0]
    ours = call(host, "BasicScheduler", model=sd3, scheduler=SCHEDULES["SD3"], steps=50, denoise=1.0)[0]
    theirs = FlowMatchEulerDiscreteScheduler(shift=3.0)
    theirs.set_timesteps(50)
    assert torch.allclose(ours, theirs.sigmas.to(ours), atol=1e-6), (ours - theirs.sigmas).abs().max()

    flux = call(host, "ModelSamplingFlux", model=tiny("flux-dev")[0], max_shift=1.15, base_shift=0.5, width=1024,
                height=1024)[0]
    theirs = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                             base_image_seq_len=256, max_image_seq_len=4096)
    for steps, tolerance in ((25, 1e-6), (28, 2e-3)):
        ours = call(host, "BasicScheduler", model=flux, scheduler=SCHEDULES["Flux"], steps=steps, denoise=1.0)[0]
        theirs.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), mu=1.15)   # 1024 px: 4096 tokens, mu = max_shift
        err = (ours - theirs.sigmas.to(ours)).abs().max().item()
        print(f"\nFlux at {steps} steps: host 'simple' vs the authors' schedule: {err:.1e}")
        assert err <= tolerance

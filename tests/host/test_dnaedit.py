"""DNAEdit (``InvertEditDNAEditInvert`` + ``InvertEditDNAEdit``) on the tiny random Flux.1 and SD3 models: what it
costs (one model call a step, the target's rows alone; dispatched operations a step against the stock euler step at
the real models' depth), exact properties (mvg 1 and the source prompt retrace the inversion), which way mvg and
start_step turn (the tooltips), and parity with the authors' code (``xiechenxi99/DNAEdit_code``'s ``DNAEdit_FLUX`` /
``DNAEdit_SD3``) and with the reimplementation the issue names (``Justin900429/RF-Image-Editing``'s
``DNAEditFluxPipeline.denoise``), fetched at test time and run unchanged by ``tests/reference/dnaedit_runner.py``
on the same weights, converted to diffusers. Its refusals are cases of the bad-input table
(``tests/host/bad_inputs_dnaedit.py``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workshop.benchmarks.dispatch_count import OpCounter, counted_model, flow_models
from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a yellow circle on a green field"
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "dnaedit_runner.py"
TOLERANCE = 5e-4   # relative: max |ours - reference| / max |reference|


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def raw_latent(seed: int = 0, size: int = 8) -> torch.Tensor:
    return torch.randn(1, 16, size, size, generator=torch.Generator().manual_seed(seed))


def invert(host, model, source, latent, sigmas, start_step=2, guidance=1.0, seed=0, align_noise=True):
    return call(host, "InvertEditDNAEditInvert", model=model, latent={"samples": latent}, positive=source,
                sigmas=sigmas, start_step=start_step, guidance=guidance, seed=seed, align_noise=align_noise)


def edit(host, model, inverted, target, latent, mvg=0.8, guidance=2.5, negative=None) -> torch.Tensor:
    inversion, noise, sigmas = inverted
    kw = {} if negative is None else {"negative": negative}
    guider = call(host, "InvertEditDNAEdit", model=model, inversion=inversion, target=target, mvg=mvg,
                  guidance=guidance, **kw)[0]
    sampler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


def schedule(host, model, steps: int, scheduler: str = "simple") -> torch.Tensor:
    return call(host, "BasicScheduler", model=model, scheduler=scheduler, steps=steps, denoise=1.0)[0]


@pytest.mark.parametrize("family", ["flux-dev", "sd3"])
def test_one_call_a_step_and_the_source_back_at_mvg_1_with_the_source_prompt(host, tiny, family):
    """Inverting costs one source row a step; the edit one target row (SD3: with its negative, 2 rows in one
    call); with mvg 1 and the source prompt at the inversion's guidance, each edit step evaluates the point the
    inversion evaluated and undoes its step: the image comes back (to float rounding)."""
    model, clip, _ = tiny(family)
    m, rows = counted_model(model, "APPLY_MODEL")
    latent = raw_latent()
    source = encode(host, clip, SOURCE)
    inverted = invert(host, m, source, latent, schedule(host, m, 6), start_step=2)
    assert rows == [1] * 4, rows
    rows.clear()
    back = edit(host, m, inverted, source, latent, mvg=1.0, guidance=1.0)
    assert rows == [1] * 4, rows
    assert (back - latent).abs().max() < 1e-4
    rows.clear()
    negative = None if family.startswith("flux") else encode(host, clip, "")
    edited = edit(host, m, inverted, encode(host, clip, TARGET), latent, guidance=2.5 if negative is None else 3.5,
                  negative=negative)
    assert rows == ([1] * 4 if negative is None else [2] * 4), rows
    assert (edited - latent).abs().max() > 1e-2


def test_qwen_image_runs_as_sd3_and_retraces_the_inversion_at_mvg_1(host, tiny):
    """Qwen-Image (no authors' settings) takes the same nodes: its latent's frame axis of 1 through the inversion's
    record and the edit, and mvg 1 with the source prompt brings the image back."""
    model, clip, _ = tiny("qwen-image")
    latent = raw_latent().unsqueeze(2)
    source = encode(host, clip, SOURCE)
    inverted = invert(host, model, source, latent, schedule(host, model, 5), start_step=1)
    back = edit(host, model, inverted, source, latent, mvg=1.0, guidance=1.0)
    assert back.shape == latent.shape and (back - latent).abs().max() < 1e-4


def test_mvg_and_start_step_turn_the_edit_as_the_tooltips_say(host, tiny):
    """The tooltips' directions, measured on the tiny Flux dev (28 steps, the authors' start_step 4 and mvg 0.8 in
    the middle): a lower mvg keeps more of the image (the edit nearer the source), a higher start_step too."""
    model, clip, _ = tiny("flux-dev")
    latent = raw_latent(seed=1)
    source, target = encode(host, clip, SOURCE), encode(host, clip, "a blue square on a white wall")
    sigmas = schedule(host, model, 28)

    def moved(start_step: int, mvg: float) -> float:
        out = edit(host, model, invert(host, model, source, latent, sigmas, start_step=start_step), target, latent,
                   mvg=mvg, guidance=2.5)
        return float((out - latent).pow(2).mean().sqrt())

    by_mvg = [moved(4, mvg) for mvg in (0.6, 0.8, 1.0)]
    by_start = [moved(start, 0.8) for start in (2, 4, 8)]
    print(f"\nDNAEdit on the tiny Flux dev, RMS change of the latent: mvg 0.6/0.8/1.0 {by_mvg}; "
          f"start_step 2/4/8 {by_start}")
    assert by_mvg[0] < by_mvg[1] < by_mvg[2]
    assert by_start[0] > by_start[1] > by_start[2]


def test_a_step_dispatches_about_what_a_stock_euler_step_does_at_the_real_depth(host):
    """Per edit step, at Flux dev's and SD3's real depth (tiny widths): DNAEdit's step against the stock
    SamplerCustomAdvanced euler step with the same guidance (Flux: BasicGuider; SD3: CFGGuider at 3.5), both on
    the inversion's schedule; the difference of runs at 2 and 4 edit steps, so once-per-run work cancels. Its
    own work is a fixed ~15 elementwise operations a step (the offset, the reference, the blend)."""
    for family in ("flux-dev", "sd3"):
        model, clip = flow_models(host, family, real_depth=True)
        flux = family.startswith("flux")
        latent = raw_latent(size=16)
        source, target, empty = (encode(host, clip, t) for t in (SOURCE, TARGET, ""))
        euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
        measured = {}
        for n in (2, 4):
            inverted = invert(host, model, source, latent, schedule(host, model, n + 1), start_step=1)
            inversion, noise, sigmas = inverted
            kw = {} if flux else {"negative": empty}
            dna = call(host, "InvertEditDNAEdit", model=model, inversion=inversion, target=target, mvg=0.8,
                       guidance=2.5 if flux else 3.5, **kw)[0]
            stock = (call(host, "BasicGuider", model=model, conditioning=target)[0] if flux else
                     call(host, "CFGGuider", model=model, positive=target, negative=empty, cfg=3.5)[0])
            for name, guider in (("dnaedit", dna), ("stock", stock)):
                with OpCounter() as counter:
                    call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=euler, sigmas=sigmas,
                         latent_image={"samples": latent})
                measured[(name, n)] = (counter.total, counter.syncs)
        per_step = {name: ((measured[(name, 4)][0] - measured[(name, 2)][0]) / 2,
                           (measured[(name, 4)][1] - measured[(name, 2)][1]) / 2) for name in ("dnaedit", "stock")}
        ratio = per_step["dnaedit"][0] / per_step["stock"][0]
        print(f"\nDNAEdit {family} at the real depth: {per_step['dnaedit'][0]:.0f} ops a step against stock euler's "
              f"{per_step['stock'][0]:.0f} ({ratio:.3f}x); device waits a step {per_step['dnaedit'][1]:.1f} vs "
              f"{per_step['stock'][1]:.1f}")
        assert ratio <= 1.03, per_step
        assert per_step["dnaedit"][1] <= per_step["stock"][1], per_step   # the step counted, not read from the device


# ------------------------------------------------------------------ parity with the authors' code

#: The reference runs (one subprocess for all): key -> (code, family, settings)
OFFICIAL = {"flux": dict(T_steps=8, src_guidance_scale=1.0, tar_guidance_scale=2.5, T_start=2, mvg=0.8),
            "sd3": dict(T_steps=8, src_guidance_scale=1.0, tar_guidance_scale=3.5, T_start=3, mvg=0.8)}
RFIE = dict(num_inference_steps=7, start_timestep=2, source_guidance_scale=1.0, target_guidance_scale=2.5, mvg=0.85)
MISSING = {"official": "DNAEDIT PARITY SKIPPED: the authors' code was not found (set DNAEDIT_PATH to a checkout of "
                       "github.com/xiechenxi99/DNAEdit_code, or fetch it)",
           "rfie": "DNAEDIT PARITY (RF-IMAGE-EDITING) SKIPPED: the reimplementation was not found (set "
                   "RF_IMAGE_EDITING_PATH to a checkout of github.com/Justin900429/RF-Image-Editing, or fetch it)"}


@pytest.fixture(scope="module")
def references(host, tiny, tmp_path_factory, reference_copy):
    """The reference runs this machine can make, in one subprocess: ``key -> (job, conds, raw latent, result)``;
    a code whose checkout is absent is left out (its tests skip loudly)."""
    sys.path.insert(0, str(RUNNER.parent))
    tmp = tmp_path_factory.mktemp("dnaedit")
    checkouts = {
        "official": reference_copy(tmp / "official", "DNAEDIT", "xiechenxi99/DNAEdit_code", ("scripts",),
                                   "scripts/DNAEdit_utils.py"),
        "rfie": reference_copy(tmp / "rfie", "RF_IMAGE_EDITING", "Justin900429/RF-Image-Editing",
                               ("pipeline", "processor"), "pipeline/dna_edit.py")}
    wanted = {f"official-{family}": ("official", family, settings) for family, settings in OFFICIAL.items()}
    wanted["rfie-flux"] = ("rfie", "flux", RFIE)
    made = {}
    for key, (code, family, settings) in wanted.items():
        if checkouts[code] is not None:
            model, clip, _ = tiny("flux-dev" if family == "flux" else "sd3")
            made[key] = job_of(host, model, clip, code, family, settings)
    if not made:
        return {}
    path, out = tmp / "jobs.pt", tmp / "out.pt"
    torch.save([job for job, _, _ in made.values()], path)
    paths = [str(checkouts["official"] / "scripts")] if checkouts["official"] is not None else []
    paths += [str(checkouts["rfie"])] if checkouts["rfie"] is not None else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths + [str(RUNNER.parent)]))
    done = subprocess.run([sys.executable, str(RUNNER), str(path), str(out)], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
    return {key: (*made[key], result) for key, result in zip(made, torch.load(out))}


def reference(references, skip_loudly, key: str) -> tuple:
    if key not in references:
        skip_loudly(MISSING[key.split("-")[0]])
    return references[key]


def job_of(host, model, clip, code: str, family: str, settings: dict, seed: int = 11):
    from flow_diffusers import diffusers_transformer

    prompts = [SOURCE, TARGET] + ([] if family == "flux" else [""])
    conds = {p: encode(host, clip, p) for p in prompts}
    embeddings = {p: (c[0][0].float(), c[0][1]["pooled_output"].float()) for p, c in conds.items()}
    raw = raw_latent(seed=3)
    job = {"code": code, "family": family, "transformer": diffusers_transformer(model),
           "x_src": model.model.process_latent_in(raw), "embeddings": embeddings, "source": SOURCE, "target": TARGET,
           "negative": "", "settings": settings, "seed": seed}
    return job, conds, raw


def relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


@pytest.mark.parametrize("family", ["flux", "sd3"])
def test_dnaedit_matches_the_authors_code(host, tiny, references, skip_loudly, family):
    model, _, _ = tiny("flux-dev" if family == "flux" else "sd3")
    job, conds, raw, ref = reference(references, skip_loudly, f"official-{family}")
    settings = job["settings"]
    start = settings["T_start"]
    inverted = invert(host, model, conds[SOURCE], raw, ref["sigmas"].float(), start_step=start,
                      guidance=settings["src_guidance_scale"], seed=job["seed"])
    inversion = inverted[0]
    # the points the inversion evaluated the model at: the recorded latent plus its offset (inversion order)
    ours_seen = (inversion.trajectory[:-1] + inversion.clues["dnaedit.dx"]).flip(0)
    theirs_seen = torch.stack(ref["seen"][:len(ours_seen)])
    if family == "flux":
        from flow_diffusers import pack_latents
        ours_seen = torch.stack([pack_latents(s) for s in ours_seen])
    err_inv = relative(ours_seen, theirs_seen)
    out = edit(host, model, inverted, conds[TARGET], raw, mvg=settings["mvg"],
               guidance=settings["tar_guidance_scale"], negative=None if family == "flux" else conds[""])
    ours, theirs = model.model.process_latent_in(out), ref["latent"]
    err = relative(ours, theirs)
    print(f"\nDNAEdit {family} vs xiechenxi99/DNAEdit_code, {settings}: inversion's evaluation points relative error "
          f"{err_inv:.2e} (max abs {(ours_seen - theirs_seen).abs().max().item():.2e}), edited latent {err:.2e} (max "
          f"abs {(ours - theirs).abs().max().item():.2e}; the edit moved "
          f"the latent by {((theirs - job['x_src']).abs().max() / job['x_src'].abs().max()).item():.2f} of its range)")
    assert err_inv <= TOLERANCE
    assert err <= TOLERANCE


def test_dnaedit_without_noise_alignment_matches_the_rf_image_editing_reimplementation(host, tiny, references,
                                                                                     skip_loudly):
    """``align_noise`` off is Justin900429/RF-Image-Editing's loop; its schedule (``N + 1`` points from 1 to
    shift(1/1000), not to 0) given to both as the SIGMAS. The host's sampler divides a run's result by ``1 -
    sigma_last`` (its flow ``inverse_noise_scaling``), which the comparison undoes."""
    from flow_diffusers import pack_latents

    model, _, _ = tiny("flux-dev")
    job, conds, raw, ref = reference(references, skip_loudly, "rfie-flux")
    settings = job["settings"]
    sigmas = ref["sigmas"].float()
    inverted = invert(host, model, conds[SOURCE], raw, sigmas, start_step=2, seed=job["seed"], align_noise=False)
    inversion = inverted[0]
    inverted_latent = pack_latents(model.model.process_latent_in(inversion.latent))   # the LATENT, unscaled
    assert (inverted_latent - pack_latents(inversion.trajectory[0])).abs().max() < 1e-5
    err_inv = relative(inverted_latent, ref["inverted"])
    abs_inv = (inverted_latent - ref["inverted"]).abs().max().item()
    err_dx = relative(torch.stack([pack_latents(d) for d in inversion.clues["dnaedit.dx"]]), torch.stack(ref["dx"]))
    err_v = relative(torch.stack([pack_latents(v) for v in inversion.clues["dnaedit.velocity"]]),
                     torch.stack(ref["velocity"]))
    out = edit(host, model, inverted, conds[TARGET], raw, mvg=settings["mvg"], guidance=2.5)
    ours = pack_latents(model.model.process_latent_in(out) * (1 - sigmas[-1]))
    err = relative(ours, ref["latent"])
    print(f"\nDNAEdit (align_noise off) vs Justin900429/RF-Image-Editing, {settings}: inverted latent {err_inv:.2e} (max abs {abs_inv:.2e}), "
          f"dx {err_dx:.2e}, velocities {err_v:.2e}, edited latent {err:.2e} relative (max abs "
          f"{(ours - ref['latent']).abs().max().item():.2e})")
    assert max(err_inv, err_dx, err_v, err) <= TOLERANCE

"""FTEdit (``InvertEditFTEditInvert``, ``InvertEditFTEdit``; Xu et al., CVPR 2025) on the tiny random SD3: the
fixed-point inversion's exact property (plain Euler sampling retraces a converged inversion), what the pair's run
costs (one batched model call a step; dispatched operations against a stock CFG step of the same rows, at SD3
Medium's depth), parity with the authors' code (``Pengchengpcx/FTEdit``, fetched at test time and run unchanged
by ``tests/reference/ftedit_runner.py`` on the same weights, converted to diffusers) and, on the tiny Flux dev, of the
edit with Justin900429/RF-Image-Editing's port (``tests/reference/ftedit_flux_runner.py``). Its refusals are cases of
the bad-input table (``tests/host/bad_inputs_ftedit.py``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from workshop.benchmarks import dispatch_count
from workshop.headless.calls import call

SOURCE, TARGET = "a red circle on a green field", "a big yellow circle on a green field"
RUNNER = Path(__file__).resolve().parents[1] / "reference" / "ftedit_runner.py"
TOLERANCE = 1e-4   # relative: max |ours - reference| / max |reference|
T5_TOKENS = 256    # the authors' pipeline pads T5 to 256 tokens (max_sequence_length), after CLIP's 77


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def latent(seed: int = 0, size: int = 8) -> torch.Tensor:
    return torch.randn(1, 16, size, size, generator=torch.Generator().manual_seed(seed))


def invert(host, model, clip, raw, steps=6, iterations=2, average=(0, 5), scheduler="normal", prompt=SOURCE):
    return call(host, "InvertEditFTEditInvert", model=model, latent={"samples": raw}, positive=encode(host, clip, prompt),
                steps=steps, scheduler=scheduler, iterations=iterations, average_from=average[0],
                average_until=average[1])


def edit(host, model, clip, inversion, sigmas, raw, cfg=2.0, adaln=1.0, attention=0.15, target=TARGET):
    patched, pair, noise = call(host, "InvertEditFTEdit", model=model, clip=clip, inversion=inversion,
                                source_prompt=SOURCE, target_prompt=target, adaln_steps=adaln,
                                attention_steps=attention)
    guider = call(host, "CFGGuider", model=patched, positive=pair, negative=encode(host, clip, ""), cfg=cfg)[0]
    sampler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                latent_image={"samples": raw.repeat(2, 1, 1, 1)})[0]["samples"]


def test_a_converged_fixed_point_inversion_is_retraced_by_the_euler_step(host):
    """Each inversion step solves ``x_next = x + dt v(x_next, t_next)``: with the iterations converged (no
    averaging: the last iterate's velocity), the Euler step down from ``x_next`` lands on ``x`` (a contraction:
    v = A x with a small A); 0 iterations is Euler at the step's far end, which does not."""
    from invertedit.techniques.ftedit import fixed_point

    a = torch.tensor([[0.3, -0.2], [0.1, 0.4]])

    def velocity(x, t):
        return x @ a.T * (1 + t[:, None])

    x0 = torch.tensor([[1.0, -2.0]])
    times = torch.linspace(0, 1, 5)
    for iterations, bound in ((40, 1e-6), (0, None)):
        states = fixed_point.invert(velocity, x0, times, iterations, (0, 0))
        back = [states[-1]]
        for i in range(len(times) - 1, 0, -1):
            t = times[i].reshape(1)
            back.append(back[-1] + (times[i - 1] - times[i]) * velocity(back[-1], t))
        err = (back[-1] - x0).abs().max().item()
        assert (err < bound) if bound else (err > 1e-3), (iterations, err)
    # the authors' averaging: the step with the mean of the iterations' velocities
    calls = []
    fixed_point.fixed_point_step(lambda x, t: calls.append(x.clone()) or torch.full_like(x, float(len(calls))),
                                 torch.zeros(1, 2), torch.tensor(1.0), torch.tensor(0.5), 2, (0, 5))
    assert len(calls) == 3 and torch.equal(calls[2], torch.full((1, 2), 1.0))   # z_2 = x + dt v_1 = 0.5 * 2


def test_the_pair_runs_one_batched_call_a_step_and_the_source_row_stays_the_image(host, tiny):
    model, clip, _ = tiny("sd3")
    raw = latent()
    counted, calls = dispatch_count.counted_model(model, "APPLY_MODEL")
    inversion, _, sigmas = invert(host, counted, clip, raw)
    assert calls == [1] * 18   # 6 steps, 3 evaluations each
    calls.clear()
    out = edit(host, counted, clip, inversion, sigmas, raw)
    assert calls == [4] * 6, calls   # source and target, conditional and unconditional: one call a step
    process = model.model.process_latent_in
    assert (out[0] - raw[0]).abs().max() < 0.02 * raw.abs().max(), "the source row left the inversion"
    assert (process(out[1:]) - process(out[:1])).abs().max() > 0.05


def test_on_flux_the_pair_runs_one_call_a_step_at_the_nodes_guidance_and_the_double_blocks_are_controlled(host, tiny):
    """Flux dev (the RF-Image-Editing port's blocks): the pair in one call a step (2 rows: no CFG), both rows at the
    node's distilled guidance (the source row's too, as the port samples them); the control on the double-stream
    blocks moves the edit, which the single-stream blocks alone would not."""
    from invertedit.techniques.ftedit.glue import controlled_blocks

    model, clip, _ = tiny("flux-dev")
    assert {kind for kind, _ in controlled_blocks(model)} == {"double_block"}
    raw = latent(3)
    inversion, _, sigmas = invert(host, model, clip, raw, steps=5, scheduler="simple")
    counted, calls = dispatch_count.counted_model(model, "APPLY_MODEL")
    seen = []
    counted.set_model_unet_function_wrapper(lambda f, a: seen.append(a["c"]["guidance"].clone()) or f(a["input"], a["timestep"], **a["c"]))

    def run(adaln, attention):
        patched, pair, noise = call(host, "InvertEditFTEdit", model=counted, clip=clip, inversion=inversion,
                                    source_prompt=SOURCE, target_prompt=TARGET, adaln_steps=adaln,
                                    attention_steps=attention, guidance=2.0)
        guider = call(host, "BasicGuider", model=patched, conditioning=pair)[0]
        return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider,
                    sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                    latent_image={"samples": raw.repeat(2, 1, 1, 1)})[0]["samples"]

    controlled = run(1.0, 0.4)
    assert calls == [2] * 5, calls
    assert seen and all(torch.equal(g, torch.full_like(g, 2.0)) for g in seen), seen
    free = run(0.0, 0.0)
    assert (controlled[1] - free[1]).abs().max() > 1e-3
    assert torch.equal(controlled[0], free[0])   # the source row: the inversion's, controlled or not


def test_the_settings_turn_the_edit_as_the_tooltips_say(host, tiny):
    """Measured on the tiny SD3 (the target row's distance to the source's, relative): more AdaLN steps and
    more attention steps keep more of the source; more fixed-point iterations retrace the image more closely."""
    model, clip, _ = tiny("sd3")
    raw = latent(1)
    inversion, _, sigmas = invert(host, model, clip, raw, steps=8)

    def moved(**kw) -> float:
        out = edit(host, model, clip, inversion, sigmas, raw, **kw)
        return ((out[1] - out[0]).abs().mean() / out[0].abs().mean()).item()

    free, adaln, both = moved(adaln=0.0, attention=0.0), moved(adaln=1.0, attention=0.0), moved(adaln=1.0, attention=0.5)
    print(f"\nFTEdit on the tiny SD3, the edit's distance to the source: no control {free:.3f}, AdaLN every step "
          f"{adaln:.3f}, and values in half the steps {both:.3f}")
    assert free > adaln > both


# ------------------------------------------------------------------ cost per step at SD3 Medium's depth

def test_the_pair_costs_a_stock_cfg_step_of_the_same_rows_at_sd3_medium_depth(host):
    """Dispatched operations per step of the FTEdit pair (CFG 2: 4 rows a call) against SamplerCustomAdvanced's
    stock CFGGuider on a batch of 2 (4 rows), on the tiny SD3 at SD3 Medium's 24 joint blocks. Both controls on in
    every step (adaln 1, attention 1) and at the authors' setting (adaln 1, attention 0.15): two gathers a tensor
    per joint call (``invariance.Invariance``), one device wait a step (the step read from the sigma)."""
    model, clip = dispatch_count.flow_models(host, "sd3", real_depth=True)
    raw = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    steps = 4
    empty, target = encode(host, clip, ""), encode(host, clip, TARGET)
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    inverted = {n: call(host, "InvertEditFTEditInvert", model=model, latent={"samples": raw},
                        positive=encode(host, clip, SOURCE), steps=n, scheduler="simple", iterations=0,
                        average_from=0, average_until=0)[0] for n in (steps, 2 * steps)}

    def ftedit(attention):
        def make(m, n):
            patched, pair, _ = call(host, "InvertEditFTEdit", model=m, clip=clip, inversion=inverted[n],
                                    source_prompt=SOURCE, target_prompt=TARGET, adaln_steps=1.0,
                                    attention_steps=attention)
            return call(host, "CFGGuider", model=patched, positive=pair, negative=empty, cfg=2.0)[0], euler
        return make

    def stock(m, n):
        return call(host, "CFGGuider", model=m, positive=target, negative=empty, cfg=2.0)[0], euler

    pair = raw.repeat(2, 1, 1, 1)
    rows = [dispatch_count.custom_per_step(host, model, stock, pair, steps, "stock CFGGuider cfg 2, batch 2"),
            dispatch_count.custom_per_step(host, model, ftedit(1.0), pair, steps, "FTEdit, both controls every step"),
            dispatch_count.custom_per_step(host, model, ftedit(0.15), pair, steps, "FTEdit, the authors' setting")]
    for row in rows:
        row["ratio"] = row["ops"] / rows[0]["ops"]
    print(dispatch_count.table(rows, "demo-sd3 at SD3 Medium's depth (24 joint blocks)", steps))
    for row in rows[1:]:
        assert row["calls"] == 1.0 and row["rows"] == [4], row
        assert row["ratio"] <= 1.10, row   # measured 1.06x (both every step), 1.07x (authors')


# ------------------------------------------------------------------ parity with the authors' code

class WithT5:
    """The tiny SD3's CLIP (no T5 encoder: its conditioning is CLIP's 77-token window) with a stand-in T5 after it,
    so that the text sequence is the authors' 77 + 256 tokens: each T5 token id's embedding a fixed random vector,
    the tokens padded to 256 with T5's pad id (0), as diffusers' pipeline pads them. Both codes are given the same
    embeddings; the pack aligns the T5 stream from the host's own T5 tokenizer."""

    def __init__(self, clip):
        self.clip = clip
        self.tokenize = clip.tokenize

    def __getattr__(self, name):
        return getattr(self.clip, name)

    @staticmethod
    def t5(ids: list[int], width: int) -> torch.Tensor:
        ids = (ids + [0] * T5_TOKENS)[:T5_TOKENS]
        return torch.stack([torch.randn(width, generator=torch.Generator().manual_seed(1000 + i)) for i in ids])[None]

    def encode_from_tokens_scheduled(self, tokens, *args, **kwargs):
        out = self.clip.encode_from_tokens_scheduled(tokens, *args, **kwargs)
        ids = [t[0] for t in tokens["t5xxl"][0]]
        ids = ids[:ids.index(1) + 1] if 1 in ids else ids   # up to T5's end token, then padding
        return [[torch.cat((c, self.t5(ids, c.shape[2]).to(c)), 1), extra] for c, extra in out]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, skip_loudly, reference_copy):
    tmp = tmp_path_factory.mktemp("ftedit")
    checkout = reference_copy(tmp / "code", "FTEDIT", "Pengchengpcx/FTEdit", ("inversion", "controller", "mmdit"),
                              "inversion/flow_fixpoint_residual_new.py")
    if checkout is None:
        skip_loudly("FTEDIT PARITY SKIPPED: the FTEdit code was not found (set FTEDIT_PATH to a checkout of "
                    "github.com/Pengchengpcx/FTEdit, or fetch it)")

    def run_reference(job: dict) -> dict:
        path = tmp / "job.pt"
        torch.save(job, path)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(RUNNER.parent)]))
        done = subprocess.run([sys.executable, str(RUNNER), str(path), str(tmp / "out.pt")], env=env,
                              capture_output=True, text=True, timeout=600, cwd=str(tmp))
        assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
        return torch.load(tmp / "out.pt")
    return run_reference


def test_ftedit_matches_the_authors_code(host, tiny, reference):
    sys.path.insert(0, str(RUNNER.parent))
    from flow_diffusers import diffusers_transformer

    import comfy.sd1_clip
    model, clip, _ = tiny("sd3")
    clip = WithT5(clip)   # 2 joint blocks: the first controlled
    steps = 8
    settings = dict(num_steps=steps, inv_cfg=1.0, recov_cfg=2.0, ly_ratio=0.75, attn_ratio=0.3, num_fixpoint_steps=2,
                    average_step_ranges=(0, 5))
    conds = {p: encode(host, clip, p) for p in (SOURCE, TARGET, "")}
    assert conds[SOURCE][0][0].shape[1] == 77 + T5_TOKENS
    raw = latent(2)
    x0 = model.model.process_latent_in(raw)
    tokenizers = Path(comfy.sd1_clip.__file__).parent
    job = {"transformer": diffusers_transformer(model), "x0": x0, "source": SOURCE, "target": TARGET,
           "embeddings": {p: (c[0][0].float(), c[0][1]["pooled_output"].float()) for p, c in conds.items()},
           "settings": settings, "clip_tokenizer": str(tokenizers / "sd1_tokenizer"),
           "t5_tokenizer": str(tokenizers / "text_encoders" / "t5_tokenizer")}
    ref = reference(job)
    inversion, _, sigmas = call(host, "InvertEditFTEditInvert", model=model, latent={"samples": raw},
                                positive=conds[SOURCE], steps=steps, scheduler="normal", iterations=2, average_from=0,
                                average_until=5)
    assert torch.allclose(sigmas.float(), ref["sigmas"], atol=1e-6), (sigmas, ref["sigmas"])
    theirs = ref["all_latents"].flip(0)   # sampling order, as the INVERSION's trajectory
    ours = inversion.trajectory
    inv_err = ((ours - theirs).abs().max() / theirs.abs().max()).item()

    def ours(adaln: float, attention: float) -> torch.Tensor:
        patched, pair, noise = call(host, "InvertEditFTEdit", model=model, clip=clip, inversion=inversion,
                                    source_prompt=SOURCE, target_prompt=TARGET, adaln_steps=adaln,
                                    attention_steps=attention)
        guider = call(host, "CFGGuider", model=patched, positive=pair, negative=conds[""],
                      cfg=settings["recov_cfg"])[0]
        sampler = call(host, "KSamplerSelect", sampler_name="euler")[0]
        out = call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                   latent_image={"samples": raw.repeat(2, 1, 1, 1)})[0]["samples"]
        return model.model.process_latent_in(out)

    out = ours(settings["ly_ratio"], settings["attn_ratio"])
    edit_err = ((out[1] - ref["edit"][0]).abs().max() / ref["edit"].abs().max()).item()
    src_err = ((out[0] - ref["source"][0]).abs().max() / ref["source"].abs().max()).item()
    moved = ((ref["edit"] - ref["source"]).abs().max() / ref["source"].abs().max()).item()
    print(f"\nFTEdit vs Pengchengpcx/FTEdit ({settings}): inversion latents {inv_err:.2e}, edit {edit_err:.2e} "
          f"(the edit moved {moved:.2f} of the range from the source), source row {src_err:.2e} (relative max)")
    assert inv_err <= TOLERANCE and edit_err <= TOLERANCE
    for adaln, attention in ((0.0, settings["attn_ratio"]), (settings["ly_ratio"], 0.0)):   # each control acts
        off = ours(adaln, attention)
        off_err = ((off[1] - ref["edit"][0]).abs().max() / ref["edit"].abs().max()).item()
        assert off_err > 100 * edit_err, (adaln, attention, off_err, edit_err)
    assert src_err <= 0.02   # the last step's reconstruction error (glue.py's docstring)
    assert moved > 1e-2


RUNNER_FLUX = Path(__file__).resolve().parents[1] / "reference" / "ftedit_flux_runner.py"


def test_ftedit_on_flux_matches_the_rf_image_editing_port(host, tiny, tmp_path_factory, skip_loudly, reference_copy):
    """The edit on Flux against Justin900429/RF-Image-Editing's port (``FTEditFluxPipeline.denoise`` with the
    notebook's controllers), both handed one trajectory for the source row on the port's schedule (its
    ``num_inference_steps + 1`` timesteps, which stop short of sigma 0): the port's inversion is not the authors'
    (``glue.py``), so the edit alone is compared."""
    tmp = tmp_path_factory.mktemp("ftedit_flux")
    checkout = reference_copy(tmp / "code", "RF_IMAGE_EDITING", "Justin900429/RF-Image-Editing",
                              ("pipeline", "processor"), "pipeline/ft_edit.py")
    if checkout is None:
        skip_loudly("FTEDIT FLUX PARITY SKIPPED: the RF-Image-Editing code was not found (set RF_IMAGE_EDITING_PATH "
                    "to a checkout of github.com/Justin900429/RF-Image-Editing, or fetch it)")
    sys.path.insert(0, str(RUNNER.parent))
    import comfy.sd1_clip
    from diffusers import FlowMatchEulerDiscreteScheduler
    from flow_diffusers import diffusers_transformer, flux_ids, pack_latents, unpack_latents

    Inversion, inversion_fingerprint = host.pack.inversion.record.Inversion, host.pack.hostkit.inverters.inversion_fingerprint
    model, clip, _ = tiny("flux-dev")
    clip = clip.clone()
    clip.set_tokenizer_option("t5xxl_min_length", 512)   # the port's max_sequence_length
    steps, size = 6, 8
    settings = dict(steps=steps, ly_ratio=0.67, attn_ratio=0.34, guidance=2.0)
    seq = (size // 2) ** 2
    m = (1.15 - 0.5) / (4096 - 256)
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
                                                base_image_seq_len=256, max_image_seq_len=4096)
    scheduler.set_timesteps(steps + 1, mu=seq * m + 0.5 - m * 256)
    sigmas = (scheduler.timesteps / 1000).float()   # the port's: its timesteps over 1000, N + 1 of them
    x0 = model.model.process_latent_in(latent(4))
    noise = torch.randn(1, 16, size, size, generator=torch.Generator().manual_seed(5))
    trajectory = torch.stack([(1 - s) * x0 + s * noise for s in sigmas])   # sampling order
    conds = {p: encode(host, clip, p) for p in (SOURCE, TARGET)}
    assert conds[SOURCE][0][0].shape[1] == 512
    job = {"transformer": diffusers_transformer(model), "source": SOURCE, "target": TARGET, "settings": settings,
           "embeddings": [(c[0][0].float(), c[0][1]["pooled_output"].float()) for c in conds.values()],
           "latents_list": [pack_latents(x) for x in trajectory.flip(0)], "img_ids": flux_ids(size, size, 512)[0],
           "t5_tokenizer": str(Path(comfy.sd1_clip.__file__).parent / "text_encoders" / "t5_tokenizer")}
    path = tmp / "job.pt"
    torch.save(job, path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(RUNNER.parent)]))
    done = subprocess.run([sys.executable, str(RUNNER_FLUX), str(path), str(tmp / "out.pt")], env=env,
                          capture_output=True, text=True, timeout=600, cwd=str(tmp))
    assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
    ref = torch.load(tmp / "out.pt")
    assert torch.equal(ref["sigmas"][:-1], sigmas)   # the port's schedule (its scheduler's sigmas end in a 0 it never steps to)
    theirs = unpack_latents(ref["latent"], size, size)
    inversion = Inversion(method="ftedit", sigmas=sigmas, start_step=0, trajectory=trajectory,
                          latent=model.model.process_latent_out(trajectory[0]), settings={"steps": steps},
                          fingerprint=inversion_fingerprint(model, conds[SOURCE]))

    def ours(adaln: float, attention: float) -> torch.Tensor:
        patched, pair, start = call(host, "InvertEditFTEdit", model=model, clip=clip, inversion=inversion,
                                    source_prompt=SOURCE, target_prompt=TARGET, adaln_steps=adaln,
                                    attention_steps=attention, guidance=settings["guidance"])
        guider = call(host, "BasicGuider", model=patched, conditioning=pair)[0]
        image = model.model.process_latent_out(trajectory[-1]).repeat(2, 1, 1, 1)
        out = call(host, "SamplerCustomAdvanced", noise=start, guider=guider,
                   sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                   latent_image={"samples": image})[0]["samples"]
        # the host's flow sampling hands back its last state over (1 - sigma_last) (``CONST.inverse_noise_scaling``);
        # the port's schedule ends at sigma 0.0016, not 0, and its last state is the latent
        return model.model.process_latent_in(out)[1:] * (1 - sigmas[-1])

    err = ((ours(settings["ly_ratio"], settings["attn_ratio"]) - theirs).abs().max() / theirs.abs().max()).item()
    off = ((ours(0.0, 0.0) - theirs).abs().max() / theirs.abs().max()).item()
    print(f"\nFTEdit on Flux vs Justin900429/RF-Image-Editing's port ({settings}): edit {err:.2e} relative max "
          f"(without the control {off:.2e})")
    assert err <= TOLERANCE and off > 100 * err

"""Wan 2.1 text-to-video (issue 82) on the tiny random Wan (``tiny("wan21")``: the host's WanModel with 2 blocks of
width 64, a tiny UMT5 on the host's Pile-T5 SentencePiece tokenizer, the tiny Wan 2.1 VAE): its family (a
``dit-cross`` layout, flow sampling), clip inversion (Flow Invert's three solvers, RF-Inversion) and FlowEdit (FiVE's
"Wan-Edit") of a clip latent ``[1, 16, T, h, w]`` through the existing nodes, one batched model call a step; FlowEdit
on an IMAGE batch of frames with the Flux toy flow model; per-word maps and Prompt-to-Prompt on Wan's
cross-attention."""
from __future__ import annotations

import pytest
import torch

from workshop.benchmarks.dispatch_count import counted_model
from workshop.headless.calls import call

SOURCE = "a red circle on a green field"
TARGET = "a yellow circle on a green field"
FRAMES = 3   # latent frames: a clip of 9 frames (1 + 4 x 2)


def encode(host, clip, text: str) -> list:
    return call(host, "CLIPTextEncode", clip=clip, text=text)[0]


def clip_latent(seed: int = 0, frames: int = FRAMES, size: int = 8) -> torch.Tensor:
    """A clip's latent as the Wan VAE's VAE Encode gives it: [1, 16, frames, h, w], about the Wan 2.1 format's
    spread."""
    return torch.randn(1, 16, frames, size, size, generator=torch.Generator().manual_seed(seed))


def sample(host, model, positive, noise, sigmas, latent, sampler):
    guider = call(host, "BasicGuider", model=model, conditioning=positive)[0]
    return call(host, "SamplerCustomAdvanced", noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


def rel(a, b) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_the_tiny_wan_is_a_cross_attention_flow_transformer_on_a_real_tokenizer(host, tiny):
    model, clip, vae = tiny("wan21")
    fam = host.pack.hostkit.family.model_family(model)
    assert (fam.layout, fam.parameterisation, fam.config_name, fam.video) == ("dit-cross", "flow", "WAN21_T2V", True)
    assert fam.flow_editable and fam.dit_blocks == (("double_block", 0), ("double_block", 1))
    tokens = clip.tokenize("a photo of a cat")["umt5xxl"][0]
    ids = [t for t, _ in tokens]
    # one piece a word ("a" twice), the end token, then padding to the 512 tokens Wan reads
    assert len(ids) == 512 and ids[0] == ids[3] and len(set(ids[:5])) == 4 and ids[5:7] == [2, 0]
    frames = torch.rand(5, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    latent = call(host, "VAEEncode", pixels=frames, vae=vae)[0]["samples"]
    assert latent.shape == (1, 16, 2, 4, 4)   # 5 frames: 1 + 4 -> 2 latent frames
    assert call(host, "VAEDecode", samples={"samples": latent}, vae=vae)[0].shape == (5, 32, 32, 3)


@pytest.mark.parametrize("solver,nfe", [("euler", 6), ("rf-solver", 12), ("fireflow", 7)])
def test_flow_invert_reconstructs_a_clip_in_one_batched_call_a_step(host, tiny, solver, nfe):
    model, clip, _ = tiny("wan21")
    positive = encode(host, clip, SOURCE)
    latent = clip_latent(seed=1)
    m, rows = counted_model(model, "APPLY_MODEL")
    inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=m, latent={"samples": latent}, positive=positive,
                              solver=solver, steps=6, scheduler="simple", guidance=1.0)
    assert inv.trajectory.shape == (7, 1, 16, FRAMES, 8, 8) and rows == [1] * nfe
    out = sample(host, model, positive, noise, sigmas, latent, call(host, "InvertEditFlowSampler", solver=solver)[0])
    error = rel(out, latent)
    print(f"\n[wan21] {solver} 6 steps, clip of {FRAMES} latent frames: reconstruction error {error:.2e}")
    assert out.shape == latent.shape and error < {"euler": 0.1}.get(solver, 0.02)


def test_rf_inversion_keeps_the_clip_at_eta_1(host, tiny):
    model, clip, _ = tiny("wan21")
    latent = clip_latent(seed=3)
    inv, noise, sigmas = call(host, "InvertEditRFInversionInvert", model=model, latent={"samples": latent},
                              positive=encode(host, clip, ""), steps=6, scheduler="simple", gamma=0.5, guidance=0.0,
                              seed=4)
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    target = encode(host, clip, TARGET)
    kept = call(host, "InvertEditRFInversion", model=model, inversion=inv, eta=1.0, start=0.0, stop=1.0,
                eta_decay=0.0)[0]
    assert torch.allclose(sample(host, kept, target, noise, sigmas, latent, euler), latent, atol=1e-4)
    edit = call(host, "InvertEditRFInversion", model=model, inversion=inv, eta=0.9, start=0.0, stop=0.25,
                eta_decay=0.0)[0]
    edited = sample(host, edit, target, noise, sigmas, latent, euler)
    assert edited.shape == latent.shape and 0 < rel(edited, latent)


def test_a_wan_clip_inversion_round_trips_through_a_file_and_reconstructs_from_it(host, tiny):
    """One record for the whole clip (its trajectory [steps + 1, 1, 16, frames, h, w]): Save Inversion then Load
    Inversion give it back whole; its NOISE reconstructs the clip."""
    model, clip, _ = tiny("wan21")
    positive = encode(host, clip, SOURCE)
    latent = clip_latent(seed=6)
    inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent}, positive=positive,
                              solver="rf-solver", steps=4, scheduler="simple", guidance=1.0)
    call(host, "InvertEditSaveInversion", inversion=inv, filename_prefix="inversions/test_wan_clip")
    files = sorted((host.output_dir / "inversions").glob("test_wan_clip*.safetensors"))
    loaded = call(host, "InvertEditLoadInversion", inversion=f"inversions/{files[-1].name} [output]")[0]
    assert loaded.latent_shape == (1, 16, FRAMES, 8, 8) and torch.equal(loaded.trajectory, inv.trajectory)
    rf_solver = call(host, "InvertEditFlowSampler", solver="rf-solver")[0]
    out = sample(host, model, positive, noise, sigmas, latent, rf_solver)
    assert rel(out, latent) < 0.02


def test_flow_invert_inverts_an_image_batch_of_frames_frame_by_frame_in_one_run(host, tiny):
    """A clip as an IMAGE batch of F frames on an image model (the toy flow model's Flux dev): one inversion record
    of all F frames (trajectory [steps + 1, F, 16, h, w]) in one batched model call a step, frame f's trajectory the
    inversion of frame f alone."""
    model, clip, _ = tiny("flux-dev")
    positive = encode(host, clip, SOURCE)
    frames = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(7))
    m, rows = counted_model(model, "APPLY_MODEL")
    inv = call(host, "InvertEditFlowInvert", model=m, latent={"samples": frames}, positive=positive, solver="euler",
               steps=4, scheduler="simple", guidance=1.0)[0]
    assert inv.trajectory.shape == (5, 3, 16, 8, 8) and rows == [3] * 4
    alone = call(host, "InvertEditFlowInvert", model=model, latent={"samples": frames[1:2]}, positive=positive,
                 solver="euler", steps=4, scheduler="simple", guidance=1.0)[0]
    assert torch.allclose(inv.trajectory[:, 1:2], alone.trajectory, atol=1e-5)


def flow_edit(host, model, clip, source=SOURCE, target=TARGET, **change):
    kw = dict(source_guidance=5.0, target_guidance=10.0, n_max=3, n_min=0, n_avg=1,
              negative=encode(host, clip, ""))
    kw.update(change)
    return call(host, "InvertEditFlowEdit", model=model, source=encode(host, clip, source),
                target=encode(host, clip, target), **kw)[0]


def run(host, model, guider, latent, steps=5, seed=7):
    sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=steps, denoise=1.0)[0]
    return call(host, "SamplerCustomAdvanced", noise=call(host, "RandomNoise", noise_seed=seed)[0], guider=guider,
                sampler=call(host, "KSamplerSelect", sampler_name="euler")[0], sigmas=sigmas,
                latent_image={"samples": latent})[0]["samples"]


def test_flowedit_edits_a_clip_in_one_batched_call_a_step_and_keeps_it_for_the_same_prompt(host, tiny):
    """Wan-Edit (FiVE): FlowEdit with Wan's classifier-free guidance (FiVE's 5 / 10, a negative): source and target,
    each with its negative, in one model call of 4 rows a step (Wan's prompts are padded to 512 tokens: always one
    call); the same prompt twice gives the clip back."""
    model, clip, _ = tiny("wan21")
    m, rows = counted_model(model, "APPLY_MODEL")
    latent = clip_latent()
    out = run(host, m, flow_edit(host, m, clip), latent)
    assert rows == [4] * 3, rows
    assert out.shape == latent.shape and torch.isfinite(out).all() and not torch.allclose(out, latent, atol=1e-3)
    same = run(host, model, flow_edit(host, model, clip, target=SOURCE, target_guidance=5.0), latent)
    assert torch.allclose(same, latent, atol=1e-5), (same - latent).abs().max()


def test_flowedit_edits_each_frame_of_an_image_batch_in_one_run(host, tiny):
    """A clip as an IMAGE batch of F frames (the SD/Flux convention): FlowEdit on the toy flow model (Flux dev)
    edits all F frames in one batched run: one model call of 2F rows a step (source and target of every frame), and
    the same prompt twice gives every frame back."""
    model, clip, _ = tiny("flux-dev")
    frames = torch.randn(3, 16, 8, 8, generator=torch.Generator().manual_seed(2))

    def guider(m, target=TARGET, guidance=5.5):
        return call(host, "InvertEditFlowEdit", model=m, source=encode(host, clip, SOURCE),
                    target=encode(host, clip, target), source_guidance=1.5, target_guidance=guidance, n_max=3, n_min=0,
                    n_avg=1)[0]

    m, rows = counted_model(model, "APPLY_MODEL")
    batch = run(host, m, guider(m), frames)
    assert rows == [2 * 3] * 3 and batch.shape == frames.shape
    assert all(not torch.allclose(batch[f], frames[f], atol=1e-3) for f in range(3))
    assert torch.allclose(run(host, model, guider(model, SOURCE, 1.5), frames), frames, atol=1e-5)


# ------------------------------------------------------------------ attention on Wan (hostkit/wan_attention.py)


def test_the_wan_driver_hands_each_block_its_self_then_cross_attention_and_changes_nothing(host, tiny):
    """A policy that records its calls and returns the host's attention: every block call hands it the
    self-attention (keys: the clip's tokens) then the cross-attention (keys: UMT5's 512), with the clip's frames and
    patch grid; the model's prediction is bit for bit the unpatched one."""
    wan = host.pack.hostkit.wan_attention
    model, clip, _ = tiny("wan21")
    seen = []

    class Record(host.pack.attention.policy.AttentionPolicy):
        pair = False

        def attention(self, q, k, v, where, state):
            seen.append((where.kind, where.block, where.frames, where.grid, q.shape[2], k.shape[2], where.text))
            return where.attend(q, k, v)

    m = model.clone()
    wan.install_wan_policy(m, Record(), [("double_block", 0), ("double_block", 1)], "test", kinds=("self", "cross"))
    positive = encode(host, clip, SOURCE)
    latent = clip_latent()
    sigmas = call(host, "BasicScheduler", model=model, scheduler="simple", steps=2, denoise=1.0)[0]
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    noise = call(host, "RandomNoise", noise_seed=3)[0]
    ours, stock = (sample(host, x, positive, noise, sigmas, latent, euler) for x in (m, model))
    assert torch.equal(ours, stock)
    tokens = FRAMES * 4 * 4
    assert seen[:4] == [("self", ("double_block", 0), FRAMES, (4, 4), tokens, tokens, tokens),
                        ("cross", ("double_block", 0), FRAMES, (4, 4), tokens, 512, 512),
                        ("self", ("double_block", 1), FRAMES, (4, 4), tokens, tokens, tokens),
                        ("cross", ("double_block", 1), FRAMES, (4, 4), tokens, 512, 512)]
    assert len(seen) == 2 * 2 * 2   # 2 steps, 2 blocks, 2 calls


def test_attention_store_draws_per_word_maps_of_a_clip_on_wan(host, tiny):
    """Attention Store on a Wan clip inversion: one heatmap per word of the prompt (UMT5's word pieces), from
    Wan's cross-attention averaged over the clip's frames; the words' maps differ, and a word's mask is a region."""
    model, clip, _ = tiny("wan21")
    latent = clip_latent(size=16)
    inv = call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent},
               positive=encode(host, clip, SOURCE), solver="euler", steps=4, scheduler="simple", guidance=1.0)[0]
    heat, mask = call(host, "InvertEditAttentionStore", model=model, clip=clip, inversion=inv, prompt=SOURCE,
                      words="circle", start=0.0, end=1.0, threshold=0.9, mask_pool=1)
    assert heat.shape[0] == len(SOURCE.split()) and heat.shape[-1] == 3
    assert mask.shape == (1, 128, 128) and 0.0 < float(mask.mean()) < 1.0
    assert not torch.allclose(heat[1], heat[4], atol=1e-3)   # "red" and "green"


# ------------------------------------------------------------------ the Wan clip template


def test_the_wan_clip_template_edits_every_frame_and_keeps_the_clip_for_the_same_prompt(host):
    """"Wan 2.1 - Clip edit (FlowEdit)" on the Demo Model's tiny Wan, as the tests run it (a still sample repeated to
    a 5-frame clip: 2 latent frames): the edit is saved as 5 frames and as a 5-frame animated WebP of source | edit;
    with the target prompt the source's, every frame comes back as the VAE's round trip of the clip (FlowEdit moves
    nothing)."""
    import json
    from pathlib import Path

    from PIL import Image

    from workshop import make_workflows
    from workshop.headless import runner

    name = "Wan 2.1 - Clip edit (FlowEdit)"
    workflow = json.loads((Path(__file__).resolve().parents[2] / "example_workflows" / f"{name}.json").read_text())
    overrides = make_workflows.toy_overrides(name, quick=True)

    def run(**change):
        o = {k: dict(v) for k, v in overrides.items()}
        for ref, values in change.items():
            o.setdefault(ref, {}).update(values)
        prompt = runner.prepare_prompt(workflow, builtin=make_workflows.builtin_for(name), overrides=o, host=host)
        scale = next(k for k, v in prompt.items() if v["class_type"] == "ImageScaleToTotalPixels")
        model = next(k for k, v in prompt.items() if v["class_type"] == "InvertEditDemoModel")
        prompt.update({   # the clip's VAE round trip, saved beside the edit
            "rt_encode": {"class_type": "VAEEncode", "inputs": {"pixels": [scale, 0], "vae": [model, 2]}},
            "rt_decode": {"class_type": "VAEDecode", "inputs": {"samples": ["rt_encode", 0], "vae": [model, 2]}},
            "rt_save": {"class_type": "SaveImage", "inputs": {"images": ["rt_decode", 0], "filename_prefix": "rt"}}})
        outputs = runner.execute(prompt, host=host)
        save = next(k for k, v in prompt.items() if v["class_type"] == "SaveImage" and k != "rt_save")
        return prompt, outputs, *(runner.saved_images({k: outputs[k]}) for k in (save, "rt_save"))

    def pixels(paths):
        out = []
        for p in paths:
            with Image.open(p) as im:
                out.append(torch.tensor(list(im.convert("RGB").getdata()), dtype=torch.float32))
        return torch.stack(out)

    prompt, outputs, frames, round_trip = run()
    assert len(frames) == len(round_trip) == 5
    with Image.open(frames[0]) as im:
        assert im.size == (128, 128)
    webp = next(k for k, v in prompt.items() if v["class_type"] == "SaveAnimatedWEBP")
    (shown,) = outputs[webp]["images"]
    with Image.open(Path(host.output_dir) / shown["subfolder"] / shown["filename"]) as im:
        assert im.n_frames == 5 and im.size == (256, 128)
    assert (pixels(frames) - pixels(round_trip)).abs().max() > 8   # the edit moved the clip
    source = overrides["Source prompt"]["value"]   # the prompts are String nodes titled so (the toy world's words)
    _, _, kept, round_trip = run(**{"Target prompt": {"value": source}, "InvertEditFlowEdit": {"target_guidance": 5.0}})
    assert (pixels(kept) - pixels(round_trip)).abs().max() <= 1   # nothing edited: the clip's round trip


@pytest.mark.parametrize("name", ["Wan 2.1 - Clip edit (FlowEdit)", "Wan 2.1 - Clip edit (RF-Inversion)"])
def test_the_wan_clip_templates_as_shipped_load_wan_as_comfyuis_examples_and_validate(host, tmp_path, name):
    """As shipped (no swap): Load Diffusion Model, Load CLIP (type wan) and Load VAE of ComfyUI's repackaged Wan 2.1
    files, Load Image of the host's example.png (a still: Repeat Image Batch at 1 leaves a clip as it is) at FiVE's
    832 x 480, Wan's negative; FlowEdit at FiVE's Wan-Edit settings (50 steps at shift 5, n_max 34, guidance 5 / 10),
    RF-Inversion at the authors' (28 steps, gamma 0.5, eta 0.9 over the first quarter) with Wan's cfg 5; euler; the
    edit saved as frames and as an animated WebP; and the host accepts the graph once files of those names exist."""
    import asyncio
    import json
    from pathlib import Path

    import folder_paths

    from workshop.headless import runner

    workflow = json.loads((Path(__file__).resolve().parents[2] / "example_workflows" / f"{name}.json").read_text())
    prompt = runner.prepare_prompt(workflow, host=host)
    by_type: dict = {}
    for node in prompt.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    files = {"diffusion_models": "wan2.1_t2v_1.3B_fp16.safetensors", "text_encoders":
             "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "vae": "wan_2.1_vae.safetensors"}
    assert by_type["UNETLoader"] == [{"unet_name": files["diffusion_models"], "weight_dtype": "default"}]
    assert by_type["CLIPLoader"] == [{"clip_name": files["text_encoders"], "type": "wan", "device": "default"}]
    assert by_type["VAELoader"] == [{"vae_name": files["vae"]}]
    assert [i["image"] for i in by_type["LoadImage"]] == ["example.png"]
    assert by_type["RepeatImageBatch"][0]["amount"] == 1
    # Wan's pixels (FiVE's 832 x 480: 0.38 MP), the clip's shape kept
    assert by_type["ImageScaleToTotalPixels"][0]["megapixels"] == round(832 * 480 / 1024 ** 2, 2)
    assert "ImageScale" not in by_type
    assert by_type["ModelSamplingSD3"][0]["shift"] == 5.0
    if "FlowEdit" in name:
        (edit,) = by_type["InvertEditFlowEdit"]
        assert (by_type["BasicScheduler"][0]["steps"], edit["n_max"], edit["source_guidance"],
                edit["target_guidance"]) == (50, 34, 5.0, 10.0)
    else:
        (invert,), (control,) = by_type["InvertEditRFInversionInvert"], by_type["InvertEditRFInversion"]
        assert (invert["steps"], invert["gamma"], control["eta"], control["stop"], by_type["CFGGuider"][0]["cfg"]) == (
            28, 0.5, 0.9, 0.25, 5.0)
    assert by_type["KSamplerSelect"] == [{"sampler_name": "euler"}]
    assert {"SaveImage", "SaveAnimatedWEBP"} <= set(by_type)
    for kind, file in files.items():
        folder = tmp_path / kind
        folder.mkdir(exist_ok=True)
        (folder / file).write_bytes(b"not loaded: the prompt is only validated")
        folder_paths.add_model_folder_path(kind, str(folder), is_default=True)
    users = runner.prepare_prompt(workflow, image=runner.SAMPLE_IMAGE, host=host)
    valid, error, _, node_errors = asyncio.run(host.execution.validate_prompt("test", json.loads(json.dumps(users)),
                                                                              None))
    assert valid and not node_errors, (error, node_errors)


def test_prompt_to_prompt_on_wan_gives_the_target_the_sources_maps(host, tiny):
    """Joint Attention Inject on Wan (``CrossPromptToPrompt`` on each block's self- and cross-attention). The pair
    sampled from a clip's Euler inversion runs (the source row retraces the clip: it follows the inversion step for
    step; the target row is edited). What its policy computes, on a call's own tensors: in the cross-attention the
    target row's output is the source's map on the word-swapped target values, ``softmax(q_s k_s^T / sqrt(d)) (A
    V_t)``, and in the self-attention the source's map on the target's values; the source row and the unconditional
    rows keep their own. The local blend is refused by name."""
    model, clip, _ = tiny("wan21")
    latent = clip_latent(seed=4)
    target = "a turquoise circle on a green field"   # "turquoise": 3 word pieces, "red" 1
    inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": latent},
                              positive=encode(host, clip, SOURCE), solver="euler", steps=8, scheduler="simple",
                              guidance=1.0)
    args = dict(model=model, clip=clip, source_prompt=SOURCE, target_prompt=target, mode="replace", reweight="",
                cross_replace=0.8, self_replace=0.4, blocks="all", guidance=1.0, inversion=inv)
    patched, pair, pair_noise = call(host, "InvertEditJointAttentionInject", **args, local_blend=False)
    euler = call(host, "KSamplerSelect", sampler_name="euler")[0]
    pair_latent = call(host, "RepeatLatentBatch", samples={"samples": latent}, amount=2)[0]["samples"]
    out = sample(host, patched, pair, pair_noise, sigmas, pair_latent, euler)
    assert out.shape == (2, 16, FRAMES, 8, 8) and torch.isfinite(out).all()
    assert rel(out[:1], latent) < 0.1 and rel(out[1:], out[:1]) > 1e-3

    policy = patched.model_options["transformer_options"]["patches_replace"]["dit"][("double_block", 0)].driver.policy
    g = torch.Generator().manual_seed(0)
    rows, heads, tokens, dim = 4, 2, 12, 8   # a cond chunk (source, target) and an uncond one
    q, v_img = torch.randn(rows, heads, tokens, dim, generator=g), torch.randn(rows, heads, tokens, dim, generator=g)
    k_text, v_text = (torch.randn(rows, heads, 512, dim, generator=g) for _ in range(2))

    def attend(q, k, v, mask=None):
        return torch.softmax(q @ k.transpose(-1, -2) * dim ** -0.5, -1) @ v

    class Where:
        chunks, rows, text, schedule, step = (0, 1), 2, 512, [float(s) for s in sigmas], 0

        def __init__(self, kind):
            self.kind, self.attend = kind, attend

    a, b = policy.controller.mixes(None, q.device)
    assert b is None and not torch.equal(a, torch.eye(512))   # the word swap (1 piece to 3)
    cross = policy.attention(q, k_text, v_text, Where("cross"), None)
    assert torch.allclose(cross[1], attend(q[0], k_text[0], a @ v_text[1]), atol=1e-5)
    for r in (0, 2, 3):
        assert torch.allclose(cross[r], attend(q[r], k_text[r], v_text[r]), atol=1e-6)
    k_img = torch.randn(rows, heads, tokens, dim, generator=g)
    own = policy.attention(q, k_img, v_img, Where("self"), None)
    assert torch.allclose(own[1], attend(q[0], k_img[0], v_img[1]), atol=1e-6)
    assert torch.allclose(own[0], attend(q[0], k_img[0], v_img[0]), atol=1e-6)
    with pytest.raises(ValueError, match="Joint Attention Inject: the local blend reads per-word maps of one image; "
                                         "on Wan's clips it is not carried over: turn local_blend off"):
        call(host, "InvertEditJointAttentionInject", **args, local_blend=True)


def test_wan22_ti2v_5b_edits_a_clip_of_its_48_channel_latent(host, tiny):
    """Wan 2.2 TI2V 5B (the host's WAN22_T2V: the same transformer on the Wan 2.2 VAE's 48 channels, 16x in space):
    its VAE makes a clip latent [1, 48, frames, h, w]; Flow Invert retraces it and FlowEdit edits it in one call of 4
    rows a step."""
    model, clip, vae = tiny("wan22")
    fam = host.pack.hostkit.family.model_family(model)
    assert (fam.layout, fam.config_name, fam.flow_editable) == ("dit-cross", "WAN22_T2V", True)
    frames = torch.rand(5, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    latent = call(host, "VAEEncode", pixels=frames, vae=vae)[0]["samples"]
    assert latent.shape == (1, 48, 2, 4, 4)
    assert call(host, "VAEDecode", samples={"samples": latent}, vae=vae)[0].shape == (5, 64, 64, 3)
    clip48 = torch.randn(1, 48, FRAMES, 8, 8, generator=torch.Generator().manual_seed(1))
    positive = encode(host, clip, SOURCE)
    inv, noise, sigmas = call(host, "InvertEditFlowInvert", model=model, latent={"samples": clip48}, positive=positive,
                              solver="rf-solver", steps=6, scheduler="simple", guidance=1.0)
    out = sample(host, model, positive, noise, sigmas, clip48, call(host, "InvertEditFlowSampler", solver="rf-solver")[0])
    assert rel(out, clip48) < 0.02, rel(out, clip48)
    m, rows = counted_model(model, "APPLY_MODEL")
    edited = run(host, m, flow_edit(host, m, clip), clip48)
    assert rows == [4] * 3 and edited.shape == clip48.shape and not torch.allclose(edited, clip48, atol=1e-3)


def test_region_lock_keeps_a_wan_clip_outside_its_mask_in_every_frame(host, tiny):
    """Region Lock's blend (region_cache off; on Wan the cache is refused by name, tests/host/bad_inputs_wan.py) on a
    Wan clip: every latent frame ends on the clip outside the mask, and differs inside it."""
    model, clip, _ = tiny("wan21")
    latent = clip_latent(seed=8, size=8)
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:48, 16:48] = 1.0
    locked = call(host, "InvertEditRegionLock", model=model, latent={"samples": latent}, mask=mask, region_cache=False,
                  warmup_steps=1, refresh_steps="")[0]
    out = run(host, locked, call(host, "BasicGuider", model=locked, conditioning=encode(host, clip, TARGET))[0], latent,
              steps=4)
    outside = torch.ones(8, 8, dtype=torch.bool)
    outside[2:6, 2:6] = False
    assert torch.allclose(out[..., outside], latent[..., outside], atol=1e-4)
    assert not torch.allclose(out[..., ~outside], latent[..., ~outside], atol=1e-2)

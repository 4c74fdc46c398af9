"""Imagic's three nodes through the host, on the tiny SD1 / SD2-v / SDXL models: the optimisations
lower the reconstruction loss, do nothing at zero steps or zero learning rate, run with weights
loaded under inference mode, report progress and stop within one step on interrupt; the LoRA is
the host's (patches on a clone, saved and reloaded by the stock nodes, stackable); the
interpolation is exact at its ends."""
from __future__ import annotations

import pytest
import torch

from workshop.headless.calls import call, encode, rel_err

TARGET = "a red square on a blue background"
STEPS = 30


def source_latent(seed=0):
    return {"samples": torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed)) * 5.0}


def embed(host, model, target, steps=STEPS, learning_rate=1e-2, seed=0, latent=None):
    return call(host, "InvertEditImagicOptimizeEmbedding", model=model, latent=latent or source_latent(), target=target,
                steps=steps, learning_rate=learning_rate, seed=seed)


def fine_tune(host, model, optimized, steps=STEPS, learning_rate=1e-3, rank=4, seed=0):
    return call(host, "InvertEditImagicFineTune", model=model, latent=source_latent(), optimized=optimized, steps=steps,
                learning_rate=learning_rate, rank=rank, seed=seed)


def generate(host, model, clip, positive, seed=0):
    """The stock KSampler from noise (Imagic's generation), 4 steps at cfg 3."""
    return call(host, "KSampler", model=model, seed=seed, steps=4, cfg=3.0, sampler_name="ddim", scheduler="ddim_uniform",
                positive=positive, negative=encode(host, clip, ""), latent_image={"samples": torch.zeros(1, 4, 8, 8)},
                denoise=1.0)[0]["samples"]


def loss_of(host, model, conditioning) -> float:
    with torch.inference_mode():
        return host.pack.techniques.imagic.glue.reconstruction_loss(model, source_latent()["samples"], conditioning)


@pytest.fixture(scope="module")
def made(host, tiny):
    """Per family: (model, clip, target conditioning, embedding outputs, fine-tune outputs), built once."""
    out = {}

    def get(family):
        if family not in out:
            model, clip, _ = tiny(family)
            target = encode(host, clip, TARGET)
            emb = embed(host, model, target, learning_rate=0.1)   # random tiny weights barely listen to the text
            out[family] = model, clip, target, emb, fine_tune(host, model, emb[0])
        return out[family]

    return get


@pytest.mark.parametrize("family", ["sd1", "sd2-v", "sdxl"])
def test_each_stage_lowers_the_reconstruction_loss(host, made, family):
    """On 32 held-out (noise, timestep) draws: the optimised embedding reconstructs the latent
    better than the target's, and the fine-tuned model better still."""
    model, clip, target, (optimized, passed, emb_loss), (tuned, lora, ft_loss) = made(family)
    before, after_emb, after_ft = loss_of(host, model, target), loss_of(host, model, optimized), loss_of(host, tuned, optimized)
    print(f"\n[{family}] held-out loss: target {before:.4f}, optimised embedding {after_emb:.4f}, + LoRA {after_ft:.4f}; "
          f"training losses {len(emb_loss['loss'])} + {len(ft_loss['loss'])}")
    assert after_emb < before and after_ft < after_emb
    assert passed[0][0] is target[0][0] and len(emb_loss["loss"]) == STEPS and len(ft_loss["loss"]) == STEPS
    e_tgt, e_opt = target[0][0], optimized[0][0]
    assert e_opt.shape == e_tgt.shape and e_opt.dtype == torch.float32 and not torch.equal(e_opt, e_tgt)
    if family == "sdxl":   # the pooled output rides along unchanged
        assert torch.equal(optimized[0][1]["pooled_output"], target[0][1]["pooled_output"])


def test_on_the_toy_model_the_optimised_embedding_reconstructs_like_the_source_caption(host):
    """On the trained Toy World Model, a shape edit's target caption reconstructs the source image
    far worse than its own caption; 50 embedding steps close most of that gap (paper, Fig. 3:
    e_opt reconstructs the image while staying near e_tgt)."""
    from workshop.headless.calls import builtin_model
    from workshop.toyworld import world as W

    model, clip, vae = builtin_model(host, "toy-one-object")
    case = W.edit_cases(2, seed=0)[1]
    assert case.kind == "shape"
    latent = call(host, "VAEEncode", pixels=W.render(case.source)[0][None], vae=vae)[0]
    target, source = encode(host, clip, case.target_caption), encode(host, clip, case.source_caption)
    optimized = embed(host, model, target, steps=50, learning_rate=1e-2, latent=latent)[0]
    with torch.inference_mode():
        imagic = host.pack.techniques.imagic.glue
        losses = {name: imagic.reconstruction_loss(model, latent["samples"], cond)
                  for name, cond in (("target", target), ("source", source), ("optimised", optimized))}
    moved = float((optimized[0][0] - target[0][0]).norm() / target[0][0].norm())
    print(f"\n[toy] {case.source_caption} -> {case.target_caption}: held-out loss "
          + ", ".join(f"{k} {v:.4f}" for k, v in losses.items()) + f"; embedding moved {moved:.3f} (relative)")
    assert losses["source"] < 0.5 * losses["target"]
    assert losses["optimised"] < 0.5 * losses["target"] and losses["optimised"] < 1.5 * losses["source"]


@pytest.mark.parametrize("steps, learning_rate", [(0, 1e-2), (3, 0.0)])
def test_zero_steps_or_zero_learning_rate_change_nothing(host, tiny, steps, learning_rate):
    """The embedding comes back bit for bit, and the model with its LoRA (down matrices zero, as at
    initialisation) samples bit for bit as the input model."""
    model, clip, _ = tiny("sd1")
    target = encode(host, clip, TARGET)
    optimized = embed(host, model, target, steps=steps, learning_rate=learning_rate)[0]
    assert torch.equal(optimized[0][0], target[0][0])
    tuned, lora, losses = fine_tune(host, model, target, steps=steps, learning_rate=learning_rate)
    assert len(losses["loss"]) == steps
    downs = [v for k, v in lora.items() if k.endswith("lora_down.weight")]
    ups = [v for k, v in lora.items() if k.endswith("lora_up.weight")]
    assert downs and all(not d.any() for d in downs) and all(u.abs().max() > 0 for u in ups)
    assert torch.equal(generate(host, tuned, clip, target), generate(host, model, clip, target))


def test_the_lora_is_host_patches_saved_and_reloaded_by_stock_nodes(host, made):
    """The MODEL is a clone carrying one weight patch per LoRA layer (the input untouched); Save
    LoRA Weights writes the LoRA and the stock Load LoRA Model applies the file's tensors to give
    the same samples bit for bit; applying it again at strength -1 undoes it (stacking LoRAs)."""
    import comfy.utils

    model, clip, target, (optimized, _, _), (tuned, lora, _) = made("sd1")
    layers = [k[:-len(".alpha")] for k in lora if k.endswith(".alpha")]
    assert tuned is not model and not model.patches and len(tuned.patches) == len(layers) > 100
    assert set(tuned.patches) == {f"{name}.weight" for name in layers}
    assert all(name.startswith("diffusion_model.") for name in layers)
    call(host, "SaveLoRANode", lora=lora, prefix="loras/imagic_test")
    saved = sorted((host.output_dir / "loras").glob("imagic_test_*.safetensors"))
    assert saved, "Save LoRA Weights wrote nothing"
    loaded = comfy.utils.load_torch_file(str(saved[-1]), safe_load=True)
    assert loaded.keys() == lora.keys() and all(torch.equal(loaded[k], lora[k]) for k in lora)
    reloaded = call(host, "LoraModelLoader", model=model, lora=loaded, strength_model=1.0)[0]
    ours = generate(host, tuned, clip, optimized)
    assert torch.equal(generate(host, reloaded, clip, optimized), ours)
    undone = call(host, "LoraModelLoader", model=tuned, lora=loaded, strength_model=-1.0)[0]
    plain = generate(host, model, clip, optimized)
    print(f"\nLoRA effect on a sample {rel_err(ours, plain):.2e}; after strength -1 on top {rel_err(generate(host, undone, clip, optimized), plain):.2e}")
    assert rel_err(ours, plain) > 1e-3 and rel_err(generate(host, undone, clip, optimized), plain) < 1e-5


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_interpolate_is_exact_at_its_ends(host, made, family):
    model, clip, target, (optimized, passed, _), _ = made(family)
    at = {a: call(host, "InvertEditImagicInterpolate", target=passed, optimized=optimized, alpha=a)[0] for a in (0.0, 0.7, 1.0)}
    assert torch.equal(at[1.0][0][0], target[0][0]) and torch.equal(at[0.0][0][0], optimized[0][0])
    assert torch.allclose(at[0.7][0][0], 0.7 * target[0][0] + 0.3 * optimized[0][0], rtol=0, atol=1e-6)
    if family == "sdxl":
        assert torch.equal(at[0.7][0][1]["pooled_output"], target[0][1]["pooled_output"])
    stamp = host.pack.techniques.imagic.glue.STAMP   # what made them: Optimize Embedding's model and image
    assert all(at[a][0][1].keys() == target[0][1].keys() | {stamp} for a in at)
    assert all(at[a][0][1][stamp] is optimized[0][1][stamp] for a in at)


def inference_mode_model(host, family="sd1"):
    """The tiny model with its weights made under inference mode, as a checkpoint the host loads."""
    with torch.inference_mode():
        model = host.pack.demo.tiny_models.build_tiny_unet(family, 0)
    assert all(p.is_inference() for p in model.model.diffusion_model.parameters())
    return model


def test_gradients_flow_through_weights_loaded_under_inference_mode(host, tiny):
    """Both optimisations run on inference-tensor weights and give what they give on plain ones."""
    model, clip, _ = tiny("sd1")
    target = encode(host, clip, TARGET)
    frozen = inference_mode_model(host)
    a = embed(host, model, target, steps=3)[0][0][0]
    b = embed(host, frozen, target, steps=3)[0][0][0]
    assert torch.equal(a, b) and not torch.equal(a, target[0][0])
    la = fine_tune(host, model, target, steps=3)[1]
    lb = fine_tune(host, frozen, target, steps=3)[1]
    assert all(torch.equal(la[k], lb[k]) for k in la) and any(v.any() for k, v in la.items() if "lora_down" in k)


@pytest.mark.parametrize("stage", ["embedding", "fine-tune"])
def test_progress_and_interrupt_at_every_step(host, tiny, stage):
    """The progress bar counts steps of the run's own total; an interrupt raised during the first
    UNet pass stops the run before the second; the input model is left as it was."""
    import comfy.model_management
    import comfy.utils

    model, clip, _ = tiny("sd1")
    target = encode(host, clip, TARGET)
    run = (lambda m, steps: embed(host, m, target, steps=steps)) if stage == "embedding" else (
        lambda m, steps: fine_tune(host, m, target, steps=steps))
    seen = []
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        run(model, 3)
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert [s for s in seen if s[1] == 3] == [(1, 3), (2, 3), (3, 3)]

    before = generate(host, model, clip, target)
    state = repr(model.wrappers), repr(model.model_options), repr(model.weight_wrapper_patches), dict(model.patches)
    calls = []
    counted = model.clone()

    def count(apply, args):
        calls.append(1)
        if len(calls) == 1:
            comfy.model_management.interrupt_current_processing(True)
        return apply(args["input"], args["timestep"], **args["c"])

    counted.set_model_unet_function_wrapper(count)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            run(counted, 100)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert len(calls) == 1
    assert (repr(model.wrappers), repr(model.model_options), repr(model.weight_wrapper_patches), dict(model.patches)) == state
    assert torch.equal(generate(host, model, clip, target), before)


def test_fine_tune_trains_when_the_host_moves_its_adapters_under_inference_mode(host, tiny, monkeypatch):
    """Issue 23's GPU failure, reproduced on the CPU: loading a model onto a GPU moves its weight
    wrappers (``move_weight_functions`` -> ``LoraDiff.move_to`` -> ``module.to(device)``) inside
    the node's inference mode, which turns the LoRA matrices into inference tensors; the loss then
    had no ``grad_fn``. On a CPU that move is a no-op, so here it is made a real copy, as a move to
    another device is, and the fine-tune must train exactly as without it."""
    import comfy.weight_adapter.base as base

    model, clip, _ = tiny("sd1")
    target = encode(host, clip, TARGET)
    plain = fine_tune(host, model, target, steps=3)[1]
    moves = []

    def move_as_to_another_device(self, device):
        moves.append(torch.is_inference_mode_enabled())
        self._apply(lambda t: t.clone())   # what .to(cuda) does: new storage, made under the caller's mode
        return self.passive_memory_usage()

    monkeypatch.setattr(base.WeightAdapterTrainBase, "move_to", move_as_to_another_device)
    moved = fine_tune(host, model, target, steps=3)[1]
    assert moves and all(moves), "the host no longer moves the adapters under inference mode: revisit the test"
    assert all(torch.equal(plain[k], moved[k]) for k in plain)
    assert any(v.any() for k, v in moved.items() if "lora_down" in k)

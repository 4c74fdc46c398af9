"""The technique table: one row per technique of the pack, read by the code and the docs.

Each row names the technique's nodes (their ``node_id``), its pure module, the paper and the
defaults the nodes take from it, its cost in UNet rows (N = sampling steps), the example
workflows that show it (``workshop/make_workflows.WORKFLOWS``) and its row in a benchmark.
``python -m workshop.make_docs`` renders the README's technique table and docs/techniques.md's
summary from it; ``tests/host/test_techniques.py`` checks it against the registered nodes, the
workflow builders, the files and the benchmarks, so that a new technique is: its pure module, its
row here, its node, its workflow builder entry and its tests.

Plain data (no torch, no host), so that the docs and the workflow writer read it without booting.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple


class Technique(NamedTuple):
    name: str
    kind: str                          # the node menu's group: inversion, attention, guidance, imagic, personalise, flow, testing
    nodes: tuple[str, ...]             # node_id of each node, as registered
    module: str | None                 # the pure module, under invertedit/ (None: host glue only)
    paper: str                         # "" for the pack's own tools
    defaults: str                      # the paper's defaults, as the nodes take them
    cost: str                          # UNet rows, N = sampling steps
    workflows: tuple[str, ...]         # example workflows (make_workflows.WORKFLOWS keys)
    benchmark: tuple[str, str] | None  # (module under workshop/benchmarks/, the row's name as it starts)
    summary: str                       # what it does, in a sentence
    settings: Mapping[str, object] = {}   # "node_id.input": the paper's default, the node's widget default
    quick: Mapping[str, Mapping[str, object]] = {}   # node_id -> inputs of a quick run (QUICK_STEPS, QUICK_SIZE)
    quick_steps: int = 0               # steps a quick run needs at least, when more than QUICK_STEPS


# A quick run (the half-precision lane, tests/host/test_half_precision.py): every workflow at
# QUICK_STEPS sampling and inversion steps on the toy world at QUICK_SIZE px (a 32x32 latent), each
# technique's inner loops cut to its row's ``quick`` inputs.
QUICK_STEPS = 5
QUICK_SIZE = 256

KINDS = ("inversion", "attention", "guidance", "imagic", "personalise", "flow", "testing")

TECHNIQUES: tuple[Technique, ...] = (
    Technique(
        "DDIM inversion", "inversion", ("InvertEditDDIMInvert", "InvertEditApplyInversion"), "inversion/ddim.py",
        "Song et al. 2021; Dhariwal & Nichol 2021", "50 steps, cfg 1", "N",
        ("ddim_invert_edit", "ddim_invert_custom_sampler", "SD1.5 - DDIM inversion and edit",
         "SDXL - DDIM inversion and edit"),
        ("toyworld", "DDIM inversion: reconstruction"),
        "Runs deterministic DDIM backwards from the image's latent to noise through the host's sampling path; "
        "Apply Inversion checks every sampling run against it.",
        settings={"InvertEditDDIMInvert.steps": 50, "InvertEditDDIMInvert.cfg": 1.0}),
    Technique(
        "Negative-Prompt Inversion", "inversion", ("InvertEditNegativePromptInversion",), "inversion/methods.py",
        "Miyake et al. 2023", "source prompt as negative", "N, no extra",
        ("inversion_under_guidance",), ("toyworld", "Negative-prompt inversion + naive regeneration"),
        "Uses the source prompt as the negative, so the reconstruction survives guidance at no extra cost."),
    Technique(
        "Direct Inversion", "inversion", ("InvertEditDirectInversion",), "inversion/methods.py",
        "Ju et al. 2024 (PnP Inversion)", "on the DDIM trajectory",
        "N, no extra; with Prompt-to-Prompt the unused source rows are left out",
        ("invert_and_edit", "p2p_replace_edit", "SD1.5 - Prompt-to-Prompt edit", "SDXL - Prompt-to-Prompt edit"),
        ("toyworld", "Direct inversion + Prompt-to-Prompt replace (paper defaults"),
        "Puts the source rows back on the inversion's trajectory at every step: exact reconstruction at any cfg."),
    Technique(
        "Null-text inversion", "inversion", ("InvertEditNullTextOptimize",), "inversion/null_text.py",
        "Mokady et al. 2023", "10 inner Adam steps, lr 0.01, early stop 1e-5 + i·2e-5",
        "N + up to 10N forward and backward", ("null_text_inversion_edit", "SD1.5 - Null-text inversion and edit"),
        ("toyworld", "Null-text inversion + naive regeneration"),
        "Optimises one null-text embedding per step so that guided sampling follows the inversion.",
        settings={"InvertEditNullTextOptimize.inner_steps": 10, "InvertEditNullTextOptimize.learning_rate": 0.01},
        quick={"InvertEditNullTextOptimize": {"inner_steps": 1}}),
    Technique(
        "EDICT", "inversion", ("InvertEditEDICTInvert", "InvertEditEDICTSampler"), "inversion/edict.py", "Wallace et al. 2023", "mixing 0.93",
        "2N to invert, 2N to sample (two coupled sequences)", ("edict_exact_inversion",),
        ("toyworld", "EDICT (cfg"),
        "Exact inversion with two coupled latent sequences, sampled back by its own SAMPLER.",
        settings={"InvertEditEDICTInvert.mixing": 0.93}),
    Technique(
        "Edit-friendly DDPM", "inversion", ("InvertEditDDPMInvert", "InvertEditDDPMSampler"), "inversion/ddpm.py",
        "Huberman-Spiegelglas et al. 2024", "100 steps, skip 36, cfg 3.5", "2N (N at cfg 1)",
        ("ddpm_edit_friendly", "SD1.5 - LEDITS++ edit"), ("toyworld", "Edit-friendly DDPM (cfg 3.5) + target prompt"),
        "Solves for each DDPM step's noise map, so reconstruction is exact and edits keep the structure.",
        settings={"InvertEditDDPMInvert.steps": 100, "InvertEditDDPMInvert.start_at_step": 36, "InvertEditDDPMInvert.cfg": 3.5}),
    Technique(
        "Fixed-point inversion", "inversion", ("InvertEditFixedPointInvert",), "inversion/fixed_point.py",
        "Garibi et al. 2024 (ReNoise); Pan et al. 2023 (AIDI)", "4 steps, 9 extra evaluations a step, last 2 averaged",
        "N (1 + iterations)", ("fixed_point_invert_edit",), ("inversions", "Fixed-point (ReNoise defaults"),
        "DDIM inversion whose every step is iterated to the exact inverse of the sampler's step.",
        settings={"InvertEditFixedPointInvert.steps": 4, "InvertEditFixedPointInvert.iterations": 9,
                  "InvertEditFixedPointInvert.average": 2},
        quick={"InvertEditFixedPointInvert": {"iterations": 2, "average": 1}}),
    Technique(
        "Saved inversions", "inversion", ("InvertEditSaveInversion", "InvertEditLoadInversion"), "inversion/record.py",
        "", "safetensors, never pickle", "none", ("load_inversion_edit",), None,
        "Writes an INVERSION to a file and reads it back bit for bit: invert once, edit many times."),
    Technique(
        "Prompt-to-Prompt", "attention", ("InvertEditAttentionInject",), "attention/prompt_to_prompt.py",
        "Hertz et al. 2023", "cross 0.8, self 0.4 (PIE-Bench 0.4 / 0.6), local blend threshold 0.3 from 0.2 of the steps",
        "a pair: 4N at cfg > 1", ("invert_and_edit", "p2p_replace_edit", "SD1.5 - Prompt-to-Prompt edit"),
        ("toyworld", "Direct inversion + Prompt-to-Prompt replace + local blend"),
        "The target's branch takes the source's attention maps: replace, refine, reweight and local blend.",
        settings={"InvertEditAttentionInject.cross_replace": 0.8, "InvertEditAttentionInject.self_replace": 0.4,
                  "InvertEditAttentionInject.blend_threshold": 0.3, "InvertEditAttentionInject.blend_start": 0.2}),
    Technique(
        "Attention maps", "attention", ("InvertEditAttentionStore",), "attention/store.py", "Hertz et al. 2023",
        "cross-attention at 16x16 of a 64x64 latent, averaged over steps; mask threshold 0.3; Flux/SD3: the joint "
        "attention's image-to-text probabilities, every block", "N", ("attention_maps", "Flux - Attention maps"), None,
        "Per-word cross-attention heatmaps on the inversion's trajectory, and a mask of chosen words (on Flux and "
        "SD3 from the joint attention).",
        settings={"InvertEditAttentionStore.threshold": 0.3}),
    Technique(
        "MasaCtrl", "attention", ("InvertEditMasaCtrl",), "attention/mutual.py", "Cao et al. 2023",
        "from step 4, layer 10", "4N", ("masactrl_edit",), ("toyworld", "Direct inversion + MasaCtrl"),
        "The target's self-attention reads the source's keys and values, optionally mask-guided.",
        settings={"InvertEditMasaCtrl.start_step": 4, "InvertEditMasaCtrl.start_layer": 10},
        quick={"InvertEditMasaCtrl": {"start_step": 1}}),
    Technique(
        "Plug-and-Play", "attention", ("InvertEditPlugAndPlay",), "attention/plug_and_play.py", "Tumanyan et al. 2023",
        "features 0.8, self-attention 0.5", "4N", ("plug_and_play_edit",), ("toyworld2", "Direct inversion (empty prompt) + Plug-and-Play"),
        "The target takes the source's decoder features and self-attention maps.",
        settings={"InvertEditPlugAndPlay.feature_injection": 0.8, "InvertEditPlugAndPlay.self_attention_injection": 0.5}),
    Technique(
        "Latent Blend", "guidance", ("InvertEditLatentBlend",), "guidance/latent_blend.py",
        "Avrahami et al. 2023 (Blended Latent Diffusion)", "start 0, end 1", "no extra", ("local_edit_blend",),
        ("toyworld", "Direct inversion + Prompt-to-Prompt + Latent Blend"),
        "On a source/target pair, keeps the target on the source outside a mask."),
    Technique(
        "DiffEdit mask", "guidance", ("InvertEditDiffEditMask",), "guidance/diffedit.py", "Couairon et al. 2023",
        "strength 0.5, 10 samples, threshold 0.5", "2 per sample: 20", ("local_edit_blend",),
        ("toyworld2", "Direct inversion + P2P + Latent Blend (DiffEdit mask"),
        "Finds where an edit happens from where the source and target prompts' noise predictions disagree.",
        settings={"InvertEditDiffEditMask.strength": 0.5, "InvertEditDiffEditMask.samples": 10,
                  "InvertEditDiffEditMask.threshold": 0.5},
        quick={"InvertEditDiffEditMask": {"samples": 2}}),
    Technique(
        "SEGA", "guidance", ("InvertEditSEGAConcept", "InvertEditSEGAGuidance"), "guidance/sega.py", "Brack et al. 2023",
        "scale 5, threshold 0.9, warm-up 10, momentum 0.1 / 0.4", "(2 + n) N for n concepts", ("sega_edit",),
        ("toyworld", "Edit-friendly DDPM + SEGA"),
        "Semantic guidance: a GUIDER with per-concept thresholded guidance and momentum.",
        settings={"InvertEditSEGAConcept.scale": 5.0, "InvertEditSEGAConcept.threshold": 0.9, "InvertEditSEGAConcept.warmup": 10,
                  "InvertEditSEGAGuidance.momentum_scale": 0.1, "InvertEditSEGAGuidance.momentum_beta": 0.4}),
    Technique(
        "LEDITS++", "guidance", ("InvertEditLEDITSConcept", "InvertEditLEDITSGuidance"), "guidance/ledits.py",
        "Brack et al. 2024", "scale 5, threshold 0.9, intersect masks", "(1 + n) N for n concepts",
        ("ledits_edit", "SD1.5 - LEDITS++ edit"), ("toyworld", "Edit-friendly DDPM (empty prompt) + LEDITS++"),
        "Concept guidance confined to implicit masks, on an edit-friendly DDPM inversion.",
        settings={"InvertEditLEDITSConcept.scale": 5.0, "InvertEditLEDITSConcept.threshold": 0.9}),
    Technique(
        "pix2pix-zero", "guidance",
        ("InvertEditPix2PixZeroInvert", "InvertEditEditDirection", "InvertEditCrossAttentionGuidance"),
        "inversion/regularised.py", "Parmar et al. 2023",
        "λ auto-correlation 20, λ KL 20, 5 regularisation steps, cross-attention guidance 0.1",
        "inversion N; edit 6N rows and one backward a step", ("pix2pix_zero_edit",),
        ("toyworld", "Pix2Pix-Zero inversion + edit direction"),
        "Regularised inversion, an edit direction of sentence embeddings, and cross-attention guidance.",
        settings={"InvertEditPix2PixZeroInvert.lambda_auto_corr": 20.0, "InvertEditPix2PixZeroInvert.lambda_kl": 20.0,
                  "InvertEditPix2PixZeroInvert.reg_steps": 5, "InvertEditCrossAttentionGuidance.guidance_amount": 0.1},
        quick={"InvertEditPix2PixZeroInvert": {"reg_steps": 1, "auto_corr_rolls": 1}}),
    Technique(
        "Proximal guidance", "guidance", ("InvertEditProximalGuidance",), "guidance/proximal.py",
        "Han et al. 2024 (ProxEdit)", "l0, quantile 0.7, inversion pull rate 1 below t 400", "4N, as a stock pair",
        ("proximal_guidance_edit",), ("toyworld", "Negative-prompt inversion + Prompt-to-Prompt (PIE-Bench) + Proximal"),
        "A GUIDER whose guidance term is thresholded by a quantile of its magnitude.",
        settings={"InvertEditProximalGuidance.quantile": 0.7, "InvertEditProximalGuidance.recon_lr": 1.0,
                  "InvertEditProximalGuidance.recon_t": 400.0}),
    Technique(
        "Noise Map Guidance", "guidance", ("InvertEditNoiseMapGuidance",), "guidance/noise_map.py", "Cho et al. 2024",
        "cfg 10, scale 10, grad scale 5000 (64×64 latent), L1", "4N + 2N with backward", ("noise_map_guidance_edit",),
        ("toyworld", "DDIM inversion + Prompt-to-Prompt (PIE-Bench) + Noise Map Guidance"),
        "A GUIDER that pulls the source towards the inversion's latents by a gradient step before CFG.",
        settings={"InvertEditNoiseMapGuidance.cfg": 10.0, "InvertEditNoiseMapGuidance.noise_map_scale": 10.0,
                  "InvertEditNoiseMapGuidance.grad_scale": 5000.0},
        # its loss is a mean over the latent, its defaults for a 64x64 one: at QUICK_SIZE (32x32) the
        # same pull per element is a quarter of the scale; at 5 steps its gradient step overshoots
        quick={"InvertEditNoiseMapGuidance": {"grad_scale": 1250.0}}, quick_steps=10),
    Technique(
        "Imagic", "imagic",
        ("InvertEditImagicOptimizeEmbedding", "InvertEditImagicFineTune", "InvertEditImagicInterpolate"),
        "guidance/imagic.py", "Kawar et al. 2023",
        "embedding 500 steps lr 1e-3; fine-tune 1000 steps (a rank-8 LoRA here, lr 5e-4); α 0.7",
        "1,500 forward and backward once, then stock sampling", ("imagic_edit",), ("toyworld", "Imagic"),
        "Optimises the target's embedding on the image, fine-tunes a LoRA on it, then interpolates.",
        settings={"InvertEditImagicOptimizeEmbedding.steps": 500, "InvertEditImagicOptimizeEmbedding.learning_rate": 0.001,
                  "InvertEditImagicFineTune.steps": 1000, "InvertEditImagicFineTune.rank": 8,
                  "InvertEditImagicFineTune.learning_rate": 0.0005, "InvertEditImagicInterpolate.alpha": 0.7},
        quick={"InvertEditImagicOptimizeEmbedding": {"steps": 1}, "InvertEditImagicFineTune": {"steps": 1}}),
    Technique(
        "DreamBooth", "personalise", ("InvertEditDreamBoothLoRA", "InvertEditDreamBoothFineTune"),
        "personalisation/dreambooth.py", "Ruiz et al. 2023",
        "LoRA rank 4 on the attention projections, AdamW lr 1e-4, 500 steps, batch 1, prior loss λ 1 on class images "
        "the model drew (diffusers' train_dreambooth_lora.py and its README; with a CLIP, the text encoder's "
        "attention too, as its --train_text_encoder); the full fine-tune: every UNet weight (with a CLIP, every "
        "text-model weight too), lr 5e-6, 800 steps (train_dreambooth.py and its README)",
        "steps × (one forward of the instance and class rows together + one backward) once, then stock sampling",
        ("dreambooth_subject", "dreambooth_fine_tune"), ("dreambooth_toy", "DreamBooth LoRA"),
        "Teaches the model a subject from 3-5 photos, bound to an identifier word, as a LoRA; the prior-preservation "
        "loss on class images keeps the class.",
        settings={"InvertEditDreamBoothLoRA.steps": 500, "InvertEditDreamBoothLoRA.learning_rate": 0.0001,
                  "InvertEditDreamBoothLoRA.rank": 4, "InvertEditDreamBoothLoRA.prior_loss_weight": 1.0,
                  "InvertEditDreamBoothLoRA.batch_size": 1, "InvertEditDreamBoothFineTune.steps": 800,
                  "InvertEditDreamBoothFineTune.learning_rate": 0.000005,
                  "InvertEditDreamBoothFineTune.prior_loss_weight": 1.0, "InvertEditDreamBoothFineTune.batch_size": 1},
        quick={"InvertEditDreamBoothLoRA": {"steps": 2}, "InvertEditDreamBoothFineTune": {"steps": 2}}),
    Technique(
        "Custom-Edit", "personalise", (), None, "Choi et al. 2023",
        "the paper's Prompt-to-Prompt on an inversion with the customised model; here cross 0.6 / self 0.2 at cfg 3 "
        "(toy world 1), 0.8 / 0.4 at cfg 2 (toy world 2: from an inverted photo, guidance carries a taught colour past "
        "itself as it grows)",
        "the customisation once, then N: inversion and one pair run",
        ("dreambooth_subject", "custom_edit_two_objects"), None,
        "Puts a learned subject into a real image: the DreamBooth-taught MODEL into DDIM Invert and Attention Inject, "
        "the target prompt naming the identifier."),
    Technique(
        "Textual Inversion", "personalise", ("InvertEditTextualInversion",), "personalisation/textual_inversion.py",
        "Gal et al. 2023",
        "1 vector from a one-token initializer (SDXL: in both encoders, as textual_inversion_sdxl.py), the script's 27 "
        "object templates, AdamW lr 0.002 (the README's 5e-4 × 4), batch 4, 3000 steps (diffusers' textual_inversion.py "
        "and its README)",
        "steps × (text encoder + UNet forward and backward) once, then stock sampling",
        ("textual_inversion_word",), None,
        "Learns a new word for a subject from 3-5 images, saved where the host's embedding:<name> prompt syntax "
        "reads it.",
        settings={"InvertEditTextualInversion.steps": 3000, "InvertEditTextualInversion.learning_rate": 0.002,
                  "InvertEditTextualInversion.batch_size": 4, "InvertEditTextualInversion.num_vectors": 1},
        quick={"InvertEditTextualInversion": {"steps": 2}}),
    Technique(
        "Custom Diffusion", "personalise", ("InvertEditCustomDiffusion",), "personalisation/custom_diffusion.py",
        "Kumari et al. 2023",
        "cross-attention keys and values + a modifier word from \"ktn\", AdamW lr 4e-5 (the README's 1e-5 × batch 2 × 2 "
        "with the prior), batch 2, 250 steps, prior loss λ 1, scale augmentation and flips (diffusers' "
        "train_custom_diffusion.py and its README; SDXL: the word in both encoders, the pack's extension)",
        "the pictures' VAE encodes, then steps × (text encoder + one UNet forward of photos and class pictures + one "
        "backward) once, then stock sampling",
        ("custom_diffusion_subject",), ("dreambooth_toy", "Custom Diffusion"),
        "Teaches the model a subject from a few photos in its cross-attention keys and values and a new word; the "
        "change is a LoRA of .diff weights for LoraLoader, the word an embedding file.",
        settings={"InvertEditCustomDiffusion.steps": 250, "InvertEditCustomDiffusion.learning_rate": 0.00004,
                  "InvertEditCustomDiffusion.batch_size": 2, "InvertEditCustomDiffusion.prior_loss_weight": 1.0},
        quick={"InvertEditCustomDiffusion": {"steps": 2}}),
    Technique(
        "SDEdit", "guidance", (), None, "Meng et al. 2022", "denoise 0.6 (paper's t0 0.5-0.6)",
        "2N × denoise: the stock KSampler", ("sdedit_baseline",), ("toyworld", "SDEdit (denoise"),
        "The baseline without inversion: the stock KSampler at denoise below 1 with the target prompt."),
    Technique(
        "FlowEdit", "flow", ("InvertEditFlowEdit",), "guidance/flow_edit.py", "Kulikov et al. 2025",
        "Flux: 28 steps, n_max 24, guidance 1.5 / 5.5; SD3: 50 steps, n_max 33, cfg 3.5 / 13.5; n_min 0, n_avg 1",
        "no inversion; 2 rows per acting step and noise (SD3 with cfg: 4), one batched call",
        ("Flux - FlowEdit", "SD3 - FlowEdit"), None,
        "Inversion-free editing with Flux.1 and SD3: the edit ODE follows the target's minus the source's velocity "
        "on noisy copies of the image.",
        settings={"InvertEditFlowEdit.source_guidance": 1.5, "InvertEditFlowEdit.target_guidance": 5.5,
                  "InvertEditFlowEdit.n_max": 24, "InvertEditFlowEdit.n_min": 0, "InvertEditFlowEdit.n_avg": 1}),
    Technique(
        "Flow inversion", "flow", ("InvertEditFlowInvert", "InvertEditFlowSampler"), "inversion/flow.py",
        "Wang et al. 2024 (RF-Solver); Deng et al. 2024 (FireFlow)",
        "25 steps, guidance 1 while inverting; solver rf-solver; values kept from single block 20 (RF-Solver-Edit)",
        "euler N, rf-solver 2N, fireflow N + 1 to invert, as many to sample", ("Flux - Flow inversion and edit", "SD3 - Flow inversion and edit"),
        None,
        "Inverts an image with Flux.1 or SD3 by Euler, RF-Solver's second-order step or FireFlow's midpoint step "
        "with the last velocity reused; the Flow Sampler samples it back.",
        settings={"InvertEditFlowInvert.steps": 25, "InvertEditFlowInvert.guidance": 1.0,
                  "InvertEditFlowInvert.share_from_block": 20}),
    Technique(
        "RF-Solver-Edit", "flow", ("InvertEditShareValues",), "attention/value_sharing.py",
        "Wang et al. 2024 (RF-Solver-Edit)",
        "the values of single blocks 20 to 37 shared in the first sampling steps (code: 20 of 25, examples 2-5); "
        "guidance 2 when editing",
        "no extra evaluations; kept values about 1 GB per step per megapixel (bfloat16), computed; on the model's device, or offloaded to the CPU as the authors'",
        ("Flux - RF-Solver-Edit",), None,
        "Flow Invert keeps the attention values of Flux's last single blocks while inverting; Share Values makes "
        "the edit attend with them in the first steps, so it keeps the image's layout."),
    Technique(
        "KV-Edit", "flow", ("InvertEditKVEdit",), "attention/kv_edit.py", "Zhu et al. 2025 (KV-Edit)",
        "28 steps, 4 skipped; guidance 1.5 inverting, 5.5 editing; attn_scale 1; attn_mask and re_init off",
        "N to invert (Euler), N - skip to sample (stock euler); kept keys and values about 3 GB per step per megapixel "
        "(bfloat16, 57 blocks), computed; on the model's device, or offloaded to the CPU as the authors'",
        ("Flux - KV-Edit", "Flux - KV-Edit from a word"), None,
        "Flow Invert keeps every block's keys and values while inverting; KV-Edit remakes only the masked tokens, "
        "attending to the background's kept keys and values, and keeps the background's latent as the image's.",
        settings={"InvertEditKVEdit.skip_steps": 4, "InvertEditKVEdit.attn_scale": 1.0}),
    Technique(
        "Stable Flow", "flow", ("InvertEditStableFlowInvert", "InvertEditStableFlow"), "attention/stable_flow.py",
        "Avrahami et al. 2025 (Stable Flow)",
        "vital blocks: double 0, 1, 17, 18 and single 9, 34, 35, 37, 6 (Flux.1 dev); 50 steps; latent nudged 1.15, "
        "guidance 1 inverting; guidance 1 (source) and 3 (edit)",
        "N to invert, N to sample a batch of 2 (source and edit; stock euler)", ("Flux - Stable Flow",), None,
        "The source and the edit sample as one pair, the source following the image's inversion; in the vital "
        "blocks the edit attends with the source's image keys and values.",
        settings={"InvertEditStableFlowInvert.steps": 50, "InvertEditStableFlowInvert.guidance": 1.0,
                  "InvertEditStableFlowInvert.nudge": 1.15}),
    Technique(
        "Prompt-to-Prompt on joint attention", "flow", ("InvertEditJointAttentionInject",),
        "attention/joint_prompt_to_prompt.py", "Hertz et al. 2023, on Flux/SD3 joint attention (the pack's)",
        "cross 0.8, self 0.4 of the steps; local blend threshold 0.3 from 0.2 of the steps",
        "N to invert, N to sample a batch of 2 (source and edit; stock euler), one extra attention row while "
        "self-attention is injected", ("Flux - Prompt-to-Prompt edit", "SD3 - Prompt-to-Prompt edit"), None,
        "The edit's image tokens take the source's attention on the prompt's words (replace, refine, reweight) and, "
        "in the first steps, on the image, in a pair whose source row follows a flow inversion; local blend from "
        "the words' maps.",
        settings={"InvertEditJointAttentionInject.cross_replace": 0.8,
                  "InvertEditJointAttentionInject.self_replace": 0.4}),
    Technique(
        "RF-Inversion", "flow", ("InvertEditRFInversionInvert", "InvertEditRFInversion"), "inversion/flow.py",
        "Rout et al. 2025", "28 steps, gamma 0.5, guidance 0 while inverting; eta 0.9 from 0 to 0.25 of the steps",
        "N to invert, N to sample (stock euler)", ("Flux - RF-Inversion edit", "SD3 - RF-Inversion edit"), None,
        "A controlled forward ODE towards a fixed noise, then a reverse pulled towards the image by eta in the "
        "first steps: a patch on the model for the stock euler sampler.",
        settings={"InvertEditRFInversionInvert.steps": 28, "InvertEditRFInversionInvert.gamma": 0.5,
                  "InvertEditRFInversionInvert.guidance": 0.0, "InvertEditRFInversion.eta": 0.9,
                  "InvertEditRFInversion.start": 0.0, "InvertEditRFInversion.stop": 0.25}),
    Technique(
        "Toy World Model", "testing", ("InvertEditToyModel",), "demo/toy_autoencoder.py", "", "two objects, 512 px",
        "a tiny UNet", ("invert_and_edit",), None,
        "The pack's trained tiny models of the toy worlds: the main job's and the workflows' model."),
    Technique(
        "Demo Model", "testing", ("InvertEditDemoModel",), None, "", "sd1, seed 0", "a tiny UNet",
        ("demo_model_sdxl",), None,
        "Seeded random-weight SD1.x / SD2.x-v / SDXL models for mechanics tests; noise, not pictures."),
)


def by_node() -> dict[str, Technique]:
    """node_id -> the technique it belongs to."""
    return {node: t for t in TECHNIQUES for node in t.nodes}

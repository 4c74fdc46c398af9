"""SEGA Concept / SEGA Guidance: semantic guidance as a GUIDER for SamplerCustomAdvanced
(math in ``guidance/sega.py``).

The guider evaluates the prompt, the negative and every concept in one batched UNet call per
step (the host's ``calc_cond_batch``), combines them as SEGA does, then applies the model's
post-CFG functions (so Apply Inversion's corrections and Latent Blend still act). The edit
momentum lives in the sampling run's own copy of the model options.
"""
from __future__ import annotations

import comfy.samplers
import torch
from comfy_api.latest import io

from ..guidance.sega import Concept, SegaState, sega_eps
from .attention_inject import sampling_step
from .host_sampling import NodeInputError

Concepts = io.Custom("SEGA_CONCEPTS")
STATE_KEY = "invertedit_sega_state"


def concept_inputs(warmup: int, paper: str) -> list:
    """The inputs every concept node shares (defaults: the paper's)."""
    return [
        io.Combo.Input("direction", options=["add", "remove"], default="add",
                       tooltip="Add the concept, or remove it (the paper's reverse direction)."),
        io.Float.Input("scale", default=5.0, min=0.0, max=100.0, step=0.1, tooltip=f"Edit guidance scale ({paper}: 5)."),
        io.Int.Input("warmup", default=warmup, min=0, max=1000, tooltip=f"Steps before the concept acts ({paper}: {warmup})."),
        io.Int.Input("cooldown", default=0, min=0, max=1000,
                     tooltip="Step from which the concept stops acting; 0: never (the default)."),
        io.Float.Input("threshold", default=0.9, min=0.0, max=0.999, step=0.01,
                       tooltip=f"Percentile below which the concept's guidance (or mask) is dropped ({paper}: 0.9)."),
        io.Float.Input("weight", default=1.0, min=0.0, max=100.0, step=0.1,
                       tooltip="Weight against the other concepts (all 1: equal)."),
        Concepts.Input("concepts", optional=True, tooltip="Concepts from other concept nodes, to chain."),
    ]


def make_concept(direction: str, scale: float, warmup: int, cooldown: int, threshold: float, weight: float,
                 tokens: tuple[int, ...] | None = None) -> Concept:
    return Concept(scale=scale, reverse=direction == "remove", warmup=warmup, cooldown=cooldown or None,
                   threshold=threshold, weight=weight, tokens=tokens)


class ConceptGuider(comfy.samplers.CFGGuider):
    """A GUIDER that evaluates its fixed conds (``FIXED``) and one cond per concept in one batched
    UNet call a step (the host's ``calc_cond_batch``), combines the noise predictions
    (``combine``), then applies the model's post-CFG functions (so Apply Inversion's corrections
    and Latent Blend still act). Per-run state lives in the run's own copy of the model options."""

    FIXED: tuple[str, ...] = ("positive", "negative")
    COND, UNCOND = 0, 1          # which conds the post-CFG functions see as cond / uncond

    def __init__(self, model, concepts: list[Concept]):
        super().__init__(model)
        self.concepts = concepts

    def set_all(self, fixed: dict, concept_conds: list) -> None:
        conds = dict(fixed)
        conds.update({f"concept_{i}": c for i, c in enumerate(concept_conds)})
        self.inner_set_conds(conds)

    def run_state(self) -> dict:
        """Entries for the run's ``transformer_options``, fresh for every sampling run."""
        return {}

    def combine(self, eps: list[torch.Tensor], step: int, sigma: torch.Tensor, options: dict) -> torch.Tensor:
        raise NotImplementedError

    def outer_sample(self, *args, **kwargs):
        # self.model_options is the run's own copy here (CFGGuider.sample): a fresh state per run.
        self.model_options.setdefault("transformer_options", {}).update(self.run_state())
        return super().outer_sample(*args, **kwargs)

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        keys = list(self.FIXED) + [f"concept_{i}" for i in range(len(self.concepts))]
        conds = [self.conds.get(k) for k in keys]
        outs = comfy.samplers.calc_cond_batch(self.inner_model, conds, x, timestep, model_options)
        sigma = timestep.reshape(-1, *([1] * (x.ndim - 1)))
        eps = [(x - o) / sigma for o in outs]
        options = model_options.get("transformer_options", {})
        step, _ = sampling_step({"sample_sigmas": options["sample_sigmas"], "sigmas": timestep})
        denoised = x - self.combine(eps, step, timestep, options) * sigma
        for fn in model_options.get("sampler_post_cfg_function", []):
            denoised = fn({"denoised": denoised, "cond": conds[self.COND], "uncond": conds[self.UNCOND],
                           "model": self.inner_model, "uncond_denoised": outs[self.UNCOND],
                           "cond_denoised": outs[self.COND], "sigma": timestep, "model_options": model_options,
                           "input": x})
        return denoised


class SegaGuider(ConceptGuider):
    def __init__(self, model, concepts: list[Concept], momentum_scale: float, momentum_beta: float):
        super().__init__(model, concepts)
        self.momentum_scale, self.momentum_beta = momentum_scale, momentum_beta

    def run_state(self) -> dict:
        return {STATE_KEY: SegaState()}

    def combine(self, eps, step, sigma, options):
        return sega_eps(eps[1], eps[0], eps[2:], step, self.cfg, self.concepts, self.momentum_scale,
                        self.momentum_beta, options[STATE_KEY])


class SegaConcept(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditSEGAConcept",
            display_name="SEGA Concept",
            category="InvertEdit/guidance",
            description="One concept for SEGA Guidance; chain several through 'concepts'.",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="The concept's prompt (CLIP Text Encode), e.g. 'glasses'."),
                *concept_inputs(warmup=10, paper="paper"),
            ],
            outputs=[Concepts.Output(display_name="concepts")],
        )

    @classmethod
    def execute(cls, conditioning, direction, scale, warmup, cooldown, threshold, weight, concepts=None) -> io.NodeOutput:
        concept = make_concept(direction, scale, warmup, cooldown, threshold, weight)
        return io.NodeOutput(list(concepts or []) + [(conditioning, concept)])


class SegaGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditSEGAGuidance",
            display_name="SEGA Guidance",
            category="InvertEdit/guidance",
            description=("Semantic guidance (Brack et al.): classifier-free guidance plus, per concept, a thresholded "
                         "guidance term towards (or away from) it, with momentum. A GUIDER for SamplerCustomAdvanced; "
                         "the prompt, the negative and all concepts are evaluated in one batched UNet call per step. "
                         "Works on an inverted image through Apply Inversion's model and the inversion's sampler."),
            inputs=[
                io.Model.Input("model", tooltip="The model (patches, Apply Inversion, Latent Blend act as usual)."),
                io.Conditioning.Input("positive", tooltip="The prompt."),
                io.Conditioning.Input("negative", tooltip="The negative (unconditional) prompt."),
                io.Float.Input("cfg", default=7.5, min=0.0, max=100.0, step=0.1, round=0.01, tooltip="Guidance scale."),
                Concepts.Input("concepts", tooltip="From SEGA Concept nodes."),
                io.Float.Input("momentum_scale", default=0.1, min=0.0, max=10.0, step=0.01,
                               tooltip="Scale of the edit momentum (paper: 0.1)."),
                io.Float.Input("momentum_beta", default=0.4, min=0.0, max=0.999, step=0.01,
                               tooltip="Momentum decay beta (paper: 0.4)."),
            ],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, positive, negative, cfg, concepts, momentum_scale, momentum_beta) -> io.NodeOutput:
        if not concepts:
            raise NodeInputError("SEGA Guidance", "input 'concepts' is empty; connect SEGA Concept nodes.")
        guider = SegaGuider(model, [c for _, c in concepts], momentum_scale, momentum_beta)
        guider.set_all({"positive": positive, "negative": negative}, [cond for cond, _ in concepts])
        guider.set_cfg(cfg)
        return io.NodeOutput(guider)


NODES = [SegaConcept, SegaGuidance]

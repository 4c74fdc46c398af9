"""The INVERSION record: everything an edit needs to reproduce the source image.

An inversion is made once and used by many edits (and can be saved and shared), so it
carries, besides the inverted latent, the schedule it was made on, the whole trajectory, the
method's per-step clues (null-text embeddings, offsets, noise maps: empty for plain DDIM) and
a fingerprint of the model and settings. A consumer checks the fingerprint and the schedule
it samples with, so a mismatch is a clear error instead of a silently wrong image.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

import torch

FORMAT_VERSION = "1"


class InversionMismatch(ValueError):
    """The inversion cannot be used with this model, latent or schedule."""


@dataclass
class Inversion:
    method: str
    sigmas: torch.Tensor             # the full descending schedule (steps + 1), as the sampler computes it
    start_step: int                  # the inverted latent sits at sigmas[start_step]
    trajectory: torch.Tensor         # [steps - start_step + 1, B, C, H, W] sampler-space latents,
                                     # trajectory[j] at sigmas[start_step + j]; trajectory[-1] is the source
    latent: torch.Tensor             # the inverted latent as a LATENT tensor (the host's unscaled space)
    settings: dict = field(default_factory=dict)     # steps, scheduler, cfg, ... (JSON-able)
    fingerprint: dict = field(default_factory=dict)  # model / conditioning identity (JSON-able strings)
    clues: dict = field(default_factory=dict)        # name -> tensor, per method

    def __post_init__(self) -> None:
        if self.trajectory.shape[0] != len(self.sigmas) - self.start_step:
            raise ValueError(
                f"Inversion: trajectory has {self.trajectory.shape[0]} latents but the schedule has "
                f"{len(self.sigmas) - self.start_step} points from step {self.start_step}")

    @property
    def steps(self) -> int:
        return len(self.sigmas) - 1

    @property
    def sampling_sigmas(self) -> torch.Tensor:
        """The sigmas a sampler runs from the inverted latent back to the source."""
        return self.sigmas[self.start_step:]

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.trajectory.shape[1:])

    def describe(self) -> str:
        s = self.settings
        return (f"{self.method} inversion, steps={s.get('steps', self.steps)}, scheduler={s.get('scheduler', '?')}, "
                f"start_at_step={self.start_step}, latent {tuple(self.latent.shape)}")

    # -- checks -------------------------------------------------------------------------
    def locate(self, run_sigmas: torch.Tensor, rtol: float = 1e-4) -> int:
        """Where a sampling run's sigmas start in this inversion's schedule.

        The run must follow the schedule exactly from some step at or after ``start_step``
        (it may stop early; its last sigma may be forced to 0). Returns that step index or
        raises InversionMismatch with what would work."""
        run = run_sigmas.detach().float().cpu()  # sampling-path-ok: a check once per run, before its first step
        ref = self.sigmas.detach().float().cpu()  # sampling-path-ok: as above
        n = len(run)
        for a in range(self.start_step, len(ref) - n + 1):
            seg = ref[a:a + n]
            body_ok = torch.allclose(run[:-1], seg[:-1], rtol=rtol, atol=1e-6)
            last_ok = torch.allclose(run[-1:], seg[-1:], rtol=rtol, atol=1e-6) or float(run[-1]) == 0.0
            if body_ok and last_ok:
                return a
        s = self.settings
        raise InversionMismatch(
            f"the sampler runs {n - 1} steps on sigmas {_fmt(run)}, which are not the schedule this "
            f"inversion was made on ({_fmt(ref)}). Sample with steps={s.get('steps', self.steps)}, "
            f"scheduler={s.get('scheduler', '?')} and start_at_step={self.start_step} "
            f"(or re-run the inversion with the settings you want).")

    def step_at(self, sigma: float, rtol: float = 1e-4) -> int:
        """The index in ``sigmas`` of the step a sampler is at (its current sigma, a Python float:
        patches read it once per model call, ``adapters/steps.py``)."""
        s = float(sigma)
        ref = self.sigma_floats()
        hit = next((i for i, v in enumerate(ref) if abs(v - s) <= 1e-6 + rtol * abs(s)), None)
        if hit is None:
            raise InversionMismatch(f"sigma {s:.4g} is not on this inversion's schedule ({_fmt(self.sigmas)})")
        return hit

    def sigma_floats(self) -> list[float]:
        """The schedule as Python floats, read from the tensor once (the record's sigmas never change)."""
        if getattr(self, "_sigma_floats", None) is None or len(self._sigma_floats) != len(self.sigmas):
            self._sigma_floats = self.sigmas.detach().float().tolist()  # sampling-path-ok: once per record
        return self._sigma_floats

    def check_latent(self, shape: tuple[int, ...]) -> None:
        """The sampled latent must have this inversion's channels and size (any batch)."""
        want = self.latent_shape
        if tuple(shape[1:]) != tuple(want[1:]):
            raise InversionMismatch(
                f"the latent being sampled is {tuple(shape[1:])} (channels, height, width) but the inversion "
                f"was made from a {tuple(want[1:])} latent. Use the inversion's LATENT output, or invert "
                f"an image of this size.")

    def check_fingerprint(self, actual: dict, keys: Optional[list[str]] = None) -> list[str]:
        """Compare fingerprints; returns the names of the entries that differ."""
        keys = keys if keys is not None else sorted(set(self.fingerprint) & set(actual))
        return [k for k in keys if self.fingerprint.get(k) != actual.get(k)]

    # -- serialisation (the file I/O is the caller's: safetensors) ------------------------
    def to_state(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        tensors = {
            "sigmas": self.sigmas.detach().float().cpu().contiguous(),
            "trajectory": self.trajectory.detach().cpu().contiguous(),
            "latent": self.latent.detach().cpu().contiguous(),
        }
        for name, t in self.clues.items():
            tensors[f"clue.{name}"] = t.detach().cpu().contiguous()
        meta = {
            "invertedit.format": FORMAT_VERSION,
            "method": self.method,
            "start_step": str(self.start_step),
            "settings": json.dumps(self.settings, sort_keys=True),
            "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
        }
        return tensors, meta

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> "Inversion":
        version = (meta or {}).get("invertedit.format")
        if version != FORMAT_VERSION:
            raise InversionMismatch(f"it has no InvertEdit format {FORMAT_VERSION} metadata (found format {version!r})")
        missing = {"sigmas", "trajectory", "latent"} - set(tensors)
        if missing:
            raise InversionMismatch(f"it lacks the tensors {sorted(missing)}")
        for name, ndim in (("sigmas", 1), ("trajectory", 5), ("latent", 4)):
            if tensors[name].ndim != ndim:
                raise InversionMismatch(f"its '{name}' tensor has {tensors[name].ndim} dimensions, not {ndim}")
        try:
            start_step = int(meta.get("start_step", ""))
        except ValueError:
            raise InversionMismatch(f"its start_step {meta.get('start_step')!r} is not a whole number") from None
        if not 0 <= start_step < len(tensors["sigmas"]):
            raise InversionMismatch(f"its start_step {start_step} is not a step of its {len(tensors['sigmas'])}-point schedule")
        method = meta.get("method")
        if not method:
            raise InversionMismatch("it names no inversion method")
        settings = _json_object(meta, "settings")
        fingerprint = _json_object(meta, "fingerprint")
        return cls(
            method=method,
            sigmas=tensors["sigmas"],
            start_step=start_step,
            trajectory=tensors["trajectory"],
            latent=tensors["latent"],
            settings=settings,
            fingerprint=fingerprint,
            clues={k[len("clue."):]: v for k, v in tensors.items() if k.startswith("clue.")},
        )


def _json_object(meta: dict[str, str], key: str) -> dict:
    """A metadata entry holding a JSON object (settings, fingerprint)."""
    try:
        value = json.loads(meta.get(key, "{}"))
    except ValueError:
        raise InversionMismatch(f"its {key} is not valid JSON") from None
    if not isinstance(value, dict):
        raise InversionMismatch(f"its {key} is a JSON {_JSON_NAMES.get(type(value), type(value).__name__)}, "
                                f"not an object")
    return value


_JSON_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def _fmt(sigmas: torch.Tensor, most: int = 6) -> str:
    vals = [f"{float(s):.4g}" for s in sigmas]
    if len(vals) > most:
        vals = vals[:most // 2] + ["..."] + vals[-(most // 2):]
    return "[" + ", ".join(vals) + "]"

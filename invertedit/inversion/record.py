"""The INVERSION record: everything an edit needs to reproduce the source image.

An inversion is made once and used by many edits (and can be saved and shared), so it
carries, besides the inverted latent, the schedule it was made on, the whole trajectory, the
method's per-step clues (null-text embeddings, offsets, noise maps: empty for plain DDIM) and
a fingerprint of the model and settings. A consumer checks the fingerprint and the schedule
it samples with, so a mismatch is a clear error instead of a silently wrong image.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

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
        patches read it once per model call, ``hostkit/steps.py``)."""
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

    # -- serialisation (the file I/O is the caller's: safetensors) ------------------------
    def to_state(self) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
        tensors = {
            "sigmas": self.sigmas.detach().float().cpu().contiguous(),
            "trajectory": self.trajectory.detach().cpu().contiguous(),
            "latent": self.latent.detach().cpu().contiguous(),
        }
        for name, t in self.clues.items():
            if t.dtype in _FLOAT8:   # a cache kept in fp8 (keep_values_on '..., fp8'): float16 holds it exactly
                t = t.to(torch.float16)
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
        """The inversion a file's tensors and metadata hold (``to_state``'s inverse). Anything a
        file written by ``to_state`` cannot hold is refused with InversionMismatch saying what
        (its sentences start with "it"/"its", for the loader to name the file). float16,
        bfloat16 and float64 tensors are read as float32; the sigmas must be float32 or float64
        (at half precision the schedule no longer matches the sampler's)."""
        version = (meta or {}).get("invertedit.format")
        if version != FORMAT_VERSION:
            raise InversionMismatch(f"it has no InvertEdit format {FORMAT_VERSION} metadata (found format {version!r})")
        missing = {"sigmas", "trajectory", "latent"} - set(tensors)
        if missing:
            raise InversionMismatch(f"it lacks the tensors {sorted(missing)}")
        tensors = {k: _as_float32(k, v) for k, v in tensors.items() if k in _RANKS or k.startswith("clue.")}
        for name, ndim in _RANKS.items():
            # a model on latents with a frame axis (Qwen-Image's Wan VAE, Wan's clips): one more, on latent and
            # trajectory alike
            frames = int(name != "sigmas" and tensors["latent"].ndim == 5)
            if tensors[name].ndim != ndim + frames:
                raise InversionMismatch(f"its '{name}' tensor has {tensors[name].ndim} dimensions, not {ndim + frames}")
        sigmas = tensors["sigmas"]
        if len(sigmas) < 2:
            raise InversionMismatch(f"its sigmas have {len(sigmas)} point(s); an inversion's schedule has 2 or more (a step)")
        try:
            start_step = int(meta.get("start_step", ""))
        except ValueError:
            raise InversionMismatch(f"its start_step {meta.get('start_step')!r} is not a whole number") from None
        if not 0 <= start_step < len(sigmas) - 1:
            raise InversionMismatch(f"its start_step {start_step} is not a step of its {len(sigmas) - 1}-step "
                                    f"schedule (0 to {len(sigmas) - 2})")
        method = meta.get("method")
        if not method:
            raise InversionMismatch("it names no inversion method")
        settings = _json_object(meta, "settings")
        fingerprint = _json_object(meta, "fingerprint")
        _check_settings(settings)
        _check_sigmas(sigmas)
        clues = {k[len("clue."):]: v for k, v in tensors.items() if k.startswith("clue.")}
        _check_shapes(tensors["trajectory"], tensors["latent"], clues, len(sigmas) - start_step, start_step)
        for name, tensor in tensors.items():
            if not bool(tensor.isfinite().all()):
                part = f"clue '{name[len('clue.'):]}'" if name.startswith("clue.") else name
                raise InversionMismatch(f"its {part} has NaN or infinite values")
        return cls(
            method=method,
            sigmas=sigmas,
            start_step=start_step,
            trajectory=tensors["trajectory"],
            latent=tensors["latent"],
            settings=settings,
            fingerprint=fingerprint,
            clues=clues,
        )


# the tensors every inversion file holds, and their number of dimensions
_RANKS = {"sigmas": 1, "trajectory": 5, "latent": 4}

_FLOAT8 = (torch.float8_e4m3fn, torch.float8_e5m2)
# the dtypes read as float32: float32 itself, float64, and (not for the sigmas) half precision
_READ_AS_FLOAT32 = (torch.float32, torch.float64)
_HALF = (torch.float16, torch.bfloat16)


def _as_float32(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """A file's tensor as float32 (the dtype ``to_state`` writes), refusing dtypes that cannot be one."""
    dtype = str(tensor.dtype).removeprefix("torch.")
    if not tensor.is_floating_point():
        raise InversionMismatch(f"its '{name}' tensor holds {dtype} values; an inversion's tensors are floating "
                                f"point (float32)")
    if tensor.dtype in _READ_AS_FLOAT32 or (tensor.dtype in _HALF and name != "sigmas"):
        return tensor.float()
    if name == "sigmas":
        raise InversionMismatch(f"its sigmas are {dtype}, which rounds the schedule off the sampler's; an "
                                f"inversion's sigmas are float32")
    raise InversionMismatch(f"its '{name}' tensor is {dtype}, too coarse for an inversion; float32, float16 "
                            f"or bfloat16 are read")


def _check_sigmas(sigmas: torch.Tensor) -> None:
    """An inversion's schedule: finite noise levels, 0 or more, falling (as the sampler runs them)."""
    if not bool(sigmas.isfinite().all()):
        raise InversionMismatch(f"its sigmas {_fmt(sigmas)} have NaN or infinite values")
    if bool((sigmas < 0).any()):
        raise InversionMismatch(f"its sigmas {_fmt(sigmas)} go below 0; noise levels are 0 or more")
    rises = (sigmas[1:] > sigmas[:-1]).nonzero()
    if len(rises):
        i = int(rises[0, 0])
        raise InversionMismatch(f"its sigmas rise (from {float(sigmas[i]):.4g} at step {i} to "
                                f"{float(sigmas[i + 1]):.4g} at step {i + 1}) where an inversion's fall "
                                f"({_fmt(sigmas)})")


# settings the pack's nodes read back, and what each must be when present
_SETTINGS = {"steps": (int, "a whole number"), "start_at_step": (int, "a whole number"),
             "seed": (int, "a whole number"), "cfg": ((int, float), "a finite number"),
             "mixing": ((int, float), "a finite number"), "scheduler": (str, "a scheduler's name")}


def _check_settings(settings: dict) -> None:
    """The settings the nodes read back must have their types (a file's JSON may hold anything)."""
    for key, (kind, what) in _SETTINGS.items():
        if key not in settings:
            continue
        value = settings[key]
        finite = not isinstance(value, float) or math.isfinite(value)
        if isinstance(value, bool) or not isinstance(value, kind) or not finite:
            raise InversionMismatch(f"its settings' {key} is {json.dumps(value)}, not {what}")


# per-step and per-image clues: the shape each must have, from the sampling steps ``n`` and the
# trajectory's latent shape ``x`` ([batch, channels, height, width]); None: any size
_CLUE_SHAPES = {
    "edict.y": lambda n, x: x,                                  # EDICT's second latent at the start
    "ddpm.corrections": lambda n, x: (n, *x),                   # edit-friendly DDPM: a noise map a step
    "null_text": lambda n, x: (n, 1, None, None),               # Null-Text: an embedding a step
    "source.cond": lambda n, x: (None, None, None),             # Negative-Prompt: the source prompt
    "source.pooled": lambda n, x: (None, None),
}


def _check_shapes(trajectory: torch.Tensor, latent: torch.Tensor, clues: dict[str, torch.Tensor], points: int,
                  start_step: int) -> None:
    """Latent, trajectory and clues must describe the same latents over the same steps."""
    if trajectory.shape[0] != points:
        raise InversionMismatch(f"its trajectory has {trajectory.shape[0]} latents but its schedule has {points} "
                                f"points from start_step {start_step}; they must match")
    x = tuple(trajectory.shape[1:])
    if 0 in x:
        raise InversionMismatch(f"its trajectory's latents are empty ({x})")
    if tuple(latent.shape) != x:
        raise InversionMismatch(f"its latent is {tuple(latent.shape)} (batch, channels, height, width) but its "
                                f"trajectory's latents are {x}; they must match")
    for name, tensor in clues.items():
        rule = _CLUE_SHAPES.get(name)
        want = rule(points - 1, x) if rule else None
        if want is not None and (tensor.ndim != len(want) or
                                 any(w is not None and s != w for s, w in zip(tensor.shape, want))):
            shown = "(" + ", ".join("*" if w is None else str(w) for w in want) + ")"
            raise InversionMismatch(f"its clue '{name}' has shape {tuple(tensor.shape)} where {shown} is needed "
                                    f"({points - 1} steps from its start_step, latents {x})")


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

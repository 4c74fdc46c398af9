"""The host's progress for the pack's own loops: the interrupt check, the progress bar and, as the
host's samplers show it, a preview picture (issue 79: the long optimisations showed a bar and no picture).

ComfyUI's samplers report each step with ``comfy.utils.ProgressBar.update_absolute(value, total, preview)``,
``preview`` being ``("JPEG", PIL image, max size)`` drawn from the step's denoised latent by the previewer
``latent_preview.get_previewer`` makes for the model's latent format (``latent_preview.prepare_callback``).
That previewer follows the host's preview method (``--preview-method``: none by default, then no previewer).
``Progress`` does the same for a loop the pack runs itself (``sampling.run_loop`` hands it to the loop as
its ``step_callback``): at every step the interrupt check and the bar; a picture when the host's previews
are on, the loop has one to show and one is due (the first step, the last, and at most one every
``PREVIEW_EVERY_S`` seconds between: the host's previewer brings the latent to the CPU, so a fast loop is
not made to wait for it at every step). With previews off no picture is made, no previewer either, and
nothing is kept: the loop runs as it did before.

What a loop shows is a latent in the sampler's space, as the host's samplers show their step's ``x0``:
``preview=`` given at a step (a tensor, or a function called only when a picture is made), else the
latest prediction the loop handed to ``saw`` (the training loops pass their model's denoised
prediction through it: no extra model call)."""
from __future__ import annotations

import time
from typing import Callable, Optional, Union

import comfy.model_management
import comfy.utils
import latent_preview
import torch
from comfy.model_patcher import ModelPatcher

#: The least time between two preview pictures (the first step's and the last step's are always made).
PREVIEW_EVERY_S = 0.5

Preview = Union[torch.Tensor, Callable[[], Optional[torch.Tensor]], None]

_NOT_YET = object()   # the previewer is made at the first step that has something to show


def check_interrupt(*_) -> None:
    """Raise the host's interrupt if the user pressed Cancel (long loops call it between steps)."""
    comfy.model_management.throw_exception_if_processing_interrupted()


class Progress:
    """The host's progress bar for ``total`` steps of a loop on ``model`` (a ModelPatcher), with the
    host's preview pictures. Called as a loop's ``step_callback(i, total, x, preview=None)`` after step
    ``i`` (0-based): the interrupt check, the bar at ``i + 1`` of ``total``, and a picture when one is due
    (``x``, the loop's own latent, is not shown: a noisy latent says little; see the module's docstring)."""

    def __init__(self, model: ModelPatcher, total: int, every_s: Optional[float] = None) -> None:
        self.model = model
        self.bar = comfy.utils.ProgressBar(total)
        self.every_s = PREVIEW_EVERY_S if every_s is None else every_s
        self.pictures = 0                       # the preview pictures made
        self._previewer = _NOT_YET
        self._last: Optional[float] = None      # time.monotonic() at the last picture
        self._seen: Optional[torch.Tensor] = None

    @property
    def previewer(self):
        """The host's previewer for the model's latent format, made as its samplers make it (None when the
        host's previews are off)."""
        if self._previewer is _NOT_YET:
            self._previewer = latent_preview.get_previewer(self.model.load_device, self.model.model.latent_format)
        return self._previewer

    def saw(self, x0: torch.Tensor) -> torch.Tensor:
        """``x0`` (a denoised prediction in the sampler's space, batch first), returned as it is; kept (a
        reference, no copy) as the picture of the next step when the host's previews are on."""
        if self.previewer is not None:
            self._seen = x0
        return x0

    def __call__(self, i: int, total: int, x: Optional[torch.Tensor] = None, preview: Preview = None) -> None:
        check_interrupt()
        done = i + 1
        picture = None
        if (preview is not None or self._seen is not None) and self.previewer is not None and self._due(done, total):
            latent = preview() if callable(preview) else preview
            latent = self._seen if latent is None else latent
            if latent is not None:
                with torch.no_grad():
                    picture = self.previewer.decode_latent_to_preview_image("JPEG", latent[:1].detach().float())
                self.pictures += 1
                self._last = time.monotonic()
        self._seen = None
        self.bar.update_absolute(done, total, picture)

    def _due(self, done: int, total: int) -> bool:
        return self._last is None or done >= total or time.monotonic() - self._last >= self.every_s

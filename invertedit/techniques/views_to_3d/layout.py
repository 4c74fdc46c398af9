"""A view set's layout (issue 83): which view of an IMAGE batch is which, and which of them Hunyuan3D-2's multi-view
conditioning takes. Pure: no torch, no host.

A layout names each view of the batch in order ("front, left, back, right": ComfyUI's Hunyuan3D-2mv template's
four views) and may give each its camera's azimuth and elevation in degrees (an orbit, e.g. SV3D's: azimuth
``i * 360 / frames``). Hunyuan3D-2mv conditions on up to four views, front, left, back and right, each with its own
view embedding (``Hunyuan3Dv2ConditioningMultiView``: index 0-3 in that order, i.e. the azimuths 0, 90, 180 and 270
degrees of ``HUNYUAN3D_AZIMUTHS``; Hunyuan3D-2mv's own pipeline takes the same four names). ``pick_views`` chooses
them by the layout's names, or, where the layout gives azimuths, by the view nearest each of the four angles (within
30 degrees), so an orbit of any length feeds the 3D model its four quarter views.
"""
from __future__ import annotations

from dataclasses import dataclass

#: the views Hunyuan3D-2mv takes, in its view embedding's order, with their azimuths (degrees)
HUNYUAN3D_AZIMUTHS: dict[str, float] = {"front": 0.0, "left": 90.0, "back": 180.0, "right": 270.0}
DEFAULT_LAYOUT = "front, left, back, right"
#: an azimuth farther than this from each of the four is no quarter view
AZIMUTH_TOLERANCE = 30.0


@dataclass(frozen=True)
class ViewSet:
    """A view set's record (the VIEWS socket): each view's name, and its camera's azimuth and elevation in degrees
    where given (else ``()``), the view count and the views' size (height, width) in pixels."""

    names: tuple[str, ...]
    azimuths: tuple[float, ...]
    elevations: tuple[float, ...]
    count: int
    size: tuple[int, int]

    def describe(self) -> str:
        angles = f" at azimuths {', '.join(f'{a:g}' for a in self.azimuths)}" if self.azimuths else ""
        return f"{self.count} views ({', '.join(self.names)}){angles}, {self.size[1]}x{self.size[0]} px"


def parse_names(text: str) -> tuple[str, ...]:
    """The view names of a layout string: comma-separated, trimmed, lower case; an empty name or a name given twice
    is a ``ValueError``."""
    names = tuple(n.strip().lower() for n in text.split(","))
    if not text.strip() or any(not n for n in names):
        raise ValueError(f"'{text}' has an empty name; name every view, separated by commas (e.g. "
                         f"'{DEFAULT_LAYOUT}')")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"'{text}' names {', '.join(twice)} more than once; give each view its own name")
    return names


def parse_angles(text: str) -> tuple[float, ...]:
    """Angles in degrees from a comma-separated string; empty: none. A word that is not a number is a ``ValueError``."""
    if not text.strip():
        return ()
    out = []
    for word in text.split(","):
        try:
            value = float(word)
        except ValueError:
            raise ValueError(f"'{word.strip()}' is not a number of degrees" if word.strip() else
                             f"'{text}' has an empty angle") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"'{word.strip()}' is not a finite number of degrees")
        out.append(value)
    return tuple(out)


def angle_between(a: float, b: float) -> float:
    """The angle (degrees, 0-180) between two azimuths."""
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def pick_views(views: ViewSet) -> dict[str, int]:
    """The views Hunyuan3D-2mv conditions on: name (front, left, back, right) -> index in the batch. By azimuth
    where the layout gives them (the view nearest each of the four angles, within ``AZIMUTH_TOLERANCE``; the first
    of equally near ones), else by name (every view must then be one of the four). A ``ValueError`` says what is
    wrong and what works: a name Hunyuan3D does not know, or none of the four present."""
    if views.azimuths:
        picked = {}
        for name, angle in HUNYUAN3D_AZIMUTHS.items():
            distance, index = min((angle_between(a, angle), i) for i, a in enumerate(views.azimuths))
            if distance <= AZIMUTH_TOLERANCE:
                picked[name] = index
        if not picked:
            raise ValueError(f"no view's azimuth is within {AZIMUTH_TOLERANCE:g} degrees of front (0), left (90), "
                             f"back (180) or right (270) (azimuths: {', '.join(f'{a:g}' for a in views.azimuths)}); "
                             f"give the azimuths of views around the asset")
        return picked
    unknown = [n for n in views.names if n not in HUNYUAN3D_AZIMUTHS]
    if unknown:
        raise ValueError(f"the layout names {', '.join(repr(n) for n in unknown)}, which Hunyuan3D-2mv does not take "
                         f"(it conditions on front, left, back and right); name the views with these in View Set's "
                         f"layout, or give their azimuths (0 front, 90 left, 180 back, 270 right) to pick by angle")
    return {name: views.names.index(name) for name in HUNYUAN3D_AZIMUTHS if name in views.names}

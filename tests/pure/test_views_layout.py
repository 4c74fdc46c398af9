"""A view set's layout (issue 83, ``techniques/views_to_3d/layout.py``): names and angles parsed, and the views
Hunyuan3D-2mv conditions on picked by name or by the azimuth nearest each quarter (front 0, left 90, back 180,
right 270: its view embedding's order)."""
from __future__ import annotations

import pytest

from invertedit.techniques.views_to_3d.layout import (DEFAULT_LAYOUT, HUNYUAN3D_AZIMUTHS, ViewSet, angle_between,
                                                      parse_angles, parse_names, pick_views)


def _set(names, azimuths=()):
    return ViewSet(names=tuple(names), azimuths=tuple(azimuths), elevations=(), count=len(names), size=(8, 8))


def test_the_default_layout_is_hunyuan3d_mvs_four_views_in_its_embeddings_order():
    assert parse_names(DEFAULT_LAYOUT) == tuple(HUNYUAN3D_AZIMUTHS) == ("front", "left", "back", "right")
    assert list(HUNYUAN3D_AZIMUTHS.values()) == [0.0, 90.0, 180.0, 270.0]


def test_names_are_trimmed_and_lower_case_and_each_given_once():
    assert parse_names(" Front ,BACK") == ("front", "back")
    with pytest.raises(ValueError, match="names front more than once"):
        parse_names("front, left, front")
    with pytest.raises(ValueError, match="has an empty name"):
        parse_names("front,, back")


def test_angles_parse_and_refuse_what_is_not_a_finite_number():
    assert parse_angles("") == () and parse_angles(" 0, 90.5 ,-30") == (0.0, 90.5, -30.0)
    for bad in ("0, ninety", "0, nan", "inf"):
        with pytest.raises(ValueError, match="degrees"):
            parse_angles(bad)


def test_angles_between_azimuths_wrap_around():
    assert angle_between(350, 10) == 20 and angle_between(-90, 270) == 0 and angle_between(0, 180) == 180


def test_views_are_picked_by_name_in_any_order_and_a_name_hunyuan3d_does_not_know_is_refused():
    assert pick_views(_set(["back", "front", "right", "left"])) == {"front": 1, "left": 3, "back": 0, "right": 2}
    assert pick_views(_set(["front", "back"])) == {"front": 0, "back": 1}
    with pytest.raises(ValueError, match="'top', which Hunyuan3D-2mv does not take"):
        pick_views(_set(["front", "top"]))


def test_an_orbit_gives_the_views_nearest_the_quarters_whatever_their_names():
    orbit = [i * 360 / 21 for i in range(21)]   # SV3D's 21 frames
    picked = pick_views(_set([f"frame {i}" for i in range(21)], orbit))
    assert picked == {"front": 0, "left": 5, "back": 10, "right": 16}   # 85.7, 171.4 (as near as 188.6: the first), 274.3
    assert all(angle_between(orbit[i], HUNYUAN3D_AZIMUTHS[n]) <= 360 / 42 + 1e-9 for n, i in picked.items())


def test_a_quarter_without_a_view_near_it_is_left_out_and_none_is_refused():
    assert pick_views(_set(["a", "b", "c"], [0, 120, 240])) == {"front": 0, "left": 1, "right": 2}
    with pytest.raises(ValueError, match="no view's azimuth is within 30 degrees"):
        pick_views(_set(["a", "b"], [45, 315]))

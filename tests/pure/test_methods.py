"""The inversion method table: one object per method, read by Apply Inversion and the samplers."""
import pytest

from invertedit.inversion.methods import METHODS, Patch, method_of


def test_every_method_is_one_entry_with_what_it_needs():
    assert set(METHODS) == {"ddim", "negative-prompt", "null-text", "direct", "edict", "edit-friendly",
                            "fixed-point", "flow-euler", "rf-solver", "fireflow", "uni-inv", "rf-inversion", "stable-flow",
                            "dnaedit", "ftedit"}
    for name, m in METHODS.items():
        assert m.name == name and m.made_by
        assert m.built_on is None or m.built_on in METHODS       # refinements name a known base
        assert not (m.own_sampler and m.patch is not Patch.NONE)  # own samplers replay their clues themselves
    assert [m.name for m in METHODS.values() if m.own_sampler] == ["edict", "edit-friendly", "rf-solver", "fireflow"]
    assert [m.name for m in METHODS.values() if m.exact_step_only] == ["direct"]


def test_missing_clues_and_unknown_methods_are_named():
    assert method_of("null-text").missing_clues({}) == ["null_text"]
    assert method_of("ddim").missing_clues({}) == []
    with pytest.raises(ValueError, match="'bogus' is not an inversion method"):
        method_of("bogus")

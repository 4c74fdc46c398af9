"""The local blend's words where the user gives none: the words that differ between the prompts
(``invertedit/attention/blend_words.py``), checked on the authors' own choices (Prompt-to-Prompt's
notebooks, PIE-Bench's ``blended_word`` as PnPInversion's ``run_editing_p2p`` passes it) and on the
nodes' rules: the switch, the words given, no word differing."""
from __future__ import annotations

import logging

import pytest

from invertedit.attention.blend_words import (BlendWords, DifferingWords, choose_blend_words, differing_words,
                                              found_words, prompt_words)
from invertedit.refusals import NodeInputError


def words(source: str, target: str) -> tuple[set, set]:
    found = differing_words(source, target)
    return set(found.source), set(found.target)


@pytest.mark.parametrize("source, target, expected", [
    # a word swapped: the two words (the notebook's LocalBlend(prompts, ("squirrel", "lion")); PIE-Bench's "cat dog")
    ("A painting of a squirrel eating a burger", "A painting of a lion eating a burger", ({"squirrel"}, {"lion"})),
    ("a cat sitting on a bench", "a dog sitting on a bench", ({"cat"}, {"dog"})),
    # a word that describes the next: it and the object it names, on both sides (PIE-Bench names the object)
    ("a red circle and a blue square on a green background", "a yellow circle and a blue square on a green background",
     ({"red", "circle"}, {"yellow", "circle"})),
    ("a drawing of a girl in a pink dress", "a drawing of a girl in a blue dress", ({"pink", "dress"}, {"blue", "dress"})),
])
def test_a_swapped_word_blends_on_both_words(source, target, expected):
    assert words(source, target) == expected


@pytest.mark.parametrize("source, target, expected", [
    # the notebook's refinement: LocalBlend(prompts, ("soup", "soup"))
    ("soup", "pea soup with croutons", ({"soup"}, {"soup", "pea", "croutons"})),
    # null-text's notebook: blend_word = (("cat",), ("cat",)), "if it is not local yet, use only the source object"
    ("a cat sitting next to a mirror", "a silver cat sculpture sitting next to a mirror",
     ({"cat"}, {"cat", "silver", "sculpture"})),
    # PIE-Bench's "a slanted [rusty] mountain bicycle ...": blended_word "bicycle bicycle"
    ("a slanted mountain bicycle on the road in front of a building",
     "a slanted rusty mountain bicycle on the road in front of a building", ({"bicycle"}, {"bicycle", "rusty"})),
    # an object added after the one it joins, at the end or before a verb
    ("a cat", "a cat wearing a hat", ({"cat"}, {"cat", "wearing", "hat"})),
    ("a cat sitting next to a mirror", "a cat wearing a hat sitting next to a mirror", ({"cat"}, {"cat", "wearing", "hat"})),
    ("a dog on the beach", "a dog with sunglasses on the beach", ({"dog"}, {"dog", "sunglasses"})),
    # a noun in -ing is not read as a verb
    ("a tall building", "a tall glass building", ({"building"}, {"building", "glass"})),
])
def test_added_words_blend_on_the_object_they_join(source, target, expected):
    assert words(source, target) == expected


def test_removed_words_mirror_added_ones():
    assert words("a cat wearing a hat", "a cat") == ({"cat", "wearing", "hat"}, {"cat"})


def test_the_comparison_ignores_case_punctuation_and_prompt_weights():
    found = differing_words("A Cat, sitting.", "a dog sitting")
    assert found == DifferingWords(("Cat",), ("dog",))    # each prompt's word as it writes it
    assert prompt_words("a (red:1.2) circle, on blue.") == ["a", "red", "circle", "on", "blue"]
    assert not differing_words("a (red:1.2) circle", "a (red:1.5) circle")   # a weight is not a word
    assert words("a (red:1.2) circle", "a (yellow:1.2) circle") == ({"red", "circle"}, {"yellow", "circle"})


def test_small_words_count_only_where_nothing_else_changed():
    assert words("a cat on a table", "a cat under a table") == ({"on"}, {"under"})
    assert words("a cat", "an old cat") == ({"cat"}, {"old", "cat"})   # 'a' -> 'an' is not a word of the edit


def test_an_object_joins_only_the_prompts_that_hold_it():
    assert words("a red big circle", "a yellow big square") == ({"red", "circle"}, {"yellow", "square"})


def test_identical_prompts_differ_in_no_word():
    found = differing_words("a red circle", "a  Red circle.")
    assert not found and found.inputs() == ("", "")


def test_the_words_are_listed_once_as_the_inputs_take_them():
    found = differing_words("a red circle and a red square", "a yellow circle and a yellow square")
    assert found.inputs() == ("red, circle, square", "yellow, circle, square")


ARGS = dict(node="Attention Inject", source_prompt="a red circle", target_prompt="a yellow circle")


def test_the_nodes_choice(caplog):
    with caplog.at_level(logging.INFO):
        chosen = choose_blend_words(local_blend=True, source_words="", target_words="", subtract_source="blue",
                                    subtract_target="", **ARGS)
    assert chosen == BlendWords("red, circle", "yellow, circle", "blue", "", derived=True) and chosen.blended
    assert "Attention Inject: local blend on the words that differ between the prompts" in caplog.text
    assert "source 'red, circle', target 'yellow, circle'" in caplog.text
    # the words given, as given
    given = choose_blend_words(local_blend=True, source_words="circle", target_words="", subtract_source="",
                               subtract_target="", **ARGS)
    assert given == BlendWords("circle", "") and not given.derived
    # off: a global edit, the words kept for later and said to be unused
    caplog.clear()
    with caplog.at_level(logging.INFO):
        off = choose_blend_words(local_blend=False, source_words="circle", target_words="", subtract_source="blue",
                                 subtract_target="", **ARGS)
    assert off == BlendWords() and not off.blended
    assert ("Attention Inject: local_blend is off, so the edit is global: input 'blend_source_words' and input "
            "'blend_subtract_source_words' are not used") in caplog.text


def test_no_word_differing_is_a_global_edit_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        chosen = choose_blend_words("Attention Inject", True, "", "", "", "", "a red circle", "a red circle")
    assert not chosen.blended
    assert ("Attention Inject: inputs 'blend_source_words' and 'blend_target_words' are empty, so the local blend would "
            "take the words that differ between source_prompt and target_prompt, but no word differs") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        choose_blend_words("Attention Inject", False, "", "", "", "", "a red circle", "a red circle")
    assert not caplog.text   # off says it: no warning


def test_derived_words_the_tokens_do_not_hold_are_left_out(caplog):
    def positions_of(name, word, side):
        if word == "circle":
            raise NodeInputError("Attention Inject", f"input '{name}': '{word}' is not a word of the {side} prompt.")
        return [1]

    derived = BlendWords("red, circle", "yellow, circle", derived=True)
    with caplog.at_level(logging.WARNING):
        assert found_words("Attention Inject", derived, positions_of) == BlendWords("red", "yellow", derived=True)
    assert "Attention Inject: the local blend leaves out 'circle'" in caplog.text
    given = BlendWords("red, circle", "")
    assert found_words("Attention Inject", given, positions_of) is given   # the user's words are refused by the node

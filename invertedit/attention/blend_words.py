"""The local blend's words when the user gives none: the words that differ between the source and the
target prompt (issue 79: an artist opens a template, types the edit into the target prompt and the
local blend follows it).

Prompt-to-Prompt's local blend (Hertz et al.; ``LocalBlend(prompts, words)`` in their notebooks) takes
a group of words per prompt whose attention marks the edited region; the authors name them by hand:

- a word swapped for another: the two words (``"A painting of a squirrel eating a burger"`` ->
  ``"... a lion ..."``: ``("squirrel", "lion")``; PIE-Bench's ``blended_word`` ``"cat dog"``);
- words added: the object they are added to, in both prompts (``"soup"`` -> ``"pea soup with
  croutons"``: ``("soup", "soup")``; null-text's ``"a cat sitting next to a mirror"`` -> ``"a silver
  cat sculpture ..."``: ``(("cat",), ("cat",))``, "if it is not local yet, use only the source object";
  PIE-Bench's ``"a slanted [rusty] mountain bicycle ..."``: ``"bicycle bicycle"``, as PnPInversion's
  ``run_editing_p2p`` passes it).

``differing_words`` follows them. The prompts are compared word by word (``difflib``, case and the
punctuation around a word ignored). Each stretch that differs gives its own words to its side (small
words, such as articles and prepositions, left out while a stretch has others), and:

- a stretch right before a word of the prompt (not a small word, not a word in -ing) describes it:
  the object it names, the last word of the run of words that follows, up to a small word, that is
  not in -ing, joins both sides (``"a [red] circle"`` -> ``"a [yellow] circle"``: red, circle /
  yellow, circle; ``"a slanted [rusty] mountain bicycle"``: bicycle);
- a stretch with words on one side only (an addition or a removal) and no such word after it is
  added to the object before it: the nearest word before it that is neither small nor in -ing
  (``"a cat"`` -> ``"a cat wearing a hat"``: cat / cat, wearing, hat; ``"a cat [sculpture] sitting"``:
  cat) joins both sides.

The added words themselves stay on their side (the authors take the object alone): the mask is the
source's region OR the target's, so what the target draws beyond the object (the hat above the cat's
head) is inside it. Every occurrence of a word counts, as the authors' ``get_word_inds`` counts it.
Words ending in -ing are read as verbs (sitting, wearing; not the nouns of ``NOUNS_IN_ING``, building,
painting) where an object is looked for; a word of digits alone is a small word. Plain Python: no torch, no host.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
import logging
from typing import Callable

from ..refusals import NodeInputError

#: Words that never name the edited region while a stretch has others: articles, determiners,
#: pronouns, prepositions, conjunctions, auxiliaries
SMALL_WORDS = frozenset("""
a an the this that these those some any each every its his her their our my your it he she they them we you i
of in on at to from by with without for into onto over under above below behind beside besides near next
between through across around against along among inside outside upon within up down off out as like beneath
underneath toward towards before after during while and or but nor so yet is are was were be been being has
have had very not no""".split())

#: Nouns in -ing, which are not read as verbs
NOUNS_IN_ING = frozenset("""
building painting drawing ring earring king wedding clothing ceiling string wing spring evening morning thing
pudding icing sibling duckling stuffing lightning railing awning bedding swing dumpling seedling offspring
sapling herring viking frosting""".split())

_EDGE = re.compile(r"^[\W_]+|[\W_]+$")
_WEIGHT = re.compile(r":\s*-?\d*\.?\d+\s*\)")   # ComfyUI's prompt weight, "(word:1.2)"


def key(word: str) -> str:
    """A word as the prompts are compared: its case and the punctuation around it left out."""
    return _EDGE.sub("", word).casefold()


def prompt_words(prompt: str) -> list[str]:
    """The words of ``prompt`` (split at white space, the punctuation around each and ComfyUI's prompt
    weights, "(red:1.2)", left out); those of punctuation only are dropped."""
    return [w for w in (_EDGE.sub("", word) for word in _WEIGHT.sub(")", prompt).split()) if w]


def is_small(word: str) -> bool:
    return key(word) in SMALL_WORDS or key(word).isdigit()


def _is_verb(word: str) -> bool:
    return key(word).endswith("ing") and key(word) not in NOUNS_IN_ING


def _object_after(words: list[str], start: int) -> str | None:
    """The object a stretch just before ``words[start]`` describes: the last word of the run from
    ``start`` up to a small word that is not in -ing; None where ``words[start]`` is missing, small or in -ing."""
    if start >= len(words) or is_small(words[start]) or _is_verb(words[start]):
        return None
    run = []
    for word in words[start:]:
        if is_small(word):
            break
        run.append(word)
    return [w for w in run if not _is_verb(w)][-1]


def _object_before(words: list[str], end: int) -> str | None:
    """The nearest word before ``words[end]`` that is neither small nor in -ing (the object an
    addition joins), else the nearest one in -ing; None where every word before is small."""
    before = [w for w in reversed(words[:end]) if not is_small(w)]
    return next((w for w in before if not _is_verb(w)), before[0] if before else None)


@dataclass(frozen=True)
class DifferingWords:
    """The local blend's words of each prompt, each once, in the prompt's order of discovery."""
    source: tuple[str, ...]
    target: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.source or self.target)

    def inputs(self) -> tuple[str, str]:
        """As the nodes' blend word inputs would hold them: ``("circle, red", "circle, yellow")``."""
        return ", ".join(self.source), ", ".join(self.target)


def differing_words(source_prompt: str, target_prompt: str) -> DifferingWords:
    """The words of each prompt the local blend takes when the user gives none (the module's rules)."""
    src, tgt = prompt_words(source_prompt), prompt_words(target_prompt)
    found: tuple[list[str], list[str]] = ([], [])

    def add(side: int, *words: str | None) -> None:
        for word in words:
            if word is not None and key(word) not in {key(w) for w in found[side]}:
                found[side].append(word)

    matcher = difflib.SequenceMatcher(None, [key(w) for w in src], [key(w) for w in tgt], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        removed, added = src[i1:i2], tgt[j1:j2]
        content = [w for w in removed if not is_small(w)], [w for w in added if not is_small(w)]
        if not content[0] and not content[1]:   # small words alone changed ("on" -> "under"): those
            content = removed, added
        add(0, *content[0])
        add(1, *content[1])
        # the object the stretch describes (the word after it), or that an addition or removal joins
        anchors = [_object_after(src, i2), _object_after(tgt, j2)]
        if not any(anchors) and not (content[0] and content[1]):
            anchors = [_object_before(src, i1), _object_before(tgt, j1)]
        for anchor in anchors:
            for side, words in enumerate((src, tgt)):   # in each prompt that holds it, as that prompt writes it
                add(side, next((w for w in words if anchor is not None and key(w) == key(anchor)), None))
    return DifferingWords(tuple(found[0]), tuple(found[1]))


# ----------------------------------------------------------------------------- the nodes' choice

NAMES = ("blend_source_words", "blend_target_words", "blend_subtract_source_words", "blend_subtract_target_words")


@dataclass(frozen=True)
class BlendWords:
    """The local blend's four word inputs as a run takes them (comma-separated words, by input
    name: ``NAMES``), and whether its blend words are the words that differ (``derived``)."""
    source: str = ""
    target: str = ""
    subtract_source: str = ""
    subtract_target: str = ""
    derived: bool = False

    @property
    def blended(self) -> bool:
        """Whether there is a local blend: blend words, given or derived."""
        return bool(self.source.strip() or self.target.strip())

    def inputs(self) -> dict[str, str]:
        return dict(zip(NAMES, (self.source, self.target, self.subtract_source, self.subtract_target)))


def choose_blend_words(node: str, local_blend: bool, source_words: str, target_words: str, subtract_source: str,
                       subtract_target: str, source_prompt: str, target_prompt: str) -> BlendWords:
    """The local blend's words of a Prompt-to-Prompt node: none with ``local_blend`` off (a global edit;
    words given are kept for when it is on again, and the log says they are not used); the words given;
    or, with both blend word inputs empty, the words that differ between the prompts
    (``differing_words``), which the log names with how to choose others. Where no word differs, the
    log warns that the edit is global."""
    subtract = (subtract_source or "", subtract_target or "")
    if not local_blend:
        given = [name for name, words in zip(NAMES, (source_words, target_words, *subtract)) if (words or "").strip()]
        if given:
            logging.info("%s: local_blend is off, so the edit is global: %s not used.", node,
                         " and ".join(f"input '{name}'" for name in given) + (" are" if len(given) > 1 else " is"))
        return BlendWords()
    if (source_words or "").strip() or (target_words or "").strip():
        return BlendWords(source_words or "", target_words or "", *subtract)
    words = differing_words(source_prompt, target_prompt)
    if not words:
        logging.warning("%s: inputs 'blend_source_words' and 'blend_target_words' are empty, so the local blend would "
                        "take the words that differ between source_prompt and target_prompt, but no word differs: "
                        "the edit is global (no local blend). Write the edit in target_prompt, type the blend words, "
                        "or turn local_blend off for a global edit without this warning.", node)
        return BlendWords(subtract_source=subtract[0], subtract_target=subtract[1])
    source, target = words.inputs()
    logging.info("%s: local blend on the words that differ between the prompts (blend_source_words and "
                 "blend_target_words are empty): source %r, target %r; type blend words to choose others, or turn "
                 "local_blend off for a global edit.", node, source, target)
    return BlendWords(source, target, *subtract, derived=True)


def found_words(node: str, words: BlendWords, positions_of: Callable[[str, str, str], list[int]]) -> BlendWords:
    """``words`` less the derived blend words that ``positions_of(input name, word, "source" or "target")``
    refuses (a word the prompt's tokens hold otherwise than alone), named in the log: the user did not
    type them, so they are not refused. Words given are left to be refused."""
    if not words.derived:
        return words
    kept = []
    for name, text, side in ((NAMES[0], words.source, "source"), (NAMES[1], words.target, "target")):
        ok = []
        for word in (w.strip() for w in text.split(",") if w.strip()):
            try:
                positions_of(name, word, side)
                ok.append(word)
            except NodeInputError:
                logging.warning("%s: the local blend leaves out %r, a word that differs between the prompts: the "
                                "%s prompt's tokens do not hold it as a word; type the blend words to choose.",
                                node, word, side)
        kept.append(", ".join(ok))
    return replace(words, source=kept[0], target=kept[1])

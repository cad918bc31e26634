"""Which charged words in a text are aimed at someone: the context a word-level toxicity model lacks.

A word-level model scores words, not what is said with them: `idiot` is an insult in "you are an idiot"
and a book in "who wrote The Idiot", `die` a wish in "I hope you die" and a fact in "when did David
Bowie die?", `eat` nothing at all in "what can you eat". `discounted` finds the *charged* words (the
caller's: for profanity-check, the words that alone would reach the review threshold) that stand where
they hurt no one, so the classifier can score the text without them (`neutralise`).

Profanity and slurs (`OFFENSIVE_WORDS`, from published lists) always count. Any other charged word
counts only when it is aimed, within its sentence:

- **predicate**: after a copula or `you` (`are`, `is`, `'s`, `'re`, `r`, `look(s)`, `sound(s)`,
  `seem(s)`, `you`, `your`), past at most four modifiers (`a`, `so`, `such a`, `little`, other charged
  words ...): "you are such an idiot", "robots are stupid", "you stupid moron", "your dumb face". A `you`
  right after an auxiliary (`can you`, `will you`, `do you`) is a question's subject, not an address:
  "what can you eat?", "when will you die?" are questions, "are you stupid" is not exempt (`are` is a copula);
- **object**: right before `you` / `yourself` (`I hate you`, `screw you`), or, for a word of harm
  (`kill`, `die`, `shoot` ...), before `them`, `him`, `her`, `themselves`;
- **wish or threat**: a word of harm within three words after `hope`, `wish`, `should`, `must`,
  `deserve`, `gonna`, `will`, `'ll`, `go`, `let`, `want`, `need`, `better` ("I hope that you die",
  "they should be shot", "go die") - unless that word opens a question about `you` ("will you die?");
- **exclamation**: a sentence of at most four words that starts with it ("Idiot!", "Shut up.", "Die.").

A charged word inside a title - a run of two or more Capitalised words ("The Idiot", "Naughty Dog",
"Of Mice and Men"; `of`, `the`, `and` ... may stand between) or quoted text - never counts unless the
title itself addresses someone (`you`, `your`): "You Are An Idiot" still does. ALL-CAPS words make no title.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from cairn_safety.domain.offensive_words import OFFENSIVE_WORDS

__all__ = ["OFFENSIVE_WORDS", "Discount", "discounted", "is_offensive", "neutralise"]

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?;\n]")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_QUOTED = re.compile(r"\"[^\"\n]{1,120}\"|“[^”\n]{1,120}”|«[^»\n]{1,120}»|(?<!\w)'[^'\n]{1,120}'(?!\w)")

SECOND_PERSON = _words("you your yours yourself yourselves u ur ya youre yall thou thee thy")
_COPULA = _words("am is are was were be been being re s r look looks sound sounds seem seems")
_PREDICATORS = _COPULA | _words("you your ur u ya youre")
_AUXILIARY = _words(
    "can could will would do does did shall should may might must have has had t don didn doesn won"
)
_POINTING = _words("that this those these them such what")
_MODIFIERS = _words(
    """a an the so such really very just total complete utter absolute real little big fat old
    nothing but all like bunch of this that these those too pretty most more truly one biggest worst
    freaking ugly damn bloody dirty filthy lazy"""
)
_OBJECTS = _words("you yourself yourselves ya u those these them that")
_HARM_OBJECTS = _words("them him her themselves himself herself")
HARM_WORDS = _words(
    """die dies dying kill kills killing killed murder murdered shoot shot hang hanged burn rot choke
    drown suffer stab beat hurt exterminate exterminated gas gassed lynch lynched slaughter slaughtered
    dead death destroy"""
)
_WISHES = _words(
    "hope wish should must deserve deserves gonna going will ll shall go let lets want wanna need needs better"
)
_TITLE_GLUE = _words("of the and in a an to with on for at by from or")


@dataclass(frozen=True)
class Discount:
    """A charged word the classifier should not count here, where it stands and why."""

    word: str
    start: int
    end: int
    reason: str
    """`title` (inside a title or quotes) or `not aimed` (no one is its target)."""


@dataclass(frozen=True)
class _Token:
    lower: str
    text: str
    start: int
    end: int
    sentence: int


def _tokens(text: str) -> list[_Token]:
    ends = [m.start() for m in _SENTENCE_END.finditer(text)]
    out: list[_Token] = []
    sentence = 0
    for m in _WORD.finditer(text):
        while sentence < len(ends) and ends[sentence] < m.start():
            sentence += 1
        out.append(_Token(m.group().lower(), m.group(), m.start(), m.end(), sentence))
    return out


def _is_capitalised(token: _Token) -> bool:
    word = token.text
    return word[:1].isupper() and (len(word) == 1 or not word.isupper())


def _title_spans(text: str, tokens: list[_Token]) -> list[tuple[int, int, bool]]:
    """(start, end, addresses someone) of each title: Capitalised runs of two or more, and quotes."""
    spans: list[tuple[int, int, bool]] = []
    i = 0
    while i < len(tokens):
        if not _is_capitalised(tokens[i]):
            i += 1
            continue
        j, last, capitals = i + 1, i, 1
        while j < len(tokens) and tokens[j].sentence == tokens[i].sentence:
            if _is_capitalised(tokens[j]):
                last, capitals = j, capitals + 1
            elif tokens[j].lower not in _TITLE_GLUE:
                break
            j += 1
        if capitals >= 2:
            run = tokens[i : last + 1]
            spans.append((run[0].start, run[-1].end, any(t.lower in SECOND_PERSON for t in run)))
        i = last + 1
    for m in _QUOTED.finditer(text):
        inside = {w.lower() for w in _WORD.findall(m.group())}
        spans.append((m.start(), m.end(), bool(inside & SECOND_PERSON)))
    return spans


def _aimed(tokens: list[_Token], i: int, charged: Callable[[str], bool]) -> bool:
    token = tokens[i]
    first, last = i, i
    while first > 0 and tokens[first - 1].sentence == token.sentence:
        first -= 1
    while last + 1 < len(tokens) and tokens[last + 1].sentence == token.sentence:
        last += 1
    word = token.lower
    # predicate: back over modifiers (and other charged words) to a copula or an address
    k, skipped = i - 1, 0
    while k >= first and skipped <= 4:
        before = tokens[k].lower
        if before in _PREDICATORS:
            is_question_subject = (
                before in SECOND_PERSON and k - 1 >= first and tokens[k - 1].lower in _AUXILIARY
            )
            if not is_question_subject:
                return True
            break
        if before in _MODIFIERS or (charged(before) and before not in HARM_WORDS):
            k, skipped = k - 1, skipped + 1
            continue
        break
    # pointing: "those stupid ...", "that dirty ...", "what a bloody ..." (an insult pointed at someone)
    k = i - 1
    if k >= first and tokens[k].lower in ("a", "an") and k - 1 >= first:
        k -= 1
    if k >= first and tokens[k].lower in _POINTING and k < i - 0:
        return True
    # "shut up"
    if word == "shut" and i + 1 <= last and tokens[i + 1].lower == "up":
        return True
    # object: the word is done to someone
    for k in range(i + 1, min(i + 3, last + 1)):
        after = tokens[k].lower
        if after in _OBJECTS or (word in HARM_WORDS and after in _HARM_OBJECTS):
            return True
        if after not in _MODIFIERS and after not in ("up", "off", "all"):
            break
    # wish or threat
    if word in HARM_WORDS:
        for k in range(max(first, i - 3), i):
            if tokens[k].lower in _WISHES:
                asks_you = k + 1 <= last and tokens[k + 1].lower in SECOND_PERSON and k == first
                opens_question = (
                    k + 1 <= last
                    and tokens[k + 1].lower in SECOND_PERSON
                    and (
                        k == first or tokens[k - 1].lower in ("when", "how", "why", "what", "where", "would")
                    )
                )
                if not (asks_you or opens_question):
                    return True
    # exclamation
    return i == first and last - first < 4


def is_offensive(word: str) -> bool:
    """Whether a lower-case word is profanity or a slur: listed, or a listed word inflected."""
    if word in OFFENSIVE_WORDS:
        return True
    for ending in ("s", "es", "ed", "ing", "er", "ers"):
        if word.endswith(ending) and len(word) - len(ending) >= 3 and word[: -len(ending)] in OFFENSIVE_WORDS:
            return True
    return False


def discounted(text: str, charged: Callable[[str], bool]) -> list[Discount]:
    """The charged words of `text` that should not count: in a title, or aimed at no one. Profanity and
    slurs (`OFFENSIVE_WORDS`) never are."""
    tokens = _tokens(text)
    hits = [i for i, t in enumerate(tokens) if charged(t.lower) and not is_offensive(t.lower)]
    if not hits:
        return []
    titles = _title_spans(text, tokens)
    out: list[Discount] = []
    for i in hits:
        token = tokens[i]
        title = next((s for s in titles if s[0] <= token.start and token.end <= s[1]), None)
        if title is not None and not title[2]:
            out.append(Discount(token.text, token.start, token.end, "title"))
        elif not _aimed(tokens, i, charged):
            out.append(Discount(token.text, token.start, token.end, "not aimed"))
    return out


def neutralise(text: str, charged: Callable[[str], bool]) -> str:
    """`text` with its discounted words blanked out (same length, so offsets still hold)."""
    found = discounted(text, charged)
    if not found:
        return text
    chars = list(text)
    for d in found:
        chars[d.start : d.end] = " " * (d.end - d.start)
    return "".join(chars)

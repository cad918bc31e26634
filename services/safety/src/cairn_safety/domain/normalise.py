"""Text as detectors should see it: cheap evasions undone, hidden payloads decoded.

`normalise` is the canonical form (Unicode NFKC, case-folded, invisible and bidi control characters
dropped, look-alike letters from other scripts mapped to Latin, whitespace runs collapsed; accents kept).
`views` returns every reading of a text worth screening, the plain one first:

- **plain**: `normalise` with accents and combining marks stripped (`ïgnörë` → `ignore`, Zalgo text);
- **deobfuscated** (only when it differs): leetspeak read as letters per word, preferring a reading that
  is a known word (`1gn0r3`, `a||`, `@`, `$`, `|`, `|<`, `()`, …); separators between letters dropped
  (`ig-no-re`, `i.g.n.o.r.e`); runs of single spaced letters joined and split into known words
  (`i g n o r e a l l` → `ignore all`); typos of known words corrected (`ignroe` → `ignore`: one edit,
  two for words of nine letters or more, transpositions counted once, never a word's inflection);
- **decoded payloads**: base64 runs (16+ characters) and hex runs (24+ digits) that decode to UTF-8
  text, characters hidden in Unicode tag characters, and the text read backwards or in ROT13 when it
  contains a known word written that way. Each payload is normalised and deobfuscated in turn.

The known words are the caller's (`vocabulary`, e.g. the words the injection patterns are made of) plus
a few short function words. Every view only adds readings: detectors match the union, so the plain
text's matches never get lost.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["TextView", "normalise", "skeleton", "views", "word_set"]


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text` (word lists read best as text)."""
    return frozenset(text.split())


@dataclass(frozen=True)
class TextView:
    """One reading of a text: the text a detector should match, and how it was obtained."""

    text: str
    how: str = ""
    """Empty for the plain reading; else e.g. `after undoing leetspeak, typos` or `in base64-encoded text`."""
    encoding: str | None = None
    """The encoding a decoded payload was hidden in (`base64`, `hex`, `rot13`, `reversed`, `unicode tags`)."""


# Letters of other scripts (and Latin small capitals) that look like Latin ones, after NFKC and casefold.
_LOOKALIKES: dict[str, str] = {
    "a": "\u0430\u03b1\u0251\u1d00\u237a\u0103\u01ce",
    "b": "\u0432\u044c\u0299\u0185\u03b2\u13cf",
    "c": "\u0441\u03f2\u1d04\u13df\u217d",
    "d": "\u0501\u13a0\u217e",
    "e": "\u0435\u0451\u03b5\u04bd\u1d07\u13ac\u0454",
    "f": "\u0493\u03dd",
    "g": "\u0261\u0262\u0581\u13c0\u050d",
    "h": "\u04bb\u043d\u0570\u029c\u13bb",
    "i": "\u0456\u0457\u03b9\u0269\u0131\u026a\u13a5\u02db",
    "j": "\u0458\u03f3\u1d0a\u13ab",
    "k": "\u043a\u03ba\u1d0b\u13e6\u049b",
    "l": "\u04cf\u01c0\u029f\u13de\u2223",
    "m": "\u043c\u1d0d\u13b7",
    "n": "\u0578\u0274\u043f\u03b7",
    "o": "\u043e\u03bf\u0585\u1d0f\u03c3\u0ce6\u0d66",
    "p": "\u0440\u03c1\u1d18\u13e2",
    "q": "\u051b\u0566",
    "r": "\u0433\u0280\u13a1\u13d2\u1d26",
    "s": "\u0455\ua731\u13da\u01bd",
    "t": "\u0442\u03c4\u1d1b\u13a2",
    "u": "\u03c5\u057d\u1d1c\u03bc\u028b",
    "v": "\u03bd\u0475\u1d20\u13d9",
    "w": "\u051d\u0461\u03c9\u1d21\u13b3\u0277",
    "x": "\u0445\u03c7\u04b3\u2573",
    "y": "\u0443\u03b3\u04af\u028f\u13a9",
    "z": "\u1d22\u13c3\u0290",
    "'": "\u2019\u2018\u02bc\u2032\u00b4\u0060",
    '"': "\u201c\u201d\u201e\u2033",
    "-": "\u2010\u2011\u2012\u2013\u2014\u2015\u2212",
}
_CONFUSABLES: dict[int, str | None] = {ord(ch): latin for latin, chars in _LOOKALIKES.items() for ch in chars}
# Enclosed letters without a compatibility decomposition: negative circled, negative squared, regional.
for _start in (0x1F150, 0x1F170, 0x1F1E6):
    _CONFUSABLES.update({_start + i: chr(ord("a") + i) for i in range(26)})
# Invisible characters that are not format characters (Cf): Hangul fillers, the blank braille pattern.
_CONFUSABLES.update(dict.fromkeys((0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800)))

_SPACES = re.compile(r"[^\S\n]+")
_TAGS = re.compile("[\U000e0020-\U000e007e]+")


def normalise(text: str) -> str:
    """The text as detectors see it: NFKC, case-folded, invisible and bidi control characters dropped,
    look-alike letters mapped to Latin, whitespace runs collapsed (line breaks kept). Accents stay."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if folded.isascii():  # no format characters to drop (they are all outside ASCII)
        return _SPACES.sub(" ", folded.translate(_CONFUSABLES))
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return _SPACES.sub(" ", visible.translate(_CONFUSABLES))


def skeleton(text: str) -> str:
    """`normalise`, then accents and other combining marks stripped (`ïgnörë` → `ignore`)."""
    plain = normalise(text)
    if plain.isascii():
        return plain
    stripped = "".join(ch for ch in unicodedata.normalize("NFD", plain) if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", stripped).translate(_CONFUSABLES)


# --- leetspeak ---------------------------------------------------------------------------------------

_LEET_SEQUENCES = (
    ("|\\/|", "m"),
    ("/\\/\\", "m"),
    ("\\/\\/", "w"),
    ("|\\|", "n"),
    ("|-|", "h"),
    ("|<", "k"),
    ("|)", "d"),
    ("()", "o"),
    ("/\\", "a"),
    ("\\/", "v"),
)
_LEET_CHARS: dict[str, str] = {
    "0": "o",
    "1": "il",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "!": "i",
    "|": "li",
    "+": "t",
    "€": "e",
    "¢": "c",
    "¥": "y",
}
_LEET_ANY = "".join(re.escape(c) for c in _LEET_CHARS) + r"\\/()<\-"
_LEET_TOKEN = re.compile(rf"[a-z{_LEET_ANY}]+")
_LEET_INSIDE = re.compile(rf"[a-z][{_LEET_ANY}]|[{_LEET_ANY}][a-z]")
_SHORT_WORDS = word_set(
    "a i an as at be by do go in is it me my no of on or so to up us we all and any are can for now "
    "new not off the you act dan aim how who out its has had was one old our per way mode"
)


def _leet_readings(token: str) -> list[str]:
    for seq, letter in _LEET_SEQUENCES:
        token = token.replace(seq, letter)
    readings = [""]
    for ch in token:
        options = _LEET_CHARS.get(ch, ch)
        readings = [r + o for r in readings for o in options][:16]
    return readings


def _unleet(text: str, known: frozenset[str]) -> str:
    def read(match: re.Match[str]) -> str:
        token = match.group()
        core = token.rstrip("!")  # a trailing `!` ends a sentence more often than it spells an i
        lettered = any("a" <= ch <= "z" for ch in core)
        if lettered and not _LEET_INSIDE.search(core):
            return token
        readings = _leet_readings(core)
        best = next((r for r in readings if r in known), None)
        if best is None:  # no known word: read a word with letters anyway, leave symbols alone
            best = readings[0] if lettered else core
        return best + token[len(core) :]

    return _LEET_TOKEN.sub(read, text)


# --- spacing -----------------------------------------------------------------------------------------

_BETWEEN_LETTERS = re.compile(r"(?<=[a-z])[.\-_*·•~^`=/\\]+(?=[a-z])")
_SPELLED = re.compile(r"(?<![a-z])[a-z](?:[ \t]+[a-z](?![a-z])){3,}")


def _segment(run: str, known: frozenset[str]) -> str | None:
    """`run` split into known words (fewest words), or None when no split covers it."""
    best: list[list[str] | None] = [[]] + [None] * len(run)
    for end in range(1, len(run) + 1):
        for start in range(max(0, end - 20), end):
            head = best[start]
            word = run[start:end]
            if head is not None and word in known:
                candidate = [*head, word]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    found = best[-1]
    return " ".join(found) if found else None


def _despace(text: str, known: frozenset[str]) -> str:
    joined = _BETWEEN_LETTERS.sub("", text)

    def join(match: re.Match[str]) -> str:
        run = re.sub(r"\s+", "", match.group())
        return _segment(run, known) or run

    return _SPELLED.sub(join, joined)


# --- typos -------------------------------------------------------------------------------------------

# Real words one edit from a pattern word: never "corrected".
_NEAR_MISSES = word_set(
    "roles rulers ruler ruled prion prions precious abode filler filled filtered display displays "
    "prime primer brief briefs commands commend comment comments amend amends mended safely safer "
    "modes model models bound bounds founded around hound sound pound round wound mound outset "
    "output outputs input inputs gesture posture secret secrets secrete secreted direction "
    "directions hidden bidden ridden expose exposed exposes system systems ethic policy police "
    "polices lone longer longed longest limbed limited unlimited devices device reveal revel travel "
    "ravel removal remover prompter prompted pretends pretended pretender instructed instructor "
    "obstructions construction constructions"
)


def _deletes(word: str, depth: int) -> set[str]:
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def _allowed_edits(word: str) -> int:
    return 2 if len(word) >= 9 else 1


def _osa(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, adjacent transpositions."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


@dataclass(frozen=True, eq=False)
class _Speller:
    words: frozenset[str]
    index: dict[str, frozenset[str]]

    @classmethod
    def of(cls, words: frozenset[str]) -> _Speller:
        index: dict[str, set[str]] = {}
        for word in words:
            if len(word) >= 5:
                for variant in _deletes(word, _allowed_edits(word)):
                    index.setdefault(variant, set()).add(word)
        return cls(words, {k: frozenset(v) for k, v in index.items()})

    def correct(self, token: str) -> str:
        if len(token) < 5 or token in self.words or token in _NEAR_MISSES:
            return token
        limit = _allowed_edits(token)
        candidates = {w for v in _deletes(token, limit) for w in self.index.get(v, ())}
        scored = sorted(
            (d, len(w), w)
            for w in candidates
            if not token.startswith(w) and (d := _osa(token, w)) <= min(limit, _allowed_edits(w))
        )
        if not scored or (len(scored) > 1 and scored[0][0] == scored[1][0] and scored[0][1] == scored[1][1]):
            return token
        return scored[0][2]


@lru_cache(maxsize=8)
def _speller(words: frozenset[str]) -> _Speller:
    return _Speller.of(words)


_WORD = re.compile(r"[a-z]{5,}")


def _correct_typos(text: str, speller: _Speller) -> str:
    return _WORD.sub(lambda m: _correct_cached(speller, m.group()), text)


@lru_cache(maxsize=65536)
def _correct_cached(speller: _Speller, token: str) -> str:
    return speller.correct(token)


# --- encoded payloads ----------------------------------------------------------------------------------

_BASE64 = re.compile(
    r"(?<![A-Za-z0-9+/_-])(?:[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9_-]{16,}={0,2})(?![A-Za-z0-9+/_-])"
)
_HEX = re.compile(r"(?<![0-9A-Fa-f])(?:(?:\\x|0x)?[0-9A-Fa-f]{2}[ :]?){12,}")


def _as_text(raw: bytes) -> str | None:
    """Decoded bytes when they are UTF-8 text with words (not binary, not a stray match)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    printable = sum(ch.isprintable() or ch in "\n\t\r" for ch in text)
    letters = sum(ch.isalpha() for ch in text)
    if printable < 0.95 * len(text) or letters < 0.5 * len(text):
        return None
    if " " not in text.strip() and not _BASE64.fullmatch(text.strip()):  # words, or a payload inside
        return None
    return text


def _base64_payloads(text: str) -> Iterable[str]:
    for match in _BASE64.finditer(text):
        run = match.group().rstrip("=")
        if run.isalpha() or run.isdigit():  # a long word or number, not an encoding
            continue
        padded = run + "=" * (-len(run) % 4)
        try:
            raw = base64.b64decode(
                padded, altchars=b"-_" if "-" in run or "_" in run else None, validate=True
            )
        except (binascii.Error, ValueError):
            continue
        if (decoded := _as_text(raw)) is not None:
            yield decoded


def _hex_payloads(text: str) -> Iterable[str]:
    for match in _HEX.finditer(text):
        digits = re.sub(r"\\x|0x|[ :]", "", match.group())
        if len(digits) % 2:
            digits = digits[:-1]
        try:
            raw = bytes.fromhex(digits)
        except ValueError:
            continue
        if (decoded := _as_text(raw)) is not None:
            yield decoded


# --- views --------------------------------------------------------------------------------------------


def _deobfuscated(plain: str, known: frozenset[str], speller: _Speller) -> TextView | None:
    undo: tuple[tuple[str, Callable[[str], str]], ...] = (
        ("leetspeak", lambda t: _unleet(t, known)),
        ("spacing", lambda t: _despace(t, known)),
        ("typos", lambda t: _correct_typos(t, speller)),
    )
    steps: list[str] = []
    text = plain
    for step, reading in undo:
        changed = reading(text)
        if changed != text:
            steps.append(step)
            text = changed
    return TextView(text, "after undoing " + ", ".join(steps)) if steps else None


def _readings(text: str, known: frozenset[str], speller: _Speller) -> list[TextView]:
    plain = skeleton(text)
    found = [TextView(plain)]
    if (undone := _deobfuscated(plain, known, speller)) is not None:
        found.append(undone)
    return found


_HOW = {
    "base64": "in base64-encoded text",
    "hex": "in hex-encoded text",
    "rot13": "in ROT13-encoded text",
    "reversed": "in text written backwards",
    "unicode tags": "in invisible Unicode tag characters",
}


@lru_cache(maxsize=8)
def _disguised(words: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The words (five letters or more) written backwards, and in ROT13."""
    long = [w for w in words if len(w) >= 5]
    return frozenset(w[::-1] for w in long), frozenset(codecs.encode(w, "rot13") for w in long)


def views(text: str, vocabulary: Iterable[str] = (), *, depth: int = 2) -> list[TextView]:
    """Every reading of `text` worth screening, the plain one first (see the module's docstring).

    `vocabulary`: the words a detector looks for (lower case); typos are corrected towards them, spaced
    letters split into them, and a text is read backwards or in ROT13 only when it holds one of them
    written that way. `depth` bounds payloads nested inside payloads."""
    words = frozenset(vocabulary)
    known = words | _SHORT_WORDS
    speller = _speller(words)
    found = _readings(text, known, speller)
    if depth <= 0:
        return found
    payloads: list[tuple[str, str]] = [("base64", p) for p in _base64_payloads(text)]
    payloads += [("hex", p) for p in _hex_payloads(text)]
    if hidden := "".join(chr(ord(ch) - 0xE0000) for run in _TAGS.findall(text) for ch in run):
        payloads.append(("unicode tags", hidden))
    backwards, rot13 = _disguised(words)
    tokens = set(_WORD.findall(found[0].text))
    if tokens & backwards:
        payloads.append(("reversed", found[0].text[::-1]))
    if tokens & rot13:
        payloads.append(("rot13", codecs.encode(found[0].text, "rot13")))
    for encoding, payload in payloads:
        for view in views(payload, words, depth=depth - 1):
            how = _HOW[encoding] + (f", {view.how}" if view.how else "")
            nested = encoding if view.encoding is None else f"{encoding}+{view.encoding}"
            found.append(TextView(view.text, how, nested))
    return found

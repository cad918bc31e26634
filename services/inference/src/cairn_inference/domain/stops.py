"""Stop strings: where a generated text must end."""

from __future__ import annotations

from collections.abc import Sequence


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """The index where the earliest stop string starts in `text`, or None. Empty stops never match."""
    found = [index for stop in stops if stop and (index := text.find(stop)) >= 0]
    return min(found) if found else None


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` cut before the earliest stop string (the stop string itself is not returned, as in
    the OpenAI API), and whether a stop string was found."""
    index = find_stop(text, stops)
    return (text, False) if index is None else (text[:index], True)

"""Windows of observations: a duration (`1h`, `7d`) or a count of the latest samples (`500`)."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

__all__ = ["Window", "parse_duration", "split_windows"]

T = TypeVar("T")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `24h`, `7d`, `2w` as a timedelta. Raises ValueError."""
    match = _DURATION.match(text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 24h, 7d, 2w)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class Window:
    """A span of time before a boundary, or the latest `count` samples before it."""

    span: timedelta | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if (self.span is None) == (self.count is None):
            raise ValueError("a window is a span or a count")
        if (self.span is not None and self.span <= timedelta(0)) or (
            self.count is not None and self.count < 1
        ):
            raise ValueError("a window must be positive")

    @classmethod
    def parse(cls, text: str) -> Window:
        """`500` (the latest 500 samples) or a duration such as `1h`. Raises ValueError."""
        stripped = text.strip()
        if stripped.isdigit():
            return cls(count=int(stripped))
        return cls(span=parse_duration(stripped))

    def __str__(self) -> str:
        if self.count is not None:
            return f"last {self.count}"
        assert self.span is not None
        return f"{self.span.total_seconds() / 3600:g}h"


def _take(times: Sequence[datetime], end: int, window: Window, boundary: datetime) -> int:
    """The start index of the window ending (exclusive) at index `end` / time `boundary`."""
    if window.count is not None:
        return max(0, end - window.count)
    assert window.span is not None
    return bisect.bisect_right(times, boundary - window.span, 0, end)


def split_windows(
    items: Sequence[T],
    time_of: Callable[[T], datetime],
    now: datetime,
    recent: Window,
    reference: Window,
) -> tuple[list[T], list[T]]:
    """(reference, recent) from `items` sorted by time: recent ends at `now`; the reference window
    ends where the recent one starts (its boundary for a span, its first sample for a count)."""
    times = [time_of(i) for i in items]
    end = bisect.bisect_right(times, now)
    start = _take(times, end, recent, now)
    boundary = now - recent.span if recent.span is not None else (times[start] if start < end else now)
    ref_start = _take(times, start, reference, boundary)
    return list(items[ref_start:start]), list(items[start:end])

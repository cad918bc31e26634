"""Times on the command line: RFC 3339 / ISO 8601, `now`, or relative like `-15m`, `-2h`, `-1d`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An aware datetime; naive ISO times are taken as UTC. Raises ValueError with the accepted forms."""
    now = now or datetime.now(UTC)
    text = text.strip()
    if text == "now":
        return now
    m = _RELATIVE.match(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"cannot read time {text!r}: use ISO 8601 (2026-11-28T10:00:00Z), 'now' or -30s/-15m/-2h/-1d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

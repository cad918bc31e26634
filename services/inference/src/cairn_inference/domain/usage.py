"""Token usage as backends report it."""

from __future__ import annotations

from collections.abc import Mapping

from cairn_events import TokenUsage


def usage_from_openai(usage: Mapping[str, object] | None) -> TokenUsage:
    """TokenUsage from an OpenAI-style `usage` object (`prompt_tokens`, `completion_tokens`).

    Raises ValueError when either count is missing or not a non-negative integer: a response
    without usage cannot be accounted for.
    """
    if not isinstance(usage, Mapping):
        raise ValueError("the response has no usage")
    counts = []
    for name in ("prompt_tokens", "completion_tokens"):
        value = usage.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"usage.{name} is {value!r}, expected a non-negative integer")
        counts.append(value)
    return TokenUsage(input_tokens=counts[0], output_tokens=counts[1])

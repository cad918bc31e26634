"""What a completion or response says about the response cache and the routing policy, in the words both
`cairn trail` and the operator console show (plain text; each view adds its own styling)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["cache_words", "route_words"]


def cache_words(payload: Mapping[str, Any]) -> str | None:
    """`cache hit (exact) from <request id>`, `cache hit (semantic, similarity 0.973) from <request id>`,
    `cache miss (stored)`, `cache bypass: <reason>`; None when the event says nothing of the cache."""
    cache = payload.get("cache")
    if not isinstance(cache, Mapping):
        return None
    result = cache.get("result")
    if result == "hit":
        similarity = cache.get("similarity")
        how = f"semantic, similarity {similarity:.3f}" if isinstance(similarity, float) else cache.get("kind")
        return f"cache hit ({how}) from {cache.get('source_request_id')}"
    if result == "miss":
        return (
            "cache miss (stored, with its question)"
            if cache.get("kind") == "semantic"
            else "cache miss (stored)"
        )
    if result == "bypass":
        return f"cache bypass: {cache.get('reason')}" if cache.get("reason") else "cache bypass"
    return None


def route_words(payload: Mapping[str, Any], clip: int = 80) -> str | None:
    """`routed by default v3 rule batch-work; passed over cairn-qa-int8 (generation timed out after 2 s)`;
    None when the event was not routed. Each reason is cut to `clip` characters."""
    route = payload.get("route")
    if not isinstance(route, Mapping):
        return None
    words = f"routed by {route.get('policy')} v{route.get('policy_version')} rule {route.get('rule')}"
    fallbacks = [f for f in route.get("fallbacks") or [] if isinstance(f, Mapping)]
    if fallbacks:
        words += "; passed over " + ", ".join(
            f"{f.get('model')} ({_clip(str(f.get('reason')), clip)})" for f in fallbacks
        )
    return words


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."

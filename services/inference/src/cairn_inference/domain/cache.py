"""The exact response cache: which requests may reuse a stored answer, and the key they share.

Two requests share a key only when everything that decides the answer is the same: the tenant, the
resolved prompt version, the messages as screened (the rendered prompt, the retrieved context in it
and the question), the context chunks (ids and content hashes), the model that answers (registry
name, version, adapter, base model) and the generation parameters. So a promotion or rollback (another
model version), a label moved to another prompt version, and a cited document re-ingested with new
content (another content hash) each lead to another key: the old entries are never found again and
expire. A stored answer is reused only for deterministic generation (temperature 0, or a fixed seed)
unless the prompt opts in to reusing sampled answers (`params.cache_sampled`); never for a redacted
input, and never for a replayed or shadow request.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from cairn_events import CacheOutcome, InputScreenedV1, Verdict

__all__ = ["KEY_VERSION", "CachedAnswer", "bypass_reason", "cache_key", "hit", "miss"]

KEY_VERSION = 1
"""Part of every key: a change to what the key covers bumps it, so older entries are never matched."""


@dataclass(frozen=True)
class CachedAnswer:
    """A generated answer kept for the next identical request."""

    key: str
    tenant: str
    request_id: str
    """The request whose generation this is."""
    text: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    model: str
    """The model that generated it (registry name or base model)."""
    created_at: datetime
    expires_at: datetime


def bypass_reason(event: InputScreenedV1, *, replay: bool) -> str | None:
    """Why this request must not use the cache (neither read nor fill it); None when it may."""
    if replay:
        return "replay or shadow request"
    if event.verdict is Verdict.REDACT:
        return "redacted input"
    if event.params.temperature > 0 and event.params.seed is None and not event.params.cache_sampled:
        return "not deterministic"
    return None


def cache_key(
    event: InputScreenedV1, *, model: str, model_version: str | None, adapter: str | None, base_model: str
) -> str:
    """The exact key of a request: a SHA-256 over everything that decides its answer."""
    params = event.params.model_dump(mode="json", exclude={"stream"})  # streaming changes no token
    identity = {
        "v": KEY_VERSION,
        "tenant": event.tenant,
        "prompt": [event.prompt_name, event.prompt_version],
        "messages": [[m.role, m.content] for m in event.messages],
        "chunks": [[c.chunk_id, c.content_hash] for c in event.chunks],
        "model": [model, model_version, adapter, base_model],
        "params": params,
    }
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "exact:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hit(answer: CachedAnswer) -> CacheOutcome:
    return CacheOutcome(result="hit", kind="exact", source_request_id=answer.request_id)


def miss() -> CacheOutcome:
    return CacheOutcome(result="miss", kind="exact")

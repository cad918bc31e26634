"""The response cache: which requests may reuse a stored answer, the exact key they share, and the
semantic scope inside which a question close in meaning to a stored one reuses its answer.

Two requests share a key only when everything that decides the answer is the same: the tenant, the
resolved prompt version, the messages as screened (the rendered prompt, the retrieved context in it
and the question), the context chunks (ids and content hashes), the model that answers (registry
name, version, adapter, base model) and the generation parameters. So a promotion or rollback (another
model version), a label moved to another prompt version, and a cited document re-ingested with new
content (another content hash) each lead to another key: the old entries are never found again and
expire. A stored answer is reused only for deterministic generation (temperature 0, or a fixed seed)
unless the prompt opts in to reusing sampled answers (`params.cache_sampled`); never for a redacted
input, and never for a replayed or shadow request.

The semantic cache (a prompt opts in with `params.cache_semantic`) relaxes one thing only: the last
user message, the question. Its scope is the exact key without that message: the tenant, the prompt
version, every other message (the prompt's own and the retrieved context), the context chunks in
order (so a reused answer's citations [n] name the same passages, and a re-ingested document is
another scope), the model and the parameters. Inside a scope, the stored question most similar to the
new one (cosine of their embeddings) is reused when the similarity reaches the prompt's threshold and
their signatures agree (the same numbers and negation, not a swap of the same words:
`domain.questions`).
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cairn_events import CacheOutcome, InputScreenedV1, Verdict

__all__ = [
    "KEY_VERSION",
    "CachedAnswer",
    "best_match",
    "bypass_reason",
    "cache_key",
    "hit",
    "miss",
    "question_of",
    "semantic_hit",
    "semantic_scope",
    "semantic_threshold",
]

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
    scope: str | None = None
    """The semantic scope (`semantic_scope`) when the prompt opted in to the semantic cache."""
    vector: tuple[float, ...] | None = None
    """The question's embedding (L2-normalised) when `scope` is set."""
    signature: str | None = None
    """The question's signature (`domain.questions`) when `scope` is set."""


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
    identity = _identity(event, [model, model_version, adapter, base_model])
    identity["messages"] = [[m.role, m.content] for m in event.messages]
    return "exact:" + _digest(identity)


def question_of(event: InputScreenedV1) -> str | None:
    """The question the semantic cache compares: the last message, when it is the user's and has text."""
    last = event.messages[-1]
    return (last.content.strip() or None) if last.role == "user" else None


def semantic_scope(
    event: InputScreenedV1, *, model: str, model_version: str | None, adapter: str | None, base_model: str
) -> str:
    """The semantic scope of a request: the exact key's identity without its last message, the question
    (a request without one, see `question_of`, has no use for a scope)."""
    identity = _identity(event, [model, model_version, adapter, base_model])
    identity["messages"] = [[m.role, m.content] for m in event.messages[:-1]]
    return "semantic:" + _digest(identity)


def semantic_threshold(event: InputScreenedV1, default: float) -> float | None:
    """The similarity from which this request reuses a close question's answer; None when its prompt did
    not opt in to the semantic cache."""
    if not event.params.cache_semantic:
        return None
    return event.params.cache_similarity if event.params.cache_similarity is not None else default


_NOT_DECIDING = {"stream", "latency_class", "cache_sampled", "cache_semantic", "cache_similarity"}
"""Parameters that change no token of a given model's answer: how it is delivered, which model routing
may pick (the model is in the key), and how the cache itself may be used."""


def _identity(event: InputScreenedV1, model: list[str | None]) -> dict[str, object]:
    return {
        "v": KEY_VERSION,
        "tenant": event.tenant,
        "prompt": [event.prompt_name, event.prompt_version],
        "chunks": [[c.chunk_id, c.content_hash] for c in event.chunks],
        "model": model,
        "params": event.params.model_dump(mode="json", exclude=_NOT_DECIDING),
    }


def _digest(identity: dict[str, object]) -> str:
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hit(answer: CachedAnswer) -> CacheOutcome:
    return CacheOutcome(result="hit", kind="exact", source_request_id=answer.request_id)


def miss(kind: Literal["exact", "semantic"] = "exact") -> CacheOutcome:
    """A miss: `semantic` when the closest stored question was looked for too."""
    return CacheOutcome(result="miss", kind=kind)


def semantic_hit(answer: CachedAnswer, similarity: float) -> CacheOutcome:
    return CacheOutcome(
        result="hit",
        kind="semantic",
        source_request_id=answer.request_id,
        similarity=round(max(-1.0, min(1.0, similarity)), 4),
    )


def best_match(
    vector: Sequence[float], candidates: Iterable[tuple[str, Sequence[float]]]
) -> tuple[str, float] | None:
    """The candidate (key, vector) most similar to `vector` by cosine (the vectors are L2-normalised, so
    the dot product), with its similarity; None when there is none. Ties go to the first."""
    best: tuple[str, float] | None = None
    for key, other in candidates:
        if len(other) != len(vector):
            continue  # another embedder's vector: not comparable
        score = sum(map(operator.mul, vector, other))
        if best is None or score > best[1]:
            best = (key, score)
    return best

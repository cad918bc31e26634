"""Curation: from stored request trails to deduplicated, PII-scrubbed rows split into train and held-out.

Pure and deterministic: the same trails, rules, fraction and seed give the same rows, ids and split.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from cairn_events import ChatMessage, ResponseCompletedV1, ResponseStatus
from cairn_events.artifacts import DatasetRow, SourceRequest
from cairn_feedback.domain.records import RequestTrail
from cairn_feedback.domain.rules import Rules
from cairn_feedback.domain.scrub import scrub

__all__ = ["Curation", "curate", "row_id_of", "split_score"]

DEFAULT_HELDOUT = 0.2


@dataclass(frozen=True)
class Curation:
    """The rows of one build, split, and how many candidates were left out by reason."""

    train: list[DatasetRow]
    heldout: list[DatasetRow]
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> list[DatasetRow]:
        """Every row, train first."""
        return [*self.train, *self.heldout]


def row_id_of(messages: list[ChatMessage], completion: str) -> str:
    """The row's stable id: the first 16 hex digits of the sha256 of canonical JSON of its input and target."""
    canonical = json.dumps(
        {"messages": [m.model_dump(mode="json") for m in messages], "completion": completion},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def split_score(row_id: str, seed: int) -> float:
    """Where a row falls in [0, 1) for the held-out split under `seed`; below the fraction is held out."""
    digest = hashlib.sha256(f"{seed}:{row_id}".encode()).hexdigest()
    return int(digest[:16], 16) / 2**64


def _model_of(response: ResponseCompletedV1 | None) -> str | None:
    if response is None:
        return None
    if response.adapter:
        return response.adapter
    if response.model and response.model_version:
        return f"{response.model}:{response.model_version}"
    return response.model


def _source_request(trail: RequestTrail) -> SourceRequest:
    request = trail.request
    assert request is not None
    variables = {k: scrub(v) if isinstance(v, str) else v for k, v in request.variables.items()}
    return SourceRequest(
        prompt=request.prompt,
        variables=variables,
        messages=[ChatMessage(role=m.role, content=scrub(m.content)) for m in request.messages],
        retrieval=request.retrieval.model_dump(mode="json") if request.retrieval else None,
    )


def _candidate(trail: RequestTrail, rules: Rules) -> DatasetRow | str | None:
    """A row, the reason it cannot be one, or None when the request's latest feedback selects nothing."""
    feedback = trail.latest_feedback()
    source: Literal["corrected", "rated"] | None = rules.source_of(feedback) if feedback else None
    if feedback is None or source is None:
        return None
    if trail.request is None:
        return "no_request"
    if trail.is_evaluation:
        return "evaluation"
    if trail.screening is None:
        return "no_input"
    response = trail.response
    if source == "corrected":
        target = feedback.corrected_answer or ""
    elif response is None or response.status is not ResponseStatus.COMPLETED or not response.text:
        return "no_answer"
    else:
        target = response.text
    completion = scrub(target).strip()
    if not completion:
        return "empty"
    messages = [ChatMessage(role=m.role, content=scrub(m.content)) for m in trail.screening.messages]
    return DatasetRow(
        row_id=row_id_of(messages, completion),
        request_id=trail.request_id,
        feedback_id=feedback.feedback_id,
        tenant=trail.request.tenant,
        prompt_name=trail.screening.prompt_name,
        prompt_version=trail.screening.prompt_version,
        model=_model_of(response),
        request=_source_request(trail),
        messages=messages,
        completion=completion,
        source=source,
        rating=feedback.rating,
    )


def _split(rows: list[DatasetRow], fraction: float, seed: int) -> tuple[list[DatasetRow], list[DatasetRow]]:
    scored = sorted(rows, key=lambda r: (split_score(r.row_id, seed), r.row_id))
    held = [r for r in scored if split_score(r.row_id, seed) < fraction] if len(rows) >= 2 else []
    if fraction > 0 and len(rows) >= 2:
        if not held:
            held = scored[:1]  # at least one held-out row
        elif len(held) == len(rows):
            held = scored[:-1]  # and at least one to train on
    held_ids = {r.row_id for r in held}
    train = sorted((r for r in rows if r.row_id not in held_ids), key=lambda r: r.row_id)
    return train, sorted(held, key=lambda r: r.row_id)


def curate(
    trails: Iterable[RequestTrail], rules: Rules, *, heldout: float = DEFAULT_HELDOUT, seed: int = 0
) -> Curation:
    """Select, scrub, de-duplicate and split the rows the rules pick from `trails`.

    A single row always trains; from two rows on, with a fraction above 0, at least one row is held
    out and one trains. The latest feedback on each request decides; rows need the request and its screened input (and,
    for `rated`, a completed answer); evaluation traffic is never taken. Exact duplicates of
    (messages, completion) keep the earliest feedback's row. Raises ValueError for a fraction
    outside [0, 1).
    """
    if not 0 <= heldout < 1:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {heldout}")
    dropped: Counter[str] = Counter()
    candidates: list[tuple[datetime, str, DatasetRow]] = []
    for trail in trails:
        found = _candidate(trail, rules)
        if isinstance(found, str):
            dropped[found] += 1
        elif found is not None:
            latest = trail.latest_feedback()
            assert latest is not None
            candidates.append((latest.submitted_at, latest.feedback_id, found))
    kept: dict[str, DatasetRow] = {}
    for _, _, row in sorted(candidates, key=lambda c: (c[0], c[1])):
        if row.row_id in kept:
            dropped["duplicate"] += 1
        else:
            kept[row.row_id] = row
    train, held = _split(list(kept.values()), heldout, seed)
    return Curation(train=train, heldout=held, dropped=dict(sorted(dropped.items())))

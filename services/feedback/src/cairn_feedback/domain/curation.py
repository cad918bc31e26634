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

from cairn_events import ChatMessage, FeedbackSubmittedV1, ResponseCompletedV1, ResponseStatus, Verdict
from cairn_events.artifacts import DatasetRow, SourceRequest
from cairn_feedback.domain.records import RequestTrail, answered_by, feedback_order
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


@dataclass(frozen=True)
class _Found:
    """A selected row and when its selection happened (the latest feedback, or the teacher's answer)."""

    row: DatasetRow
    order: tuple[datetime, str]


def _row(
    trail: RequestTrail,
    target: str,
    source: Literal["corrected", "rated", "teacher"],
    feedback: FeedbackSubmittedV1 | None,
    response: ResponseCompletedV1 | None,
) -> DatasetRow | str:
    assert trail.request is not None
    assert trail.screening is not None
    completion = scrub(target).strip()
    if not completion:
        return "empty"
    messages = [ChatMessage(role=m.role, content=scrub(m.content)) for m in trail.screening.messages]
    return DatasetRow(
        row_id=row_id_of(messages, completion),
        request_id=trail.request_id,
        feedback_id=feedback.feedback_id if feedback else None,
        tenant=trail.request.tenant,
        prompt_name=trail.screening.prompt_name,
        prompt_version=trail.screening.prompt_version,
        model=answered_by(response),
        request=_source_request(trail),
        messages=messages,
        completion=completion,
        source=source,
        rating=feedback.rating if feedback else None,
    )


def _completed(response: ResponseCompletedV1 | None) -> bool:
    return response is not None and response.status is ResponseStatus.COMPLETED and bool(response.text)


def _unusable(trail: RequestTrail) -> str | None:
    """Why no row can come from the request whatever selects it (its request or screened input not
    stored, or evaluation traffic); None when one can."""
    if trail.request is None:
        return "no_request"
    if trail.is_evaluation:
        return "evaluation"
    if trail.screening is None:
        return "no_input"
    return None


def _from_feedback(trail: RequestTrail, rules: Rules) -> _Found | str | None:
    """A row the request's latest feedback selects, the reason it cannot be one, or None."""
    feedback = trail.latest_feedback()
    source = rules.source_of(feedback) if feedback else None
    if feedback is None or source is None:
        return None
    missing = _unusable(trail)
    if missing is not None:
        return missing
    response = trail.response
    if source == "corrected":
        target = feedback.corrected_answer or ""
    elif not _completed(response):
        return "no_answer"
    else:
        assert response is not None
        assert response.text is not None
        target = response.text
    found = _row(trail, target, source, feedback, response)
    return found if isinstance(found, str) else _Found(found, feedback_order(feedback))


def _disputed(feedback: FeedbackSubmittedV1 | None) -> bool:
    """Whether someone judged the answer wrong: a correction, a thumbs down or a rating of 2 or less."""
    if feedback is None:
        return False
    corrected = feedback.corrected_answer is not None and bool(feedback.corrected_answer.strip())
    return corrected or feedback.thumbs == "down" or (feedback.rating is not None and feedback.rating <= 2)


def _from_teacher(trail: RequestTrail, teacher: str) -> _Found | str | None:
    """A row whose target is the teacher's answer (live, else from a replay), the reason it cannot be
    one, or None when the teacher did not answer the request."""
    answers = [
        r for r in (trail.response, trail.shadow_response) if r is not None and answered_by(r) == teacher
    ]
    if not answers:
        return None
    response = next((r for r in answers if _completed(r)), answers[0])
    missing = _unusable(trail)
    if missing is not None:
        return missing
    assert trail.screening is not None  # _unusable checked it
    if trail.screening.verdict is not Verdict.ALLOW:
        return "redacted_input"
    if not _completed(response):
        return "no_answer"
    if response.verdict not in (None, Verdict.ALLOW):
        return "redacted_answer"
    if _disputed(trail.latest_feedback()):
        return "disputed"
    assert response.text is not None
    found = _row(trail, response.text, "teacher", None, response)
    return found if isinstance(found, str) else _Found(found, (response.completed_at, trail.request_id))


def _candidate(trail: RequestTrail, rules: Rules) -> _Found | str | None:
    """A row, the reason it cannot be one, or None when nothing selects the request.

    The latest feedback decides first (a correction wins over everything); without a selecting
    feedback, the teacher's answer is the target when the teacher answered.
    """
    found = _from_feedback(trail, rules)
    if found is None and rules.teacher is not None:
        return _from_teacher(trail, rules.teacher)
    return found


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
    out and one trains. The latest feedback on each request decides; rows need the request and its
    screened input (and, for `rated`, a completed answer); evaluation traffic is never taken. Under
    `teacher:MODEL`, a request no feedback selects gives a `teacher` row when MODEL answered it (live
    or in a replay): a completed answer, input and answer screened `allow` (nothing redacted), no
    correction, thumbs down or rating of 2 or less on it. Exact duplicates of (messages, completion)
    keep the earliest row (by feedback time, or the teacher's answer time). Raises ValueError for a
    fraction outside [0, 1).
    """
    if not 0 <= heldout < 1:
        raise ValueError(f"the held-out fraction must be in [0, 1), got {heldout}")
    dropped: Counter[str] = Counter()
    candidates: list[_Found] = []
    for trail in trails:
        found = _candidate(trail, rules)
        if isinstance(found, str):
            dropped[found] += 1
        elif found is not None:
            candidates.append(found)
    kept: dict[str, DatasetRow] = {}
    for row in (c.row for c in sorted(candidates, key=lambda c: c.order)):
        if row.row_id in kept:
            dropped["duplicate"] += 1
        else:
            kept[row.row_id] = row
    train, held = _split(list(kept.values()), heldout, seed)
    return Curation(train=train, heldout=held, dropped=dict(sorted(dropped.items())))

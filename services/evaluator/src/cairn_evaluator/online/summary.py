"""Quality per prompt version, model version or experiment variant: requests, groundedness,
hallucination rate, feedback, thumbs-up rate and refusal rate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cairn_evaluator.online.records import FeedbackRecord, PromptAttribution, ResponseRecord

__all__ = ["GroupBy", "QualityRow", "summarize"]

GroupBy = Literal["prompt", "model", "variant"]
UNMATCHED = "(no response)"
"""The group of feedback whose response the evaluator has not seen."""


@dataclass(frozen=True)
class QualityRow:
    """The quality of one group. Means and rates are None when there is nothing to average."""

    group: str
    responses: int
    scored: int
    mean_groundedness: float | None
    hallucination_rate: float | None
    """Share of scored answers below the hallucination threshold."""
    feedback: int
    mean_score: float | None
    thumbs_up_rate: float | None
    refusal_rate: float | None


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _group_of(response: ResponseRecord, by: GroupBy, variants: dict[str, str]) -> str:
    if by == "prompt":
        return response.prompt_key
    if by == "model":
        return response.model_key
    return variants.get(response.request_id, response.prompt_key)


def summarize(
    responses: Sequence[ResponseRecord],
    feedback: Sequence[FeedbackRecord],
    attributions: Sequence[PromptAttribution],
    by: GroupBy,
    hallucination_threshold: float = 0.5,
    context: Sequence[ResponseRecord] = (),
) -> list[QualityRow]:
    """One row per group, sorted by group. Feedback joins its response by request id (among
    `responses`, or `context`: earlier responses that group feedback but are not counted); the variant
    of a response without an experiment is its prompt version."""
    variants = {a.request_id: a.variant_key for a in attributions if a.experiment or a.variant}
    groups: dict[str, list[ResponseRecord]] = {}
    request_group = {r.request_id: _group_of(r, by, variants) for r in context}
    for response in responses:
        key = _group_of(response, by, variants)
        groups.setdefault(key, []).append(response)
        request_group[response.request_id] = key
    opinions: dict[str, list[FeedbackRecord]] = {}
    for f in feedback:
        opinions.setdefault(request_group.get(f.request_id, UNMATCHED), []).append(f)
    rows: list[QualityRow] = []
    for key in sorted(set(groups) | set(opinions)):
        mine = groups.get(key, [])
        scores = [r.groundedness for r in mine if r.groundedness is not None]
        said = opinions.get(key, [])
        ratings = [float(f.rating) for f in said if f.rating is not None]
        thumbs = [f.thumbs == "up" for f in said if f.thumbs is not None]
        rows.append(
            QualityRow(
                group=key,
                responses=len(mine),
                scored=len(scores),
                mean_groundedness=_mean(scores),
                hallucination_rate=_mean([float(s < hallucination_threshold) for s in scores]),
                feedback=len(said),
                mean_score=_mean(ratings),
                thumbs_up_rate=_mean([float(t) for t in thumbs]),
                refusal_rate=_mean([float(r.refused) for r in mine]),
            )
        )
    return rows

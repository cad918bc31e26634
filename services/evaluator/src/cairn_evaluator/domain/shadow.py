"""Shadow traffic: a share of live requests mirrored to a candidate model or prompt version.

A shadow names its candidate (a model reference such as `cairn-qa:2`, a prompt reference such as
`qa:3`, or both), the share of live requests it mirrors (chosen by a hash of the request id, so the
same request is always in or always out), and optional tenant and prompt filters. Each mirrored
request is a shadow request: a derived request id, the candidate applied, everything else the same;
its events carry `ce_replayid = shadow:<shadow id>`, so its answer goes to `cairn.responses.shadow`
and never reaches upstream. The live and the shadow answer of one request form a pair, scored the
same way; the pairs are the shadow's evidence for the promotion gate. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cairn_evaluator.online.records import sampled
from cairn_events import JsonScalar, PromptRef, RequestSubmittedV1, ResponseStatus, SuiteScore

__all__ = [
    "REPLAY_PREFIX",
    "SHADOW_ID_PATTERN",
    "TIE_MARGIN",
    "Estimate",
    "Mirror",
    "Pair",
    "Shadow",
    "ShadowAnswer",
    "ShadowSummary",
    "Side",
    "pairs_of",
    "shadow_gate",
    "shadow_id_of",
    "shadow_request",
    "shadow_request_id",
    "shadow_scores",
    "summarize_shadow",
]

SHADOW_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,47}$"
REPLAY_PREFIX = "shadow:"
"""`ce_replayid` of every event of a shadow request: `shadow:<shadow id>`."""
TIE_MARGIN = 0.05
"""Two groundedness scores closer than this are a tie (scores move in steps of whole sentences)."""
Side = Literal["live", "shadow"]
_FROZEN = ConfigDict(frozen=True)
_MAX_ID = 128


class Shadow(BaseModel):
    """One shadow: the candidate it mirrors live requests to, which requests, and whether it is on."""

    model_config = _FROZEN

    shadow_id: str = Field(pattern=SHADOW_ID_PATTERN, description="Name of the shadow, e.g. `qa-v3`.")
    model: str | None = Field(
        None, min_length=1, max_length=200, description="Candidate model reference, e.g. `cairn-qa:2`."
    )
    prompt: PromptRef | None = Field(
        None, description="Candidate prompt reference, e.g. `qa:3` or `qa@beta`."
    )
    share: float = Field(ge=0.0, le=1.0, description="Share of the matching live requests mirrored.")
    tenant: str | None = Field(None, min_length=1, description="Only this tenant's requests; all when none.")
    prompt_name: str | None = Field(
        None, min_length=1, description="Only requests for this prompt name; all when none."
    )
    enabled: bool = Field(True, description="Whether it mirrors now.")
    created_by: str = Field(description="Who started it first (key id or `cli:<user>`).")
    created_at: datetime = Field(description="When it was first started.")
    updated_by: str = Field(description="Who started or stopped it last.")
    updated_at: datetime = Field(description="When it was started or stopped last.")

    @model_validator(mode="after")
    def _candidate(self) -> Shadow:
        if self.model is None and self.prompt is None:
            raise ValueError("a shadow needs a candidate model, a candidate prompt, or both")
        return self

    def admin_details(self) -> dict[str, JsonScalar]:
        """What the admin-action record of a start or stop says about the shadow."""
        return {
            "model": self.model or "-",
            "prompt": self.prompt or "-",
            "share": self.share,
            "tenant_filter": self.tenant or "*",
            "prompt_filter": self.prompt_name or "*",
        }

    @property
    def replay_id(self) -> str:
        """The `ce_replayid` its shadow requests carry."""
        return f"{REPLAY_PREFIX}{self.shadow_id}"

    @property
    def candidate(self) -> str:
        """The candidate in words: `model cairn-qa:2, prompt qa:3`."""
        parts = [f"model {self.model}" if self.model else "", f"prompt {self.prompt}" if self.prompt else ""]
        return ", ".join(p for p in parts if p)

    def same_candidate(self, other: Shadow) -> bool:
        """Whether both mirror to the same model and prompt."""
        return (self.model, self.prompt) == (other.model, other.prompt)

    def selects(self, tenant: str, prompt_name: str, request_id: str) -> bool:
        """Whether this shadow mirrors (or mirrored) the live request: on, filters matched, and the
        request id's hash within the share (so a live answer knows it has a shadow twin)."""
        return (
            self.enabled
            and (self.tenant is None or self.tenant == tenant)
            and (self.prompt_name is None or self.prompt_name == prompt_name)
            and sampled(request_id, self.share)
        )


def shadow_id_of(replay_id: str | None) -> str | None:
    """The shadow id of a `ce_replayid` of shadow traffic; None for live traffic or other replays."""
    if replay_id is None or not replay_id.startswith(REPLAY_PREFIX):
        return None
    return replay_id[len(REPLAY_PREFIX) :] or None


def shadow_request_id(live_request_id: str, shadow_id: str) -> str:
    """The request id of the shadow twin of a live request: `shadow:<shadow id>:<live id>`, or the
    live id's hash in its place when that would exceed 128 characters. Stable, so a redelivered live
    request yields the same shadow request."""
    plain = f"{REPLAY_PREFIX}{shadow_id}:{live_request_id}"
    if len(plain) <= _MAX_ID:
        return plain
    return f"{REPLAY_PREFIX}{shadow_id}:{hashlib.sha256(live_request_id.encode()).hexdigest()[:40]}"


def shadow_request(live: RequestSubmittedV1, shadow: Shadow) -> RequestSubmittedV1:
    """The live request asked of the candidate: a derived id, the candidate's model and prompt,
    metadata `shadow_id`/`shadow_of` added, everything else the same."""
    data = live.model_dump()
    data["request_id"] = shadow_request_id(live.request_id, shadow.shadow_id)
    data["metadata"] = {**live.metadata, "shadow_id": shadow.shadow_id, "shadow_of": live.request_id}
    if shadow.model is not None:
        data["model"] = shadow.model
    if shadow.prompt is not None:
        data["prompt"] = shadow.prompt
    return RequestSubmittedV1.model_validate(data)


class Mirror(BaseModel):
    """A live request the shadow mirrored: both request ids and when each was sent."""

    model_config = _FROZEN

    shadow_id: str
    request_id: str = Field(description="The live request id.")
    shadow_request_id: str
    tenant: str
    live_event_id: str = Field(description="The live request's event id (`ce_replayof` of the shadow one).")
    submitted_at: datetime = Field(description="When the live request was submitted.")
    mirrored_at: datetime = Field(description="When the shadow request was published.")


class ShadowAnswer(BaseModel):
    """The final answer of one side (live or shadow) of a mirrored request, scored."""

    model_config = _FROZEN

    shadow_id: str
    request_id: str = Field(description="The live request id (both sides are filed under it).")
    side: Side
    event_id: str
    status: ResponseStatus
    refused: bool
    groundedness: float | None = Field(None, description="None when not scored (no text or no citations).")
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    model_version: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    completed_at: datetime


@dataclass(frozen=True)
class Pair:
    """Both answers of one mirrored request, and when each request was sent (when known)."""

    request_id: str
    live: ShadowAnswer
    shadow: ShadowAnswer
    mirror: Mirror | None = None

    def latency_ms(self, side: Side) -> float | None:
        """Answer time minus send time (the live request's submission, the shadow's mirroring)."""
        if self.mirror is None:
            return None
        answer = self.live if side == "live" else self.shadow
        sent = self.mirror.submitted_at if side == "live" else self.mirror.mirrored_at
        return max((answer.completed_at - sent).total_seconds() * 1000.0, 0.0)


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% confidence interval (normal approximation; none below two values)."""

    n: int
    mean: float | None
    low: float | None = None
    high: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Estimate:
        """The estimate of the mean of `values`."""
        n = len(values)
        if n == 0:
            return cls(0, None)
        mean = sum(values) / n
        if n < 2:
            return cls(n, round(mean, 4))
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = 1.96 * sd / math.sqrt(n)
        return cls(n, round(mean, 4), round(mean - half, 4), round(mean + half, 4))


@dataclass(frozen=True)
class ShadowSummary:
    """What a shadow's pairs show: counts, both sides' scores, and the groundedness comparison."""

    mirrored: int
    live_answers: int
    shadow_answers: int
    pairs: int
    scored_pairs: int
    """Pairs where both answers were scored for groundedness."""
    live_groundedness: Estimate
    shadow_groundedness: Estimate
    groundedness_delta: Estimate
    """Shadow minus live groundedness, per scored pair."""
    wins: int
    ties: int
    losses: int
    live_refusal_rate: float | None
    shadow_refusal_rate: float | None
    live_input_tokens: Estimate
    shadow_input_tokens: Estimate
    live_output_tokens: Estimate
    shadow_output_tokens: Estimate
    live_latency_ms: Estimate
    shadow_latency_ms: Estimate
    live_cost_usd: float | None = None
    shadow_cost_usd: float | None = None


def pairs_of(answers: Iterable[ShadowAnswer], mirrors: Iterable[Mirror] = ()) -> list[Pair]:
    """The requests with both answers, in the order of their live answers."""
    by_request: dict[str, dict[str, ShadowAnswer]] = {}
    for a in sorted(answers, key=lambda a: (a.completed_at, a.event_id)):
        by_request.setdefault(a.request_id, {})[a.side] = a
    sent = {m.request_id: m for m in mirrors}
    return [
        Pair(request_id, sides["live"], sides["shadow"], sent.get(request_id))
        for request_id, sides in by_request.items()
        if "live" in sides and "shadow" in sides
    ]


def _rate(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _floats(values: Iterable[float | int | None]) -> list[float]:
    return [float(v) for v in values if v is not None]


def summarize_shadow(
    answers: Sequence[ShadowAnswer],
    mirrors: Sequence[Mirror],
    *,
    cost_of: Callable[[ShadowAnswer], float] | None = None,
) -> ShadowSummary:
    """The summary of one shadow's answers; `cost_of(answer)` prices an answer (None: no cost)."""
    pairs = pairs_of(answers, mirrors)
    scored = [p for p in pairs if p.live.groundedness is not None and p.shadow.groundedness is not None]
    deltas = [(p.shadow.groundedness or 0.0) - (p.live.groundedness or 0.0) for p in scored]

    def cost(side: Side) -> float | None:
        if cost_of is None:
            return None
        return round(sum(cost_of(p.live if side == "live" else p.shadow) for p in pairs), 8)

    return ShadowSummary(
        mirrored=len(mirrors),
        live_answers=sum(1 for a in answers if a.side == "live"),
        shadow_answers=sum(1 for a in answers if a.side == "shadow"),
        pairs=len(pairs),
        scored_pairs=len(scored),
        live_groundedness=Estimate.of(_floats(p.live.groundedness for p in scored)),
        shadow_groundedness=Estimate.of(_floats(p.shadow.groundedness for p in scored)),
        groundedness_delta=Estimate.of(deltas),
        wins=sum(1 for d in deltas if d > TIE_MARGIN),
        ties=sum(1 for d in deltas if abs(d) <= TIE_MARGIN),
        losses=sum(1 for d in deltas if d < -TIE_MARGIN),
        live_refusal_rate=_rate([p.live.refused for p in pairs]),
        shadow_refusal_rate=_rate([p.shadow.refused for p in pairs]),
        live_input_tokens=Estimate.of(_floats(p.live.input_tokens for p in pairs)),
        shadow_input_tokens=Estimate.of(_floats(p.shadow.input_tokens for p in pairs)),
        live_output_tokens=Estimate.of(_floats(p.live.output_tokens for p in pairs)),
        shadow_output_tokens=Estimate.of(_floats(p.shadow.output_tokens for p in pairs)),
        live_latency_ms=Estimate.of(_floats(p.latency_ms("live") for p in pairs)),
        shadow_latency_ms=Estimate.of(_floats(p.latency_ms("shadow") for p in pairs)),
        live_cost_usd=cost("live"),
        shadow_cost_usd=cost("shadow"),
    )


def shadow_gate(summary: ShadowSummary, *, min_pairs: int, max_drop: float) -> tuple[bool, str]:
    """Whether the shadow's evidence passes: at least `min_pairs` scored pairs, and the candidate's
    mean groundedness no more than `max_drop` below live's on the same requests."""
    delta = summary.groundedness_delta.mean
    if summary.scored_pairs < min_pairs:
        return False, f"{summary.scored_pairs} scored pairs, {min_pairs} needed"
    if delta is None:
        return min_pairs == 0, "no scored pairs"
    if delta < -max_drop - 1e-9:
        return False, f"groundedness {-delta:.3f} below live (allowed {max_drop:g})"
    return (
        True,
        f"{summary.scored_pairs} scored pairs, groundedness {delta:+.3f} vs live (allowed -{max_drop:g})",
    )


def shadow_scores(
    shadow: Shadow, summary: ShadowSummary, *, min_pairs: int, max_drop: float
) -> tuple[list[SuiteScore], str]:
    """The shadow's evidence as evaluation scores (suite `shadow:<id>`): `pairs` and `groundedness`
    (candidate = shadow, baseline = live) gated when `min_pairs` > 0, `win_rate` and `refusal_rate`
    reported; and the gate's note."""
    suite = shadow.replay_id
    gated = min_pairs > 0
    passed, note = shadow_gate(summary, min_pairs=min_pairs, max_drop=max_drop)
    if not gated:
        passed, note = True, f"reported, not gated ({note})"
    scores = [
        SuiteScore(
            suite=suite,
            metric="pairs",
            candidate=float(summary.scored_pairs),
            passed=not gated or summary.scored_pairs >= min_pairs,
        )
    ]
    if summary.scored_pairs:
        scores.append(
            SuiteScore(
                suite=suite,
                metric="groundedness",
                candidate=summary.shadow_groundedness.mean or 0.0,
                baseline=summary.live_groundedness.mean,
                passed=passed,
            )
        )
        scores.append(
            SuiteScore(
                suite=suite,
                metric="win_rate",
                candidate=round(summary.wins / summary.scored_pairs, 4),
                baseline=round(summary.losses / summary.scored_pairs, 4),
                passed=True,
            )
        )
    if summary.pairs:
        scores.append(
            SuiteScore(
                suite=suite,
                metric="refusal_rate",
                candidate=summary.shadow_refusal_rate or 0.0,
                baseline=summary.live_refusal_rate,
                passed=True,
            )
        )
    return scores, note

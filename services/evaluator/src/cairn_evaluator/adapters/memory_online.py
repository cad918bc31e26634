"""The online store in dicts, for unit tests; it passes the same behaviour suite as PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from cairn_evaluator.online.conclusions import ExperimentConclusion
from cairn_evaluator.online.records import (
    AlertFiring,
    FeedbackRecord,
    PromptAttribution,
    RequestRecord,
    ResponseRecord,
)

T = TypeVar("T", ResponseRecord, RequestRecord, FeedbackRecord)


def _window(
    items: dict[str, T], time_of: Callable[[T], datetime], since: datetime | None, until: datetime, limit: int
) -> list[T]:
    chosen = [i for i in items.values() if (since is None or time_of(i) > since) and time_of(i) <= until]
    chosen.sort(key=lambda i: (time_of(i), i.event_id))
    return chosen[-limit:] if limit > 0 else []


R = TypeVar("R", ResponseRecord, RequestRecord, FeedbackRecord, PromptAttribution)


def _keep(items: dict[str, R], record: R) -> bool:
    if record.event_id in items:
        return False
    items[record.event_id] = record
    return True


class InMemoryOnlineStore:
    """`OnlineStore` in dicts keyed by event id."""

    def __init__(self) -> None:
        self._responses: dict[str, ResponseRecord] = {}
        self._requests: dict[str, RequestRecord] = {}
        self._feedback: dict[str, FeedbackRecord] = {}
        self._attributions: dict[str, PromptAttribution] = {}
        self._firings: dict[str, AlertFiring] = {}
        self._last_fired: dict[str, datetime] = {}
        self._conclusions: dict[str, ExperimentConclusion] = {}

    async def record_response(self, record: ResponseRecord) -> bool:
        return _keep(self._responses, record)

    async def record_request(self, record: RequestRecord) -> bool:
        return _keep(self._requests, record)

    async def erase_tenant(self, tenant: str) -> int:
        held = [r for r in self._requests.values() if r.tenant == tenant and r.embedding is not None]
        for r in held:
            self._requests[r.event_id] = r.model_copy(update={"embedding": None})
        return len(held)

    async def record_feedback(self, record: FeedbackRecord) -> bool:
        return _keep(self._feedback, record)

    async def record_attribution(self, record: PromptAttribution) -> bool:
        return _keep(self._attributions, record)

    async def responses(self, since: datetime | None, until: datetime, limit: int) -> list[ResponseRecord]:
        return _window(self._responses, lambda r: r.completed_at, since, until, limit)

    async def responses_for(self, request_ids: Sequence[str]) -> list[ResponseRecord]:
        wanted = set(request_ids)
        found = [r for r in self._responses.values() if r.request_id in wanted]
        return sorted(found, key=lambda r: (r.completed_at, r.event_id))

    async def requests(self, since: datetime | None, until: datetime, limit: int) -> list[RequestRecord]:
        return _window(self._requests, lambda r: r.submitted_at, since, until, limit)

    async def feedback(self, since: datetime | None, until: datetime, limit: int) -> list[FeedbackRecord]:
        return _window(self._feedback, lambda f: f.submitted_at, since, until, limit)

    async def attributions(self, request_ids: Sequence[str]) -> list[PromptAttribution]:
        wanted = set(request_ids)
        found = [a for a in self._attributions.values() if a.request_id in wanted]
        return sorted(found, key=lambda a: (a.rendered_at, a.event_id))

    async def experiment_attributions(
        self, tenant: str, prompt_name: str, experiment: str, limit: int
    ) -> list[PromptAttribution]:
        found = [
            a
            for a in self._attributions.values()
            if (a.tenant, a.prompt_name, a.experiment) == (tenant, prompt_name, experiment)
        ]
        found.sort(key=lambda a: (a.rendered_at, a.event_id))
        return found[-limit:] if limit > 0 else []

    async def feedback_for(self, request_ids: Sequence[str]) -> list[FeedbackRecord]:
        wanted = set(request_ids)
        found = [f for f in self._feedback.values() if f.request_id in wanted]
        return sorted(found, key=lambda f: (f.submitted_at, f.event_id))

    async def record_conclusion(self, conclusion: ExperimentConclusion) -> bool:
        if conclusion.conclusion_id in self._conclusions:
            return False
        self._conclusions[conclusion.conclusion_id] = conclusion.model_copy(update={"published": False})
        return True

    async def conclusion(self, conclusion_id: str) -> ExperimentConclusion | None:
        return self._conclusions.get(conclusion_id)

    async def mark_conclusion_published(self, conclusion_id: str) -> None:
        found = self._conclusions.get(conclusion_id)
        if found is not None:
            self._conclusions[conclusion_id] = found.model_copy(update={"published": True})

    async def fire(self, firing: AlertFiring, cooldown: timedelta) -> bool:
        if firing.alert_id in self._firings:
            return False
        last = self._last_fired.get(firing.key)
        if last is not None and firing.raised_at - last < cooldown:
            return False
        self._last_fired[firing.key] = firing.raised_at
        self._firings[firing.alert_id] = firing.model_copy(update={"published": False})
        return True

    async def mark_published(self, alert_id: str) -> None:
        firing = self._firings.get(alert_id)
        if firing is not None:
            self._firings[alert_id] = firing.model_copy(update={"published": True})

    async def unpublished(self) -> list[AlertFiring]:
        pending = [f for f in self._firings.values() if not f.published]
        return sorted(pending, key=lambda f: (f.raised_at, f.alert_id))

    async def alerts(self, since: datetime | None, limit: int = 100) -> list[AlertFiring]:
        chosen = [f for f in self._firings.values() if since is None or f.raised_at > since]
        return sorted(chosen, key=lambda f: (f.raised_at, f.alert_id), reverse=True)[:limit]

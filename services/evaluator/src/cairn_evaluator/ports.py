"""The evaluator's ports: the model registry, the store of runs, and where suites come from.

Storage failures that may pass (database unreachable) raise `cairn_bus.TransientError` or an
`OSError`; `EvaluatorError`s are the caller's mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from cairn_evaluator.domain.registry import ModelVersion, Promotion, PromotionOutcome, PromotionRequest
from cairn_evaluator.domain.runs import Answer, Run, RunCase
from cairn_evaluator.domain.shadow import Mirror, Shadow, ShadowAnswer
from cairn_evaluator.domain.suites import Suite
from cairn_evaluator.online.conclusions import ExperimentConclusion
from cairn_evaluator.online.records import (
    AlertFiring,
    FeedbackRecord,
    PromptAttribution,
    RequestRecord,
    ResponseRecord,
)
from cairn_events import SuiteScore


class Registry(Protocol):
    """Model versions with stages, aliases and the history of every stage change.

    Promises: one production version per model (promoting to production archives the one there, in
    the same transaction); a promotion is applied once per `event_id`.
    """

    async def register(self, version: ModelVersion) -> bool:
        """Record a new version at its stage; False (nothing changed) when it is known already."""
        ...

    async def get(self, name: str, version: int) -> ModelVersion | None:
        """One version, or None."""
        ...

    async def versions(self, name: str) -> list[ModelVersion]:
        """Every version of the model, oldest first (empty for an unknown model)."""
        ...

    async def model_names(self) -> list[str]:
        """Every model with at least one version, sorted."""
        ...

    async def promote(self, request: PromotionRequest) -> PromotionOutcome:
        """Move the version to the stage (archiving the production version it replaces) and record
        every change in the history under `request.event_id`.

        An event id applied before changes nothing and returns what was recorded then; a version
        already at the stage changes nothing and returns no promotions. Raises VersionNotFoundError.
        """
        ...

    async def history(self, name: str) -> list[Promotion]:
        """Every stage change of the model, oldest first."""
        ...

    async def set_alias(self, name: str, alias: str, version: int, by: str) -> int | None:
        """Point `alias` at an existing version; returns the version it pointed at before, if any.

        Raises VersionNotFoundError.
        """
        ...

    async def aliases(self, name: str) -> dict[str, int]:
        """The model's aliases and their versions."""
        ...


class RunStore(Protocol):
    """Evaluation runs, the requests they sent (one per case and side) and their answers."""

    async def create(self, run: Run, cases: list[RunCase]) -> bool:
        """Store a new run with its cases; False (nothing changed) when the run id exists."""
        ...

    async def mark_sent(self, run_id: str) -> None:
        """Note that every request of the run was published (a redelivery then sends nothing)."""
        ...

    async def get(self, run_id: str) -> Run | None:
        """One run, or None."""
        ...

    async def runs(self, limit: int = 50) -> list[Run]:
        """The latest runs, newest first."""
        ...

    async def cases(self, run_id: str) -> list[RunCase]:
        """The run's requests, by case index then side (`b` before `c`)."""
        ...

    async def record_answer(self, request_id: str, answer: Answer) -> str | None:
        """Keep the first answer to an evaluation request; the run id of the request (also when it was
        answered before), or None for a request no run sent."""
        ...

    async def running(self) -> list[Run]:
        """Every run still running."""
        ...

    async def complete(
        self,
        run_id: str,
        scores: list[SuiteScore],
        passed: bool,
        verdict: str,
        report_uri: str | None,
        at: datetime,
    ) -> bool:
        """End a running run with its scores; False when it had ended already (nothing changes)."""
        ...


class SuiteSource(Protocol):
    """The configured suites (scenario, adversarial, ...)."""

    def load(self) -> list[Suite]:
        """Every suite, by name. Raises SuiteError for an invalid suite."""
        ...


class Embedder(Protocol):
    """Texts to vectors (the online part's groundedness and request drift)."""

    name: str

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order (blocking: call it off the event loop)."""
        ...


class OnlineStore(Protocol):
    """What the evaluator keeps of live traffic, and the alerts it raised.

    Promises: every record is kept once per event id (a redelivery changes nothing and returns False);
    reads return records ordered by their time, oldest first, at most `limit` of the newest.
    """

    async def record_response(self, record: ResponseRecord) -> bool:
        """Keep a response; False when its event id is known."""
        ...

    async def record_request(self, record: RequestRecord) -> bool:
        """Keep a request; False when its event id is known."""
        ...

    async def erase_tenant(self, tenant: str) -> int:
        """Forget what was derived from a tenant's content (the questions' embeddings): the number of
        requests it held embeddings of. The counts and timings stay."""
        ...

    async def record_feedback(self, record: FeedbackRecord) -> bool:
        """Keep a feedback; False when its event id is known."""
        ...

    async def record_attribution(self, record: PromptAttribution) -> bool:
        """Keep the experiment and variant of a request; False when its event id is known."""
        ...

    async def responses(self, since: datetime | None, until: datetime, limit: int) -> list[ResponseRecord]:
        """Responses completed in (since, until]."""
        ...

    async def responses_for(self, request_ids: Sequence[str]) -> list[ResponseRecord]:
        """The responses to these requests (any time)."""
        ...

    async def requests(self, since: datetime | None, until: datetime, limit: int) -> list[RequestRecord]:
        """Requests submitted in (since, until]."""
        ...

    async def feedback(self, since: datetime | None, until: datetime, limit: int) -> list[FeedbackRecord]:
        """Feedback submitted in (since, until]."""
        ...

    async def attributions(self, request_ids: Sequence[str]) -> list[PromptAttribution]:
        """The experiment attributions of these requests."""
        ...

    async def experiment_attributions(
        self, tenant: str, prompt_name: str, experiment: str, limit: int
    ) -> list[PromptAttribution]:
        """The attributions of one experiment of a tenant's prompt, oldest first, at most `limit` of
        the newest."""
        ...

    async def feedback_for(self, request_ids: Sequence[str]) -> list[FeedbackRecord]:
        """The feedback on these requests (any time), oldest first."""
        ...

    async def record_conclusion(self, conclusion: ExperimentConclusion) -> bool:
        """Keep an experiment's conclusion (unpublished); False when its id is known (the first stays)."""
        ...

    async def conclusion(self, conclusion_id: str) -> ExperimentConclusion | None:
        """A conclusion by id, or None."""
        ...

    async def mark_conclusion_published(self, conclusion_id: str) -> None:
        """Note that the conclusion was published."""
        ...

    async def fire(self, firing: AlertFiring, cooldown: timedelta) -> bool:
        """Record a firing unless its key fired less than `cooldown` before `firing.raised_at` (or its
        alert id is known); whether it was recorded. Atomic: two checkers never both fire a key."""
        ...

    async def mark_published(self, alert_id: str) -> None:
        """Note that the firing was published."""
        ...

    async def unpublished(self) -> list[AlertFiring]:
        """Firings recorded but not yet published, oldest first."""
        ...

    async def alerts(self, since: datetime | None, limit: int = 100) -> list[AlertFiring]:
        """Firings raised after `since`, newest first."""
        ...


class ShadowStore(Protocol):
    """Shadows (candidates that live requests are mirrored to), the requests they mirrored, and the
    answers of both sides.

    Promises: a mirror is kept once per (shadow, live request), an answer once per (shadow, live
    request, side): a redelivery changes nothing and returns False; reads return at most `limit` of
    the newest, oldest first.
    """

    async def save_shadow(self, shadow: Shadow) -> None:
        """Create the shadow, or replace the one with its id."""
        ...

    async def get_shadow(self, shadow_id: str) -> Shadow | None:
        """One shadow, or None."""
        ...

    async def shadows(self) -> list[Shadow]:
        """Every shadow, by id."""
        ...

    async def record_mirror(self, mirror: Mirror) -> bool:
        """Keep a mirrored request; False when the shadow mirrored that request before."""
        ...

    async def mirror_for(self, shadow_request_id: str) -> Mirror | None:
        """The mirror that sent this shadow request, or None."""
        ...

    async def record_answer(self, answer: ShadowAnswer) -> bool:
        """Keep one side's final answer; False when that side of that request was kept before."""
        ...

    async def answers_for(self, shadow_id: str, request_id: str) -> list[ShadowAnswer]:
        """Both sides' answers of one mirrored request, as filed so far."""
        ...

    async def mirrors(self, shadow_id: str, limit: int) -> list[Mirror]:
        """The shadow's mirrored requests."""
        ...

    async def answers(self, shadow_id: str, limit: int) -> list[ShadowAnswer]:
        """The shadow's answers, both sides."""
        ...

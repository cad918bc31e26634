"""A whole run against the real stack: the PostgreSQL registry and runs, held-out rows and the report in S3."""

from __future__ import annotations

import uuid

import pytest

from cairn_bus import InMemoryPublisher
from cairn_bus.objects import S3ObjectStore
from cairn_evaluator.adapters.suite_files import StaticSuites
from cairn_evaluator.app import router
from cairn_evaluator.bootstrap import build
from cairn_evaluator.domain.registry import PromotionRequest
from cairn_evaluator.handlers import on_model_registered
from cairn_evaluator.settings import Settings
from cairn_events import (
    EvaluationCompletedV1,
    ModelPromotedV1,
    ModelStage,
    RequestSubmittedV1,
    ResponseStatus,
)

from .conftest import (
    T0,
    adversarial_suite,
    answer_all,
    good_model,
    heldout_rows,
    meta,
    put_heldout,
    registered,
)

pytestmark = pytest.mark.integration


async def test_a_run_reads_heldout_rows_from_s3_and_promotes(
    fresh_database: str, local_stack: dict[str, str]
) -> None:
    settings = Settings(
        postgres_dsn=fresh_database,
        s3_endpoint=local_stack["CAIRN_S3_ENDPOINT"],
        s3_access_key=local_stack["CAIRN_S3_ACCESS_KEY"],
        s3_secret_key=local_stack["CAIRN_S3_SECRET_KEY"],  # type: ignore[arg-type]
        s3_bucket="cairn-evaluator-test",
    )
    store = S3ObjectStore.from_settings(settings)
    dataset = f"ds-{uuid.uuid4().hex[:8]}"
    put_heldout(store, heldout_rows(2), bucket=settings.s3_bucket, dataset=dataset)
    publisher = InMemoryPublisher("/cairn/evaluator", allowed_types=router.published_types)
    async with build(settings, publisher, suites=StaticSuites([adversarial_suite()])) as deps:
        base = registered(1, job_id=None)
        await on_model_registered(base, meta(base), deps)
        await deps.registry.promote(
            PromotionRequest(
                name="cairn-qa",
                version=1,
                to_stage=ModelStage.PRODUCTION,
                by="ana",
                reason="seed",
                event_id="seed",
                at=T0,
            )
        )
        candidate = registered(2, dataset=dataset)
        m = meta(candidate)
        await on_model_registered(candidate, m, deps)
        await on_model_registered(candidate, m, deps)  # redelivered
        requests = [
            e for e in publisher.events(RequestSubmittedV1.event_type) if isinstance(e, RequestSubmittedV1)
        ]
        assert len(requests) == 8  # (2 adversarial + 2 held-out) x 2 sides

        def baseline_misses(request: RequestSubmittedV1) -> tuple[ResponseStatus, str | None]:
            if request.model == "cairn-qa:1" and str(request.variables["question"]).startswith("question"):
                return ResponseStatus.COMPLETED, "no idea"
            return good_model(request)

        await answer_all(deps, baseline_misses)
        [completed] = publisher.events(EvaluationCompletedV1.event_type)
        assert isinstance(completed, EvaluationCompletedV1)
        assert completed.passed
        assert completed.report_uri is not None
        assert b"<svg" in store.get(completed.report_uri)
        [promoted] = publisher.events(ModelPromotedV1.event_type)
        assert isinstance(promoted, ModelPromotedV1)
        assert (promoted.version, promoted.to_stage) == (2, ModelStage.STAGING)
        stored = await deps.registry.get("cairn-qa", 2)
        assert stored is not None
        assert stored.stage is ModelStage.STAGING
        run = await deps.runs.get(completed.run_id)
        assert run is not None
        assert run.status == "passed"
        assert run.report_uri == completed.report_uri
        assert {s.suite for s in run.scores} == {"adversarial", "heldout", "completeness"}

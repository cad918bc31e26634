"""The behaviour every OnlineStore must pass; subclassed per backend with an `online_store` fixture
giving a new, empty store (not collected alone)."""

from __future__ import annotations

from datetime import timedelta

from cairn_evaluator.online.conclusions import ExperimentConclusion
from cairn_evaluator.online.records import (
    AlertFiring,
    FeedbackRecord,
    PromptAttribution,
    RequestRecord,
    ResponseRecord,
)
from cairn_evaluator.ports import OnlineStore
from cairn_events import ResponseStatus

from .conftest import T0


def response(n: int, minutes: int = 0, **kw: object) -> ResponseRecord:
    return ResponseRecord.model_validate(
        {
            "event_id": f"ev-{n}",
            "request_id": f"req-{n}",
            "tenant": "default",
            "prompt_name": "support-qa",
            "prompt_version": 1,
            "model": "cairn-qa",
            "model_version": "3",
            "status": ResponseStatus.COMPLETED,
            "refused": False,
            "input_tokens": 100,
            "output_tokens": 20,
            "groundedness": 0.75,
            "completed_at": T0 + timedelta(minutes=minutes),
            **kw,
        }
    )


def firing(alert_id: str, minutes: int, key: str = "RequestDriftDetected|default|support-qa") -> AlertFiring:
    return AlertFiring(
        alert_id=alert_id,
        key=key,
        alert_name=key.split("|")[0],
        severity="warning",
        summary="Requests drifted.",
        labels={"signal": "request_embedding", "tenant": "default"},
        value=0.4,
        raised_at=T0 + timedelta(minutes=minutes),
    )


class OnlineStoreBehaviour:
    """What every OnlineStore promises."""

    async def test_erasing_a_tenant_forgets_its_embeddings_only(self, online_store: OnlineStore) -> None:
        for n, tenant in enumerate(["acme", "acme", "beta"]):
            await online_store.record_request(
                RequestRecord(
                    event_id=f"rq-{n}",
                    request_id=f"req-{n}",
                    tenant=tenant,
                    prompt_name="support-qa",
                    prompt_length=10 + n,
                    embedding=[0.5, float(n)],
                    submitted_at=T0 + timedelta(minutes=n),
                )
            )
        assert await online_store.erase_tenant("acme") == 2
        assert await online_store.erase_tenant("acme") == 0
        kept = await online_store.requests(None, T0 + timedelta(hours=1), 10)
        assert sorted((r.tenant, r.prompt_length, r.embedding) for r in kept) == [
            ("acme", 10, None),
            ("acme", 11, None),
            ("beta", 12, [0.5, 2.0]),
        ]

    async def test_records_are_kept_once_per_event_id(self, online_store: OnlineStore) -> None:
        assert await online_store.record_response(response(1))
        assert not await online_store.record_response(response(1, groundedness=0.1))
        request = RequestRecord(
            event_id="rq-1",
            request_id="req-1",
            tenant="default",
            prompt_name="support-qa",
            prompt_length=42,
            embedding=[0.5, -0.25, 0.125],
            submitted_at=T0,
        )
        assert await online_store.record_request(request)
        assert not await online_store.record_request(request)
        fb = FeedbackRecord(
            event_id="fb-ev", feedback_id="fb-1", request_id="req-1", tenant="default", rating=4, thumbs="up",
            submitted_at=T0,
        )  # fmt: skip
        assert await online_store.record_feedback(fb)
        assert not await online_store.record_feedback(fb)
        attribution = PromptAttribution(
            event_id="pr-1", request_id="req-1", tenant="default", prompt_name="support-qa", prompt_version=2,
            experiment="exp1", variant="B", rendered_at=T0,
        )  # fmt: skip
        assert await online_store.record_attribution(attribution)
        assert not await online_store.record_attribution(attribution)
        assert await online_store.responses(None, T0, 10) == [response(1)]
        assert await online_store.requests(None, T0, 10) == [request]
        assert await online_store.feedback(None, T0, 10) == [fb]
        assert await online_store.attributions(["req-1", "req-9"]) == [attribution]
        assert await online_store.attributions([]) == []

    async def test_windows_are_half_open_ordered_and_keep_the_newest(self, online_store: OnlineStore) -> None:
        for n in (3, 1, 4, 2, 5):
            await online_store.record_response(response(n, minutes=n))
        got = await online_store.responses(T0 + timedelta(minutes=1), T0 + timedelta(minutes=4), 10)
        assert [r.request_id for r in got] == ["req-2", "req-3", "req-4"]
        newest = await online_store.responses(None, T0 + timedelta(minutes=10), 2)
        assert [r.request_id for r in newest] == ["req-4", "req-5"]
        assert [r.request_id for r in await online_store.responses_for(["req-5", "req-1", "nope"])] == [
            "req-1",
            "req-5",
        ]

    async def test_a_key_fires_again_only_after_the_cooldown(self, online_store: OnlineStore) -> None:
        hour = timedelta(hours=1)
        assert await online_store.fire(firing("a1", 0), hour)
        assert not await online_store.fire(firing("a1", 120), hour)  # the same firing again
        assert not await online_store.fire(firing("a2", 30), hour)
        assert await online_store.fire(firing("a3", 5, key="RefusalRateDrift|default|support-qa"), hour)
        assert await online_store.fire(firing("a4", 60), hour)
        assert [f.alert_id for f in await online_store.alerts(None)] == ["a4", "a3", "a1"]
        assert [f.alert_id for f in await online_store.alerts(T0 + timedelta(minutes=5))] == ["a4"]
        assert [f.alert_id for f in await online_store.alerts(None, limit=1)] == ["a4"]
        stored = (await online_store.alerts(None))[-1]
        assert stored == firing("a1", 0)

    async def test_firings_stay_unpublished_until_marked(self, online_store: OnlineStore) -> None:
        await online_store.fire(firing("a1", 0), timedelta(0))
        await online_store.fire(firing("a2", 1), timedelta(0))
        assert [f.alert_id for f in await online_store.unpublished()] == ["a1", "a2"]
        await online_store.mark_published("a1")
        assert [f.alert_id for f in await online_store.unpublished()] == ["a2"]
        assert [f.published for f in await online_store.alerts(None)] == [False, True]

    async def test_an_experiments_attributions_are_read_by_tenant_prompt_and_name(
        self, online_store: OnlineStore
    ) -> None:
        def attribution(
            n: int, experiment: str | None, tenant: str = "default", prompt: str = "qa"
        ) -> PromptAttribution:
            return PromptAttribution(
                event_id=f"ev-{n}",
                request_id=f"req-{n}",
                tenant=tenant,
                prompt_name=prompt,
                prompt_version=1 + n % 2,
                experiment=experiment,
                variant="a" if n % 2 else "b",
                rendered_at=T0 + timedelta(minutes=n),
            )

        for record in [
            attribution(3, "exp"),
            attribution(1, "exp"),
            attribution(2, "exp"),
            attribution(4, "other"),
            attribution(5, "exp", tenant="acme"),
            attribution(6, "exp", prompt="greet"),
            attribution(7, None),
        ]:
            assert await online_store.record_attribution(record)
        found = await online_store.experiment_attributions("default", "qa", "exp", 10)
        assert [a.request_id for a in found] == ["req-1", "req-2", "req-3"]  # oldest first
        newest = await online_store.experiment_attributions("default", "qa", "exp", 2)
        assert [a.request_id for a in newest] == ["req-2", "req-3"]
        assert await online_store.experiment_attributions("acme", "qa", "other", 10) == []

    async def test_feedback_is_read_by_request(self, online_store: OnlineStore) -> None:
        for n, request_id in enumerate(["req-1", "req-2", "req-1", "req-3"]):
            await online_store.record_feedback(
                FeedbackRecord(
                    event_id=f"fb-ev-{n}",
                    feedback_id=f"fb-{n}",
                    request_id=request_id,
                    tenant="default",
                    thumbs="up" if n % 2 else "down",
                    submitted_at=T0 + timedelta(minutes=10 - n),
                )
            )
        found = await online_store.feedback_for(["req-1", "req-3"])
        assert [(f.request_id, f.feedback_id) for f in found] == [
            ("req-3", "fb-3"),
            ("req-1", "fb-2"),
            ("req-1", "fb-0"),
        ]
        assert await online_store.feedback_for([]) == []

    async def test_an_experiment_conclusion_is_kept_once_then_marked_published(
        self, online_store: OnlineStore
    ) -> None:
        first = ExperimentConclusion(
            conclusion_id="c-1",
            tenant="default",
            prompt_name="qa",
            experiment="exp",
            winner="b",
            event={"winner": "b", "arms": [{"variant": "a"}, {"variant": "b"}]},
            concluded_at=T0,
        )
        assert await online_store.conclusion("c-1") is None
        assert await online_store.record_conclusion(first) is True
        assert await online_store.record_conclusion(first.model_copy(update={"winner": "a"})) is False
        stored = await online_store.conclusion("c-1")
        assert stored == first
        await online_store.mark_conclusion_published("c-1")
        published = await online_store.conclusion("c-1")
        assert published is not None
        assert published.published
        assert published.winner == "b"

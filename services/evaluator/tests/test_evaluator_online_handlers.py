"""The online handlers with in-memory adapters: what a live response, request, feedback and rendering
record; redelivery changes nothing; evaluation traffic is not live; the quality summaries."""

from __future__ import annotations

from datetime import timedelta

from cairn_evaluator.adapters.hashing import HashingEmbedder
from cairn_evaluator.deps import Deps
from cairn_evaluator.handlers import on_admin_action
from cairn_evaluator.online.records import sampled
from cairn_evaluator.quality import quality_summary
from cairn_evaluator.settings import Settings
from cairn_events import AdminActionRecordedV1, ResponseStatus, Verdict
from cairn_observability import metrics

from .conftest import Clock, make_deps
from .online_support import NOW, deliver, feedback, meta, rendered, request, response

CHUNK = "A generator is a function that uses yield to produce values lazily."
SUPPORTED = "A generator uses yield to produce values lazily."
UNSUPPORTED = "Bananas grow in tropical climates and are rich in potassium."


def online_deps(**settings: object) -> Deps:
    deps = make_deps(settings=Settings(**settings), clock=Clock(NOW))  # type: ignore[arg-type]
    deps.embedder = HashingEmbedder()
    return deps


def histogram_count(histogram: object, **labels: str) -> float:
    samples = histogram.labels(**labels).collect()[0].samples  # type: ignore[attr-defined]
    return next(s.value for s in samples if s.name.endswith("_count"))


async def everything(deps: Deps) -> tuple[int, int, int]:
    window = (None, NOW + timedelta(days=1), 1000)
    return (
        len(await deps.online.responses(*window)),
        len(await deps.online.requests(*window)),
        len(await deps.online.feedback(*window)),
    )


async def test_a_live_response_is_recorded_with_groundedness_once() -> None:
    deps = online_deps(groundedness_embedder="lexical")
    before = histogram_count(metrics.GROUNDEDNESS, tenant="t-once", model="cairn-qa:3")
    event = response("live-1", NOW, text=SUPPORTED, chunks=[CHUNK], tenant="t-once")
    envelope = await deliver(deps, event)
    await deliver(deps, event, envelope)  # redelivered
    [record] = await deps.online.responses(None, NOW, 10)
    assert record.groundedness == 1.0
    assert (record.prompt_key, record.model_key, record.input_tokens, record.output_tokens) == (
        "support-qa:1",
        "cairn-qa:3",
        120,
        30,
    )
    assert not record.refused
    assert histogram_count(metrics.GROUNDEDNESS, tenant="t-once", model="cairn-qa:3") == before + 1


async def test_an_unsupported_answer_scores_low_and_refusals_are_marked() -> None:
    deps = online_deps()
    await deliver(deps, response("live-1", NOW, text=UNSUPPORTED, chunks=[CHUNK]))
    await deliver(deps, response("live-2", NOW, status=ResponseStatus.BLOCKED, chunks=[CHUNK]))
    await deliver(deps, response("live-3", NOW, verdict=Verdict.BLOCK))
    await deliver(deps, response("live-4", NOW, text=SUPPORTED))  # no citations: not scored
    records = {r.request_id: r for r in await deps.online.responses(None, NOW, 10)}
    assert records["live-1"].groundedness == 0.0
    assert [records[k].refused for k in ("live-1", "live-2", "live-3", "live-4")] == [
        False,
        True,
        True,
        False,
    ]
    assert records["live-2"].groundedness is None
    assert records["live-4"].groundedness is None


async def test_groundedness_is_sampled_deterministically() -> None:
    deps = online_deps(groundedness_sample_rate=0.5)
    ids = [f"live-{i}" for i in range(40)]
    for rid in ids:
        await deliver(deps, response(rid, NOW, text=SUPPORTED, chunks=[CHUNK]))
    scored = {r.request_id for r in await deps.online.responses(None, NOW, 100) if r.groundedness is not None}
    assert scored == {rid for rid in ids if sampled(rid, 0.5)}
    assert 5 < len(scored) < 35
    assert all(sampled(rid, 1.0) for rid in ids)
    assert not any(sampled(rid, 0.0) for rid in ids)


async def test_requests_are_embedded_and_measured_once_and_evaluator_traffic_is_skipped() -> None:
    deps = online_deps(request_sample_rate=1.0)
    envelope = await deliver(deps, request("live-1", "How do generators work?", NOW))
    await deliver(deps, request("live-1", "How do generators work?", NOW), envelope)
    await deliver(deps, request("eval-run-0-c", "What does yield do?", NOW, user_id="cairn-evaluator"))
    await deliver(deps, response("eval-run-0-c", NOW, text=SUPPORTED, chunks=[CHUNK]))
    await deliver(deps, feedback("eval-run-0-c", NOW))
    [record] = await deps.online.requests(None, NOW, 10)
    assert record.prompt_name == "support-qa"
    assert record.prompt_length == len("How do generators work?")
    assert record.embedding is not None
    assert len(record.embedding) == 256
    assert await everything(deps) == (0, 1, 0)


async def test_feedback_is_kept_once_with_or_without_a_response() -> None:
    deps = online_deps()
    before = histogram_count(metrics.FEEDBACK_SCORE, tenant="default")
    envelope = await deliver(deps, feedback("unknown-request", NOW, rating=2, thumbs="down"))
    await deliver(deps, feedback("unknown-request", NOW, rating=2, thumbs="down"), envelope)
    assert await everything(deps) == (0, 0, 1)
    assert histogram_count(metrics.FEEDBACK_SCORE, tenant="default") == before + 1


async def test_summaries_per_prompt_model_and_variant() -> None:
    deps = online_deps(groundedness_embedder="lexical")
    t = NOW - timedelta(hours=1)
    await deliver(deps, response("a", t, text=SUPPORTED, chunks=[CHUNK], prompt_version=1))
    await deliver(deps, response("b", t, text=UNSUPPORTED, chunks=[CHUNK], prompt_version=1))
    await deliver(deps, response("c", t, text=SUPPORTED, chunks=[CHUNK], prompt_version=2, model_version="4"))
    await deliver(deps, response("d", t, status=ResponseStatus.BLOCKED, prompt_version=2, model_version="4"))
    await deliver(deps, response("old", NOW - timedelta(days=3), text=SUPPORTED, chunks=[CHUNK]))
    await deliver(deps, rendered("c", t, version=2, variant="B"))
    await deliver(deps, rendered("d", t, version=2, variant="B"))
    await deliver(deps, feedback("a", NOW, rating=5, thumbs="up"))
    await deliver(deps, feedback("b", NOW, rating=1, thumbs="down"))
    await deliver(deps, feedback("c", NOW, rating=4, thumbs="up"))
    await deliver(deps, feedback("old", NOW, rating=3, thumbs=None))  # its response is older than the window

    by_prompt = {r.group: r for r in await quality_summary(deps, timedelta(hours=24), "prompt")}
    assert set(by_prompt) == {"support-qa:1", "support-qa:2"}
    v1, v2 = by_prompt["support-qa:1"], by_prompt["support-qa:2"]
    assert (v1.responses, v1.scored, v1.mean_groundedness, v1.hallucination_rate) == (2, 2, 0.5, 0.5)
    assert (v1.feedback, v1.mean_score, v1.thumbs_up_rate, v1.refusal_rate) == (3, 3.0, 0.5, 0.0)
    assert (v2.responses, v2.scored, v2.mean_groundedness, v2.hallucination_rate) == (2, 1, 1.0, 0.0)
    assert (v2.mean_score, v2.thumbs_up_rate, v2.refusal_rate) == (4.0, 1.0, 0.5)

    by_model = {r.group: r.responses for r in await quality_summary(deps, timedelta(hours=24), "model")}
    assert by_model == {"cairn-qa:3": 2, "cairn-qa:4": 2}
    by_variant = {r.group: r for r in await quality_summary(deps, timedelta(hours=24), "variant")}
    assert set(by_variant) == {"exp1/B", "support-qa:1"}
    assert by_variant["exp1/B"].responses == 2
    assert by_variant["exp1/B"].thumbs_up_rate == 1.0


async def test_a_tenant_erasure_forgets_its_questions_embeddings() -> None:
    deps = online_deps(request_sample_rate=1.0)
    await deliver(deps, request("live-1", "How do generators work?", NOW, tenant="acme"))
    await deliver(deps, request("live-2", "What does yield do?", NOW, tenant="beta"))

    def action(name: str, target: str) -> AdminActionRecordedV1:
        return AdminActionRecordedV1(
            action_id=f"a-{name}",
            actor="cli:ops",
            actor_role="admin",
            tenant=target,
            action=name,
            target=target,
            recorded_at=NOW,
        )

    await on_admin_action(action("apikey.created", "acme"), meta(action("apikey.created", "acme")), deps)
    assert all(r.embedding is not None for r in await deps.online.requests(None, NOW, 10))
    await on_admin_action(action("tenant.erase", "acme"), meta(action("tenant.erase", "acme")), deps)
    kept = {r.tenant: r for r in await deps.online.requests(None, NOW, 10)}
    assert kept["acme"].embedding is None
    assert kept["acme"].prompt_length == len("How do generators work?")
    assert kept["beta"].embedding is not None

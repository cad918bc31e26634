"""Shadow traffic with in-memory adapters: the mirror publishes a shadow twin of selected live
requests (never of a replay or shadow request), both answers are filed and scored whichever comes
first, a held answer waits for the final one, and the evidence reaches the promotion gate."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from cairn_bus import EventMeta, InMemoryPublisher, build_meta
from cairn_evaluator.adapters.hashing import HashingEmbedder
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.errors import ShadowConflictError
from cairn_evaluator.domain.shadow import (
    Estimate,
    pairs_of,
    shadow_gate,
    shadow_request,
    shadow_request_id,
    summarize_shadow,
)
from cairn_evaluator.handlers import on_model_registered
from cairn_evaluator.online.records import sampled
from cairn_evaluator.settings import Settings
from cairn_evaluator.shadow import shadow_report, start_shadow, stop_shadow
from cairn_events import (
    EvaluationCompletedV1,
    RequestSubmittedV1,
    ResponseStatus,
)
from cairn_events.base import ID_PATTERN

from .conftest import Clock, answer_all, good_model, make_deps, registered
from .online_support import NOW, deliver, request, response
from .shadow_behaviour import a_mirror, a_shadow, an_answer

CHUNK = "A generator is a function that uses yield to produce values lazily."
SUPPORTED = "A generator uses yield to produce values lazily."
UNSUPPORTED = "Bananas grow in tropical climates and are rich in potassium."


def shadow_deps(**settings: object) -> Deps:
    deps = make_deps(
        settings=Settings(groundedness_embedder="lexical", shadow_refresh_s=0, **settings),  # type: ignore[arg-type]
        clock=Clock(NOW),
    )
    deps.embedder = HashingEmbedder()
    return deps


def published(deps: Deps) -> InMemoryPublisher:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return deps.publisher


def twins(deps: Deps) -> list[tuple[RequestSubmittedV1, EventMeta]]:
    return [
        (m.event, m.meta)
        for m in published(deps).messages
        if isinstance(m.event, RequestSubmittedV1) and m.meta.replay_id
    ]


def live_ids(n: int, share: float) -> list[str]:
    """The first `n` request ids a shadow of `share` selects."""
    return [rid for rid in (f"live-{i}" for i in range(1000)) if sampled(rid, share)][:n]


# the domain


def test_a_shadow_needs_a_candidate_and_a_valid_id() -> None:
    with pytest.raises(ValueError, match="candidate"):
        a_shadow(prompt=None)
    with pytest.raises(ValueError):
        a_shadow("Not Valid!")
    assert a_shadow(model="cairn-qa:2").candidate == "model cairn-qa:2, prompt qa:3"


def test_shadow_request_ids_are_stable_valid_and_short() -> None:
    assert shadow_request_id("req-1", "qa-v3") == "shadow:qa-v3:req-1"
    long = "x" * 128
    derived = shadow_request_id(long, "qa-v3")
    assert derived == shadow_request_id(long, "qa-v3")
    assert derived != shadow_request_id("y" * 128, "qa-v3")
    assert len(derived) <= 128
    for made in (derived, shadow_request_id("a:b.c-d_e", "s" * 48)):
        assert re.fullmatch(ID_PATTERN, made), made


def test_the_shadow_request_is_the_live_one_with_the_candidate_applied() -> None:
    live = request("req-1", "How do generators work?", NOW, prompt="support-qa@production")
    live = live.model_copy(update={"model": "cairn-qa:1", "metadata": {"channel": "web"}})
    twin = shadow_request(live, a_shadow(model="cairn-qa:2"))
    assert (twin.request_id, twin.prompt, twin.model) == ("shadow:qa-v3:req-1", "qa:3", "cairn-qa:2")
    assert twin.metadata == {"channel": "web", "shadow_id": "qa-v3", "shadow_of": "req-1"}
    unchanged = ("tenant", "variables", "messages", "retrieval", "params", "user_id", "submitted_at")
    assert all(getattr(twin, f) == getattr(live, f) for f in unchanged)
    prompt_only = shadow_request(live, a_shadow(prompt="qa@beta"))
    assert (prompt_only.prompt, prompt_only.model) == ("qa@beta", "cairn-qa:1")


def test_a_shadow_selects_a_deterministic_share_within_its_filters() -> None:
    shadow = a_shadow(share=0.3, tenant="acme", prompt_name="qa")
    chosen = [f"r{i}" for i in range(2000) if shadow.selects("acme", "qa", f"r{i}")]
    assert 500 < len(chosen) < 700
    assert chosen == [f"r{i}" for i in range(2000) if shadow.selects("acme", "qa", f"r{i}")]
    assert not any(shadow.selects("other", "qa", r) for r in chosen)
    assert not any(shadow.selects("acme", "faq", r) for r in chosen)
    assert not any(shadow.model_copy(update={"enabled": False}).selects("acme", "qa", r) for r in chosen)


def test_the_summary_pairs_both_sides_and_compares_groundedness() -> None:
    answers = [
        an_answer(1, "live", groundedness=0.5),
        an_answer(1, "shadow", groundedness=1.0, output_tokens=10),  # win
        an_answer(2, "live", groundedness=0.8),
        an_answer(2, "shadow", groundedness=0.82),  # tie
        an_answer(3, "live", groundedness=0.9),
        an_answer(3, "shadow", groundedness=0.3, status=ResponseStatus.COMPLETED),  # loss
        an_answer(4, "live", groundedness=None, status=ResponseStatus.BLOCKED, refused=True),
        an_answer(4, "shadow", groundedness=0.7),  # a pair, not scored
        an_answer(5, "live"),  # no shadow answer yet: no pair
    ]
    mirrors = [a_mirror(n) for n in (1, 2, 3, 4, 5, 6)]
    assert [p.request_id for p in pairs_of(answers, mirrors)] == ["req-1", "req-2", "req-3", "req-4"]
    s = summarize_shadow(answers, mirrors, cost_of=lambda a: (a.output_tokens or 0) * 0.001)
    assert (s.mirrored, s.live_answers, s.shadow_answers, s.pairs, s.scored_pairs) == (6, 5, 4, 4, 3)
    assert (s.wins, s.ties, s.losses) == (1, 1, 1)
    assert s.live_groundedness.mean == pytest.approx((0.5 + 0.8 + 0.9) / 3, abs=1e-4)
    assert s.shadow_groundedness.mean == pytest.approx((1.0 + 0.82 + 0.3) / 3, abs=1e-4)
    assert s.groundedness_delta.mean == pytest.approx((0.5 + 0.02 - 0.6) / 3, abs=1e-4)
    delta = s.groundedness_delta
    assert delta.low is not None
    assert delta.high is not None
    assert delta.low < delta.mean < delta.high
    assert (s.live_refusal_rate, s.shadow_refusal_rate) == (0.25, 0.0)
    assert s.live_latency_ms.mean == 5000.0  # answered 5 s after submission
    assert s.shadow_latency_ms.mean == 4000.0  # answered 4 s after mirroring
    assert (s.live_cost_usd, s.shadow_cost_usd) == (pytest.approx(0.08), pytest.approx(0.07))


def test_the_gate_wants_enough_pairs_and_no_larger_drop_than_allowed() -> None:
    def summary(live: list[float], shadow: list[float]):  # type: ignore[no-untyped-def]
        answers = [an_answer(i, "live", groundedness=g) for i, g in enumerate(live)]
        answers += [an_answer(i, "shadow", groundedness=g) for i, g in enumerate(shadow)]
        return summarize_shadow(answers, [])

    close = summary([0.8, 0.6, 0.7], [0.75, 0.6, 0.68])
    assert shadow_gate(close, min_pairs=3, max_drop=0.05)[0]
    assert not shadow_gate(close, min_pairs=4, max_drop=0.05)[0]
    worse = summary([0.8, 0.6, 0.7], [0.5, 0.4, 0.6])
    passed, note = shadow_gate(worse, min_pairs=3, max_drop=0.05)
    assert not passed
    assert "below live" in note
    assert Estimate.of([1.0]) == Estimate(1, 1.0)


# the handlers


async def test_a_selected_live_request_is_mirrored_once_as_a_shadow_request() -> None:
    deps = shadow_deps()
    await start_shadow(deps, a_shadow(model="cairn-qa:2", share=0.5))
    [chosen] = live_ids(1, 0.5)
    skipped = next(f"live-{i}" for i in range(1000) if not sampled(f"live-{i}", 0.5))
    live = request(chosen, "How do generators work?", NOW)
    envelope = await deliver(deps, live)
    await deliver(deps, live, envelope)  # redelivered: the same twin, the same id
    await deliver(deps, request(skipped, "And lists?", NOW))
    [(twin, meta), (again, again_meta)] = twins(deps)
    assert again == twin
    assert again_meta.id == meta.id
    assert (twin.request_id, twin.model, twin.prompt) == (f"shadow:qa-v3:{chosen}", "cairn-qa:2", "qa:3")
    assert (meta.replay_id, meta.replay_of, meta.causation_id) == ("shadow:qa-v3", envelope.id, envelope.id)
    assert meta.correlation_id == twin.request_id
    assert published(deps).messages[0].topic == "cairn.requests"
    assert await deps.shadows.mirrors("qa-v3", 10) == [
        (await deps.shadows.mirror_for(twin.request_id))  # type: ignore[list-item]
    ]
    # the live request is observed for drift once; the shadow request is not live traffic
    await deliver(deps, twin, meta)
    observed = await deps.online.requests(None, NOW + timedelta(days=1), 10)
    assert sorted(r.request_id for r in observed) == sorted([chosen, skipped])


async def test_replays_shadows_and_the_evaluators_own_requests_are_never_mirrored() -> None:
    deps = shadow_deps()
    await start_shadow(deps, a_shadow(share=1.0))
    replayed = request("live-1", "q", NOW)
    replay_meta = build_meta(replayed, source="/cairn/cli", replay_id="replay-7", replay_of="orig")
    await deliver(deps, replayed, replay_meta)
    await deliver(deps, request("live-2", "q", NOW, user_id="cairn-evaluator"))
    await deliver(deps, request("eval-abc-0-c", "q", NOW))
    assert twins(deps) == []
    await stop_shadow(deps, "qa-v3", "cli:ann")
    await deliver(deps, request("live-3", "q", NOW))
    assert twins(deps) == []


@pytest.mark.parametrize("shadow_first", [False, True])
async def test_both_answers_are_filed_and_scored_whichever_comes_first(shadow_first: bool) -> None:
    deps = shadow_deps()
    await start_shadow(deps, a_shadow(model="cairn-qa:2", share=1.0))
    live = request("live-1", "How do generators work?", NOW)
    await deliver(deps, live)
    [(twin, twin_meta)] = twins(deps)
    live_answer = response("live-1", NOW + timedelta(seconds=2), text=UNSUPPORTED, chunks=[CHUNK])
    shadow_answer = response(
        twin.request_id, NOW + timedelta(seconds=3), text=SUPPORTED, chunks=[CHUNK], model_version="2"
    )
    shadow_meta = build_meta(shadow_answer, source="/cairn/safety", cause=twin_meta)
    assert shadow_meta.replay_id == "shadow:qa-v3"
    held = response("live-1", NOW, status=ResponseStatus.HELD)
    await deliver(deps, held)  # not final: neither side, nor live quality, counts it
    if shadow_first:
        await deliver(deps, shadow_answer, shadow_meta)
    await deliver(deps, live_answer)
    if not shadow_first:
        await deliver(deps, shadow_answer, shadow_meta)
    await deliver(deps, shadow_answer, shadow_meta)  # redelivered
    # a live answer to a request in flight before the shadow started: filed, never mirrored, not counted
    await deliver(deps, response("live-0", NOW, text=SUPPORTED, chunks=[CHUNK]))
    report = await shadow_report(deps, "qa-v3")
    s = report.summary
    assert (s.mirrored, s.pairs, s.scored_pairs, s.wins, s.losses) == (1, 1, 1, 1, 0)
    assert (s.live_answers, s.shadow_answers) == (1, 1)
    assert s.live_groundedness.mean == 0.0
    assert s.shadow_groundedness.mean == 1.0
    assert s.shadow_latency_ms.n == 1
    # live quality saw the final live answer only: not the held one, not the shadow's
    records = await deps.online.responses(None, NOW + timedelta(days=1), 10)
    assert sorted((r.request_id, r.status) for r in records) == [
        ("live-0", ResponseStatus.COMPLETED),
        ("live-1", ResponseStatus.COMPLETED),
    ]


async def test_a_restart_keeps_the_candidate_and_a_new_candidate_needs_a_new_shadow() -> None:
    deps = shadow_deps()
    first = await start_shadow(deps, a_shadow(share=0.2))
    await stop_shadow(deps, "qa-v3", "cli:bob")
    again = await start_shadow(deps, a_shadow(share=0.4, created_by="cli:bob", created_at=NOW))
    assert (again.enabled, again.share, again.created_by, again.created_at) == (
        True,
        0.4,
        "cli:ann",
        first.created_at,
    )
    with pytest.raises(ShadowConflictError, match="mirrors to prompt qa:3"):
        await start_shadow(deps, a_shadow(prompt="qa:4"))


# the gate


async def feed_pairs(deps: Deps, n: int, live_text: str, shadow_text: str) -> None:
    for rid in live_ids(n, 1.0):
        live = request(rid, "How do generators work?", NOW)
        await deliver(deps, live)
        twin, twin_meta = twins(deps)[-1]
        await deliver(deps, response(rid, NOW, text=live_text, chunks=[CHUNK]))
        answer = response(twin.request_id, NOW, text=shadow_text, chunks=[CHUNK], model_version="2")
        await deliver(deps, answer, build_meta(answer, source="/cairn/safety", cause=twin_meta))


async def run_candidate(deps: Deps) -> EvaluationCompletedV1:
    event = registered(2, job_id="job-2", dataset=None)
    await on_model_registered(event, build_meta(event, source="/cairn/tuner"), deps)
    await answer_all(deps, good_model)
    [completed] = list(published(deps).events(EvaluationCompletedV1.event_type))
    assert isinstance(completed, EvaluationCompletedV1)
    return completed


async def test_shadow_evidence_is_reported_in_the_run_and_not_gated_by_default() -> None:
    deps = shadow_deps()
    await start_shadow(deps, a_shadow("cand", model="cairn-qa:2", prompt=None, share=1.0))
    await feed_pairs(deps, 2, SUPPORTED, UNSUPPORTED)  # the candidate is worse, but not gated
    completed = await run_candidate(deps)
    shadow = {s.metric: s for s in completed.suites if s.suite == "shadow:cand"}
    assert shadow["pairs"].candidate == 2.0
    assert (shadow["groundedness"].candidate, shadow["groundedness"].baseline) == (0.0, 1.0)
    assert (shadow["win_rate"].candidate, shadow["win_rate"].baseline) == (0.0, 1.0)
    assert all(s.passed for s in shadow.values())
    assert completed.passed


async def test_the_gate_fails_a_candidate_without_enough_shadow_evidence() -> None:
    deps = shadow_deps(shadow_gate_min_pairs=3)
    completed = await run_candidate(deps)  # no shadow at all
    [missing] = [s for s in completed.suites if s.suite == "shadow"]
    assert (missing.metric, missing.candidate, missing.passed) == ("pairs", 0.0, False)
    assert not completed.passed

    deps = shadow_deps(shadow_gate_min_pairs=3)
    await start_shadow(deps, a_shadow("cand", model="cairn-qa:2", prompt=None, share=1.0))
    await feed_pairs(deps, 3, SUPPORTED, UNSUPPORTED)  # enough pairs, but groundedness dropped
    completed = await run_candidate(deps)
    by_metric = {s.metric: s for s in completed.suites if s.suite == "shadow:cand"}
    assert by_metric["pairs"].passed
    assert not by_metric["groundedness"].passed
    assert not completed.passed


async def test_the_gate_passes_a_candidate_as_grounded_as_live() -> None:
    deps = shadow_deps(shadow_gate_min_pairs=3)
    await start_shadow(deps, a_shadow("cand", model="cairn-qa:2", prompt=None, share=1.0))
    await feed_pairs(deps, 3, SUPPORTED, SUPPORTED)
    completed = await run_candidate(deps)
    by_metric = {s.metric: s for s in completed.suites if s.suite == "shadow:cand"}
    assert by_metric["pairs"].candidate == 3.0
    assert by_metric["groundedness"].passed
    assert completed.passed

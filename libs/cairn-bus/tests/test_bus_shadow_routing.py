"""Replay and shadow traffic: replay ids in the envelope, and answers routed to the shadow topic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from cairn_bus import EventMeta, InMemoryPublisher, build_meta, derive_event_id, meta_from_headers
from cairn_bus.publisher import destination
from cairn_events import Event, PromptRenderedV1, RequestSubmittedV1, ResponseCompletedV1

NOW = datetime(2025, 3, 4, 9, 15, 22, tzinfo=UTC)
LIVE = EventMeta(
    id="live-1",
    type="cairn.request.submitted.v1",
    source="/cairn/gateway",
    time=NOW,
    subject="req-1",
    correlation_id="req-1",
    tenant="acme",
)
REPLAYED = EventMeta(
    id="replayed-1",
    type="cairn.completion.generated.v1",
    source="/cairn/inference",
    time=NOW,
    subject="req-1",
    replay_id="replay-7",
    replay_of="orig-1",
)


def test_derived_events_inherit_the_replay_id_but_not_replay_of(prompt_rendered: PromptRenderedV1) -> None:
    meta = build_meta(prompt_rendered, source="/cairn/prompt-store", cause=REPLAYED, now=NOW)
    assert meta.replay_id == "replay-7"
    assert meta.replay_of is None
    assert meta.id == derive_event_id("replayed-1", prompt_rendered.event_type, "")


def test_a_shadow_trail_starts_from_a_live_cause(request_submitted: RequestSubmittedV1) -> None:
    shadow = build_meta(
        request_submitted,
        source="/cairn/evaluator",
        cause=LIVE,
        replay_id="shadow:c1",
        replay_of="live-1",
        now=NOW,
    )
    assert (shadow.replay_id, shadow.replay_of, shadow.causation_id) == ("shadow:c1", "live-1", "live-1")
    other = build_meta(
        request_submitted, source="/cairn/evaluator", cause=LIVE, replay_id="shadow:c2", now=NOW
    )
    live_copy = build_meta(request_submitted, source="/cairn/evaluator", cause=LIVE, now=NOW)
    # two shadows of one live event, and the live derivation, never share an id; each is stable
    assert len({shadow.id, other.id, live_copy.id}) == 3
    again = build_meta(
        request_submitted, source="/cairn/evaluator", cause=LIVE, replay_id="shadow:c1", now=NOW
    )
    assert again.id == shadow.id
    # the headers carry both
    back = meta_from_headers(shadow.to_headers())
    assert (back.replay_id, back.replay_of) == ("shadow:c1", "live-1")


def test_a_given_replay_id_equal_to_the_causes_keeps_the_usual_derivation(
    prompt_rendered: PromptRenderedV1,
) -> None:
    meta = build_meta(prompt_rendered, source="/x", cause=REPLAYED, replay_id="replay-7", now=NOW)
    assert meta.id == derive_event_id("replayed-1", prompt_rendered.event_type, "")


def test_destination_maps_only_replayed_responses() -> None:
    assert destination("cairn.responses", REPLAYED) == "cairn.responses.shadow"
    assert destination("cairn.responses", LIVE) == "cairn.responses"
    assert destination("cairn.prompts", REPLAYED) == "cairn.prompts"  # no shadow topic: the trail stays put


async def test_a_replayed_answer_goes_to_the_shadow_topic_and_a_live_one_upstream(
    example_event: Callable[..., Event],
) -> None:
    response = example_event(ResponseCompletedV1.event_type)
    publisher = InMemoryPublisher("/cairn/safety")
    await publisher.publish(response, cause=LIVE)
    await publisher.publish(response, cause=REPLAYED)
    await publisher.publish(response, cause=LIVE, replay_id="shadow:c1", replay_of=LIVE.id)
    topics = [(m.topic, m.meta.replay_id) for m in publisher.messages]
    assert topics == [
        ("cairn.responses", None),
        ("cairn.responses.shadow", "replay-7"),
        ("cairn.responses.shadow", "shadow:c1"),
    ]
    assert dict(publisher.messages[2].headers)["ce_replayid"] == b"shadow:c1"
    # other topics of a replayed trail are not moved: their consumers are Cairn's own services
    rendered = example_event(PromptRenderedV1.event_type)
    assert publisher.build(rendered, cause=REPLAYED).topic == "cairn.prompts"

"""Dead-letter records: the original bytes, where they came from, and the trail they join."""

from __future__ import annotations

from datetime import UTC, datetime

from cairn_bus import InMemoryPublisher, RawRecord, dead_letter_event, derive_event_id, publish_dead_letter
from cairn_events import DeadLetterKind, DeadLetterRecordedV1


def test_dead_letter_event_describes_the_record() -> None:
    record = RawRecord(
        "cairn.requests",
        1,
        99,
        b"\x01\x02",
        key=b"req-1",
        headers=[("ce_id", b"e-1"), ("x-empty", None)],
    )
    before = datetime.now(UTC)
    event = dead_letter_event(record, DeadLetterKind.NOT_AVRO, "truncated", "cairn-safety")
    assert event.model_dump(exclude={"dead_lettered_at"}) == {
        "reason": "truncated",
        "error_kind": DeadLetterKind.NOT_AVRO,
        "origin_topic": "cairn.requests",
        "origin_partition": 1,
        "origin_offset": 99,
        "consumer_group": "cairn-safety",
        "original_key_b64": "cmVxLTE=",
        "original_value_b64": "AQI=",
        "original_headers": [{"key": "ce_id", "value_b64": "ZS0x"}, {"key": "x-empty", "value_b64": ""}],
    }
    assert before <= event.dead_lettered_at <= datetime.now(UTC)


async def test_publish_dead_letter_joins_the_correlation_of_the_broken_message() -> None:
    publisher = InMemoryPublisher("/cairn/safety")
    record = RawRecord(
        "cairn.prompts", 0, 3, b"x", headers=[("ce_subject", b"req-s"), ("ce_correlationid", b"corr-c")]
    )
    meta = await publish_dead_letter(publisher, record, DeadLetterKind.NOT_JSON, "bad", "cairn-safety")
    assert meta.id == derive_event_id("cairn.prompts/0/3", DeadLetterRecordedV1.event_type, "cairn-safety")
    assert meta.correlation_id == "corr-c"
    assert meta.causation_id is None
    assert meta.subject is None
    [message] = publisher.messages
    assert message.topic == "cairn.deadletter"
    assert message.key == b"cairn.prompts"


async def test_without_correlation_the_subject_names_the_trail() -> None:
    publisher = InMemoryPublisher()
    record = RawRecord(
        "cairn.prompts", 0, 3, b"x", headers=[("ce_correlationid", b"\xff"), ("ce_subject", b"req-s")]
    )
    meta = await publish_dead_letter(publisher, record, DeadLetterKind.NOT_JSON, "bad", "g")
    assert meta.correlation_id == "req-s"


async def test_without_any_trail_the_dead_letter_starts_its_own() -> None:
    publisher = InMemoryPublisher()
    record = RawRecord("cairn.prompts", 0, 3, b"x", headers=[("ce_subject", b"")])
    meta = await publish_dead_letter(publisher, record, DeadLetterKind.NOT_JSON, "bad", "g")
    assert meta.correlation_id == meta.id

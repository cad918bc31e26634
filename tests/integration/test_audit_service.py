"""The audit service against the real broker and PostgreSQL: stores once, dead-letters bad input."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer

from cairn_audit import bootstrap
from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.app import router
from cairn_audit.domain.trail import causal_order
from cairn_audit.settings import Settings as AuditSettings
from cairn_bus.kafka import KafkaPublisher
from cairn_events import (
    CONTENT_TYPE_AVRO,
    DeadLetterKind,
    DeadLetterRecordedV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    encode,
)
from cairn_testing import expect_events, running_service, schema_examples

from .conftest import wait_for

pytestmark = pytest.mark.integration


def request(rid: str, at: datetime | None = None) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": rid,
            "prompt": "qa@production",
            "messages": [{"role": "user", "content": "What does yield do?"}],
            "submitted_at": (at or datetime.now(UTC)).isoformat(),
        }
    )


async def test_every_example_event_is_stored_once_with_its_origin(
    audit_settings: AuditSettings, audit_store: PostgresAuditStore, publisher: KafkaPublisher
) -> None:
    examples = schema_examples()
    assert len({e.event_type for e in examples}) >= 16
    async with running_service(router, audit_settings, bootstrap.build):
        sent = []
        for example in examples:
            message = publisher.build(example.event())
            await publisher.send(message)
            await publisher.send(message)  # a redelivery: same id, must be stored once
            sent.append(message)

        async def all_stored() -> bool:
            return all([await audit_store.get(m.meta.id) is not None for m in sent])

        await wait_for(all_stored)
    ids = {m.meta.id for m in sent}
    rows = await audit_store.pool.fetch(
        "SELECT event_id FROM audit_events WHERE event_id = ANY($1::text[])", list(ids)
    )
    assert len(rows) == len(ids)
    for m in sent:
        stored = await audit_store.get(m.meta.id)
        assert stored is not None
        assert stored.topic == m.topic
        assert stored.partition >= 0
        assert stored.offset >= 0
        assert stored.event_type == m.meta.type
        assert stored.headers["ce_type"] == m.meta.type
        assert stored.headers["ce_specversion"] == "1.0"
        assert stored.payload == json.loads(m.value)
    assert await audit_store.verify() == []


async def test_events_sent_twice_across_small_batches_are_stored_once_in_one_chain(
    audit_settings: AuditSettings, audit_store: PostgresAuditStore, publisher: KafkaPublisher
) -> None:
    """Batches of at most 7 records: copies of one event land in the same batch and in later ones;
    every event is stored (a copy clashing with the stored one would fail its batch), rows are
    numbered without gaps, and the chain verifies. Other sessions' events may be stored too."""
    settings = audit_settings.model_copy(update={"consumer_batch_max_records": 7})
    rid = f"dup-{uuid.uuid4().hex[:8]}"
    messages = [publisher.build(request(f"{rid}-{i}")) for i in range(40)]
    for first, second in zip(messages[::2], messages[1::2], strict=True):
        for message in (first, second, first, second):  # redeliveries, near and a batch apart
            await publisher.send(message)
    ids = [m.meta.id for m in messages]
    async with running_service(router, settings, bootstrap.build):
        await wait_for(lambda: _all_stored(audit_store, ids))
    mine = await audit_store.pool.fetch(
        "SELECT event_id, count(*) AS n FROM audit_events WHERE event_id = ANY($1::text[]) GROUP BY event_id",
        ids,
    )
    assert sorted((r["event_id"], r["n"]) for r in mine) == sorted((i, 1) for i in ids)
    seqs = [r["seq"] for r in await audit_store.pool.fetch("SELECT seq FROM audit_events ORDER BY seq")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert await audit_store.verify() == []


def _headers(
    rid: str, ce_type: str = RequestSubmittedV1.event_type, content_type: str = "application/json"
) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", uuid.uuid4().hex.encode()),
        ("ce_source", b"/cairn/test"),
        ("ce_type", ce_type.encode()),
        ("ce_subject", rid.encode()),
        ("content-type", content_type.encode()),
    ]


async def test_bad_input_goes_to_the_dead_letter_topic_and_the_service_keeps_running(
    audit_settings: AuditSettings,
    audit_store: PostgresAuditStore,
    producer: AIOKafkaProducer,
    publisher: KafkaPublisher,
    kafka_bootstrap: str,
) -> None:
    key = f"bad-{uuid.uuid4().hex[:8]}"
    valid = json.loads(encode(request(key)))
    invalid = {k: v for k, v in valid.items() if k != "submitted_at"}
    cases = {
        DeadLetterKind.NOT_JSON: (b"{this is not json", _headers(key)),
        DeadLetterKind.MISSING_HEADERS: (json.dumps(valid).encode(), [("ce_id", b"1")]),
        DeadLetterKind.SCHEMA_INVALID: (json.dumps(invalid).encode(), _headers(key)),
        DeadLetterKind.UNKNOWN_TYPE: (b"{}", _headers(key, "cairn.bogus.happened.v1")),
        DeadLetterKind.NOT_AVRO: (b"\xff\xff\xff", _headers(key, content_type=CONTENT_TYPE_AVRO)),
    }
    group = audit_settings.group_id

    def mine(meta: object, event: object) -> bool:
        return (
            isinstance(event, DeadLetterRecordedV1)
            and event.consumer_group == group
            and event.original_key_b64 == base64.b64encode(key.encode()).decode()
        )

    async with running_service(router, audit_settings, bootstrap.build):
        async with expect_events(kafka_bootstrap, "cairn.deadletter", where=mine, count=len(cases)) as got:
            sent_offsets = {}
            for kind, (value, headers) in cases.items():
                md = await producer.send_and_wait("cairn.requests", value, key=key.encode(), headers=headers)
                sent_offsets[kind] = (md.partition, md.offset, value)
            after = await publisher.publish(request(key))  # the service still works after the bad input
            await wait_for(lambda: audit_store.get(after.id))
        # the dead letters are events too: the audit store keeps them in the request's trail
        trail = await wait_for(lambda: _dead_letters_in_trail(audit_store, key, 4))

    letters = {e.error_kind: e for _, e in got.events if mine(None, e)}
    assert set(letters) == set(cases)
    for kind, (partition, offset, value) in sent_offsets.items():
        letter = letters[kind]
        assert isinstance(letter, DeadLetterRecordedV1)
        assert letter.origin_topic == "cairn.requests"
        assert (letter.origin_partition, letter.origin_offset) == (partition, offset)
        assert base64.b64decode(letter.original_value_b64) == value
        assert letter.reason
    assert "submitted_at" in letters[DeadLetterKind.SCHEMA_INVALID].reason
    assert "ce_type" in letters[DeadLetterKind.MISSING_HEADERS].reason
    assert "cairn.bogus.happened.v1" in letters[DeadLetterKind.UNKNOWN_TYPE].reason
    assert all(r.event_type == DeadLetterRecordedV1.event_type for r in trail)


async def _dead_letters_in_trail(store: PostgresAuditStore, rid: str, at_least: int) -> list[object] | None:
    records = [r for r in await store.trail(rid) if r.topic == "cairn.deadletter"]
    return records if len(records) >= at_least else None


async def test_trail_comes_back_in_causal_order(
    audit_settings: AuditSettings, audit_store: PostgresAuditStore, publisher: KafkaPublisher
) -> None:
    rid = f"trail-{uuid.uuid4().hex[:8]}"
    first = await publisher.publish(request(rid))
    rendered = PromptRenderedV1.model_validate(
        {
            "request_id": rid,
            "tenant": "default",
            "params": {},
            "prompt_name": "qa",
            "prompt_version": 3,
            "messages": [{"role": "user", "content": "What does yield do?"}],
            "rendered_at": datetime.now(UTC).isoformat(),
        }
    )
    second = await publisher.publish(rendered, cause=first)
    done = ResponseCompletedV1.model_validate(
        {
            "request_id": rid,
            "tenant": "default",
            "status": "failed",
            "reason": "no model",
            "completed_at": datetime.now(UTC).isoformat(),
        }
    )
    # published with a clock behind the cause: causal order must still put it last
    third_msg = publisher.build(done, cause=second)
    from dataclasses import replace

    skewed = replace(third_msg.meta, time=first.time - timedelta(seconds=5))
    await publisher.send(replace(third_msg, headers=skewed.to_headers(), meta=skewed))
    async with running_service(router, audit_settings, bootstrap.build):
        records = await wait_for(lambda: _at_least(audit_store, rid, 3))
    ordered = [n.record.event_id for n in causal_order(records)]
    assert ordered == [first.id, second.id, third_msg.meta.id]
    assert {r.correlation_id for r in records} == {rid}
    assert [r.causation_id for r in records if r.event_id == second.id] == [first.id]


async def _at_least(store: PostgresAuditStore, rid: str, n: int) -> list[object] | None:
    records = await store.trail(rid)
    return records if len(records) >= n else None


async def test_tampering_with_a_stored_event_is_detected(
    audit_settings: AuditSettings, audit_store: PostgresAuditStore, publisher: KafkaPublisher
) -> None:
    rid = f"tamper-{uuid.uuid4().hex[:8]}"
    metas = [await publisher.publish(request(f"{rid}-{i}")) for i in range(3)]
    async with running_service(router, audit_settings, bootstrap.build):
        await wait_for(lambda: _all_stored(audit_store, [m.id for m in metas]))
    assert await audit_store.verify() == []
    await audit_store.pool.execute(
        "UPDATE audit_events SET payload = jsonb_set(payload, '{prompt}', '\"forged\"') WHERE event_id = $1",
        metas[1].id,
    )
    breaks = await audit_store.verify()
    assert [b.event_id for b in breaks] == [metas[1].id]
    assert "hash" in breaks[0].reason


async def _all_stored(store: PostgresAuditStore, ids: list[str]) -> bool:
    return all([await store.get(i) is not None for i in ids])

"""The hash chain: an intact chain verifies; any edit, reorder or removal is found."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn_audit.domain.records import GENESIS_HASH, AuditRecord, ChainBreak, chain, chain_hash, verify_chain

T0 = datetime(2025, 3, 4, 9, 15, 22, 532000, tzinfo=UTC)
CONTENT = "content does not match its hash"
LINK = "prev_hash does not match the record before"


def record(n: int, **changes: Any) -> AuditRecord:
    base = AuditRecord(
        event_id=f"evt-{n}",
        event_type="cairn.request.submitted.v1",
        source="/cairn/gateway",
        event_time=T0 + timedelta(seconds=n),
        topic="cairn.requests",
        partition=0,
        offset=n,
        payload={"request_id": "req-1", "variables": {"city": "Oslo", "n": n}, "tags": ["a", "b"]},
        headers={"ce_id": f"evt-{n}", "ce_type": "cairn.request.submitted.v1"},
        key="req-1",
        subject="req-1",
        correlation_id="req-1",
        causation_id=f"evt-{n - 1}" if n > 1 else None,
        tenant="acme",
        recorded_at=T0 + timedelta(minutes=1),
    )
    return replace(base, **changes)


def stored(count: int = 3) -> list[AuditRecord]:
    """`count` records chained from genesis and numbered from 1, as a store keeps them."""
    return [
        replace(r, seq=i)
        for i, r in enumerate(chain([record(n) for n in range(1, count + 1)], GENESIS_HASH), 1)
    ]


def test_chain_links_each_record_to_the_one_before() -> None:
    first, second, third = stored()
    assert first.prev_hash == GENESIS_HASH == "0" * 64
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert first.hash == chain_hash(GENESIS_HASH, record(1))
    assert second.hash == chain_hash(str(first.hash), record(2))
    assert len({first.hash, second.hash, third.hash}) == 3
    assert all(len(r.hash or "") == 64 and int(r.hash or "", 16) >= 0 for r in (first, second, third))


def test_chain_returns_copies() -> None:
    originals = [record(1), record(2)]
    linked = chain(originals, GENESIS_HASH)
    assert originals[0].hash is None
    assert originals[0].prev_hash is None
    assert [replace(r, hash=None, prev_hash=None) for r in linked] == originals


def test_an_intact_chain_has_no_breaks() -> None:
    assert verify_chain(stored(5)) == []
    assert verify_chain([]) == []


def test_chain_hash_is_sha256_hex_over_prev_and_canonical_bytes() -> None:
    import hashlib

    r = record(1)
    assert (
        chain_hash("ab" * 32, r) == hashlib.sha256(("ab" * 32).encode() + b"\n" + r.canonical()).hexdigest()
    )


TAMPERS: dict[str, Any] = {
    "payload": {"request_id": "req-1", "variables": {"city": "Oslo", "n": 2}, "tags": ["a", "B"]},
    "headers": {"ce_id": "evt-2", "ce_type": "cairn.prompt.rendered.v1"},
    "event_id": "evt-x",
    "event_type": "cairn.prompt.rendered.v1",
    "source": "/cairn/forger",
    "event_time": T0 + timedelta(seconds=2, microseconds=1),
    "topic": "cairn.prompts",
    "partition": 1,
    "offset": 3,
    "content_type": "application/avro",
    "key": "req-2",
    "subject": "req-2",
    "correlation_id": "req-2",
    "causation_id": None,
    "tenant": "other",
    "replay_of": "evt-0",
    "replay_id": "replay-1",
    "recorded_at": T0 + timedelta(minutes=2),
}


@pytest.mark.parametrize(("name", "value"), TAMPERS.items(), ids=TAMPERS.keys())
def test_editing_any_stored_field_breaks_that_record(name: str, value: Any) -> None:
    records = stored()
    records[1] = replace(records[1], **{name: value})
    assert verify_chain(records) == [ChainBreak(2, records[1].event_id, CONTENT)]


def test_a_deep_payload_edit_is_found() -> None:
    records = stored()
    payload = {**records[0].payload, "variables": {"city": "Bergen", "n": 1}}
    records[0] = replace(records[0], payload=payload)
    assert verify_chain(records) == [ChainBreak(1, "evt-1", CONTENT)]


def test_an_added_header_is_found() -> None:
    records = stored()
    records[2] = replace(records[2], headers={**records[2].headers, "ce_tenant": "acme"})
    assert verify_chain(records) == [ChainBreak(3, "evt-3", CONTENT)]


def test_swapping_two_records_breaks_both_links() -> None:
    first, second, third = stored()
    assert verify_chain([first, third, second]) == [
        ChainBreak(3, "evt-3", LINK),
        ChainBreak(2, "evt-2", LINK),
    ]


def test_removing_a_record_breaks_the_next_link() -> None:
    first, _, third = stored()
    assert verify_chain([first, third]) == [ChainBreak(3, "evt-3", LINK)]


def test_rewriting_a_record_with_a_fresh_hash_breaks_the_next_link() -> None:
    records = stored()
    forged = replace(records[1], tenant="other")
    records[1] = replace(forged, hash=chain_hash(str(forged.prev_hash), forged))
    assert verify_chain(records) == [ChainBreak(3, "evt-3", LINK)]


def test_a_missing_hash_is_a_break() -> None:
    records = stored()
    records[2] = replace(records[2], hash=None)
    assert verify_chain(records) == [ChainBreak(3, "evt-3", CONTENT)]


def test_a_chain_that_does_not_start_at_genesis_is_a_break() -> None:
    records = chain([record(1), record(2)], "f" * 64)
    assert verify_chain(records) == [ChainBreak(None, "evt-1", LINK)]
    assert verify_chain(records, "f" * 64) == []


def test_a_later_segment_verifies_from_the_hash_before_it() -> None:
    records = stored(4)
    assert verify_chain(records[2:], str(records[1].hash)) == []
    assert verify_chain(records[2:]) == [ChainBreak(3, "evt-3", LINK)]


def test_seq_is_not_hashed() -> None:
    records = stored()
    records[0] = replace(records[0], seq=99)
    assert verify_chain(records) == []


def test_extra_is_not_hashed() -> None:
    assert chain_hash(GENESIS_HASH, record(1)) == chain_hash(GENESIS_HASH, record(1, extra={"note": "x"}))


def test_event_time_in_another_offset_hashes_the_same_as_in_utc() -> None:
    oslo = timezone(timedelta(hours=2))
    kolkata = timezone(timedelta(hours=5, minutes=30))
    local = record(1, event_time=datetime(2025, 3, 4, 11, 15, 22, 532000, tzinfo=oslo))
    in_utc = replace(local, event_time=local.event_time.astimezone(UTC))
    assert chain_hash(GENESIS_HASH, local) == chain_hash(GENESIS_HASH, in_utc)
    [linked] = chain([local], GENESIS_HASH)
    # a database hands the time back in UTC (or another offset): still verifies
    assert verify_chain([replace(linked, event_time=linked.event_time.astimezone(UTC))]) == []
    assert verify_chain([replace(linked, event_time=linked.event_time.astimezone(kolkata))]) == []
    assert verify_chain([replace(linked, recorded_at=T0.astimezone(kolkata) + timedelta(minutes=1))]) == []


def test_payload_key_order_does_not_change_the_hash() -> None:
    a = record(1, payload={"a": 1, "b": {"x": 1, "y": 2}})
    b = record(1, payload={"b": {"y": 2, "x": 1}, "a": 1})
    assert chain_hash(GENESIS_HASH, a) == chain_hash(GENESIS_HASH, b)


def test_canonical_bytes_are_compact_sorted_utf8_json() -> None:
    r = record(1, payload={"b": "ø", "a": 1}, headers={}, causation_id=None, recorded_at=None)
    assert (
        r.canonical()
        == (
            '{"causation_id":null,"content_type":"application/json","correlation_id":"req-1",'
            '"event_id":"evt-1","event_time":"2025-03-04T09:15:23.532000+00:00","event_type":'
            '"cairn.request.submitted.v1","headers":{},"key":"req-1","offset":1,"partition":0,'
            '"payload":{"a":1,"b":"ø"},"recorded_at":null,"replay_id":null,"replay_of":null,'
            '"source":"/cairn/gateway","subject":"req-1","tenant":"acme","topic":"cairn.requests"}'
        ).encode()
    )


@given(
    count=st.integers(min_value=1, max_value=8),
    data=st.data(),
)
def test_any_single_edit_anywhere_is_found(count: int, data: st.DataObject) -> None:
    records = stored(count)
    index = data.draw(st.integers(min_value=0, max_value=count - 1), label="index")
    name = data.draw(st.sampled_from(sorted(TAMPERS)), label="field")
    value = TAMPERS[name]
    if getattr(records[index], name) == value:
        value = data.draw(
            st.text(min_size=1, max_size=5).filter(lambda v: v != getattr(records[index], name))
        )
        if name in {"partition", "offset"}:
            value = getattr(records[index], name) + 100
        elif name in {"event_time", "recorded_at"}:
            value = getattr(records[index], name) + timedelta(seconds=1)
        elif name in {"payload", "headers"}:
            value = {"edited": True}
    records[index] = replace(records[index], **{name: value})
    breaks = verify_chain(records)
    assert breaks
    assert breaks[0].seq == index + 1

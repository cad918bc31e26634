"""The AuditStore behaviour suite: one set of tests every AuditStore implementation must pass.

Not collected by itself. A backend runs it by subclassing `AuditStoreBehaviour` as a `Test...`
class that provides two things:

* a `store` fixture: a new, empty store (sync or async fixture);
* `tamper(store, event_id, **changes)`: change stored columns of one record behind the store's
  back (for PostgreSQL, an UPDATE), so the suite can check that `verify` finds it.

`test_store_memory.py` runs it against `InMemoryAuditStore`; the PostgreSQL run does the same with
a store on a fresh database. Records here use only what survives a database round trip: JSON
payloads, microsecond times, times compared as instants (a database may return another offset).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cairn_audit.domain.records import GENESIS_HASH, AuditRecord, ChainBreak, chain_hash
from cairn_audit.ports import AuditStore

T0 = datetime(2025, 3, 4, 9, 15, 22, 532000, tzinfo=UTC)
CONTENT = "content does not match its hash"


def audit_record(n: int, **changes: Any) -> AuditRecord:
    """Event `evt-<n>` of request `req-a`, read from `cairn.requests` at offset n, n seconds after T0."""
    base = AuditRecord(
        event_id=f"evt-{n}",
        event_type="cairn.request.submitted.v1",
        source="/cairn/gateway",
        event_time=T0 + timedelta(seconds=n),
        topic="cairn.requests",
        partition=0,
        offset=n,
        payload={
            "request_id": "req-a",
            "prompt": "support-answer",
            "variables": {"city": "Oslo", "n": n, "ratio": 0.25, "ok": True, "none": None},
            "messages": [{"role": "user", "content": "Hei på deg ✓"}],
        },
        headers={"ce_id": f"evt-{n}", "ce_type": "cairn.request.submitted.v1", "ce_subject": "req-a"},
        key="req-a",
        subject="req-a",
        correlation_id="req-a",
        causation_id=f"evt-{n - 1}" if n > 1 else None,
        tenant="acme",
    )
    return replace(base, **changes)


def content_of(record: AuditRecord) -> AuditRecord:
    """What the caller gave: the record without what the store adds (seq, hashes, recorded_at)."""
    return replace(record, seq=None, prev_hash=None, hash=None, recorded_at=None)


class AuditStoreBehaviour:
    """Behaviour every AuditStore shows. Subclass as `Test<Backend>` with `store` and `tamper`."""

    @pytest.fixture
    def store(self) -> AuditStore:
        """A new, empty store; each backend overrides this fixture."""
        raise NotImplementedError

    async def tamper(self, store: AuditStore, event_id: str, **changes: Any) -> None:
        """Overwrite stored fields of one record without going through the store's API."""
        raise NotImplementedError

    async def append_all(self, store: AuditStore, records: Sequence[AuditRecord]) -> None:
        assert await store.append(records) == len(records)

    # --- append once ---------------------------------------------------------------------------

    async def test_a_new_store_is_empty(self, store: AuditStore) -> None:
        assert await store.count() == 0
        assert await store.verify() == []
        assert await store.get("evt-1") is None
        assert await store.trail("req-a") == []

    async def test_append_stores_records_and_says_how_many_were_new(self, store: AuditStore) -> None:
        assert await store.append([audit_record(1), audit_record(2)]) == 2
        assert await store.count() == 2

    async def test_appending_nothing_stores_nothing(self, store: AuditStore) -> None:
        assert await store.append([]) == 0
        assert await store.count() == 0

    async def test_the_same_event_twice_is_stored_once(self, store: AuditStore) -> None:
        assert await store.append([audit_record(1)]) == 1
        assert await store.append([audit_record(1)]) == 0
        assert await store.append([audit_record(1, offset=99)]) == 0  # a redelivery at another offset
        assert await store.count() == 1
        stored = await store.get("evt-1")
        assert stored is not None
        assert stored.offset == 1

    async def test_duplicates_within_one_batch_are_stored_once(self, store: AuditStore) -> None:
        assert await store.append([audit_record(1), audit_record(2), audit_record(1, offset=7)]) == 2
        assert await store.count() == 2
        assert [r.event_id for r in await store.trail("req-a")] == ["evt-1", "evt-2"]

    async def test_a_batch_mixing_old_and_new_stores_only_the_new(self, store: AuditStore) -> None:
        await store.append([audit_record(1)])
        assert await store.append([audit_record(1), audit_record(2)]) == 1
        assert await store.count() == 2
        assert await store.verify() == []

    # --- batches: duplicates never stored twice, one chain across batch boundaries -------------

    async def assert_one_chain(self, store: AuditStore, event_ids: Sequence[str]) -> None:
        """Exactly `event_ids` are stored, in that order, numbered 1..n without gaps, each linked
        to the one before, and `verify` agrees."""
        stored = await store.events(limit=len(event_ids) + 10)
        assert [r.event_id for r in stored] == list(event_ids)
        assert [r.seq for r in stored] == list(range(1, len(event_ids) + 1))
        assert [r.prev_hash for r in stored] == [GENESIS_HASH, *(r.hash for r in stored[:-1])]
        assert all(r.hash == chain_hash(str(r.prev_hash), r) for r in stored)
        assert await store.count() == len(event_ids)
        assert await store.verify() == []

    async def test_a_redelivered_batch_overlapping_the_last_one_extends_the_chain_once(
        self, store: AuditStore
    ) -> None:
        assert await store.append([audit_record(n) for n in (1, 2, 3, 4)]) == 4
        # consumed again after a crash before the commit, with two new events behind it
        assert await store.append([audit_record(n, offset=n + 100) for n in (3, 4, 5, 6)]) == 2
        await self.assert_one_chain(store, [f"evt-{n}" for n in (1, 2, 3, 4, 5, 6)])
        third = await store.get("evt-3")
        assert third is not None
        assert third.offset == 3

    async def test_a_batch_repeating_ids_keeps_each_events_first_copy_in_order(
        self, store: AuditStore
    ) -> None:
        batch = [
            audit_record(1),
            audit_record(2),
            audit_record(1, offset=70),
            audit_record(3),
            audit_record(2, offset=71),
            audit_record(2, offset=72),
            audit_record(4),
        ]
        assert await store.append(batch) == 4
        await self.assert_one_chain(store, ["evt-1", "evt-2", "evt-3", "evt-4"])
        assert [(await store.get(f"evt-{n}") or batch[0]).offset for n in (1, 2)] == [1, 2]

    async def test_a_batch_of_stored_events_only_leaves_the_chain_head_in_place(
        self, store: AuditStore
    ) -> None:
        await store.append([audit_record(1), audit_record(2)])
        assert await store.append([audit_record(2), audit_record(1), audit_record(2)]) == 0
        assert await store.append([audit_record(3)]) == 1
        await self.assert_one_chain(store, ["evt-1", "evt-2", "evt-3"])

    async def test_batches_of_every_size_with_overlaps_form_one_chain(self, store: AuditStore) -> None:
        sizes = [1, 250, 3, 1200, 2]
        batches, start = [], 1
        for size in sizes:
            # each batch repeats the last two events of the one before (a redelivery), and one of
            # its own events twice
            ids = [*range(max(1, start - 2), start), *range(start, start + size), start]
            batches.append([audit_record(n) for n in ids])
            start += size
        for batch, size in zip(batches, sizes, strict=True):
            assert await store.append(batch) == size
        await self.assert_one_chain(store, [f"evt-{n}" for n in range(1, start)])

    # --- what is stored ------------------------------------------------------------------------

    async def test_get_returns_what_was_appended(self, store: AuditStore) -> None:
        original = audit_record(1)
        before = datetime.now(UTC)
        await store.append([original])
        after = datetime.now(UTC)
        stored = await store.get("evt-1")
        assert stored is not None
        assert content_of(stored) == original
        assert stored.payload == original.payload
        assert stored.headers == original.headers
        assert stored.recorded_at is not None
        assert before - timedelta(seconds=1) <= stored.recorded_at <= after + timedelta(seconds=1)

    async def test_an_event_time_with_an_offset_is_the_same_instant(self, store: AuditStore) -> None:
        local = T0.astimezone(timezone(timedelta(hours=2)))
        await store.append([audit_record(1, event_time=local)])
        stored = await store.get("evt-1")
        assert stored is not None
        assert stored.event_time == T0
        assert await store.verify() == []
        assert [
            r.event_id for r in await store.in_range("cairn.requests", T0, T0 + timedelta(microseconds=1))
        ] == ["evt-1"]

    async def test_optional_fields_may_be_absent(self, store: AuditStore) -> None:
        bare = audit_record(1, key=None, subject=None, correlation_id=None, causation_id=None, tenant=None)
        await store.append([bare])
        stored = await store.get("evt-1")
        assert stored is not None
        assert content_of(stored) == bare
        assert await store.verify() == []

    # --- the chain -----------------------------------------------------------------------------

    async def test_records_are_numbered_and_chained_in_append_order(self, store: AuditStore) -> None:
        await store.append([audit_record(2), audit_record(1)])
        await store.append([audit_record(3)])
        second, first, third = [await store.get(f"evt-{n}") for n in (2, 1, 3)]
        assert second is not None
        assert first is not None
        assert third is not None
        assert (second.seq, first.seq, third.seq) == (1, 2, 3)
        assert second.prev_hash == GENESIS_HASH
        assert first.prev_hash == second.hash
        assert third.prev_hash == first.hash
        assert second.hash == chain_hash(GENESIS_HASH, second)
        assert third.hash == chain_hash(str(first.hash), third)
        assert await store.verify() == []

    async def test_a_duplicate_does_not_extend_the_chain(self, store: AuditStore) -> None:
        await store.append([audit_record(1)])
        await store.append([audit_record(1)])
        await store.append([audit_record(2)])
        second = await store.get("evt-2")
        first = await store.get("evt-1")
        assert second is not None
        assert first is not None
        assert second.seq == 2
        assert second.prev_hash == first.hash

    async def test_verify_finds_an_edited_payload(self, store: AuditStore) -> None:
        await self.append_all(store, [audit_record(1), audit_record(2), audit_record(3)])
        await self.tamper(store, "evt-2", payload={"request_id": "req-a", "prompt": "forged"})
        assert await store.verify() == [ChainBreak(2, "evt-2", CONTENT)]

    async def test_verify_finds_edited_headers(self, store: AuditStore) -> None:
        await self.append_all(store, [audit_record(1), audit_record(2)])
        await self.tamper(store, "evt-1", headers={"ce_id": "evt-1", "ce_type": "cairn.forged.v1"})
        assert await store.verify() == [ChainBreak(1, "evt-1", CONTENT)]

    async def test_verify_finds_an_edited_column(self, store: AuditStore) -> None:
        await self.append_all(store, [audit_record(1), audit_record(2)])
        await self.tamper(store, "evt-2", tenant="someone-else")
        assert await store.verify() == [ChainBreak(2, "evt-2", CONTENT)]

    async def test_verify_finds_a_rewritten_hash(self, store: AuditStore) -> None:
        await self.append_all(store, [audit_record(1), audit_record(2), audit_record(3)])
        stored = await store.get("evt-2")
        assert stored is not None
        forged = replace(stored, tenant="someone-else")  # as stored (an encrypted payload stays so)
        new_hash = chain_hash(str(stored.prev_hash), forged)
        await self.tamper(store, "evt-2", tenant="someone-else", hash=new_hash)
        assert await store.verify() == [ChainBreak(3, "evt-3", "prev_hash does not match the record before")]

    # --- queries -------------------------------------------------------------------------------

    async def test_trail_finds_events_by_subject_or_correlation_in_storage_order(
        self, store: AuditStore
    ) -> None:
        await self.append_all(
            store,
            [
                audit_record(3),
                audit_record(1),
                audit_record(4, subject=None, correlation_id="req-a"),  # e.g. a dead letter of req-a
                audit_record(5, subject="req-a", correlation_id="corr-x"),
                audit_record(6, subject="req-b", correlation_id="req-b"),
            ],
        )
        assert [r.event_id for r in await store.trail("req-a")] == ["evt-3", "evt-1", "evt-4", "evt-5"]
        assert [r.event_id for r in await store.trail("req-b")] == ["evt-6"]
        assert [r.event_id for r in await store.trail("corr-x")] == ["evt-5"]
        assert await store.trail("req-none") == []

    async def test_trails_of_several_requests_at_once(self, store: AuditStore) -> None:
        await self.append_all(
            store,
            [
                audit_record(1),
                audit_record(2, subject="req-b", correlation_id="req-b"),
                audit_record(3, subject=None, correlation_id="req-a"),
                audit_record(4, subject="req-b", correlation_id="req-a"),  # in both
                audit_record(5, subject="req-c", correlation_id="req-c"),
            ],
        )
        found = await store.trails(["req-a", "req-b", "req-none"])
        assert {k: [r.event_id for r in v] for k, v in found.items()} == {
            "req-a": ["evt-1", "evt-3", "evt-4"],
            "req-b": ["evt-2", "evt-4"],
            "req-none": [],
        }

    async def test_a_trail_can_be_limited_to_one_tenant(self, store: AuditStore) -> None:
        await self.append_all(
            store,
            [
                audit_record(1),
                audit_record(2, tenant="beta"),  # another tenant reusing the request id
                audit_record(3, tenant=None),
                audit_record(4),
            ],
        )
        assert [r.event_id for r in await store.trail("req-a", tenant="acme")] == ["evt-1", "evt-4"]
        assert [r.event_id for r in await store.trail("req-a", tenant="beta")] == ["evt-2"]
        assert await store.trail("req-a", tenant="gamma") == []
        assert len(await store.trail("req-a")) == 4

    async def test_events_filter_by_type_tenant_and_time_and_page_by_seq(self, store: AuditStore) -> None:
        other_type = "cairn.prompt.rendered.v1"
        await self.append_all(
            store,
            [
                audit_record(1),
                audit_record(2, event_type=other_type),
                audit_record(3, tenant="beta"),
                audit_record(4, tenant=None),
                audit_record(5),
                audit_record(6),
            ],
        )

        def ids(records: Sequence[AuditRecord]) -> list[str]:
            return [r.event_id for r in records]

        assert ids(await store.events()) == [f"evt-{n}" for n in range(1, 7)]
        assert ids(await store.events(tenant="acme")) == ["evt-1", "evt-2", "evt-5", "evt-6"]
        assert ids(await store.events(event_type=other_type)) == ["evt-2"]
        assert ids(await store.events(tenant="acme", since=T0 + timedelta(seconds=2))) == [
            "evt-2",
            "evt-5",
            "evt-6",
        ]
        assert ids(await store.events(until=T0 + timedelta(seconds=3))) == ["evt-1", "evt-2"]
        first = await store.events(tenant="acme", limit=2)
        assert ids(first) == ["evt-1", "evt-2"]
        rest = await store.events(tenant="acme", after_seq=first[-1].seq, limit=2)
        assert ids(rest) == ["evt-5", "evt-6"]
        assert await store.events(tenant="acme", after_seq=rest[-1].seq) == []
        assert ids(await store.events(tenant="acme", limit=3, newest_first=True)) == [
            "evt-6",
            "evt-5",
            "evt-2",
        ]
        assert ids(await store.events(event_type=other_type, newest_first=True)) == ["evt-2"]

    async def test_in_range_is_by_topic_and_half_open_time(self, store: AuditStore) -> None:
        await self.append_all(
            store,
            [
                audit_record(1),
                audit_record(2),
                audit_record(3, topic="cairn.prompts"),
                audit_record(4),
                audit_record(5),
            ],
        )
        start, end = T0 + timedelta(seconds=2), T0 + timedelta(seconds=4)
        assert [r.event_id for r in await store.in_range("cairn.requests", start, end)] == ["evt-2"]
        assert [r.event_id for r in await store.in_range("cairn.requests", start, None)] == [
            "evt-2",
            "evt-4",
            "evt-5",
        ]
        assert [r.event_id for r in await store.in_range("cairn.requests", None, end)] == ["evt-1", "evt-2"]
        assert [r.event_id for r in await store.in_range("cairn.prompts", None, None)] == ["evt-3"]
        assert await store.in_range("cairn.responses", None, None) == []

    async def test_in_range_limits_in_storage_order(self, store: AuditStore) -> None:
        await self.append_all(store, [audit_record(5), audit_record(1), audit_record(3)])
        assert [r.event_id for r in await store.in_range("cairn.requests", None, None, limit=2)] == [
            "evt-5",
            "evt-1",
        ]
        assert [r.event_id for r in await store.in_range("cairn.requests", None, None)] == [
            "evt-5",
            "evt-1",
            "evt-3",
        ]
        assert await store.in_range("cairn.requests", None, None, limit=0) == []

    async def test_in_range_compares_instants_across_offsets(self, store: AuditStore) -> None:
        await self.append_all(store, [audit_record(1)])
        plus_two = timezone(timedelta(hours=2))
        start = (T0 + timedelta(seconds=1)).astimezone(plus_two)
        assert [r.event_id for r in await store.in_range("cairn.requests", start, None)] == ["evt-1"]
        assert await store.in_range("cairn.requests", None, start) == []

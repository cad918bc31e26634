"""The audit store in PostgreSQL: one row per event id, chained under an advisory lock.

With a keyring (by default: when a master key is configured, see `cairn_auth.encryption`), tenants'
payloads are encrypted before they are chained and stored, and opened by every read method, so
readers get plain payloads and only the table holds ciphertext (`adapters.sealing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from cairn_audit.adapters.sealing import open_records, seal_records
from cairn_audit.domain.records import GENESIS_HASH, AuditRecord, ChainBreak, chain_hashes, verify_chain
from cairn_auth.encryption import Keyring, MasterKey, PostgresTenantKeyStore
from cairn_bus.postgres import migrate, transaction

CHAIN_LOCK = 0x0CA1_A0D1  # pg_advisory_xact_lock key serialising appends to the chain
MIGRATION_LOCK = 0x0CA1_A0D2  # pg_advisory_xact_lock key: replicas starting together migrate one by one

DDL = """
CREATE TABLE IF NOT EXISTS audit_events (
    seq             bigint      PRIMARY KEY,
    event_id        text        NOT NULL UNIQUE,
    event_type      text        NOT NULL,
    source          text        NOT NULL,
    event_time      timestamptz NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    "offset"        bigint      NOT NULL,
    key             text,
    content_type    text        NOT NULL,
    subject         text,
    correlation_id  text,
    causation_id    text,
    tenant          text,
    replay_of       text,
    replay_id       text,
    payload         jsonb       NOT NULL,
    headers         jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    prev_hash       text        NOT NULL,
    hash            text        NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_subject ON audit_events (subject);
CREATE INDEX IF NOT EXISTS audit_events_correlation ON audit_events (correlation_id);
CREATE INDEX IF NOT EXISTS audit_events_topic_time ON audit_events (topic, event_time);
DROP INDEX IF EXISTS audit_events_replay_of;
CREATE INDEX IF NOT EXISTS audit_events_tenant_seq ON audit_events (tenant, seq);
CREATE INDEX IF NOT EXISTS audit_events_type_seq ON audit_events (event_type, seq);
"""

_COLUMNS = (
    'seq, event_id, event_type, source, event_time, topic, partition, "offset", key, content_type, '
    "subject, correlation_id, causation_id, tenant, replay_of, replay_id, payload, headers, "
    "recorded_at, prev_hash, hash"
)
_COPY_COLUMNS = [c.strip().strip('"') for c in _COLUMNS.split(",")]
# the batch's ids already stored, and the chain's head (seq and hash are NULL on an empty table)
_CHAIN_STATE = """
SELECT (SELECT array_agg(event_id) FROM audit_events WHERE event_id = ANY($1::text[])) AS seen,
       head.seq, head.hash
FROM (SELECT 1) AS one
LEFT JOIN (SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1) AS head ON true
"""


def _row_to_record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=row["seq"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        source=row["source"],
        event_time=row["event_time"],
        topic=row["topic"],
        partition=row["partition"],
        offset=row["offset"],
        key=row["key"],
        content_type=row["content_type"],
        subject=row["subject"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        tenant=row["tenant"],
        replay_of=row["replay_of"],
        replay_id=row["replay_id"],
        payload=row["payload"],
        headers=row["headers"],
        recorded_at=row["recorded_at"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _row(r: AuditRecord, seq: int, recorded_at: datetime, prev_hash: str, hash_: str) -> tuple[Any, ...]:
    """The audit_events row of a record (in `_COLUMNS` order), numbered and chained."""
    return (
        seq,
        r.event_id,
        r.event_type,
        r.source,
        r.event_time,
        r.topic,
        r.partition,
        r.offset,
        r.key,
        r.content_type,
        r.subject,
        r.correlation_id,
        r.causation_id,
        r.tenant,
        r.replay_of,
        r.replay_id,
        r.payload if r.sealed_payload is None else r.sealed_payload,
        r.headers,
        recorded_at,
        prev_hash,
        hash_,
    )


def _by_request(ids: Sequence[str], records: Sequence[AuditRecord]) -> dict[str, list[AuditRecord]]:
    """Records grouped by the requested id they belong to (subject or correlation id), in order."""
    out: dict[str, list[AuditRecord]] = {i: [] for i in ids}
    for r in records:
        for request_id in dict.fromkeys((r.subject, r.correlation_id)):
            if request_id in out:
                out[request_id].append(r)
    return out


class PostgresAuditStore:
    """AuditStore on an asyncpg pool from `cairn_bus.postgres.create_pool` (jsonb as Python objects).

    `keyring` encrypts tenants' payloads: "environment" (the default) builds one on the pool's
    `tenant_keys` table when a master key is configured (`CAIRN_MASTER_KEY`...), none otherwise;
    None stores and reads payloads as they are.
    """

    def __init__(self, pool: Any, keyring: Keyring | Literal["environment"] | None = "environment") -> None:
        self.pool = pool
        self._keyring = keyring

    @property
    def keyring(self) -> Keyring | None:
        """The keyring in use (resolved from the environment on first use)."""
        if self._keyring == "environment":
            master = MasterKey.configured()
            self._keyring = Keyring(master, PostgresTenantKeyStore(self.pool)) if master else None
        return self._keyring

    async def migrate(self) -> None:
        """Create the tables and indexes if missing (replicas starting together migrate one by one)."""
        await migrate(self.pool, MIGRATION_LOCK, DDL)
        await PostgresTenantKeyStore(self.pool).migrate()

    async def _read(self, rows: Any) -> list[AuditRecord]:
        return await open_records(self.keyring, [_row_to_record(r) for r in rows])

    async def append(self, records: Sequence[AuditRecord]) -> int:
        """Store `records` (those not stored before), chained, in one transaction with one COPY.

        Under the chain lock: the batch's event ids already stored and the chain's head are read in
        one query, the new records are chained in Python, and the rows go in with one COPY. The lock
        makes the read and the COPY atomic for every appender, so no id is stored twice and no
        record is chained after a head that is no longer the last one.

        A database outage (refused or lost connection, shutdown, start-up) raises TransientError,
        so the consumer retries the batch instead of dead-lettering its events as bad rows.
        """
        if not records:
            return 0
        records = await seal_records(self.keyring, records)  # before the lock: keys are looked up once
        async with transaction(self.pool, "audit database unavailable") as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK)
            state = await conn.fetchrow(_CHAIN_STATE, [r.event_id for r in records])
            seen = set(state["seen"] or ())
            fresh: list[AuditRecord] = []
            for r in records:
                if r.event_id not in seen:
                    seen.add(r.event_id)
                    fresh.append(r)
            if not fresh:
                return 0
            now = datetime.now(UTC)
            head = state["hash"] or GENESIS_HASH
            hashes = chain_hashes(fresh, head, now)
            first = (state["seq"] or 0) + 1
            rows = [
                _row(r, seq, now, prev, h)
                for seq, r, prev, h in zip(
                    range(first, first + len(fresh)), fresh, [head, *hashes[:-1]], hashes, strict=True
                )
            ]
            await conn.copy_records_to_table("audit_events", records=rows, columns=_COPY_COLUMNS)
            return len(rows)

    async def trail(self, request_id: str, tenant: str | None = None) -> list[AuditRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM audit_events WHERE (subject = $1 OR correlation_id = $1) "
            "AND ($2::text IS NULL OR tenant = $2) ORDER BY seq",
            request_id,
            tenant,
        )
        return await self._read(rows)

    async def trails(self, request_ids: Sequence[str]) -> dict[str, list[AuditRecord]]:
        ids = list(dict.fromkeys(request_ids))
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM audit_events WHERE subject = ANY($1::text[]) "
            "OR correlation_id = ANY($1::text[]) ORDER BY seq",
            ids,
        )
        return _by_request(ids, await self._read(rows))

    async def events(
        self,
        *,
        event_type: str | None = None,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[AuditRecord]:
        order = "seq DESC" if newest_first else "seq"
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM audit_events WHERE ($1::text IS NULL OR event_type = $1) "
            "AND ($2::text IS NULL OR tenant = $2) "
            "AND ($3::timestamptz IS NULL OR event_time >= $3) "
            "AND ($4::timestamptz IS NULL OR event_time < $4) "
            f"AND ($5::bigint IS NULL OR seq > $5) ORDER BY {order} LIMIT $6",
            event_type,
            tenant,
            since,
            until,
            after_seq,
            limit,
        )
        return await self._read(rows)

    async def in_range(
        self, topic: str, start: datetime | None, end: datetime | None, limit: int | None = None
    ) -> list[AuditRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM audit_events WHERE topic = $1 "
            "AND ($2::timestamptz IS NULL OR event_time >= $2) "
            "AND ($3::timestamptz IS NULL OR event_time < $3) ORDER BY seq LIMIT $4",
            topic,
            start,
            end,
            limit,
        )
        return await self._read(rows)

    async def get(self, event_id: str) -> AuditRecord | None:
        row = await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM audit_events WHERE event_id = $1", event_id)
        return (await self._read([row]))[0] if row else None

    async def verify(self) -> list[ChainBreak]:
        breaks: list[ChainBreak] = []
        prev = GENESIS_HASH
        async with transaction(self.pool, "verify the audit chain") as conn:
            batch: list[AuditRecord] = []
            async for row in conn.cursor(f"SELECT {_COLUMNS} FROM audit_events ORDER BY seq"):
                batch.append(_row_to_record(row))
                if len(batch) >= 1000:
                    breaks += verify_chain(batch, prev)
                    prev = batch[-1].hash or prev
                    batch = []
            breaks += verify_chain(batch, prev)
        return breaks

    async def count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM audit_events"))

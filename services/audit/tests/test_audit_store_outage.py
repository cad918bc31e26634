"""A database outage is transient for the audit store: the batch is retried, its events are never
dead-lettered as bad rows (found by tests/chaos/test_postgres_restart.py: events arriving while
PostgreSQL shut down were dead-lettered and missing from their trails)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.domain.records import AuditRecord
from cairn_bus import TransientError
from cairn_bus.postgres import is_transient


class DownPool:
    """A pool whose every connection attempt fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def acquire(self) -> Any:
        raise self.error


def record() -> AuditRecord:
    return AuditRecord(
        event_id="e-1",
        event_type="cairn.request.submitted.v1",
        source="/test",
        event_time=datetime.now(UTC),
        topic="cairn.requests",
        partition=0,
        offset=0,
        payload={"request_id": "r-1"},
        headers={"ce_id": "e-1"},
    )


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("connection is closed"),
    ],
)
async def test_an_outage_is_transient(error: Exception) -> None:
    assert is_transient(error)
    with pytest.raises(TransientError):
        await PostgresAuditStore(DownPool(error)).append([record()])


async def test_a_rejected_row_is_not_an_outage() -> None:
    error = asyncpg.exceptions.UntranslatableCharacterError("unsupported Unicode escape sequence")
    assert not is_transient(error)
    with pytest.raises(asyncpg.exceptions.UntranslatableCharacterError):
        await PostgresAuditStore(DownPool(error)).append([record()])

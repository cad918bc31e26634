"""The inbox: ids of events a consumer has already applied, so a redelivery changes nothing.

A handler that writes state claims the event id in the same transaction as its writes; if the
claim fails the event was applied before and the handler returns without side effects.
"""

from __future__ import annotations

from typing import Any, Protocol

from cairn_bus.dispatcher import TransientError

INBOX_DDL = """
CREATE TABLE IF NOT EXISTS cairn_inbox (
    consumer    text        NOT NULL,
    event_id    text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
)
"""


def is_database_outage(exc: BaseException) -> bool:
    """Whether an asyncpg error is an outage that passes by itself (refused or lost connection, the
    server shutting down or starting up, out of connections), not a fault of the event handled."""
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - every PostgreSQL user of the inbox has asyncpg
        return False
    return (
        isinstance(
            exc,
            asyncpg.PostgresConnectionError
            | asyncpg.exceptions.OperatorInterventionError
            | asyncpg.exceptions.InsufficientResourcesError,
        )
        or type(exc) is asyncpg.InterfaceError  # "connection is closed", "pool is closing"
    )


class Inbox(Protocol):
    """Remembers which events a consumer has applied."""

    async def claim(self, consumer: str, event_id: str, conn: Any = None) -> bool:
        """True the first time (consumer, event_id) is claimed, False on every later call.

        With a database connection, the claim joins the caller's open transaction.
        """
        ...


class InMemoryInbox:
    """An inbox in a set; for unit tests."""

    def __init__(self) -> None:
        self.claimed: set[tuple[str, str]] = set()

    async def claim(self, consumer: str, event_id: str, conn: Any = None) -> bool:
        key = (consumer, event_id)
        if key in self.claimed:
            return False
        self.claimed.add(key)
        return True


class PostgresInbox:
    """An inbox table in the service's PostgreSQL database (asyncpg connection or pool)."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def migrate(self) -> None:
        """Create the inbox table if it does not exist."""
        await self.pool.execute(INBOX_DDL)

    async def claim(self, consumer: str, event_id: str, conn: Any = None) -> bool:
        """As `Inbox.claim`; a database outage raises TransientError (retried, never dead-lettered)."""
        target = conn if conn is not None else self.pool
        try:
            row = await target.fetchval(
                "INSERT INTO cairn_inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
                consumer,
                event_id,
            )
        except Exception as exc:
            if is_database_outage(exc):
                raise TransientError(f"inbox database unavailable: {exc!r}") from exc
            raise
        return row is not None

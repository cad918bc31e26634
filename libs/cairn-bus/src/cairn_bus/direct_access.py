"""The `cairn` CLI's direct database access: said loudly, and recorded in the audit trail before it acts.

A CLI command that writes a service's tables itself (rather than through that service's API with an
API key, where roles and tenants apply) bypasses RBAC: it acts with whatever the database credentials
allow. For local administration that is allowed, but never silently:

- a warning goes to stderr: `direct database access as cli:<user>; no RBAC applies (a service API with an API key applies roles and tenants)`;
- `cairn.admin_action.recorded.v1` is published on `cairn.admin` (actor `cli:<user>`, the action,
  the target, `details.access = "direct-database"`) BEFORE the command writes anything: a command
  whose access cannot be recorded is refused, so no direct write goes unrecorded.

It lives in cairn-bus (not cairn-auth) because every service's CLI depends on cairn-bus.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import TextIO

from cairn_bus.publisher import Publisher
from cairn_bus.settings import ServiceSettings
from cairn_events import AdminActionRecordedV1, JsonScalar

__all__ = [
    "DIRECT_ACCESS",
    "admin_publisher",
    "announce_direct_access",
    "cli_actor",
    "direct_access",
    "direct_access_event",
    "record_direct_access",
]

DIRECT_ACCESS = "direct-database"
"""`details.access` of the records this module publishes."""


def cli_actor(by: str | None = None) -> str:
    """`cli:<user>`: `by` when given, else the OS user."""
    if by is None:
        try:
            by = getpass.getuser()
        except (KeyError, OSError):
            by = "unknown"
    return by if by.startswith("cli:") else f"cli:{by}"


def direct_access_event(
    action: str,
    target: str,
    *,
    actor: str,
    tenant: str = "*",
    details: dict[str, JsonScalar] | None = None,
    at: datetime | None = None,
) -> AdminActionRecordedV1:
    """The audit record of one direct-database command (`action` like `prompts.push`)."""
    when = at or datetime.now(UTC)
    return AdminActionRecordedV1(
        action_id=str(uuid.uuid4()),
        actor=actor,
        actor_role="admin",
        tenant=tenant,
        action=action,
        target=target,
        details={**(details or {}), "access": DIRECT_ACCESS},
        recorded_at=when,
    )


def announce_direct_access(
    action: str, target: str, *, by: str | None = None, stream: TextIO | None = None
) -> str:
    """Only the warning, on `stream` (stderr), for a command that records its change on `cairn.admin`
    itself (with `details.access = DIRECT_ACCESS`); returns the actor `cli:<user>`."""
    actor = cli_actor(by)
    print(
        f"WARNING: direct database access as {actor}; no RBAC applies (a service API with an API key "
        f"applies roles and tenants) ({action} {target}, recorded on cairn.admin)",
        file=stream if stream is not None else sys.stderr,
        flush=True,
    )
    return actor


async def record_direct_access(
    publisher: Publisher,
    action: str,
    target: str,
    *,
    tenant: str = "*",
    by: str | None = None,
    details: dict[str, JsonScalar] | None = None,
    stream: TextIO | None = None,
) -> AdminActionRecordedV1:
    """Warn on `stream` (stderr) and publish the record through `publisher`; raises what publishing raises."""
    actor = announce_direct_access(action, target, by=by, stream=stream)
    event = direct_access_event(action, target, actor=actor, tenant=tenant, details=details)
    await publisher.publish(event)
    return event


@asynccontextmanager
async def admin_publisher(settings: ServiceSettings) -> AsyncIterator[Publisher]:
    """A Kafka publisher with source `/cairn/cli`, `cairn.admin` created first if missing."""
    from cairn_bus.kafka import KafkaPublisher, ensure_topics, make_producer, start_client
    from cairn_events import load_topics

    cli = settings.model_copy(update={"service_name": "cli"})
    await ensure_topics(
        cli.kafka_bootstrap,
        [load_topics()[AdminActionRecordedV1.topic]],
        replication_factor=cli.kafka_replication_factor,
        settings=cli,
    )
    producer = make_producer(cli)
    await start_client(producer.start, cli.kafka_bootstrap, cli)
    try:
        yield KafkaPublisher(producer, "/cairn/cli", service="cli")
    finally:
        await producer.stop()


def direct_access(
    settings: ServiceSettings,
    action: str,
    target: str,
    *,
    tenant: str = "*",
    by: str | None = None,
    details: dict[str, JsonScalar] | None = None,
    open_publisher: Callable[[], AbstractAsyncContextManager[Publisher]] | None = None,
) -> AdminActionRecordedV1:
    """From a synchronous CLI command, before it writes: warn and record (see the module docstring).

    `open_publisher` replaces the Kafka publisher on `settings` (a CLI's own, or a test's). Exits with
    status 1, writing nothing, when the record cannot be published.
    """

    async def main() -> AdminActionRecordedV1:
        opened = open_publisher() if open_publisher is not None else admin_publisher(settings)
        async with opened as publisher:
            return await record_direct_access(
                publisher, action, target, tenant=tenant, by=by, details=details
            )

    try:
        return asyncio.run(main())
    except Exception as exc:
        raise SystemExit(
            f"error: {action} {target} not done: its direct database access could not be recorded "
            f"on cairn.admin ({type(exc).__name__}: {exc})"
        ) from None

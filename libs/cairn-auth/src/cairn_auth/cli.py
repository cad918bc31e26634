"""`cairn keys`: create, list and revoke API keys. Creations and revocations go to the audit trail.

The CLI talks to the key table directly (it is an operator's tool with database access, so it
acts as `admin`, recorded under the OS user name; it says so on stderr) and publishes `cairn.admin_action.recorded.v1`
on `cairn.admin` for every change. A key whose creation cannot be recorded is revoked at once
and never shown.
"""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cairn_auth.adapters.postgres import PostgresKeyStore
from cairn_auth.domain.errors import AuthError
from cairn_auth.domain.keys import KeyRecord
from cairn_auth.domain.principals import Role
from cairn_auth.management import action_event_id, create_key, revoke_key
from cairn_auth.secrets import redact
from cairn_bus import TransientError
from cairn_bus.direct_access import DIRECT_ACCESS, announce_direct_access
from cairn_bus.postgres import create_pool
from cairn_bus.settings import PostgresSettings, ServiceSettings, settings_or_local_stack
from cairn_events import AdminActionRecordedV1

__all__ = ["KeysCliSettings", "app", "load_settings"]

T = TypeVar("T")

app = typer.Typer(
    help="API keys: create (shown once), list (never shows secrets), revoke.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals would include keys
)
console = Console()
err = Console(stderr=True)


class KeysCliSettings(ServiceSettings, PostgresSettings):
    """Where the key table and the broker are: the services' `CAIRN_*` variables."""


def load_settings() -> KeysCliSettings:
    """CAIRN_* variables win; anything unset comes from the local stack's configuration."""
    return settings_or_local_stack(KeysCliSettings, service_name="cli")


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {redact(message)}", highlight=False)
    return typer.Exit(1)


def _with_store(action: Callable[[PostgresKeyStore, KeysCliSettings], Awaitable[T]]) -> T:
    async def main() -> T:
        settings = load_settings()
        pool = await create_pool(settings.postgres_dsn, 1, 2)
        try:
            store = PostgresKeyStore(pool)
            await store.migrate()
            return await action(store, settings)
        finally:
            await pool.close()

    try:
        return asyncio.run(main())
    except (AuthError, ValueError) as exc:
        raise _fail(str(exc)) from None
    except (OSError, TransientError) as exc:  # TransientError: the database cannot be reached
        raise _fail(f"database unavailable: {exc}") from None


async def _record(settings: KeysCliSettings, event: AdminActionRecordedV1) -> None:
    """Publish the action on `cairn.admin`, marked as done by direct database access; its event id is
    derived from the action, so retries are one."""
    from cairn_auth.serving import kafka_publisher
    from cairn_bus.kafka import ensure_topics
    from cairn_events import load_topics

    await ensure_topics(
        settings.kafka_bootstrap,
        [load_topics()[event.topic]],
        replication_factor=settings.kafka_replication_factor,
    )
    event = event.model_copy(update={"details": {**event.details, "access": DIRECT_ACCESS}})
    async with kafka_publisher(settings) as publisher:  # source /cairn/cli: service_name is "cli"
        await publisher.publish(
            event, event_id=action_event_id(event.action, event.target, event.recorded_at)
        )


def _print(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@app.command()
def create(
    tenant: str = typer.Option(
        ..., "--tenant", "-t", help="The tenant the key may act on; `*` for all (admin only)."
    ),
    role: Role = typer.Option(Role.VIEWER, "--role", "-r", help="viewer, operator or admin."),
    name: str = typer.Option(..., "--name", "-n", help="What the key is for, e.g. `helpdesk-deploy`."),
    by: str | None = typer.Option(None, help="Who creates it (default: the OS user)."),
    as_json: bool = typer.Option(False, "--json", help="Print the new key as one JSON object."),
) -> None:
    """Create an API key and print it ONCE: only its hash is stored, it cannot be shown again."""
    announce_direct_access("keys.create", f"tenant:{tenant}", by=by or _actor())

    async def go(store: PostgresKeyStore, settings: KeysCliSettings) -> tuple[str, KeyRecord]:
        issued, record, event = await create_key(
            store, tenant=tenant, role=role, name=name, actor=by or _actor()
        )
        try:
            await _record(settings, event)
        except Exception as exc:
            await store.revoke(record.key_id, event.recorded_at)
            raise ValueError(
                f"could not record the creation in the audit trail ({type(exc).__name__}: {exc}); "
                f"key {record.key_id} was revoked and not issued"
            ) from None
        return issued.token, record

    token, record = _with_store(go)
    if as_json:
        _print(
            json.dumps(
                {
                    "key_id": record.key_id,
                    "tenant": record.tenant,
                    "role": record.role.value,
                    "name": record.name,
                    "key": token,
                }
            )
        )
        return
    _print(
        f"created API key {record.key_id} (tenant {record.tenant}, role {record.role.value}, name {record.name})"
    )
    _print(token)
    err.print(
        "[yellow]Store this key now (e.g. in your secret manager): it is shown only this once and "
        "cannot be recovered.[/yellow]",
        highlight=False,
    )


@app.command("list")
def list_keys(
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Only this tenant's keys."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List keys (ids, tenants, roles, names, states). Secrets are never stored, so never shown."""

    async def go(store: PostgresKeyStore, _: KeysCliSettings) -> list[KeyRecord]:
        return await store.keys(tenant)

    records = _with_store(go)
    if as_json:
        for r in records:
            _print(
                json.dumps(
                    {
                        "key_id": r.key_id,
                        "tenant": r.tenant,
                        "role": r.role.value,
                        "name": r.name,
                        "created_at": r.created_at.isoformat(),
                        "created_by": r.created_by,
                        "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
                    }
                )
            )
        return
    if not records:
        _print("no API keys")
        return
    table = Table("key id", "tenant", "role", "name", "created", "by", "state")
    for r in records:
        state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
        table.add_row(
            r.key_id, r.tenant, r.role.value, r.name, f"{r.created_at:%Y-%m-%d %H:%M}", r.created_by, state
        )
    console.print(table)


@app.command()
def revoke(
    key_id: str = typer.Argument(..., help="The id of the key (12 hex digits)."),
    by: str | None = typer.Option(None, help="Who revokes it (default: the OS user)."),
) -> None:
    """Revoke a key: it stops working (within the services' short cache time) and is kept for the record."""
    announce_direct_access("keys.revoke", f"api-key:{key_id}", by=by or _actor())

    async def go(store: PostgresKeyStore, settings: KeysCliSettings) -> tuple[KeyRecord, bool]:
        before = await store.get(key_id)
        record, event = await revoke_key(store, key_id, actor=by or _actor())
        try:
            await _record(settings, event)  # again on a retry: the same event id, recorded once
        except Exception as exc:
            raise ValueError(
                f"key {key_id} is revoked, but recording it in the audit trail failed "
                f"({type(exc).__name__}: {exc}); run the command again to record it"
            ) from None
        return record, before is not None and before.revoked

    record, already = _with_store(go)
    when = f"{record.revoked_at:%Y-%m-%d %H:%M:%S %Z}" if record.revoked_at else "?"
    _print(f"API key {record.key_id} {'was already' if already else 'is now'} revoked (since {when})")

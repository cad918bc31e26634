"""`cairn keys` against the test stack: PostgreSQL for keys, the broker for the audit events."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cairn_auth import AuthenticationError, Authenticator, Role
from cairn_auth.adapters.postgres import PostgresKeyStore
from cairn_auth.cli import app
from cairn_bus.kafka import ensure_topics
from cairn_bus.postgres import create_pool
from cairn_events import AdminActionRecordedV1, load_topics
from cairn_testing.events import expect_events

pytestmark = pytest.mark.integration

KEY_RE = re.compile(r"cairn_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


@pytest.fixture
async def cli(fresh_database: str, kafka_bootstrap: str) -> CliRunner:
    await ensure_topics(kafka_bootstrap, [load_topics()["cairn.admin"]])
    return CliRunner(
        env={"CAIRN_POSTGRES_DSN": fresh_database, "CAIRN_KAFKA_BOOTSTRAP": kafka_bootstrap, "COLUMNS": "200"}
    )


async def run(cli: CliRunner, *args: str, code: int = 0) -> Result:
    result = await asyncio.to_thread(cli.invoke, app, list(args))  # the CLI runs its own event loop
    assert result.exit_code == code, result.output
    return result


async def authenticate(dsn: str, token: str) -> Any:
    pool = await create_pool(dsn)
    try:
        return await Authenticator(PostgresKeyStore(pool), cache_ttl_s=0).authenticate(token)
    finally:
        await pool.close()


def about(key_id: str, action: str) -> Any:
    def match(_: Any, event: Any) -> bool:
        return (
            isinstance(event, AdminActionRecordedV1)
            and event.target == f"apikey:{key_id}"
            and event.action == action
        )

    return match


async def test_create_list_revoke_and_the_audit_trail(
    cli: CliRunner, fresh_database: str, kafka_bootstrap: str
) -> None:
    async with expect_events(
        kafka_bootstrap, "cairn.admin", where=lambda _, e: e.action == "apikey.created"
    ) as got:
        created = await run(
            cli, "create", "--tenant", "acme", "--role", "operator", "--name", "deploy", "--by", "ana"
        )
    tokens = KEY_RE.findall(created.stdout)
    assert len(tokens) == 1, created.output  # the key is printed once
    key_id = tokens[0]
    token = KEY_RE.search(created.stdout).group(0)  # type: ignore[union-attr]
    assert created.stdout.startswith(f"created API key {key_id} (tenant acme, role operator, name deploy)\n")
    assert "shown only this once" in created.stderr
    assert created.stderr.startswith("WARNING: direct database access as cli:ana; no RBAC applies")
    [(meta, event)] = [(m, e) for m, e in got.events if about(key_id, "apikey.created")(m, e)]
    assert isinstance(event, AdminActionRecordedV1)
    assert (event.actor, event.actor_role, event.tenant, event.details) == (
        "ana",
        "admin",
        "acme",
        {"role": "operator", "name": "deploy", "access": "direct-database"},
    )
    assert meta.tenant == "acme"
    assert token not in event.model_dump_json()

    principal = await authenticate(fresh_database, token)
    assert (principal.key_id, principal.tenant, principal.role) == (key_id, "acme", Role.OPERATOR)

    await run(cli, "create", "--tenant", "beta", "--name", "reader")
    listing = (await run(cli, "list")).stdout
    assert key_id in listing
    assert "deploy" in listing
    assert "reader" in listing
    assert not KEY_RE.search(listing)
    assert token.split("_", 2)[2] not in listing  # the secret (`cairn_<key id>_<secret>`; it may hold `_`)
    only_acme = [
        json.loads(line)
        for line in (await run(cli, "list", "--tenant", "acme", "--json")).stdout.splitlines()
    ]
    assert [(r["key_id"], r["role"], r["revoked_at"]) for r in only_acme] == [(key_id, "operator", None)]
    assert "key" not in only_acme[0]

    async with expect_events(
        kafka_bootstrap, "cairn.admin", where=about(key_id, "apikey.revoked")
    ) as revoked_events:
        revoked = await run(cli, "revoke", key_id, "--by", "ben")
    assert revoked.stdout.startswith(f"API key {key_id} is now revoked")
    assert f"(keys.revoke api-key:{key_id}, recorded on cairn.admin)" in revoked.stderr
    [(revoke_meta, revoke_event)] = [
        (m, e) for m, e in revoked_events.events if about(key_id, "apikey.revoked")(m, e)
    ]
    assert revoke_event.actor == "ben"
    with pytest.raises(AuthenticationError, match="revoked"):
        await authenticate(fresh_database, token)
    again = await run(cli, "revoke", key_id)
    assert again.stdout.startswith(f"API key {key_id} was already revoked")
    after = [
        json.loads(line)
        for line in (await run(cli, "list", "--tenant", "acme", "--json")).stdout.splitlines()
    ]
    assert after[0]["revoked_at"] is not None
    assert revoke_meta.id  # a retry publishes the same event id (derived from the action), recorded once


async def test_refusals(cli: CliRunner) -> None:
    bad_role = await run(cli, "create", "--tenant", "acme", "--role", "root", "--name", "x", code=2)
    assert "root" in bad_role.output
    platform = await run(cli, "create", "--tenant", "*", "--role", "viewer", "--name", "x", code=1)
    assert "platform-wide keys" in platform.output
    unknown = await run(cli, "revoke", "ffffffffffff", code=1)
    assert "no API key ffffffffffff" in unknown.output
    assert (await run(cli, "list")).stdout.strip() == "no API keys"


async def test_a_key_whose_creation_cannot_be_recorded_is_not_issued(fresh_database: str) -> None:
    cli = CliRunner(
        env={
            "CAIRN_POSTGRES_DSN": fresh_database,
            "CAIRN_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "CAIRN_KAFKA_REQUEST_TIMEOUT_MS": "2000",
        }
    )
    failed = await run(cli, "create", "--tenant", "acme", "--name", "x", code=1)
    assert "could not record the creation in the audit trail" in failed.output
    assert not KEY_RE.search(failed.output)
    listing = [json.loads(line) for line in (await run(cli, "list", "--json")).stdout.splitlines()]
    assert len(listing) == 1
    assert listing[0]["revoked_at"] is not None

"""`cairn tenants erase` against the test stack's broker: the audited admin action every service acts on."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner, Result

from cairn_auth.encryption import TENANT_ERASE
from cairn_bus.kafka import ensure_topics
from cairn_cli.tenants_cmd import app
from cairn_events import AdminActionRecordedV1, load_topics
from cairn_testing.events import expect_events


@pytest.fixture
def cli(kafka_bootstrap: str, postgres_dsn: str) -> CliRunner:
    return CliRunner(env={"CAIRN_KAFKA_BOOTSTRAP": kafka_bootstrap, "CAIRN_POSTGRES_DSN": postgres_dsn})


async def run(cli: CliRunner, *args: str, code: int = 0, stdin: str | None = None) -> Result:
    result = await asyncio.to_thread(cli.invoke, app, list(args), input=stdin)  # the CLI runs its own loop
    assert result.exit_code == code, result.output
    return result


@pytest.mark.integration
async def test_erase_publishes_the_admin_action(cli: CliRunner, kafka_bootstrap: str) -> None:
    await ensure_topics(kafka_bootstrap, [load_topics()["cairn.admin"]])
    async with expect_events(
        kafka_bootstrap, "cairn.admin", where=lambda _, e: getattr(e, "target", None) == "acme-erased"
    ) as got:
        done = await run(cli, "erase", "acme-erased", "--yes", "--by", "ana", "--reason", "GDPR-17")
    assert "erasure of tenant acme-erased published" in done.output
    [(meta, event)] = [(m, e) for m, e in got.events if getattr(e, "target", None) == "acme-erased"]
    assert isinstance(event, AdminActionRecordedV1)
    assert (event.action, event.actor, event.tenant, event.details) == (
        TENANT_ERASE,
        "ana",
        "acme-erased",
        {"reason": "GDPR-17"},
    )
    assert meta.tenant == "acme-erased"


async def test_erase_asks_first_and_refuses_the_platform(cli: CliRunner) -> None:
    refused = await run(cli, "erase", "acme", code=1, stdin="n\n")
    assert "Erase tenant 'acme'?" in refused.output
    assert "erasure of tenant" not in refused.output
    assert "invalid tenant id" in (await run(cli, "erase", "*", "--yes", code=2)).output

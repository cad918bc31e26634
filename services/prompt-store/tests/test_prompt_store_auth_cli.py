"""`cairn prompts` with tenants, and its administrative actions on `cairn.admin` (actor: the OS user)."""

from __future__ import annotations

import getpass
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from typer.testing import CliRunner, Result

from cairn_bus import InMemoryPublisher
from cairn_events import AdminActionRecordedV1
from cairn_prompt_store import cli as cli_module
from cairn_prompt_store.app import router
from cairn_prompt_store.cli import app

from .conftest import QA_FILE

pytestmark = pytest.mark.integration


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch) -> InMemoryPublisher:
    publisher = InMemoryPublisher("/cairn/cli", allowed_types=router.published_types)

    @asynccontextmanager
    async def in_memory(settings: object) -> AsyncIterator[InMemoryPublisher]:
        yield publisher

    monkeypatch.setattr(cli_module, "open_audit_publisher", in_memory)
    return publisher


@pytest.fixture
def cli(fresh_database: str, audit: InMemoryPublisher) -> CliRunner:
    return CliRunner(env={"CAIRN_POSTGRES_DSN": fresh_database, "COLUMNS": "200"})


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result: Result = cli.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def recorded(audit: InMemoryPublisher) -> list[AdminActionRecordedV1]:
    return [e for e in audit.events() if isinstance(e, AdminActionRecordedV1)]


def test_prompt_store_auth_cli_label_moves_are_recorded_as_the_os_user(
    cli: CliRunner, audit: InMemoryPublisher
) -> None:
    run(cli, "push", str(QA_FILE), "--label", "production", "--tenant", "acme")
    run(cli, "push", str(QA_FILE), "--tenant", "acme")  # unchanged, no label: nothing to record
    assert run(cli, "label", "qa", "1", "production", "-t", "acme") == "qa@production -> 1 (was 1)\n"
    events = recorded(audit)
    assert [(e.action, e.target, e.tenant, e.actor, e.actor_role, e.details) for e in events] == [
        (
            "prompt.label.moved",
            "prompt:qa@production",
            "acme",
            getpass.getuser(),
            "admin",
            {"label": "production", "to_version": 1},
        )
    ]
    run(cli, "experiments", "set", "qa", "-n", "ab", "--variant", "a=1", "-t", "acme", "--by", "ops")
    run(cli, "experiments", "clear", "qa", "-t", "acme", "--by", "ops")
    assert [(e.action, e.actor) for e in recorded(audit)[1:]] == [
        ("prompt.experiment.set", "ops"),
        ("prompt.experiment.cleared", "ops"),
    ]
    assert {m.topic for m in audit.messages} == {"cairn.admin"}


def test_prompt_store_auth_cli_tenants_see_their_own_and_the_shared_prompts(
    cli: CliRunner, audit: InMemoryPublisher
) -> None:
    run(cli, "push", str(QA_FILE), "--label", "production")  # shared (tenant default)
    assert json.loads(run(cli, "show", "qa", "--json", "--tenant", "acme"))["tenant"] == "default"
    assert "unknown prompt 'qa'" in run(cli, "label", "qa", "1", "staging", "--tenant", "acme", code=1)
    listing = run(cli, "list", "--tenant", "acme")
    assert "qa" not in listing
    assert "default" in run(cli, "list")
    assert "invalid tenant id" in run(cli, "show", "qa", "--tenant", "a/b", code=2)
    assert [e.tenant for e in recorded(audit)] == ["default"]

"""`cairn prompts` with tenants, and its administrative actions on `cairn.admin` (actor: the OS user)."""

from __future__ import annotations

import getpass
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from typer.testing import CliRunner, Result

from cairn_bus import InMemoryPublisher
from cairn_bus.direct_access import DIRECT_ACCESS
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
    # a write's direct-database warning goes to stderr; successful commands are compared on stdout
    return result.stdout if code == 0 else result.output


def recorded(audit: InMemoryPublisher) -> list[AdminActionRecordedV1]:
    """The changes recorded (not the direct-database access records made before each write)."""
    return [
        e
        for e in audit.events()
        if isinstance(e, AdminActionRecordedV1) and e.details.get("access") != DIRECT_ACCESS
    ]


def direct_accesses(audit: InMemoryPublisher) -> list[tuple[str, str, str, str]]:
    return [
        (e.action, e.target, e.tenant, e.actor)
        for e in audit.events()
        if isinstance(e, AdminActionRecordedV1) and e.details.get("access") == DIRECT_ACCESS
    ]


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
    me = f"cli:{getpass.getuser()}"
    assert direct_accesses(audit) == [
        ("prompts.push", "prompt-file:qa.yaml", "acme", me),
        ("prompts.push", "prompt-file:qa.yaml", "acme", me),
        ("prompts.label", "prompt:qa@production", "acme", me),
        ("prompts.experiments.set", "prompt:qa", "acme", "cli:ops"),
        ("prompts.experiments.clear", "prompt:qa", "acme", "cli:ops"),
    ]


def test_prompt_store_auth_cli_writes_announce_direct_database_access_on_stderr(
    cli: CliRunner, audit: InMemoryPublisher
) -> None:
    result = cli.invoke(app, ["push", str(QA_FILE), "--by", "ana"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("WARNING: direct database access as cli:ana; no RBAC applies")
    assert "WARNING" not in result.stdout
    shown = cli.invoke(app, ["show", "qa:1"])  # reading announces nothing
    assert shown.exit_code == 0
    assert shown.stderr == ""


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

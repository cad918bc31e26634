"""`cairn prompts` against PostgreSQL, through typer's CliRunner."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from cairn_bus import InMemoryPublisher
from cairn_prompt_store import cli as cli_module
from cairn_prompt_store.app import router
from cairn_prompt_store.cli import app, load_settings, parse_variant
from cairn_prompt_store.domain.experiments import Variant

from .conftest import QA_FILE

pytestmark = pytest.mark.integration


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch) -> InMemoryPublisher:
    """What the CLI records on `cairn.admin` (instead of the broker)."""
    publisher = InMemoryPublisher("/cairn/cli", allowed_types=router.published_types)

    @asynccontextmanager
    async def fake(settings: object) -> AsyncIterator[InMemoryPublisher]:
        yield publisher

    monkeypatch.setattr(cli_module, "open_audit_publisher", fake)
    return publisher


@pytest.fixture
def cli(fresh_database: str, audit: InMemoryPublisher) -> CliRunner:
    return CliRunner(env={"CAIRN_POSTGRES_DSN": fresh_database, "COLUMNS": "200"})


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result: Result = cli.invoke(app, list(args))
    assert result.exit_code == code, result.output
    # a write's direct-database warning goes to stderr; successful commands are compared on stdout
    return result.stdout if code == 0 else result.output


@pytest.fixture
def qa_v2(tmp_path: Path) -> Path:
    path = tmp_path / "qa-v2.yaml"
    path.write_text(QA_FILE.read_text().replace("Answer in a few sentences.", "Answer in one sentence."))
    return path


def test_push_label_show_diff_and_history(cli: CliRunner, qa_v2: Path) -> None:
    out = run(cli, "push", str(QA_FILE), "--label", "production", "--label", "dev", "--by", "ana")
    assert out.startswith("qa:1 (new version) sha256:")
    assert "@production -> 1\n" in out
    assert "@dev -> 1\n" in out
    assert run(cli, "push", str(QA_FILE)).startswith("qa:1 (unchanged: identical content)")
    assert run(cli, "push", str(qa_v2), "-l", "staging").startswith("qa:2 (new version)")

    listing = run(cli, "list")
    assert "qa" in listing
    assert "dev=1, production=1, staging=2" in listing

    shown = run(cli, "show", "qa")
    assert shown.startswith("# qa:1  labels: dev, production  sha256:")
    assert "by ana" in shown
    assert "    Answer in a few sentences.\n" in shown
    data = json.loads(run(cli, "show", "qa@staging", "--json"))
    assert (data["version"], data["label"], data["labels"]) == (2, "staging", ["staging"])

    assert run(cli, "label", "qa", "2", "production", "--by", "ben") == "qa@production -> 2 (was 1)\n"
    history = run(cli, "history", "qa")
    assert history.count("production") == 2
    assert "ben" in history

    diff = run(cli, "diff", "qa", "1", "2")
    assert diff.startswith("--- qa:1\n+++ qa:2\n")
    assert "-    Answer in a few sentences.\n+    Answer in one sentence.\n" in diff
    assert run(cli, "diff", "qa", "2", "2") == "qa:2 and qa:2 are identical\n"


def test_render_previews_like_a_request(cli: CliRunner) -> None:
    run(cli, "push", str(QA_FILE), "--label", "production")
    out = run(cli, "render", "qa", "--var", "topic=generators", "-m", "What does yield do?")
    assert out.startswith("# qa:1\n--- system\n")
    assert "The question is about generators." in out
    assert "--- user\nWhat does yield do?\n" in out
    assert '"query":"generators: What does yield do?"' in out
    data = json.loads(run(cli, "render", "qa:1", "-v", "question=Why?", "--json"))
    assert data["messages"][-1] == {"role": "user", "content": "Why?"}
    assert data["retrieval"]["query"] == "Why?"
    failed = run(cli, "render", "qa", code=1)
    assert "error: missing required variable 'question'" in failed


def test_experiments_set_show_clear(cli: CliRunner, qa_v2: Path) -> None:
    run(cli, "push", str(QA_FILE), "--label", "production")
    run(cli, "push", str(qa_v2))
    refused = run(cli, "experiments", "set", "qa", "-n", "short", "--variant", "b=staging:50", code=1)
    assert "variant 'b': prompt 'qa' has no label 'staging'" in refused
    out = run(
        cli, "experiments", "set", "qa", "-n", "short", "--variant", "a=production:50", "--variant", "b=2:50"
    )
    assert out == "qa@production: experiment short: a=qa@production (50%), b=qa:2 (50%); winner: propose\n"
    assert run(cli, "experiments", "show") == out
    assert run(cli, "experiments", "show", "qa") == out
    seen = {
        json.loads(run(cli, "render", "qa", "-m", "Q?", "--user", f"u{i}", "--json"))["variant"]
        for i in range(8)
    }
    assert seen == {"a", "b"}
    assert run(cli, "experiments", "clear", "qa") == "qa: experiment stopped\n"
    assert "no experiment runs on prompt 'qa'" in run(cli, "experiments", "clear", "qa", code=1)
    promoting = ["experiments", "set", "qa", "-n", "auto", "--variant", "a=1", "--variant", "b=2"]
    assert run(cli, *promoting, "--on-winner", "promote").endswith("; winner: promote\n")
    assert "'promote' or 'propose'" in run(cli, *promoting, "--on-winner", "maybe", code=2)
    assert run(cli, "experiments", "proposals") == "no proposal\n"
    assert "no single open proposal 'c-1'" in run(cli, "experiments", "accept", "c-1", code=1)


def test_errors_exit_1_with_a_message(cli: CliRunner, tmp_path: Path) -> None:
    assert "error: unknown prompt 'qa'" in run(cli, "show", "qa", code=1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nmessages: [{role: user, content: '{{ nope }}'}]\n")
    assert "uses undeclared variable(s): nope" in run(cli, "push", str(bad), code=1)
    assert "unknown prompt 'qa'" in run(cli, "label", "qa", "1", "production", code=1)


def test_variants_parse_versions_and_labels() -> None:
    assert parse_variant("a=3:70") == Variant(name="a", version=3, weight=70)
    assert parse_variant("b=@staging") == Variant(name="b", label="staging", weight=1)
    assert parse_variant("c=production:0.5") == Variant(name="c", label="production", weight=0.5)


def test_without_a_dsn_the_cli_uses_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    from cairn_bus.settings import local_stack_env

    monkeypatch.delenv("CAIRN_POSTGRES_DSN", raising=False)
    assert load_settings().postgres_dsn == local_stack_env()["CAIRN_POSTGRES_DSN"]
    monkeypatch.setenv("CAIRN_POSTGRES_DSN", "postgresql://x@h:1/db")
    assert load_settings().postgres_dsn == "postgresql://x@h:1/db"

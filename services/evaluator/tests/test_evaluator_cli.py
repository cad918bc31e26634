"""`cairn models` and `cairn eval` through typer's CliRunner, on in-memory deps shared by every call."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn_bus import InMemoryPublisher
from cairn_evaluator import cli_support
from cairn_evaluator.cli import eval_app, models_app
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.registry import ModelVersion
from cairn_evaluator.handlers import on_model_registered
from cairn_events import ModelPromotedV1, ModelStage

from .conftest import answer_all, good_model, heldout_rows, make_deps, meta, put_heldout, registered

runner = CliRunner()


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deps]:
    shared = make_deps()

    @asynccontextmanager
    async def open_deps(publish: bool) -> AsyncIterator[Deps]:
        yield shared

    monkeypatch.setattr(cli_support, "open_deps", open_deps)
    for n in (1, 2, 3):
        event = registered(n, job_id=None)
        asyncio.run(on_model_registered(event, meta(event), shared))
    return shared


def promoted(deps: Deps) -> list[tuple[int, ModelStage]]:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return [
        (e.version, e.to_stage)
        for e in deps.publisher.events(ModelPromotedV1.event_type)
        if isinstance(e, ModelPromotedV1)
    ]


def stages(deps: Deps) -> dict[int, ModelStage]:
    return {v.version: v.stage for v in asyncio.run(deps.registry.versions("cairn-qa"))}


def test_promote_publishes_and_archives_the_previous(deps: Deps) -> None:
    assert runner.invoke(models_app, ["promote", "cairn-qa", "1", "--to", "production"]).exit_code == 0
    result = runner.invoke(
        models_app, ["promote", "cairn-qa", "2", "--to", "production", "--reason", "better"]
    )
    assert result.exit_code == 0, result.output
    assert "cairn-qa:1 production -> archived" in result.output
    assert promoted(deps) == [
        (1, ModelStage.PRODUCTION),
        (2, ModelStage.PRODUCTION),
        (1, ModelStage.ARCHIVED),
    ]
    assert stages(deps) == {1: ModelStage.ARCHIVED, 2: ModelStage.PRODUCTION, 3: ModelStage.DEV}
    history = runner.invoke(models_app, ["history", "cairn-qa"])
    assert "better" in history.output


def test_rollback_restores_the_previous_production_version(deps: Deps) -> None:
    for n in ("1", "2", "3"):
        assert runner.invoke(models_app, ["promote", "cairn-qa", n, "--to", "production"]).exit_code == 0
    result = runner.invoke(models_app, ["rollback", "cairn-qa", "--reason", "bad answers"])
    assert result.exit_code == 0, result.output
    assert stages(deps) == {1: ModelStage.ARCHIVED, 2: ModelStage.PRODUCTION, 3: ModelStage.ARCHIVED}
    assert promoted(deps)[-2:] == [(2, ModelStage.PRODUCTION), (3, ModelStage.ARCHIVED)]


def test_errors_exit_1_with_a_message(deps: Deps) -> None:
    result = runner.invoke(models_app, ["rollback", "cairn-qa"])
    assert result.exit_code == 1
    assert "no earlier production version" in result.output
    result = runner.invoke(models_app, ["promote", "cairn-qa", "9", "--to", "staging"])
    assert (result.exit_code, "no version 9" in result.output) == (1, True)
    result = runner.invoke(models_app, ["promote", "cairn-qa", "1", "--to", "prod"])
    assert result.exit_code == 1
    assert runner.invoke(eval_app, ["report", "nope"]).exit_code == 1


def test_alias_list_and_show(deps: Deps) -> None:
    result = runner.invoke(models_app, ["alias", "cairn-qa", "champion", "3"])
    assert result.exit_code == 0
    assert "cairn-qa@champion -> 3" in result.output
    listing = runner.invoke(models_app, ["list"])
    assert listing.exit_code == 0
    assert "champion" in listing.output
    shown = runner.invoke(models_app, ["show", "cairn-qa", "3"])
    assert shown.exit_code == 0
    assert "cairn-qa:3" in shown.output
    assert "champion" in shown.output


def test_eval_run_report_and_html(deps: Deps, tmp_path: Path) -> None:
    put_heldout(deps.objects, heldout_rows(1))
    assert runner.invoke(models_app, ["promote", "cairn-qa", "1", "--to", "production"]).exit_code == 0
    event = registered(4)
    asyncio.run(deps.registry.register(ModelVersion.from_event(event)))
    started = runner.invoke(eval_app, ["run", "cairn-qa", "4"])
    assert started.exit_code == 0, started.output
    found = re.search(r"^run (\S+):", started.output, re.MULTILINE)
    assert found is not None, started.output
    run_id = found.group(1)
    status = runner.invoke(eval_app, ["status", run_id])
    assert "running" in status.output
    assert "answered 0/10" in status.output
    asyncio.run(answer_all(deps, good_model))
    html_file = tmp_path / "report.html"
    result = runner.invoke(eval_app, ["report", run_id, "--html", str(html_file)])
    assert result.exit_code == 0, result.output
    assert "heldout" in result.output
    assert "token_f1" in result.output
    assert "verdict: FAIL" in result.output  # a tie on held-out does not win
    assert "facets" in result.output  # the gated metric per tenant, prompt, topic and length slice
    assert "tenant" in result.output
    html = html_file.read_text()
    assert "<svg" in html
    assert "adversarial" in html
    assert "beats baseline" in html
    assert "<h2>Facets</h2>" in html
    assert run_id in runner.invoke(eval_app, ["list"]).output

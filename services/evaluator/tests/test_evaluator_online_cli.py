"""`cairn quality` through typer's CliRunner, on in-memory deps with drifted live traffic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from cairn_bus import InMemoryPublisher
from cairn_evaluator import cli_support
from cairn_evaluator.adapters.hashing import HashingEmbedder
from cairn_evaluator.cli_quality import quality_app
from cairn_evaluator.deps import Deps
from cairn_events import AlertRaisedV1

from .conftest import Clock, make_deps
from .online_support import (
    COOKING,
    COOKING_TEMPLATES,
    NOW,
    PYTHON,
    PYTHON_TEMPLATES,
    deliver,
    feedback,
    questions,
    traffic,
)

runner = CliRunner()


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deps]:
    shared = make_deps(clock=Clock(NOW))
    shared.embedder = HashingEmbedder()
    published: list[bool] = []

    @asynccontextmanager
    async def open_deps(publish: bool) -> AsyncIterator[Deps]:
        published.append(publish)
        yield shared

    monkeypatch.setattr(cli_support, "open_deps", open_deps)

    async def seed() -> None:
        python = questions(80, PYTHON, PYTHON_TEMPLATES, seed=1)
        await traffic(shared, python, NOW - timedelta(days=7, hours=1), timedelta(days=6), prefix="ref")
        cooking = questions(40, COOKING, COOKING_TEMPLATES, seed=2)
        await traffic(shared, cooking, NOW - timedelta(minutes=50), timedelta(minutes=45), prefix="cur")
        await deliver(shared, feedback("cur-1", NOW - timedelta(minutes=5), rating=5, thumbs="up"))
        await deliver(shared, feedback("cur-2", NOW - timedelta(minutes=5), rating=2, thumbs="down"))

    asyncio.run(seed())
    return shared


def json_of(output: str) -> object:
    """The JSON document of the output (log lines may come before it)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("{", "[")))
    return json.loads("\n".join(lines[start:]))


def alerts_published(deps: Deps) -> list[str]:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return [
        e.alert_name for e in deps.publisher.events(AlertRaisedV1.event_type) if isinstance(e, AlertRaisedV1)
    ]


def test_summary_as_json_and_table(deps: Deps) -> None:
    result = runner.invoke(quality_app, ["summary", "--since", "2h", "--by", "model", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json_of(result.output)  # type: ignore[misc]
    assert row["group"] == "cairn-qa:3"
    assert (row["responses"], row["feedback"], row["mean_score"], row["thumbs_up_rate"]) == (40, 2, 3.5, 0.5)
    table = runner.invoke(quality_app, ["summary"])
    assert table.exit_code == 0
    assert "3.500" in table.output
    assert runner.invoke(quality_app, ["summary", "--by", "tenant"]).exit_code != 0
    assert runner.invoke(quality_app, ["summary", "--since", "soon"]).exit_code != 0


def test_drift_dry_run_then_for_real_then_alerts(deps: Deps) -> None:
    dry = runner.invoke(quality_app, ["drift", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would raise RequestDriftDetected" in dry.output
    assert "centroid_distance" in dry.output
    assert alerts_published(deps) == []

    result = runner.invoke(quality_app, ["drift", "--json"])
    assert result.exit_code == 0, result.output
    report: dict = json_of(result.output)  # type: ignore[assignment,type-arg]
    [scope] = report["scopes"]
    embedding = [s for s in scope["signals"] if s["name"] == "request_embedding"]
    assert all(s["drifted"] for s in embedding)
    assert all(s["value"] > s["threshold"] for s in embedding)
    assert any("feedback_score" in s for s in scope["skipped"])
    assert [a["alert_name"] for a in report["alerts"]] == ["RequestDriftDetected"]
    assert alerts_published(deps) == ["RequestDriftDetected"]

    again = runner.invoke(quality_app, ["drift"])
    assert again.exit_code == 0
    assert "in cooldown: RequestDriftDetected|default|support-qa" in again.output
    assert alerts_published(deps) == ["RequestDriftDetected"]

    listed = runner.invoke(quality_app, ["alerts", "--since", "1h", "--json"])
    assert listed.exit_code == 0, listed.output
    [alert] = json_of(listed.output)  # type: ignore[misc]
    assert alert["alert_name"] == "RequestDriftDetected"
    assert alert["published"] is True
    assert "Request" in runner.invoke(quality_app, ["alerts"]).output

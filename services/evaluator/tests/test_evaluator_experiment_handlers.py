"""Prompt experiments through the online handlers (in memory): feedback re-checks its request's
experiment; a significant winner is announced once on `cairn.experiments`; a failed publication is
retried with the same id; no difference, no conclusion; `cairn quality experiment` shows the arms."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from cairn_bus import InMemoryPublisher
from cairn_evaluator import cli_support
from cairn_evaluator.cli_quality import quality_app
from cairn_evaluator.deps import Deps
from cairn_evaluator.experiments import check_experiment, experiment_verdict
from cairn_evaluator.online.conclusions import conclusion_id
from cairn_evaluator.settings import Settings
from cairn_events import ExperimentConcludedV1

from .conftest import Clock, make_deps
from .online_support import NOW, deliver, feedback, rendered, response

CID = conclusion_id("default", "support-qa", "exp1")


def experiment_deps(min_samples: int = 5) -> Deps:
    return make_deps(settings=Settings(experiment_min_samples=min_samples), clock=Clock(NOW))


def conclusions(deps: Deps) -> list[ExperimentConcludedV1]:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return [m.event for m in deps.publisher.messages if isinstance(m.event, ExperimentConcludedV1)]


async def serve(deps: Deps, n: int, *, up: dict[str, float], start: int = 0) -> None:
    """`n` requests alternating between variants `control` (version 1) and `short` (version 2), each
    rendered, answered and given feedback: thumbs up for the first `up[variant]` share of each arm."""
    for i in range(start, start + n):
        variant, version = ("control", 1) if i % 2 == 0 else ("short", 2)
        rid = f"live-{i}"
        at = NOW - timedelta(minutes=60 - i % 60)
        await deliver(deps, rendered(rid, at, version=version, variant=variant))
        await deliver(deps, response(rid, at, prompt_version=version))
        thumbs = "up" if (i // 2) % 10 < up[variant] * 10 else "down"
        await deliver(deps, feedback(rid, at + timedelta(seconds=5), rating=None, thumbs=thumbs))


async def test_a_significant_winner_is_announced_once() -> None:
    deps = experiment_deps()
    await serve(deps, 8, up={"control": 0.0, "short": 1.0})  # 4 per arm: below the minimum
    assert conclusions(deps) == []
    await serve(deps, 4, up={"control": 0.0, "short": 1.0}, start=8)
    assert conclusions(deps) == []  # 6 of 6 against 0 of 6: evidence 17.8, below 1 / alpha = 20
    await serve(deps, 2, up={"control": 0.0, "short": 1.0}, start=12)
    [event] = conclusions(deps)
    assert isinstance(deps.publisher, InMemoryPublisher)
    [message] = [m for m in deps.publisher.messages if isinstance(m.event, ExperimentConcludedV1)]
    assert (message.topic, message.key, message.meta.id) == ("cairn.experiments", b"support-qa", CID)
    assert (event.conclusion_id, event.tenant, event.prompt_name, event.experiment) == (
        CID,
        "default",
        "support-qa",
        "exp1",
    )
    assert (event.winner, event.winner_prompt_version, event.min_samples, event.threshold) == (
        "short",
        2,
        5,
        20.0,
    )
    assert event.evidence >= event.threshold
    control, short = event.arms
    assert (control.variant, control.observations, control.positive_rate) == ("control", 7, 0.0)
    assert (short.variant, short.observations, short.positive_rate, short.prompt_version) == (
        "short",
        6,
        1.0,
        2,
    )
    assert short.positive_rate_low is not None
    assert short.positive_rate_low > 0.5
    stored = await deps.online.conclusion(CID)
    assert stored is not None
    assert stored.published

    await serve(deps, 6, up={"control": 0.0, "short": 1.0}, start=14)  # more feedback: not tested again
    assert len(conclusions(deps)) == 1
    assert await check_experiment(deps, "default", "support-qa", "exp1") is None


async def test_equal_arms_conclude_nothing() -> None:
    deps = experiment_deps()
    await serve(deps, 60, up={"control": 0.5, "short": 0.5})
    assert conclusions(deps) == []
    verdict = await experiment_verdict(deps, "default", "support-qa", "exp1")
    assert verdict.decision == "continue"
    assert [a.observations for a in verdict.arms] == [30, 30]


async def test_a_conclusion_whose_publication_failed_is_published_on_the_next_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deps = experiment_deps()
    assert isinstance(deps.publisher, InMemoryPublisher)

    async def broker_down(message: object) -> None:
        raise ConnectionError("broker down")

    with monkeypatch.context() as patched:
        patched.setattr(deps.publisher, "send", broker_down)
        with pytest.raises(ConnectionError):
            await serve(deps, 14, up={"control": 0.0, "short": 1.0})
    stored = await deps.online.conclusion(CID)
    assert stored is not None
    assert not stored.published
    assert await check_experiment(deps, "default", "support-qa", "exp1") is None
    [event] = conclusions(deps)
    assert event.conclusion_id == CID
    assert event.model_dump(mode="json") == stored.event  # the recorded payload, not a new verdict


def test_cairn_quality_experiment_shows_the_arms_with_intervals_and_the_decision(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deps = experiment_deps(min_samples=30)
    asyncio.run(serve(deps, 12, up={"control": 0.0, "short": 1.0}))

    @asynccontextmanager
    async def open_deps(publish: bool) -> AsyncIterator[Deps]:
        yield deps

    monkeypatch.setattr(cli_support, "open_deps", open_deps)
    monkeypatch.setattr(cli_support.console, "width", 200)  # one table row per arm
    runner = CliRunner()
    shown = runner.invoke(quality_app, ["experiment", "exp1", "--prompt", "support-qa"], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "1.000 [0.610, 1.000]" in shown.output  # short: 6 of 6 positive, Wilson 95 %
    assert "decision: continue - fewer than 30 observations: control, short" in shown.output
    assert "short vs control: difference +1.000" in shown.output
    as_json = runner.invoke(quality_app, ["experiment", "exp1", "--prompt", "support-qa", "--json"])
    data = json.loads(as_json.output)
    assert [(a["variant"], a["observations"]) for a in data["arms"]] == [("control", 6), ("short", 6)]
    assert data["arms"][1]["positive_rate"] == {"value": 1.0, "low": 0.6097, "high": 1.0, "n": 6}
    assert (data["decision"], data["published"], data["parameters"]["min_samples"]) == ("continue", False, 30)

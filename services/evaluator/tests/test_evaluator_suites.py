"""The suites in infra/eval/suites and the suite file format."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from cairn_evaluator.adapters.suite_files import SuiteFiles, parse_suite
from cairn_evaluator.domain.errors import SuiteError
from cairn_evaluator.domain.suites import heldout_suite

from .conftest import heldout_rows

SUITES = Path(__file__).resolve().parents[3] / "infra" / "eval" / "suites"
QA_VARIABLES = {"question", "topic"}  # infra/prompts/qa.yaml


def test_the_repository_suites_use_the_qa_prompt() -> None:
    suites = {s.name: s for s in SuiteFiles(SUITES).load()}
    assert {s.kind for s in suites.values()} == {"scenario", "adversarial"}
    for suite in suites.values():
        # the generated adversarial suite is sliced: test_evaluator_adversarial_suite.py
        assert 40 <= len(suite.cases) <= 80
        assert suite.max_tokens == 48
        assert suite.gate.min is not None
        assert suite.gate.max_regression is not None
        for case in suite.cases:
            assert case.prompt == "qa"
            assert "question" in case.variables
            assert set(case.variables) <= QA_VARIABLES
    scenario = next(s for s in suites.values() if s.kind == "scenario")
    assert all(c.expect_any or c.expect_all for c in scenario.cases)


def test_the_scenario_suite_covers_each_topic_from_the_knowledge_base_itself() -> None:
    """Five cases or more per topic (so the `topic` facet can be gated), each written from a pydoc topic
    that the local knowledge base ingests (`pydoc:topics`), with an expected word that occurs in it."""
    from pydoc_data.topics import topics

    scenario = next(s for s in SuiteFiles(SUITES).load() if s.kind == "scenario")
    per_topic = Counter(str(c.variables["topic"]) for c in scenario.cases)
    assert len(per_topic) >= 8
    assert min(per_topic.values()) >= 5, per_topic
    for case in scenario.cases:
        assert case.source is not None
        match = re.fullmatch(r"cairn, from pydoc_data\.topics\['([a-z-]+)'\]", case.source)
        assert match, case.source
        text = topics[match.group(1)].lower()
        assert any(word.lower() in text for word in case.expect_any), (case.id, match.group(1))


def test_invalid_suites_are_refused_with_their_origin(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"bad\.yaml"):
        parse_suite("name: x\nkind: scenario\ngate: {metric: pass_rate}\ncases: []\n", "bad.yaml")
    with pytest.raises(SuiteError, match="not YAML"):
        parse_suite("name: [", "broken.yaml")
    text = "name: x\nkind: scenario\ngate: {metric: pass_rate}\ncases: [{id: a}]\n"
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    with pytest.raises(SuiteError, match="share a name"):
        SuiteFiles(tmp_path).load()
    assert SuiteFiles(tmp_path / "missing").load() == []


def test_heldout_suite_re_asks_the_rows() -> None:
    suite = heldout_suite(heldout_rows(2), max_tokens=32, min_f1=0.1, min_improvement=0.0)
    assert suite.kind == "heldout"
    assert suite.max_tokens == 32
    assert [c.reference for c in suite.cases] == ["the answer is number 0", "the answer is number 1"]
    assert suite.gate.metric == "token_f1"
    assert suite.gate.min_improvement == 0.0

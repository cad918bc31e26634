"""The groundedness gate in output screening, through the service's real router with in-memory fakes:
per-policy flag / cite / review, the finding (score, action, never the text), metrics, and the
pure parts (abstentions, cited passages, policy validation)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from cairn_events import ContextChunk, ResponseCompletedV1, ResponseStatus, ReviewRequestedV1, Verdict
from cairn_safety.bootstrap import Deps
from cairn_safety.domain.grounding import (
    CITE_NOTE,
    apply_grounding,
    check_groundedness,
    cited_passages,
    is_abstention,
)
from cairn_safety.domain.policy import GroundednessPolicy, Policy
from cairn_safety.domain.verdicts import Decision

from .conftest import BANDS, REDACT, TEST_POLICIES, write_policies
from .test_safety_handlers import completion, events, only, queue

CHUNKS = [
    ContextChunk(
        document_id="doc-assert",
        chunk_id="doc-assert#0",
        source_uri="pydoc:topics/assert",
        content_hash="sha256:" + "a" * 64,
        score=0.8,
        text="Assert statements are a convenient way to insert debugging assertions into a program. "
        "The simple form, assert expression, raises AssertionError when the expression is false.",
    ),
    ContextChunk(
        document_id="doc-pass",
        chunk_id="doc-pass#0",
        source_uri="pydoc:topics/pass",
        content_hash="sha256:" + "b" * 64,
        score=0.6,
        text="pass is a null operation: when it is executed, nothing happens. Write to ops@example.com.",
    ),
]
SUPPORTED = "The assert statement inserts debugging assertions into a program [1]. It raises AssertionError when the expression is false [1]."
UNSUPPORTED = (
    "The assert statement encrypts your source files with a secret key [2]. It was added in Python 4."
)
OUTPUT = {"toxicity": {"thresholds": BANDS}, "pii": {"thresholds": REDACT}}
INPUT = TEST_POLICIES["default"]["input"]


def gate_policy(version: int, **groundedness: Any) -> dict[str, Any]:
    return {"version": version, "input": INPUT, "output": {**OUTPUT, "groundedness": groundedness}}


POLICIES = {
    **TEST_POLICIES,
    "gate-flag": gate_policy(2, threshold=0.5, action="flag"),
    "gate-cite": gate_policy(3, threshold=0.5, action="cite"),
    "gate-review": gate_policy(4, threshold=0.5, action="review"),
    "gate-semantic": gate_policy(5, threshold=0.5, action="flag", semantic=True),
}


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    return write_policies(tmp_path / "policies", POLICIES)


def answer(tenant: str, text: str, chunks: Sequence[ContextChunk] = CHUNKS) -> Any:
    return completion(text, tenant=tenant, chunks=list(chunks))


def grounding(response: Any) -> Any:
    found = [f for f in response.findings if f.check == "groundedness"]
    assert len(found) == 1, response.findings
    return found[0]


def counted(policy: str, action: str) -> float:
    value = REGISTRY.get_sample_value(
        "cairn_safety_groundedness_actions_total", {"policy": policy, "action": action}
    )
    return value or 0.0


async def test_flag_releases_an_unsupported_answer_with_the_fired_finding(upstream: Any, deps: Deps) -> None:
    before = counted("gate-flag@2", "flag")
    record = upstream.record(answer("gate-flag", UNSUPPORTED))
    await upstream.deliver(record)
    await upstream.deliver(record)  # a redelivery publishes and counts nothing more
    response = only(deps, ResponseCompletedV1)
    assert response.status is ResponseStatus.COMPLETED
    assert response.text == UNSUPPORTED
    assert response.verdict is Verdict.ALLOW
    finding = grounding(response)
    assert (finding.label, finding.fired) == ("unsupported", True)
    assert finding.score < 0.5
    assert finding.detail.startswith("flagged; 2 of 2 sentence(s) unsupported by 2 chunk(s); lexical")
    assert "encrypt" not in finding.detail  # never the text
    assert counted("gate-flag@2", "flag") == before + 1


async def test_a_supported_answer_is_released_untouched(upstream: Any, deps: Deps) -> None:
    before = counted("gate-cite@3", "pass")
    await upstream.deliver(upstream.record(answer("gate-cite", SUPPORTED)))
    response = only(deps, ResponseCompletedV1)
    assert response.text == SUPPORTED
    finding = grounding(response)
    assert (finding.label, finding.fired, finding.score) == ("supported", False, 1.0)
    assert finding.detail.startswith("released; 0 of 2 sentence(s) unsupported")
    assert counted("gate-cite@3", "pass") == before + 1


async def test_cite_replaces_the_answer_by_its_cited_passages_redacted(upstream: Any, deps: Deps) -> None:
    await upstream.deliver(upstream.record(answer("gate-cite", UNSUPPORTED)))
    response = only(deps, ResponseCompletedV1)
    assert response.status is ResponseStatus.COMPLETED
    assert response.text is not None
    assert response.text.startswith(CITE_NOTE)
    # the answer cited [2] only: that passage, its personal data redacted like an answer's
    assert (
        "[2] pass is a null operation: when it is executed, nothing happens. Write to [EMAIL]."
        in response.text
    )
    assert "(pydoc:topics/pass)" in response.text
    assert "Assert statements" not in response.text
    assert "encrypts" not in response.text
    assert response.citations == CHUNKS
    finding = grounding(response)
    assert finding.fired
    assert finding.detail.startswith("replaced by the cited passages;")


async def test_review_holds_an_unsupported_answer_for_a_reviewer(upstream: Any, deps: Deps) -> None:
    await upstream.deliver(upstream.record(answer("gate-review", UNSUPPORTED)))
    requested = only(deps, ReviewRequestedV1)
    assert requested.verdict is Verdict.REVIEW
    assert requested.stage == "output"
    assert requested.text == UNSUPPORTED  # the reviewer sees the answer
    assert grounding(requested).detail.startswith("held for review;")
    response = only(deps, ResponseCompletedV1)
    assert response.status is not ResponseStatus.COMPLETED
    assert response.verdict is Verdict.REVIEW
    [item] = queue(deps).reviews.values()
    assert item.verdict is Verdict.REVIEW


async def test_the_gate_passes_answers_without_chunks_and_answers_already_blocked(
    upstream: Any, deps: Deps
) -> None:
    await upstream.deliver(upstream.record(answer("gate-review", UNSUPPORTED, chunks=[])))
    await upstream.deliver(upstream.record(answer("gate-review", "Only an idiot asks. " + UNSUPPORTED)))
    first, second = [e for e in events(deps) if isinstance(e, ResponseCompletedV1)]
    assert first.status is ResponseStatus.COMPLETED
    assert first.text == UNSUPPORTED
    assert second.status is ResponseStatus.BLOCKED  # toxicity decided; the gate did not run
    for response in (first, second):
        assert all(f.check != "groundedness" for f in response.findings)


async def test_a_policy_without_the_section_runs_no_gate(upstream: Any, deps: Deps) -> None:
    await upstream.deliver(upstream.record(answer("default", UNSUPPORTED)))
    response = only(deps, ResponseCompletedV1)
    assert [f.check for f in response.findings] == ["toxicity", "pii"]


async def test_semantic_policies_use_the_embedder_and_lexical_ones_do_not(upstream: Any, deps: Deps) -> None:
    calls: list[list[str]] = []

    def embed(texts: Sequence[str]) -> list[list[float]]:
        calls.append(list(texts))
        return [[1.0, 0.0] for _ in texts]  # everything identical: fully similar

    deps.screener.embed = embed
    paraphrase = "Assertions are a handy tool to put debugging tests into code."
    await upstream.deliver(upstream.record(answer("gate-flag", paraphrase)))
    assert calls == []
    await upstream.deliver(upstream.record(answer("gate-semantic", paraphrase)))
    assert len(calls) == 1
    lexical, semantic = [grounding(e) for e in events(deps) if isinstance(e, ResponseCompletedV1)]
    assert "; lexical," in lexical.detail
    assert "; semantic," in semantic.detail
    # 2 of 7 content words are in the chunks: too few alone; with the (fake) full similarity, enough
    assert (lexical.fired, semantic.fired) == (True, False)


def test_abstentions_are_not_scored_as_hallucinations() -> None:
    policy = GroundednessPolicy(threshold=0.5, action="review")
    for text in (
        "I don't know.",
        "The passages do not contain the answer to this question.",
        "I cannot answer that from the documentation.",
    ):
        assert is_abstention(text), text
        check = check_groundedness(policy, text, CHUNKS)
        assert check is not None
        assert (check.finding.label, check.finding.fired, check.action) == ("abstained", False, None)
    mixed = check_groundedness(policy, "I don't know. " + UNSUPPORTED, CHUNKS)
    assert mixed is not None
    assert mixed.action == "review"
    assert not is_abstention("The assert statement raises AssertionError.")


def test_cited_passages_are_the_cited_ones_else_all() -> None:
    assert [n for n, _ in cited_passages("a [2] and [2, 1] and [9]", CHUNKS)] == [1, 2]
    assert [n for n, _ in cited_passages("no citation at all", CHUNKS)] == [1, 2]
    assert [n for n, _ in cited_passages("only [2]", CHUNKS)] == [2]


def test_review_raises_the_verdict_and_keeps_a_block() -> None:
    policy = GroundednessPolicy(action="review")
    check = check_groundedness(policy, UNSUPPORTED, CHUNKS)
    assert check is not None
    allowed = Decision("output", "p@1", Verdict.REDACT, [], [])
    raised = apply_grounding(allowed, check)
    assert raised.verdict is Verdict.REVIEW
    assert raised.reasons == [f"groundedness score {check.score:.2f} < 0.70"]
    assert raised.findings == [check.finding]
    flagged = apply_grounding(allowed, check_groundedness(GroundednessPolicy(), UNSUPPORTED, CHUNKS))  # type: ignore[arg-type]
    assert flagged.verdict is Verdict.REDACT


def test_the_policy_section_is_validated() -> None:
    base = {"name": "p", "input": INPUT, "output": OUTPUT}
    assert Policy.model_validate(base).output.groundedness.enabled is False
    on = Policy.model_validate({**base, "output": {**OUTPUT, "groundedness": {}}})
    assert on.output.groundedness == GroundednessPolicy(
        enabled=True, threshold=0.7, action="flag", semantic=False
    )
    for bad in ({"action": "delete"}, {"threshold": 1.5}, {"thresholds": []}):
        with pytest.raises(ValueError, match="groundedness"):
            Policy.model_validate({**base, "output": {**OUTPUT, "groundedness": bad}})

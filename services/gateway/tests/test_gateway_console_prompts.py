"""The console's prompt pages over a fake prompt store API: the listing, one prompt's versions,
labels, label history and experiment, and the diff between two versions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_gateway.console.pages_prompts import diff_lines, traffic_shares

from .console_world import ConsoleWorld, FakeApis, console_world


def version(number: int, system: str, **spec: Any) -> dict[str, Any]:
    return {
        "name": "qa", "tenant": "acme", "version": number, "label": None, "content_hash": f"sha256:{number:064d}",
        "created_at": f"2026-12-0{number}T09:00:00+00:00", "created_by": "key-op",
        "spec": {"name": "qa", "description": "Support answers", "model": spec.get("model"),
                 "messages": [{"role": "system", "content": system}, {"role": "user", "content": "{{ question }}"}],
                 "variables": [{"name": "question", "description": "What the user asks", "required": True,
                                "default": None, "type": "string", "choices": None, "max_length": 2000}],
                 "retrieval": {"enabled": True, "query": None, "top_k": 4, "min_score": None, "collection": None},
                 "params": {"temperature": 0.2, "max_tokens": None}, "metadata": {}},
        "source": "",
    }  # fmt: skip


VERSIONS = [version(1, "Answer briefly."), version(2, "Answer from the context only.", model="cairn-qa")]
PROMPTS = [
    {"name": "qa", "tenant": "acme", "latest_version": 2, "description": "Support answers",
     "labels": {"production": 1, "beta": 2}, "experiment": "qa-tone"},
    {"name": "shared/summarise", "tenant": "default", "latest_version": 1, "description": "Summaries",
     "labels": {"production": 1}, "experiment": None},
]  # fmt: skip
EXPERIMENT = {
    "name": "qa-tone", "prompt": "qa", "label": "production", "tenant": "acme",
    "variants": [{"name": "control", "version": 1, "label": None, "weight": 3.0},
                 {"name": "brief", "version": None, "label": "beta", "weight": 1.0}],
}  # fmt: skip
HISTORY = [
    {"name": "qa", "label": "production", "version": 1, "previous": None, "moved_by": "key-op",
     "moved_at": "2026-12-01T09:00:00+00:00"},
    {"name": "qa", "label": "beta", "version": 2, "previous": None, "moved_by": "key-admin",
     "moved_at": "2026-12-02T09:00:00+00:00"},
]  # fmt: skip
DIFF = """--- qa:1
+++ qa:2
@@ -3,2 +3,2 @@
 messages:
-- content: Answer briefly.
+- content: Answer from the context only.
"""


@pytest.fixture
async def world() -> AsyncIterator[ConsoleWorld]:
    apis = FakeApis()
    apis.answer("prompts", "GET", "/prompts", PROMPTS)
    apis.answer("prompts", "GET", "/experiments", [EXPERIMENT])
    apis.answer("prompts", "GET", "/prompts/qa/versions", VERSIONS)
    apis.answer("prompts", "GET", "/prompts/qa/labels", {"production": 1, "beta": 2})
    apis.answer("prompts", "GET", "/prompts/qa/history", HISTORY)
    apis.answer("prompts", "GET", "/experiments/qa", EXPERIMENT)
    apis.answer("prompts", "GET", "/prompts/qa/diff", DIFF)
    async with console_world(apis) as w:
        yield w


async def test_the_listing_shows_every_readable_prompt_with_its_labels_and_experiments(
    world: ConsoleWorld,
) -> None:
    await world.login("viewer")
    page = await world.client.get("/console/prompts")
    assert page.status_code == 200
    text = page.text
    assert 'href="/console/prompts/qa?tenant=acme"' in text
    assert (
        'href="/console/prompts/shared%2Fsummarise?tenant=default"' in text
    )  # shared prompts, own tenant named
    assert "production → v1" in text
    assert "beta → v2" in text
    assert 'data-experiment="qa-tone"' in text
    assert "control (v1," in text
    assert "75.0%" in text
    assert "brief (@beta," in text
    assert "25.0%" in text
    assert 'id="prompt-filter"' not in text  # a tenant-bound key reads its own tenant and the shared prompts
    calls = world.apis.calls_to("prompts")
    assert [path for path, *_ in calls] == ["/prompts", "/experiments"]
    assert all(auth == f"Bearer {world.tokens['viewer']}" for *_, auth in calls)
    assert all("tenant" not in query for _, query, _, _ in calls)


async def test_a_platform_admin_filters_the_listing_by_tenant(world: ConsoleWorld) -> None:
    await world.login("root")
    page = await world.client.get("/console/prompts", params={"tenant": "acme"})
    assert 'id="prompt-filter"' in page.text
    assert [query["tenant"] for _, query, _, _ in world.apis.calls_to("prompts")] == ["acme", "acme"]


async def test_a_prompt_page_shows_its_versions_labels_history_and_experiment(world: ConsoleWorld) -> None:
    await world.login("viewer")
    page = await world.client.get("/console/prompts/qa", params={"tenant": "acme"})
    assert page.status_code == 200
    text = page.text
    assert text.index('id="version-2"') < text.index('id="version-1"')  # newest first
    assert "Answer from the context only." in text
    assert "Answer briefly." in text
    assert "{{ question }}" in text  # the template text, not rendered
    assert "<code>question</code>" in text
    assert "at most 2000 characters" in text
    assert "Model: cairn-qa" in text
    assert "Model: the tenant&#39;s production model" in text
    assert "temperature=0.2" in text
    assert "max_tokens" not in text
    assert '<table id="label-history">' in text
    assert "key-admin" in text
    assert 'id="experiment-name">qa-tone' in text
    assert 'data-variant="control"' in text
    assert "75.0%" in text
    assert "@beta (v2)" in text  # a label arm shows the version it renders now
    assert 'id="diff-form"' in text
    paths = [(path, query.get("tenant")) for path, query, _, _ in world.apis.calls_to("prompts")]
    assert paths == [("/prompts/qa/versions", "acme"), ("/prompts/qa/labels", "acme"),
                     ("/prompts/qa/history", "acme"), ("/experiments/qa", "acme"),
                     ("/proposals", "acme")]  # fmt: skip
    assert 'id="experiment-statistics-none"' in text  # the evaluator did not answer


# -- prompt experiments: the evaluator's per-variant statistics, proposed winners (issue 14) --


async def test_a_running_experiment_shows_the_evaluators_statistics_and_proposed_winners(
    world: ConsoleWorld,
) -> None:
    estimate = {"value": 0.8, "low": 0.62, "high": 0.91, "n": 30}
    empty = {"value": None, "low": None, "high": None, "n": 0}
    arm = {"variant": "control", "prompt_version": 1, "requests": 70, "observations": 30,
           "positive_rate": estimate, "mean_rating": empty, "refusal_rate": empty, "groundedness": empty}  # fmt: skip
    world.apis.answer(
        "registry", "GET", "/v1/experiments/qa-tone",
        {"arms": [arm], "test": "msprt-normal-mixture", "metric": "positive_feedback_rate",
         "parameters": {"alpha": 0.05, "min_samples": 30}, "decision": "continue",
         "reason": "control not yet significantly better than brief", "evidence": 3.2, "threshold": 20.0,
         "published": False},
    )  # fmt: skip
    world.apis.answer(
        "prompts", "GET", "/proposals",
        [{"tenant": "acme", "conclusion_id": "c-1", "prompt": "qa", "experiment": "old-ab", "label": "production",
          "variant": "brief", "version": 2, "evidence": 41.5, "summary": "brief: 0.9 positive",
          "proposed_at": "2025-03-05T10:42:00Z", "status": "open"}],
    )  # fmt: skip
    await world.login("viewer")
    text = (await world.client.get("/console/prompts/qa", params={"tenant": "acme"})).text
    assert 'id="experiment-statistics"' in text
    assert "0.800 [0.620, 0.910]" in text
    assert "control not yet significantly better than brief" in text
    assert 'id="experiment-proposals"' in text
    assert "@production &rarr; v2" in text
    [(_, query, _, _)] = world.apis.calls_to("registry")
    assert (query["prompt"], query["tenant"]) == ("qa", "acme")


async def test_a_prompt_without_an_experiment_says_so(world: ConsoleWorld) -> None:
    world.apis.answer(
        "prompts", "GET", "/experiments/qa", {"detail": "no experiment runs on prompt 'qa'"}, 404
    )
    await world.login("viewer")
    page = await world.client.get("/console/prompts/qa")
    assert page.status_code == 200
    assert 'id="experiment-none"' in page.text


async def test_an_unknown_prompt_is_the_error_page(world: ConsoleWorld) -> None:
    world.apis.answer("prompts", "GET", "/prompts/nope/versions", {"detail": "no prompt 'nope'"}, 404)
    await world.login("viewer")
    page = await world.client.get("/console/prompts/nope")
    assert page.status_code == 404
    assert "prompt store: no prompt" in page.text


async def test_a_name_the_store_cannot_hold_calls_nothing(world: ConsoleWorld) -> None:
    await world.login("viewer")
    page = await world.client.get("/console/prompts/qa%2F..%2F..%2Fadmin")
    assert page.status_code == 404
    assert "there is no prompt named" in page.text
    assert world.apis.calls_to("prompts") == []


async def test_the_diff_page_shows_the_stores_diff_of_the_chosen_versions(world: ConsoleWorld) -> None:
    await world.login("viewer")
    page = await world.client.get("/console/prompts/qa/diff", params={"tenant": "acme", "from": 1, "to": 2})
    assert page.status_code == 200
    assert '<span class="diff-del">-- content: Answer briefly.</span>' in page.text
    assert '<span class="diff-add">+- content: Answer from the context only.</span>' in page.text
    assert '<option value="1" selected>v1</option>' in page.text  # the form keeps the choice
    [(path, query, _, auth), _] = world.apis.calls_to("prompts")
    assert path == "/prompts/qa/diff"
    assert query == {"from": "1", "to": "2", "tenant": "acme"}
    assert auth == f"Bearer {world.tokens['viewer']}"


async def test_a_diff_needs_two_versions(world: ConsoleWorld) -> None:
    await world.login("viewer")
    page = await world.client.get("/console/prompts/qa/diff", params={"from": 1})
    assert page.status_code == 400
    assert world.apis.calls_to("prompts") == []


def test_traffic_shares_follow_the_weights() -> None:
    shares = traffic_shares({"variants": [{"name": "a", "weight": 1.0}, {"name": "b", "weight": 0.0}]})
    assert [(v["name"], v["share"]) for v in shares] == [("a", 1.0), ("b", 0.0)]


def test_diff_lines_are_classified() -> None:
    assert [k for k, _ in diff_lines(DIFF)] == ["file", "file", "hunk", "same", "del", "add"]

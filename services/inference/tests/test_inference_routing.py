"""Routing policies: validation, rule choice, the policy files, and the chain tried in order by the handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cairn_bus import InMemoryInbox, InMemoryPublisher
from cairn_bus.policy_files import PolicyFileError, TenantPolicyFiles
from cairn_events import (
    GenerationParams,
    ModelPromotedV1,
    ModelRegisteredV1,
    ModelStage,
    Quantization,
    ResponseStatus,
    RouteAttempt,
)
from cairn_inference.app import router
from cairn_inference.bootstrap import build
from cairn_inference.domain.completion import BackendUnavailableError
from cairn_inference.domain.registry import RegistryView
from cairn_inference.domain.routing import RouteFacts, RoutingPolicy, choose, facts_of
from cairn_inference.ports import ModelBackend

from .conftest import FakeBackend, screened
from .test_inference_handlers import Harness, settings

BASE = "SmolLM2-135M-Instruct"


def policy(*rules: dict[str, Any], version: int = 1) -> RoutingPolicy:
    return RoutingPolicy.model_validate({"version": version, "rules": list(rules)})


def facts(**changes: Any) -> RouteFacts:
    given: dict[str, Any] = {
        "prompt": "qa",
        "tenant": "acme",
        "input_chars": 100,
        "budget_left": None,
        "latency_class": None,
    }
    return RouteFacts(**{**given, **changes})


# --- the policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ([{"name": "a", "chain": []}], "at least 1 item"),
        ([{"name": "a", "chain": ["m"]}, {"name": "a", "chain": ["n"]}], "rule names must be unique: a"),
        ([{"name": "a", "chain": ["m", "m"]}], "a model appears twice"),
        (
            [{"name": "a", "chain": ["m"], "when": {"min_input_chars": 9, "max_input_chars": 2}}],
            "never match",
        ),
        ([{"name": "a", "chain": ["m"], "when": {"budget_left_below": 1.5}}], "less than or equal to 1"),
        ([{"name": "a", "chain": ["m"], "when": {"latency_class": ["urgent"]}}], "'interactive'"),
        ([{"name": "a", "chain": ["m"], "when": {"tier": "gold"}}], "Extra inputs are not permitted"),
        ([{"name": "A b", "chain": ["m"]}], "String should match pattern"),
    ],
)
def test_a_policy_that_cannot_route_is_refused_saying_why(rules: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        policy(*rules)


def test_the_first_rule_whose_conditions_all_hold_is_chosen() -> None:
    routes = policy(
        {"name": "low-budget", "when": {"budget_left_below": 0.2}, "chain": ["cheap"]},
        {"name": "batch", "when": {"latency_class": ["batch"], "prompts": ["qa"]}, "chain": ["cheap", "big"]},
        {"name": "long", "when": {"min_input_chars": 1000}, "chain": ["big"]},
        {"name": "vip", "when": {"tenants": ["globex"], "max_input_chars": 500}, "chain": ["big"]},
    )

    def chosen(**changes: Any) -> str | None:
        rule = choose(routes, facts(**changes))
        return rule.name if rule else None

    assert chosen() is None
    assert chosen(budget_left=0.1, latency_class="batch") == "low-budget"
    assert chosen(budget_left=0.5, latency_class="batch") == "batch"
    assert chosen(latency_class="batch", prompt="summary") is None
    assert chosen(input_chars=1000) == "long"
    assert chosen(input_chars=999) is None
    assert chosen(tenant="globex") == "vip"
    assert chosen(tenant="globex", input_chars=501) is None
    assert (
        chosen(budget_left=None, latency_class="interactive") is None
    )  # no budget: the budget rule never holds


def test_the_facts_of_a_request_are_known_before_generation() -> None:
    event = screened(model=None).model_copy(
        update={"params": GenerationParams(max_tokens=8, latency_class="batch")}
    )
    found = facts_of(event, 0.25)
    assert (found.prompt, found.tenant, found.budget_left, found.latency_class) == (
        event.prompt_name,
        event.tenant,
        0.25,
        "batch",
    )
    assert found.input_chars == sum(len(m.content) for m in event.messages)


# --- the policy files ---------------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_a_tenants_file_wins_over_the_default_and_a_bad_edit_keeps_the_last_valid(tmp_path: Path) -> None:
    write(tmp_path, "default", "version: 1\nrules:\n  - {name: all, chain: [cairn-qa]}\n")
    write(tmp_path, "acme", "version: 4\nrules:\n  - {name: acme, chain: [cairn-qa-int8, cairn-qa]}\n")
    files = TenantPolicyFiles(tmp_path, RoutingPolicy)
    acme, other = files.policy_for("acme"), files.policy_for("globex")
    assert acme is not None
    assert other is not None
    assert (acme.name, acme.version, other.name, other.version) == ("acme", 4, "default", 1)
    assert files.policy_for("../default") == other  # a name that is not a file name gets the default
    write(tmp_path, "acme", "version: 5\nrules: []\n")
    assert files.policy_for("acme") == acme


def test_an_invalid_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    write(tmp_path, "default", "version: 1\nrules:\n  - {name: all, chain: []}\n")
    with pytest.raises(PolicyFileError, match=r"default\.yaml: rules\.0\.chain: List should have at least 1"):
        TenantPolicyFiles(tmp_path, RoutingPolicy).validate_all()
    write(tmp_path, "default", "version: [1\n")
    with pytest.raises(PolicyFileError, match="not valid YAML"):
        TenantPolicyFiles(tmp_path, RoutingPolicy).policy_for("acme")
    write(tmp_path, "default", "name: other\nversion: 1\nrules:\n  - {name: all, chain: [m]}\n")
    with pytest.raises(PolicyFileError, match="must match the file name"):
        TenantPolicyFiles(tmp_path, RoutingPolicy).policy_for("acme")


def test_no_file_routes_nothing(tmp_path: Path) -> None:
    assert TenantPolicyFiles(tmp_path, RoutingPolicy).policy_for("acme") is None


def test_the_shipped_policy_is_valid() -> None:
    folder = Path(__file__).resolve().parents[3] / "infra" / "routing"
    loaded = TenantPolicyFiles(folder, RoutingPolicy).validate_all()
    assert [p.name for p in loaded] == ["default"]


# --- the handler: the chain tried in order ------------------------------------------------------------


def registered(name: str, quantization: Quantization | None = None) -> ModelRegisteredV1:
    return ModelRegisteredV1(
        model_name=name,
        version=1,
        base_model=BASE,
        config={},
        metrics={},
        code_version="test",
        registered_at=datetime(2026, 1, 1, tzinfo=UTC),
        quantization=quantization,
    )


def promoted(name: str) -> ModelPromotedV1:
    return ModelPromotedV1(
        model_name=name,
        version=1,
        to_stage=ModelStage.PRODUCTION,
        promoted_by="test",
        reason="test",
        promoted_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


class Busy(FakeBackend):
    """A backend with requests waiting for it."""

    waiting = 5


ROUTES = """
version: 3
rules:
  - name: batch
    when: {latency_class: [batch]}
    chain: [small, missing, big]
  - name: quick
    when: {latency_class: [interactive]}
    chain: [small, big]
    attempt_timeout_s: 0.05
  - name: spill
    when: {prompts: [spill]}
    chain: [small, big]
    max_waiting: 2
"""


@asynccontextmanager
async def routed(
    tmp_path: Path, full: FakeBackend, int8: FakeBackend, routes: str = ROUTES
) -> AsyncIterator[Harness]:
    """Model `small` (int8) on `int8`, `big` (full precision) on `full`, and the routes above."""
    write(tmp_path, "default", routes)
    view = RegistryView()
    for name, quantization in (("small", Quantization.INT8), ("big", None)):
        view.apply_registered(registered(name, quantization), f"r-{name}")
        view.apply_promoted(promoted(name), f"p-{name}")
    publisher = InMemoryPublisher("/cairn/inference", allowed_types=router.published_types)
    backends: dict[str, ModelBackend] = {"int8": int8}
    async with build(
        settings(),
        publisher,
        backend=full,
        inbox=InMemoryInbox(),
        registry=view,
        quantized=backends,
        routing=TenantPolicyFiles(tmp_path, RoutingPolicy),
    ) as deps:
        yield Harness(deps, InMemoryPublisher("/cairn/safety"))


def ask(latency_class: str | None = None, prompt: str = "qa", model: str | None = None) -> Any:
    event = screened(model=model)
    params = GenerationParams(max_tokens=8, latency_class=latency_class)  # type: ignore[arg-type]
    return event.model_copy(update={"params": params, "prompt_name": prompt})


async def test_the_first_model_that_answers_answers_and_the_trail_says_why_the_others_did_not(
    tmp_path: Path,
) -> None:
    full, int8 = FakeBackend("big answer"), FakeBackend(error=BackendUnavailableError("connection refused"))
    async with routed(tmp_path, full, int8) as harness:
        await harness.deliver(harness.message(ask("batch")))
        (completion,) = harness.completions()
    assert (completion.model, completion.text) == ("big", "big answer")
    route = completion.route
    assert route is not None
    assert (route.policy, route.policy_version, route.rule, route.chain) == (
        "default",
        3,
        "batch",
        ["small", "missing", "big"],
    )
    assert [a.model for a in route.fallbacks] == ["small", "missing"]
    assert route.fallbacks[0].reason == "inference backend unavailable: connection refused"
    assert "'missing' is not served here" in route.fallbacks[1].reason
    assert len(int8.calls) == 1


async def test_a_model_that_answers_first_leaves_no_fallbacks(tmp_path: Path) -> None:
    full, int8 = FakeBackend("big answer"), FakeBackend("small answer")
    async with routed(tmp_path, full, int8) as harness:
        await harness.deliver(harness.message(ask("batch")))
        (completion,) = harness.completions()
    assert (completion.model, completion.text, full.calls) == ("small", "small answer", [])
    assert completion.route is not None
    assert (completion.route.rule, completion.route.fallbacks) == ("batch", [])


async def test_a_model_past_the_attempt_timeout_gives_way_and_the_last_has_the_whole_timeout(
    tmp_path: Path,
) -> None:
    full, int8 = FakeBackend("big answer", delay=0.2), FakeBackend("small answer", delay=5)
    async with routed(tmp_path, full, int8) as harness:
        await harness.deliver(harness.message(ask("interactive")))
        (completion,) = harness.completions()
    assert completion.text == "big answer"  # 0.2 s, beyond the attempt timeout, within the generation timeout
    assert completion.route is not None
    assert completion.route.fallbacks == [
        RouteAttempt(model="small", reason="generation timed out after 0.05 s")
    ]
    assert int8.cancelled == 1


async def test_an_overloaded_model_is_skipped(tmp_path: Path) -> None:
    full, int8 = FakeBackend("big answer"), Busy("small answer")
    async with routed(tmp_path, full, int8) as harness:
        await harness.deliver(harness.message(ask(prompt="spill")))
        (completion,) = harness.completions()
    assert (completion.text, int8.calls) == ("big answer", [])
    assert completion.route is not None
    assert completion.route.fallbacks == [
        RouteAttempt(model="small", reason="overloaded: 5 requests waiting (max_waiting 2)")
    ]


async def test_when_no_model_answers_the_request_fails_with_every_reason(tmp_path: Path) -> None:
    down = BackendUnavailableError("down")
    full, int8 = FakeBackend(error=down), FakeBackend(error=down)
    async with routed(tmp_path, full, int8) as harness:
        await harness.deliver(harness.message(ask("batch")))
        (response,) = harness.responses()
    assert response.status is ResponseStatus.FAILED
    assert response.route is not None
    assert [a.model for a in response.route.fallbacks] == ["small", "missing", "big"]
    assert response.reason is not None
    assert response.reason.startswith(
        "inference backend unavailable: no model of the route answered: small: "
    )
    assert "; big: inference backend unavailable: down" in response.reason
    assert response.model is None  # none answered


async def test_a_request_that_names_its_model_or_matches_no_rule_is_not_routed(tmp_path: Path) -> None:
    full, int8 = FakeBackend("big answer"), FakeBackend("small answer")
    async with routed(tmp_path, full, int8) as harness:
        await harness.deliver(harness.message(ask("batch", model="big:1")))
        await harness.deliver(harness.message(ask(None)))
        named, unmatched = harness.completions()
    assert (named.model, named.route) == ("big", None)
    assert (unmatched.model, unmatched.route) == (BASE, None)


async def test_a_rule_on_the_budget_left_uses_the_tenants_spend(tmp_path: Path) -> None:
    from cairn_inference.adapters.budget_memory import InMemorySpendLedger
    from cairn_inference.domain.budget import budget_day
    from cairn_observability.pricing import PriceTable

    routes = "version: 1\nrules:\n  - {name: thrifty, when: {budget_left_below: 0.2}, chain: [small, big]}\n"
    full, int8 = FakeBackend("big answer"), FakeBackend("small answer")
    prices = PriceTable.model_validate(
        {"default": {"input_per_mtok": 1, "output_per_mtok": 1}, "budgets": {"default": 10.0}}
    )
    ledger = InMemorySpendLedger()
    async with routed(tmp_path, full, int8, routes) as harness:
        harness.deps.prices, harness.deps.ledger = prices, ledger
        event = ask()
        await harness.deliver(harness.message(event))
        await ledger.add(event.tenant, budget_day(datetime.now(UTC)), 8.5, 100)
        await harness.deliver(harness.message(ask()))
        plenty, thrifty = harness.completions()
    assert (plenty.model, plenty.route) == (BASE, None)
    assert thrifty.route is not None
    assert (thrifty.model, thrifty.route.rule) == ("small", "thrifty")

"""Routing policies: which models may answer a request, in which order (docs/routing.md).

A policy is a YAML file (`<routing_dir>/<tenant>.yaml`, else `default.yaml`) with a `version` and ordered
`rules`. The first rule whose conditions all hold gives the request its `chain` of model references;
inference tries them in order and the next one answers when one is down, times out, is overloaded or
is not served. No rule matching, or a request that names its model, keeps the usual resolution
(`domain.references`). Conditions use only what is known before generation: the prompt, the tenant, the
length of the screened messages, the share of the tenant's daily budget left and the latency class the
caller asked for (`params.latency_class`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cairn_events import InputScreenedV1, RouteAttempt, RouteDecision

__all__ = ["RouteFacts", "RouteRule", "RouteWhen", "RoutingPolicy", "choose", "decision", "facts_of"]

LatencyClass = Literal["interactive", "standard", "batch"]


class RouteWhen(BaseModel):
    """A rule's conditions; every one given must hold (none given: the rule always matches)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompts: list[str] | None = Field(None, min_length=1, description="Prompt names the rule applies to.")
    tenants: list[str] | None = Field(None, min_length=1, description="Tenants the rule applies to.")
    min_input_chars: int | None = Field(None, ge=0, description="At least this many characters of messages.")
    max_input_chars: int | None = Field(None, ge=0, description="At most this many characters of messages.")
    budget_left_below: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Less than this share of the tenant's daily budget is left (never holds without a budget).",
    )
    latency_class: list[LatencyClass] | None = Field(
        None, min_length=1, description="The latency classes the caller may have asked for."
    )

    @model_validator(mode="after")
    def _consistent(self) -> RouteWhen:
        if (
            self.min_input_chars is not None
            and self.max_input_chars is not None
            and self.min_input_chars > self.max_input_chars
        ):
            raise ValueError("min_input_chars is above max_input_chars: the rule could never match")
        return self


class RouteRule(BaseModel):
    """One rule: its name (recorded on the events), its conditions and its chain of models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    when: RouteWhen = RouteWhen()
    chain: list[str] = Field(
        min_length=1, description="Model references (`cairn-qa`, `cairn-qa@staging`, `cairn-qa:3`, the base)."
    )
    attempt_timeout_s: float | None = Field(
        None,
        gt=0.0,
        description="Each model's time to answer before the next is tried; the last model of the chain has "
        "the service's generation timeout (default: every model has it).",
    )
    max_waiting: int | None = Field(
        None,
        ge=0,
        description="A model with more requests than this waiting for it is skipped as overloaded.",
    )

    @model_validator(mode="after")
    def _distinct(self) -> RouteRule:
        if len(set(self.chain)) != len(self.chain):
            raise ValueError(f"rule {self.name!r}: a model appears twice in its chain")
        return self


class RoutingPolicy(BaseModel):
    """One policy file: a version (recorded on the events) and its rules, first match wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("default", description="The file's name without `.yaml` (set by the loader).")
    version: int = Field(ge=1, description="Raise it with every change; events carry it.")
    rules: list[RouteRule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> RoutingPolicy:
        names = [rule.name for rule in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique: {', '.join(twice)}")
        return self


@dataclass(frozen=True)
class RouteFacts:
    """What is known of a request before generation."""

    prompt: str | None
    tenant: str
    input_chars: int
    budget_left: float | None
    """Share of the tenant's daily budget left (0-1); None: no budget applies."""
    latency_class: str | None


def facts_of(event: InputScreenedV1, budget_left: float | None) -> RouteFacts:
    """The facts of a screened input."""
    return RouteFacts(
        prompt=event.prompt_name,
        tenant=event.tenant,
        input_chars=sum(len(m.content) for m in event.messages),
        budget_left=budget_left,
        latency_class=event.params.latency_class,
    )


def _holds(when: RouteWhen, facts: RouteFacts) -> bool:
    checks = (
        when.prompts is None or facts.prompt in when.prompts,
        when.tenants is None or facts.tenant in when.tenants,
        when.min_input_chars is None or facts.input_chars >= when.min_input_chars,
        when.max_input_chars is None or facts.input_chars <= when.max_input_chars,
        when.budget_left_below is None
        or (facts.budget_left is not None and facts.budget_left < when.budget_left_below),
        when.latency_class is None or facts.latency_class in when.latency_class,
    )
    return all(checks)


def choose(policy: RoutingPolicy, facts: RouteFacts) -> RouteRule | None:
    """The first rule of `policy` whose conditions hold for `facts`; None when none does."""
    return next((rule for rule in policy.rules if _holds(rule.when, facts)), None)


def decision(policy: RoutingPolicy, rule: RouteRule, fallbacks: list[RouteAttempt]) -> RouteDecision:
    """The route as the events record it."""
    return RouteDecision(
        policy=policy.name,
        policy_version=policy.version,
        rule=rule.name,
        chain=list(rule.chain),
        fallbacks=fallbacks,
    )

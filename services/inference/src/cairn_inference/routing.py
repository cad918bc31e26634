"""Routing on the request path: the policy rule that applies to a request, and its chain of models tried
in order until one answers (`domain.routing`, docs/routing.md).

Without a rule (routing off, no rule matching, or a request naming its model) a request has one model,
its own reference resolved as usual, and its failure fails the request as before. With a rule, a model
that names nothing servable, is over its `max_waiting`, is down, errs or passes `attempt_timeout_s` is
recorded as a fallback with its reason and the next one is tried; when none answers the request fails
with every reason. A streaming request whose first delta went out keeps its model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cairn_bus.policy_files import PolicyFileError
from cairn_events import InputScreenedV1, RouteAttempt, RouteDecision
from cairn_inference.bootstrap import Deps
from cairn_inference.domain.completion import (
    BackendUnavailableError,
    Completion,
    ModelNotServedError,
    failure_reason,
)
from cairn_inference.domain.references import ResolvedModel, UnknownModelError, resolve
from cairn_inference.domain.routing import RouteRule, RoutingPolicy, choose, decision, facts_of
from cairn_observability import get_logger

__all__ = ["Attempts", "NoModelAnsweredError", "RoutePlan", "plan_for"]

log = get_logger("cairn.inference")

Generate = Callable[[ResolvedModel], Awaitable[Completion]]


@dataclass(frozen=True)
class RoutePlan:
    """The policy and the rule that route a request."""

    policy: RoutingPolicy
    rule: RouteRule


def plan_for(event: InputScreenedV1, deps: Deps, budget_left: float | None) -> RoutePlan | None:
    """The rule routing `event`; None when routing is off, the request names its model, or no rule
    matches. A policy file that cannot be read routes nothing (logged): requests are served as usual."""
    if deps.routing is None or event.model is not None:
        return None
    try:
        policy = deps.routing.policy_for(event.tenant)
    except PolicyFileError as exc:
        log.error("routing policy unreadable: not routing", tenant=event.tenant, error=str(exc))
        return None
    if policy is None:
        return None
    rule = choose(policy, facts_of(event, budget_left))
    return RoutePlan(policy, rule) if rule is not None else None


class NoModelAnsweredError(BackendUnavailableError):
    """Every model of the route was tried and none answered; the message lists why."""

    def __init__(self, fallbacks: list[RouteAttempt]) -> None:
        self.fallbacks = fallbacks
        super().__init__(
            "no model of the route answered: " + "; ".join(f"{a.model}: {a.reason}" for a in fallbacks)
        )


@dataclass
class Attempts:
    """The models a request may be answered by, in order, and the ones that did not answer."""

    event: InputScreenedV1
    deps: Deps
    plan: RoutePlan | None
    fallbacks: list[RouteAttempt] = field(default_factory=list)
    _next: int = 0

    @property
    def route(self) -> RouteDecision | None:
        """The route as events record it; None without a rule."""
        if self.plan is None:
            return None
        return decision(self.plan.policy, self.plan.rule, list(self.fallbacks))

    @property
    def timeout_s(self) -> float:
        """The current attempt's time: the rule's `attempt_timeout_s`, except for the chain's last model
        (nothing follows it), which has the service's generation timeout like an unrouted request."""
        rule = self.plan.rule if self.plan is not None else None
        if rule is not None and rule.attempt_timeout_s is not None and self._next < len(rule.chain):
            return rule.attempt_timeout_s
        return self.deps.generation_timeout_s

    def next_model(self) -> ResolvedModel:
        """The next model that can be asked. Raises UnknownModelError for an unresolvable reference without a
        rule, NoModelAnsweredError when the rule's chain is spent."""
        if self.plan is None:
            if self._next > 0:
                raise NoModelAnsweredError(self.fallbacks)
            self._next = 1
            return self._resolve(self.event.model)
        chain = self.plan.rule.chain
        while self._next < len(chain):
            reference = chain[self._next]
            self._next += 1
            try:
                served = self._resolve(reference)
            except UnknownModelError as exc:
                self.fallbacks.append(RouteAttempt(model=reference, reason=str(exc)))
                continue
            busy = self._overloaded(served)
            if busy is not None and self._next < len(chain):  # the last one is asked however busy
                self.fallbacks.append(RouteAttempt(model=reference, reason=busy))
                continue
            return served
        raise NoModelAnsweredError(self.fallbacks)

    async def generate(
        self, first: ResolvedModel, generate: Generate, stream_started: Callable[[], bool]
    ) -> tuple[ResolvedModel, Completion]:
        """Ask `first`, then each next model while they fail; the model that answered and its completion.
        Raises the last failure when there is no rule (or a stream already started), NoModelAnsweredError when
        the chain is spent."""
        served = first
        while True:
            try:
                return served, await asyncio.wait_for(generate(served), self.timeout_s)
            except Exception as exc:
                if self.plan is None or stream_started():
                    raise
                reason = failure_reason(exc, self.timeout_s)
                log.warning(
                    "routed model did not answer; trying the next", model=self._name(served), reason=reason
                )
                self.fallbacks.append(RouteAttempt(model=self._name(served), reason=reason))
                served = self.next_model()

    def _resolve(self, reference: str | None) -> ResolvedModel:
        deps = self.deps
        return resolve(
            reference,
            deps.registry,
            served_model=deps.served_model,
            base_model=deps.default_model,
            request_id=self.event.request_id,
            canary_share=deps.canary_share,
        )

    def _overloaded(self, served: ResolvedModel) -> str | None:
        limit = self.plan.rule.max_waiting if self.plan is not None else None
        if limit is None:
            return None
        try:
            backend = self.deps.backend_for(served)
        except ModelNotServedError:
            return None  # its attempt fails with the reason
        waiting = getattr(backend, "waiting", None)  # `TracedBackend.waiting`, or a backend's own count
        if isinstance(waiting, int) and waiting > limit:
            return f"overloaded: {waiting} requests waiting (max_waiting {limit})"
        return None

    def _name(self, served: ResolvedModel) -> str:
        """The reference of the chain that `served` came from (what the policy names)."""
        if self.plan is not None and 0 < self._next <= len(self.plan.rule.chain):
            return self.plan.rule.chain[self._next - 1]
        return served.model if served.version is None else f"{served.model}:{served.version}"

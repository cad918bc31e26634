"""Per-tenant daily budgets: which UTC day a cost counts against, when a tenant is over its budget,
when one completion's cost crosses the alert share, and the ledger that keeps the running totals.

A day is a UTC calendar day: every tenant's spend starts again from zero at 00:00 UTC. A tenant is
over budget once its spend that day has reached the budget (`spent >= budget`), so a budget of 0
refuses every request and no budget (None) refuses none. The alert fires for the one addition that
takes the day's spend from below `share * budget` to at least it; the ledger's `first_alert` makes
sure it is raised once per tenant, day and level even when several replicas see the crossing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from cairn_bus.ids import derive_event_id
from cairn_events import OVER_BUDGET_REASON, AlertRaisedV1

__all__ = [
    "ALERT_LEVEL",
    "ALERT_NAME",
    "ALERT_SHARE",
    "DayUsage",
    "SpendLedger",
    "budget_alert",
    "budget_day",
    "budget_left",
    "check_spend",
    "crossed",
    "over_budget",
    "over_budget_reason",
    "over_tokens_reason",
]

ALERT_SHARE = 0.8
"""The share of the daily budget whose crossing raises the budget alert."""
ALERT_LEVEL = "80%"
"""The `level` under which the ledger remembers that the alert at `ALERT_SHARE` was raised."""
ALERT_NAME = "TenantBudget80"
"""The `alert_name` of the alert raised when a tenant crosses `ALERT_SHARE` of its daily budget."""


def budget_day(now: datetime) -> date:
    """The UTC calendar day `now` falls on: the day whose budget a cost incurred at `now` counts
    against. `now` must be timezone-aware (ValueError otherwise)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"budget_day needs a timezone-aware time, not {now!r}")
    return now.astimezone(UTC).date()


def over_budget(spent_usd: float, budget_usd: float | None) -> bool:
    """Whether a tenant that has spent `spent_usd` today may not be served: True once the spend has
    reached the budget (a budget of 0 refuses everything); never when there is no budget (None)."""
    if budget_usd is None:
        return False
    return spent_usd >= budget_usd


def budget_left(spent_usd: float | None, budget_usd: float | None) -> float | None:
    """The share of the day's budget left (0-1) for routing; None when no budget applies or the spend is
    unknown."""
    if spent_usd is None or budget_usd is None:
        return None
    if budget_usd <= 0:
        return 0.0
    return max(0.0, 1.0 - spent_usd / budget_usd)


def crossed(
    before_usd: float, after_usd: float, budget_usd: float | None, share: float = ALERT_SHARE
) -> bool:
    """Whether the addition that took the day's spend from `before_usd` to `after_usd` is the one
    that crossed `share` of the budget: below `share * budget` before, at or above it after. False
    without a budget; with a budget of 0 no addition crosses (nothing is ever spent below 0)."""
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], not {share}")
    if budget_usd is None:
        return False
    threshold = budget_usd * share
    return before_usd < threshold <= after_usd


def over_budget_reason(tenant: str, spent_usd: float, budget_usd: float, day: date) -> str:
    """Why a request of `tenant` is refused, for a human: what it spent of which budget, on which day."""
    return (
        f"{OVER_BUDGET_REASON} tenant {tenant} spent ${spent_usd:.4f} of its ${budget_usd:.2f} daily budget "
        f"(UTC day {day.isoformat()})"
    )


def over_tokens_reason(tenant: str, used: int, limit: int, day: date) -> str:
    """Why a request of `tenant` is refused for its token limit, for a human."""
    return (
        f"{OVER_BUDGET_REASON} tenant {tenant} used {used:,} of its {limit:,} daily tokens "
        f"(UTC day {day.isoformat()})"
    )


def budget_alert(tenant: str, spent_usd: float, budget_usd: float, day: date, now: datetime) -> AlertRaisedV1:
    """The `TenantBudget80` warning: `tenant` has spent `spent_usd`, at least `ALERT_SHARE` of its daily
    budget, on UTC day `day`. Its `alert_id` is fixed by tenant and day, so a second firing (another
    replica, a redelivery) carries the same id."""
    return AlertRaisedV1(
        alert_id=derive_event_id(f"budget:{tenant}:{day.isoformat()}", AlertRaisedV1.event_type, ALERT_NAME),
        alert_name=ALERT_NAME,
        severity="warning",
        summary=(
            f"Tenant {tenant} has spent ${spent_usd:.4f} of its ${budget_usd:.2f} daily budget "
            f"on UTC day {day.isoformat()} ({ALERT_SHARE:.0%} or more); requests are refused once it is spent."
        ),
        labels={
            "tenant": tenant,
            "day": day.isoformat(),
            "budget_usd": f"{budget_usd:.2f}",
            "share": f"{ALERT_SHARE:.0%}",
        },
        value=spent_usd,
        raised_at=now,
    )


def check_spend(cost_usd: float, tokens: int) -> None:
    """Raise ValueError unless `cost_usd` is a finite, non-negative amount and `tokens` a
    non-negative count: what a ledger accepts in `add`."""
    if not math.isfinite(cost_usd) or cost_usd < 0:
        raise ValueError(f"a cost is a finite amount of at least 0, not {cost_usd!r}")
    if tokens < 0:
        raise ValueError(f"a token count is at least 0, not {tokens!r}")


@dataclass(frozen=True)
class DayUsage:
    """What a tenant used on one day."""

    cost_usd: float
    """Spent, in US dollars."""
    tokens: int
    """Input and output tokens."""


class SpendLedger(Protocol):
    """Each tenant's spend per UTC day, shared by every replica that serves the tenant."""

    async def usage(self, tenant: str, day: date) -> DayUsage:
        """What `tenant` has spent on `day` in US dollars, and its tokens (both 0 when nothing was added);
        one read."""
        ...

    async def add(self, tenant: str, day: date, cost_usd: float, tokens: int) -> tuple[float, float]:
        """Add one completion's cost and tokens to `tenant`'s total of `day`; returns the total just
        before and just after this addition, atomically: concurrent additions (from any replica) are
        each counted once, and their (before, after) pairs chain without overlap. Amounts add up
        exactly in decimal (ten additions of 0.1 total 1.0). ValueError for a negative or non-finite
        cost or a negative token count."""
        ...

    async def first_alert(self, tenant: str, day: date, level: str) -> bool:
        """Note that the alert `level` was raised for `tenant` on `day`; True only for the first
        call for that tenant, day and level, across every replica (later calls: False)."""
        ...

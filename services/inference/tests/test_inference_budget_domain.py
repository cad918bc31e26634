"""Daily budgets, pure: UTC days, when a tenant is over budget, which addition crosses the alert
share, the refusal reason and the budget alert."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cairn_events import AlertRaisedV1
from cairn_events.codecs import CONTENT_TYPE_AVRO, decode, encode
from cairn_inference.domain.budget import (
    ALERT_NAME,
    budget_alert,
    budget_day,
    crossed,
    over_budget,
    over_budget_reason,
)

DAY = date(2026, 12, 7)
NOW = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)


def test_the_budget_day_rolls_over_at_utc_midnight() -> None:
    last_moment = datetime(2026, 12, 7, 23, 59, 59, 999999, tzinfo=UTC)
    assert budget_day(last_moment) == DAY
    assert budget_day(last_moment + timedelta(microseconds=1)) == date(2026, 12, 8)
    assert budget_day(datetime(2026, 12, 7, 0, 0, tzinfo=UTC)) == DAY


def test_the_budget_day_is_the_utc_day_whatever_the_offset() -> None:
    new_york = timezone(timedelta(hours=-5))
    tokyo = timezone(timedelta(hours=9))
    assert budget_day(datetime(2026, 12, 7, 19, 30, tzinfo=new_york)) == date(2026, 12, 8)  # 00:30 UTC
    assert budget_day(datetime(2026, 12, 8, 8, 59, tzinfo=tokyo)) == DAY  # 23:59 UTC


def test_a_naive_time_has_no_budget_day() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        budget_day(datetime(2026, 12, 7, 12, 0))  # naive on purpose


@pytest.mark.parametrize(
    ("spent", "budget", "over"),
    [
        (4.9999, 5.0, False),
        (5.0, 5.0, True),  # the budget is spent
        (5.0012, 5.0, True),
        (0.0, 0.0, True),  # a 0 budget refuses everything
        (1e9, None, False),  # no budget: never over
        (0.0, None, False),
    ],
)
def test_over_budget_once_the_budget_is_spent(spent: float, budget: float | None, over: bool) -> None:
    assert over_budget(spent, budget) is over


@pytest.mark.parametrize(
    ("before", "after", "budget", "expected"),
    [
        (3.9, 4.1, 5.0, True),  # crosses 80 % of $5 ($4)
        (3.9, 4.0, 5.0, True),  # reaching the share exactly crosses it
        (0.0, 6.0, 5.0, True),  # one big addition past the share and the budget
        (4.0, 4.5, 5.0, False),  # already at the share: crossed before
        (4.1, 5.2, 5.0, False),  # already past it
        (3.0, 3.9, 5.0, False),  # still below
        (3.9, 3.9, 5.0, False),  # nothing added
        (0.0, 0.0, 0.0, False),  # a 0 budget: nothing is ever spent, no alert
        (0.0, 100.0, None, False),  # no budget, no alert
    ],
)
def test_only_the_addition_that_crosses_the_share_has_crossed(
    before: float, after: float, budget: float | None, expected: bool
) -> None:
    assert crossed(before, after, budget) is expected


def test_a_sequence_of_additions_crosses_once() -> None:
    total, crossings = 0.0, []
    for cost in [1.0, 1.5, 1.25, 0.5, 0.75, 2.0]:
        crossings.append(crossed(total, total + cost, 5.0))
        total += cost
    assert crossings == [False, False, False, True, False, False]  # 3.75 -> 4.25 crosses $4


def test_another_share_can_be_asked() -> None:
    assert crossed(4.5, 5.0, 5.0, share=1.0)
    assert not crossed(4.0, 4.5, 5.0, share=1.0)
    assert crossed(2.0, 2.5, 5.0, share=0.5)
    for share in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="share"):
            crossed(1.0, 2.0, 5.0, share=share)


def test_the_refusal_reason_names_tenant_spend_budget_and_day() -> None:
    assert over_budget_reason("acme", 5.00123, 5.0, DAY) == (
        "over budget: tenant acme spent $5.0012 of its $5.00 daily budget (UTC day 2026-12-07)"
    )
    assert over_budget_reason("trial", 0.0, 0.0, DAY) == (
        "over budget: tenant trial spent $0.0000 of its $0.00 daily budget (UTC day 2026-12-07)"
    )


def test_the_budget_alert_is_a_warning_about_the_tenant() -> None:
    alert = budget_alert("acme", 4.0125, 5.0, DAY, NOW)
    assert alert.alert_name == ALERT_NAME == "TenantBudget80"
    assert alert.severity == "warning"
    assert alert.labels == {"tenant": "acme", "day": "2026-12-07", "budget_usd": "5.00", "share": "80%"}
    assert alert.value == 4.0125
    assert alert.raised_at == NOW
    assert "acme" in alert.summary
    assert "$4.0125 of its $5.00 daily budget" in alert.summary
    assert "2026-12-07" in alert.summary


def test_the_budget_alert_id_is_fixed_by_tenant_and_day() -> None:
    first = budget_alert("acme", 4.0125, 5.0, DAY, NOW)
    again = budget_alert("acme", 4.2, 5.0, DAY, NOW + timedelta(seconds=3))  # another replica's firing
    assert again.alert_id == first.alert_id
    assert budget_alert("globex", 4.0125, 5.0, DAY, NOW).alert_id != first.alert_id
    next_day = budget_alert("acme", 4.0125, 5.0, DAY + timedelta(days=1), NOW + timedelta(days=1))
    assert next_day.alert_id != first.alert_id


@pytest.mark.parametrize("content_type", ["application/json", CONTENT_TYPE_AVRO])
def test_the_budget_alert_travels_in_both_codecs(content_type: str) -> None:
    alert = budget_alert("tenant with spaces/ünïcode", 4.0, 5.0, DAY, NOW)
    assert decode(AlertRaisedV1.event_type, encode(alert, content_type), content_type) == alert

"""The inference service: screened inputs in (`cairn.screenings`), completions out (`cairn.completions`),
and a `failed` response (`cairn.responses`) when generation fails, a `rejected` one when the tenant's
daily budget is spent (and `TenantBudget80` on `cairn.alerts` at 80 %); the registry's changes
(`cairn.models`) decide which adapter answers."""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_events import (
    AdminActionRecordedV1,
    AlertRaisedV1,
    CompletionDeltaGeneratedV1,
    CompletionGeneratedV1,
    InputScreenedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    ResponseCompletedV1,
)
from cairn_inference.bootstrap import Deps, build
from cairn_inference.handlers import (
    on_admin_action,
    on_input_screened,
    on_model_promoted,
    on_model_registered,
)
from cairn_inference.settings import Settings

router: EventRouter[Deps] = EventRouter("inference")
router.handler(InputScreenedV1)(on_input_screened)
router.handler(ModelRegisteredV1)(on_model_registered)
router.handler(ModelPromotedV1)(on_model_promoted)
router.handler(AdminActionRecordedV1)(on_admin_action)  # tenant erasures: the response cache
router.publishes(CompletionGeneratedV1, CompletionDeltaGeneratedV1, ResponseCompletedV1)
router.publishes(AlertRaisedV1)  # a tenant past 80 % of its daily budget (TenantBudget80)


def main() -> None:
    """Entry point of `python -m cairn_inference`."""
    run_service(router, Settings(), build)

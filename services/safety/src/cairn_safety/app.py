"""The safety service: screens each request's input before inference and its output after it, and
answers a held request once its review is decided; on a tenant's erasure, destroys its key for the tenant."""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_events import (
    AdminActionRecordedV1,
    CompletionGeneratedV1,
    ContextAssembledV1,
    InputScreenedV1,
    ResponseCompletedV1,
    ReviewRequestedV1,
    ReviewResolvedV1,
)
from cairn_safety.bootstrap import Deps, build
from cairn_safety.handlers import (
    on_admin_action,
    on_completion_generated,
    on_context_assembled,
    on_review_resolved,
)
from cairn_safety.settings import Settings

router: EventRouter[Deps] = EventRouter("safety")
router.handler(ContextAssembledV1)(on_context_assembled)
router.handler(CompletionGeneratedV1)(on_completion_generated)
router.handler(ReviewResolvedV1)(on_review_resolved)
router.handler(AdminActionRecordedV1)(on_admin_action)  # tenant erasures
router.publishes(
    InputScreenedV1, ResponseCompletedV1, ReviewRequestedV1, ReviewResolvedV1, AdminActionRecordedV1
)


def main() -> None:
    """Entry point of `python -m cairn_safety`."""
    run_service(router, Settings(), build)

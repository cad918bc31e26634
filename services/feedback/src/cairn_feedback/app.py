"""The feedback service: keeps requests, screened inputs, responses and feedback as seen on the bus
(reviewers' decisions on held answers included, as feedback), and the answers of replays apart.

Dataset versions are built from them by `cairn datasets build` (see `datasets.build_dataset`), which
publishes `cairn.dataset.published.v1` under this service's name.
"""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_events import (
    AdminActionRecordedV1,
    DatasetPublishedV1,
    FeedbackSubmittedV1,
    InputScreenedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ReviewResolvedV1,
)
from cairn_feedback.bootstrap import Deps, build
from cairn_feedback.handlers import (
    on_admin_action,
    on_feedback_submitted,
    on_input_screened,
    on_request_submitted,
    on_response_completed,
    on_review_resolved,
)
from cairn_feedback.settings import Settings

# shadows: also `cairn.responses.shadow`, the answers of replays (teacher answers for distillation)
router: EventRouter[Deps] = EventRouter("feedback", shadows=True)
router.handler(RequestSubmittedV1)(on_request_submitted)
router.handler(InputScreenedV1)(on_input_screened)
router.handler(ResponseCompletedV1)(on_response_completed)
router.handler(FeedbackSubmittedV1)(on_feedback_submitted)
router.handler(ReviewResolvedV1)(on_review_resolved)
router.handler(AdminActionRecordedV1)(on_admin_action)  # tenant erasures
router.publishes(DatasetPublishedV1)


def main() -> None:
    """Entry point of `python -m cairn_feedback`."""
    run_service(router, Settings(), build)

"""The evaluator service: the model registry (`cairn.models`) and evaluation runs over the bus.

It publishes the evaluation requests (`request.submitted`), `evaluation.completed` and
`model.promoted`; it reads the answers to its own requests from `cairn.responses`. Its online part
observes live `cairn.requests`, `cairn.prompts`, `cairn.responses` and `cairn.feedback` and raises
`alert.raised` on drift.
"""

from __future__ import annotations

from functools import partial

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_evaluator.bootstrap import Deps, build
from cairn_evaluator.handlers import (
    after_batch,
    on_feedback_submitted,
    on_model_promoted,
    on_model_registered,
    on_prompt_rendered,
    on_request_submitted,
    on_response_completed,
)
from cairn_evaluator.settings import Settings
from cairn_events import (
    AdminActionRecordedV1,
    AlertRaisedV1,
    EvaluationCompletedV1,
    FeedbackSubmittedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
)

router: EventRouter[Deps] = EventRouter("evaluator")
router.handler(ModelRegisteredV1)(on_model_registered)
router.handler(ModelPromotedV1)(on_model_promoted)
router.handler(ResponseCompletedV1)(on_response_completed)
router.handler(RequestSubmittedV1)(on_request_submitted)
router.handler(FeedbackSubmittedV1)(on_feedback_submitted)
router.handler(PromptRenderedV1)(on_prompt_rendered)
router.after_batch(after_batch)
router.publishes(RequestSubmittedV1, EvaluationCompletedV1, ModelPromotedV1, AlertRaisedV1)
router.publishes(AdminActionRecordedV1)  # promotions through the registry API (api.py)


def main() -> None:
    """Entry point of `python -m cairn_evaluator`."""
    run_service(router, Settings(), partial(build, serve_http=True))

"""The evaluator service: the model registry (`cairn.models`) and evaluation runs over the bus.

It publishes the evaluation requests (`request.submitted`), `evaluation.completed` and
`model.promoted`; it reads the answers to its own requests from `cairn.responses`.
"""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_evaluator.bootstrap import Deps, build
from cairn_evaluator.handlers import (
    after_batch,
    on_model_promoted,
    on_model_registered,
    on_response_completed,
)
from cairn_evaluator.settings import Settings
from cairn_events import (
    EvaluationCompletedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
)

router: EventRouter[Deps] = EventRouter("evaluator")
router.handler(ModelRegisteredV1)(on_model_registered)
router.handler(ModelPromotedV1)(on_model_promoted)
router.handler(ResponseCompletedV1)(on_response_completed)
router.after_batch(after_batch)
router.publishes(RequestSubmittedV1, EvaluationCompletedV1, ModelPromotedV1)


def main() -> None:
    """Entry point of `python -m cairn_evaluator`."""
    run_service(router, Settings(), build)

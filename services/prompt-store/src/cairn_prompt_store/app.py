"""The prompt-store service: renders the prompt of every request on `cairn.requests`.

It publishes `cairn.prompt.rendered.v1`, or ends the request with `cairn.response.completed.v1`
(`rejected`) when the prompt cannot be resolved or rendered, or the request could not be read.
It follows `cairn.experiments`: an experiment's significant winner is promoted to its label or
proposed to an operator, as the experiment's `on_winner` says. The management API runs in the same process (see `bootstrap.build`); its label moves and experiment
changes (the policy's promotions too) are published as `cairn.admin_action.recorded.v1` on `cairn.admin`.
"""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_events import (
    AdminActionRecordedV1,
    ExperimentConcludedV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
)
from cairn_prompt_store.bootstrap import Deps, build
from cairn_prompt_store.handlers import (
    answer_dead_lettered_request,
    on_experiment_concluded,
    on_request_submitted,
)
from cairn_prompt_store.settings import Settings

router: EventRouter[Deps] = EventRouter("prompt-store")
router.handler(RequestSubmittedV1)(on_request_submitted)
router.handler(ExperimentConcludedV1)(on_experiment_concluded)  # `on_winner`: promote or propose
router.answer_dead_lettered(RequestSubmittedV1, ResponseCompletedV1)(answer_dead_lettered_request)
router.publishes(
    PromptRenderedV1, ResponseCompletedV1, AdminActionRecordedV1
)  # admin: label moves, experiments


def main() -> None:
    """Entry point of `python -m cairn_prompt_store`."""
    run_service(router, Settings(), build)

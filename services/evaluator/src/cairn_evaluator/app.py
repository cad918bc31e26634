"""The evaluator service: the model registry (`cairn.models`) and evaluation runs over the bus.

It publishes the evaluation requests (`request.submitted`), `evaluation.completed` and
`model.promoted`; it reads the answers to its own requests from `cairn.responses`. Its online part
observes live `cairn.requests`, `cairn.prompts`, `cairn.responses` and `cairn.feedback` and raises
`alert.raised` on drift, and `experiment.concluded` when a prompt experiment has a significant
winner. Shadow traffic: it mirrors live requests to candidates (`request.submitted`
with `ce_replayid = shadow:<id>`) and reads their answers from `cairn.responses.shadow`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from cairn_bus import EventRouter, Publisher
from cairn_bus.service import run_service
from cairn_evaluator.api import serve_api
from cairn_evaluator.bootstrap import build
from cairn_evaluator.completion import check_runs
from cairn_evaluator.deps import Deps, log
from cairn_evaluator.handlers import (
    after_batch,
    on_admin_action,
    on_feedback_submitted,
    on_model_promoted,
    on_model_registered,
    on_prompt_rendered,
    on_request_submitted,
    on_response_completed,
)
from cairn_evaluator.observer import OnlineObserver
from cairn_evaluator.quality import check_drift
from cairn_evaluator.settings import Settings
from cairn_events import (
    AdminActionRecordedV1,
    AlertRaisedV1,
    EvaluationCompletedV1,
    ExperimentConcludedV1,
    FeedbackSubmittedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
)

# shadows: also `cairn.responses.shadow`, where the answers of its shadow requests arrive
# (`on_response_completed` tells them apart by `ce_replayid`)
router: EventRouter[Deps] = EventRouter("evaluator", shadows=True)
router.handler(ModelRegisteredV1)(on_model_registered)
router.handler(ModelPromotedV1)(on_model_promoted)
router.handler(ResponseCompletedV1)(on_response_completed)
router.handler(RequestSubmittedV1)(on_request_submitted)
router.handler(FeedbackSubmittedV1)(on_feedback_submitted)
router.handler(PromptRenderedV1)(on_prompt_rendered)
router.handler(AdminActionRecordedV1)(on_admin_action)  # tenant erasures
router.after_batch(after_batch)
router.publishes(RequestSubmittedV1, EvaluationCompletedV1, ModelPromotedV1, AlertRaisedV1)
router.publishes(ExperimentConcludedV1)  # prompt experiments with a significant winner
router.publishes(AdminActionRecordedV1)  # promotions through the registry API (api.py)


@asynccontextmanager
async def serve_evaluator(
    settings: Settings,
    publisher: Publisher,
    *,
    periodic_check_s: float | None = 30.0,
    serve_http: bool = True,
    **overrides: Any,
) -> AsyncIterator[Deps]:
    """The service's deps (`bootstrap.build`, `overrides` passed on) and, on PostgreSQL, what runs
    beside the consumer until the block exits.

    With `periodic_check_s`: the embedder loaded before the service is ready, the live-traffic
    observer, a task that ends overdue runs even when no responses arrive, and one that checks drift
    every `drift_interval_s`. With `serve_http` and `http_enabled`: the registry API (`deps.http`).
    """
    async with build(settings, publisher, **overrides) as deps, AsyncExitStack() as stack:
        if deps.pool is None:  # in memory (tests): nothing runs in the background
            yield deps
            return
        load = getattr(deps.embedder, "load", None)
        if periodic_check_s and callable(load):
            # the service loads the embedder before it is ready, so the first live request does not stall
            # the consumer (and with it registrations and evaluation answers) for the model's load time
            await asyncio.to_thread(load)
        if periodic_check_s:
            deps.observer = OnlineObserver()
            deps.observer.start()
            stack.push_async_callback(deps.observer.stop)
            _every(stack, periodic_check_s, "run check", lambda: check_runs(deps))
        if periodic_check_s and settings.drift_interval_s:
            _every(stack, settings.drift_interval_s, "drift check", lambda: check_drift(deps))
        if serve_http and settings.http_enabled:  # the service, not the CLI, serves the registry API
            deps.http = await stack.enter_async_context(serve_api(deps))
        yield deps


def _every(stack: AsyncExitStack, every_s: float, what: str, check: Callable[[], Awaitable[object]]) -> None:
    """Run `check` every `every_s` seconds until the stack closes; a failure is logged, not fatal."""

    async def repeat() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await check()
            except Exception as exc:  # keep checking; the next batch or tick tries again
                log.warning(f"{what} failed", error=repr(exc))

    task = asyncio.create_task(repeat())
    stack.push_async_callback(_cancel, task)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main() -> None:
    """Entry point of `python -m cairn_evaluator`."""
    run_service(router, Settings(), serve_evaluator)

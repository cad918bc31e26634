"""One streamed chat completion (`stream: true`): publish the request, relay its deltas behind the
hold-back window, end on the screened answer (see `domain.streaming` and docs/gateway.md).

`stream_completion` yields, in order, what the client gets. Its first item decides the HTTP answer:
a `Reply` (the only item) is answered as JSON with its status, as without streaming; bytes start a
`200 text/event-stream` whose items are server-sent events. The stream starts only when there is
something to send (released text, or a completed or blocked answer), so an answer that is rejected,
failed or held before any text was released is still a 400, 500 or 409; after the stream started,
such an answer (and a timeout) is an error event in OpenAI's streaming error shape,
`data: {"error": {...}}`, and the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

from cairn_events import CompletionDeltaGeneratedV1, ResponseCompletedV1, ResponseStatus
from cairn_gateway.completions import Reply, Submission, max_tokens_of, reply_of
from cairn_gateway.deps import Deps
from cairn_gateway.domain.chat import ChatCompletionRequest
from cairn_gateway.domain.errors import GatewayError, answer_replaced, answer_timeout
from cairn_gateway.domain.mapping import cairn_details, finish_reason, refusal, served_model
from cairn_gateway.domain.streaming import DONE, ChunkMaker, HoldBack, replay_chunks, sse
from cairn_observability import get_logger

__all__ = ["StreamItem", "stream_completion"]

log = get_logger("cairn.gateway.streams")

StreamItem = Reply | bytes
"""A JSON answer (only ever the first and only item) or one server-sent event."""


def _window(deps: Deps, tenant: str) -> int | None:
    return None if tenant in deps.stream_verdict_first_tenants else deps.stream_holdback_chars


async def _next(submission: Submission, deadline: float) -> CompletionDeltaGeneratedV1 | ResponseCompletedV1:
    """The next delta or the answer, whichever comes first; TimeoutError past `deadline`."""
    assert submission.deltas is not None
    if not submission.deltas.empty():  # deltas that came before the answer are relayed first
        return submission.deltas.get_nowait()
    if submission.future.done():
        return submission.future.result()
    loop = asyncio.get_running_loop()
    getter = asyncio.ensure_future(submission.deltas.get())
    try:
        waiting: set[asyncio.Future[Any]] = {getter, submission.future}
        done, _ = await asyncio.wait(
            waiting,
            timeout=max(0.0, deadline - loop.time()),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        if not getter.done():
            getter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await getter
    if submission.future in done:
        if getter.done() and not getter.cancelled():  # keep the order: a delta taken is relayed first
            return getter.result()
        return submission.future.result()
    if getter in done:
        return getter.result()
    raise TimeoutError


async def stream_completion(
    submitted: Submission | Reply,
    body: ChatCompletionRequest,
    tenant: str,
    deps: Deps,
    ended: Callable[[str], None] = lambda outcome: None,
) -> AsyncGenerator[StreamItem, None]:
    """What the client of the streamed completion `submitted` (`completions.submit`) gets (see the
    module docstring); `ended` is told how a stream that started ended (`completed`, `blocked`,
    `replaced`, `held`, `rejected`, `failed`, `timeout`, `disconnected`, `replayed`). Raises
    GatewayError (a 504) when no answer came before the stream started."""
    include_usage = body.stream_options is not None and body.stream_options.include_usage
    if isinstance(submitted, Reply):  # an Idempotency-Key sent before: its stored answer
        if submitted.status != 200:
            yield submitted
        else:
            for chunk in replay_chunks(submitted.body, include_usage):
                yield sse(chunk)
            yield DONE
            ended("replayed")
        return
    submission = submitted
    hold = HoldBack(_window(deps, tenant))
    maker = ChunkMaker(
        f"chatcmpl-{submission.request_id}", int(deps.clock().timestamp()), body.model, include_usage
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deps.answer_timeout_s
    started = False
    outcome = "disconnected"

    def start() -> list[bytes]:
        nonlocal started
        if started:
            return []
        started = True
        return [sse(maker.role())]

    try:
        while True:
            try:
                item = await _next(submission, deadline)
            except TimeoutError:
                outcome = "timeout"
                error = answer_timeout(
                    submission.request_id, deps.answer_timeout_s, kept=submission.row is not None
                )
                submission.keep(deps)
                if not started:
                    raise error from None
                yield sse(error.body())
                return
            if isinstance(item, CompletionDeltaGeneratedV1):
                text = hold.add(item)
                if text:
                    for event in start():
                        yield event
                    yield sse(maker.content(text))
                continue
            response = item
            reply = reply_of(response, body.model, max_tokens_of(body))
            await submission.store(response, reply, deps)
            outcome = response.status.value
            maker = ChunkMaker(maker.id, maker.created, served_model(response, body.model), include_usage)
            for last in _ending(response, hold, maker, body, started):
                if isinstance(last, Reply):
                    yield last
                    return
                started = True
                yield last
            if outcome == ResponseStatus.COMPLETED.value and hold.rest(response.text or "") is None:
                outcome = "replaced"
            return
    finally:
        submission.release(deps)
        if outcome == "disconnected":
            submission.keep(deps)
        log.info("stream ended", request_id=submission.request_id, outcome=outcome, shown=hold.shown)
        if started:
            ended(outcome)


def _ending(
    response: ResponseCompletedV1,
    hold: HoldBack,
    maker: ChunkMaker,
    body: ChatCompletionRequest,
    started: bool,
) -> list[StreamItem]:
    """The last items of a stream whose answer is `response`."""
    error = refusal(response)
    if error is not None:  # rejected, failed, held: JSON before the stream started, else an error event
        reply = Reply(error.status, error.body(), response.request_id, error.outcome, error.retry)
        return [reply] if not started else [sse(error.body())]
    events: list[StreamItem] = [] if started else [sse(maker.role())]
    if response.status is ResponseStatus.BLOCKED:
        events.append(sse(maker.refusal(response.reason or "blocked by output screening")))
    else:
        rest = hold.rest(response.text or "")
        if rest is None:
            replaced: GatewayError = answer_replaced(response.request_id)
            events.append(sse(replaced.body()))
            return events
        if rest:
            events.append(sse(maker.content(rest)))
    events.append(sse(maker.finish(finish_reason(response, max_tokens_of(body)), cairn_details(response))))
    if maker.include_usage:
        usage = response.usage
        events.append(
            sse(maker.usage(usage.input_tokens if usage else 0, usage.output_tokens if usage else 0))
        )
    events.append(DONE)
    return events

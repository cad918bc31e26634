"""One chat completion: submit the request event, wait for its response, answer in OpenAI's shape.

With an Idempotency-Key, the request id is derived from the tenant and the key, and the request is
recorded in the gateway's table (shared by the replicas): a retry whose first try was answered gets
the stored answer and publishes nothing; a retry of a request still unanswered publishes the same
event again (the same event id: every consumer recognises it) and waits for the answer. Until the
row expires, the replica keeps listening for answers the client did not wait for: an answer after a
504, and the final answer of a request held for human review (stored when the reviewer's decision
answers it), so the retry gets them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cairn_bus import derive_event_id
from cairn_events import (
    CompletionDeltaGeneratedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
    ResponseStatus,
)
from cairn_gateway.deps import Deps
from cairn_gateway.domain.chat import ChatCompletionRequest
from cairn_gateway.domain.errors import (
    HELD_STATUS,
    REQUEST_ID_HEADER,
    SHOULD_RETRY_HEADER,
    GatewayError,
    answer_timeout,
    idempotency_key_reused,
    unavailable,
)
from cairn_gateway.domain.mapping import fingerprint, refusal, request_id_for, to_completion, to_request
from cairn_gateway.ports import StoredRequest
from cairn_gateway.replies import Keeper
from cairn_observability import get_logger

__all__ = [
    "GatewayError",
    "Reply",
    "Submission",
    "complete",
    "keep_unfinished",
    "max_tokens_of",
    "reply_of",
    "request_event_id",
    "submit",
]

log = get_logger("cairn.gateway")


@dataclass(frozen=True)
class Reply:
    """What the HTTP client gets."""

    status: int
    body: dict[str, Any]
    request_id: str
    outcome: str
    retry: bool | None = None
    """`x-should-retry`: False for a held answer (a retry now gets the same 409)."""

    def headers(self) -> dict[str, str]:
        """The HTTP headers of the answer: its request id, and whether a client should retry it."""
        headers = {REQUEST_ID_HEADER: self.request_id}
        if self.retry is not None:
            headers[SHOULD_RETRY_HEADER] = "true" if self.retry else "false"
        return headers


def request_event_id(request_id: str) -> str:
    """The event id of a gateway request: derived from its request id, so a retry republishes the same event."""
    return derive_event_id(request_id, RequestSubmittedV1.event_type, "gateway")


def reply_of(response: ResponseCompletedV1, asked_model: str, max_tokens: int | None) -> Reply:
    """The HTTP answer of a response to a request that named `asked_model` and `max_tokens`."""
    error = refusal(response)
    if error is not None:
        return Reply(error.status, error.body(), response.request_id, error.outcome, error.retry)
    completion = to_completion(response, asked_model=asked_model, max_tokens=max_tokens)
    return Reply(200, completion, response.request_id, response.status.value)


def max_tokens_of(body: ChatCompletionRequest) -> int | None:
    """The token limit a request asked for (`max_completion_tokens`, else `max_tokens`)."""
    return body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens


def _keeper(row: StoredRequest, deps: Deps) -> Keeper:
    """Stores every answer to `row`'s request in the idempotency table (a held one as not final)."""

    async def keep(response: ResponseCompletedV1) -> None:
        reply = reply_of(response, row.asked_model, row.max_tokens)
        final = response.status is not ResponseStatus.HELD
        await deps.answered.answer(response.request_id, reply.status, reply.body, final, deps.clock())
        log.info("answer stored for a retry", request_id=response.request_id, status=response.status.value)

    return keep


def _keep(row: StoredRequest, deps: Deps, now: datetime) -> None:
    """Keep answers to `row`'s request until its row expires."""
    expires = row.claimed_at + timedelta(seconds=deps.idempotency_retention_s)
    deps.replies.keep(row.request_id, _keeper(row, deps), (expires - now).total_seconds())


async def keep_unfinished(deps: Deps) -> int:
    """Keep answers to every stored request without a final answer (at start-up: those another
    replica, or this one before a restart, stopped waiting for); how many are kept."""
    now = deps.clock()
    rows = await deps.answered.unfinished(now - timedelta(seconds=deps.idempotency_retention_s))
    for row in rows:
        if not deps.replies.kept(row.request_id):
            _keep(row, deps, now)
    return len(rows)


@dataclass
class Submission:
    """A request published (or republished) and registered for its answer (and its deltas)."""

    body: ChatCompletionRequest
    request_id: str
    row: StoredRequest | None
    """Its row in the idempotency table, when sent with an Idempotency-Key."""
    future: asyncio.Future[ResponseCompletedV1]
    deltas: asyncio.Queue[CompletionDeltaGeneratedV1] | None = None
    """Its deltas, when it streams."""

    def release(self, deps: Deps) -> None:
        """Stop waiting for its answer and deltas."""
        deps.replies.release(self.request_id, self.future)
        if self.deltas is not None:
            deps.replies.unwatch(self.request_id, self.deltas)

    def keep(self, deps: Deps) -> None:
        """Keep its answer for a retry when it comes (nobody waits for it any more)."""
        if self.row is not None:
            _keep(self.row, deps, deps.clock())

    async def store(self, response: ResponseCompletedV1, reply: Reply, deps: Deps) -> None:
        """Store its answer for retries with its Idempotency-Key (a held one as not final: the
        reviewer's decision answers again and is stored too)."""
        if self.row is None:
            return
        held = response.status is ResponseStatus.HELD
        if held:
            self.keep(deps)
        await deps.answered.answer(self.request_id, reply.status, reply.body, not held, deps.clock())


async def submit(
    body: ChatCompletionRequest, tenant: str, idempotency_key: str | None, deps: Deps
) -> Submission | Reply:
    """Publish the request of `body` (registered for its answer first, and for its deltas when it
    streams); or the stored answer of an Idempotency-Key sent before, publishing nothing. Raises
    GatewayError for refusals decided before anything is published."""
    now = deps.clock()
    request_id = request_id_for(tenant, idempotency_key)
    event = to_request(
        body, request_id=request_id, tenant=tenant, default_prompt=deps.default_prompt, now=now
    )
    future = deps.replies.expect(request_id)  # before the table is read: no answer passes unseen
    deltas = deps.replies.watch(request_id) if body.stream else None
    submission = Submission(body, request_id, None, future, deltas)
    try:
        if idempotency_key is not None:
            row = StoredRequest(request_id, tenant, fingerprint(body), body.model, max_tokens_of(body), now)
            stored = await deps.answered.claim(row)
            if stored is not None:
                if stored.fingerprint != row.fingerprint:
                    raise idempotency_key_reused(request_id)
                if stored.body is not None and stored.http_status is not None:
                    # a final answer, or `held` (its final answer is stored when it comes): nothing to publish
                    log.info("answer replayed", request_id=request_id, final=stored.final)
                    submission.release(deps)
                    retry = False if stored.http_status == HELD_STATUS else None
                    return Reply(stored.http_status, stored.body, request_id, "replayed", retry)
                row = stored
            submission.row = row
        try:
            await deps.publisher.publish(event, event_id=request_event_id(request_id))
        except GatewayError:
            raise
        except Exception as exc:  # the broker refused or is unreachable: worth retrying
            log.warning("request not submitted", request_id=request_id, error=repr(exc))
            raise unavailable(f"the request could not be submitted: {exc.__class__.__name__}") from None
    except BaseException:
        submission.release(deps)
        raise
    log.info("request submitted", request_id=request_id, prompt=event.prompt, model=event.model)
    return submission


async def complete(
    body: ChatCompletionRequest, tenant: str, idempotency_key: str | None, deps: Deps
) -> Reply:
    """Answer one chat completion (raises GatewayError for refusals decided before an answer)."""
    submission = await submit(body, tenant, idempotency_key, deps)
    if isinstance(submission, Reply):
        return submission
    try:
        try:
            response = await asyncio.wait_for(asyncio.shield(submission.future), deps.answer_timeout_s)
        except TimeoutError:
            submission.keep(deps)  # its answer is stored for the retry when it comes
            raise answer_timeout(
                submission.request_id, deps.answer_timeout_s, kept=submission.row is not None
            ) from None
    finally:
        submission.release(deps)
    reply = reply_of(response, body.model, max_tokens_of(body))
    await submission.store(response, reply, deps)
    return reply

"""Errors in OpenAI's shape: an HTTP status and `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUEST_ID_HEADER = "X-Cairn-Request-Id"
"""The Cairn request id of an answer (and of an error, when a request was submitted)."""
HELD_STATUS = 409
"""The status of an answer held for human review."""
SHOULD_RETRY_HEADER = "x-should-retry"
"""Tells OpenAI's clients whether to retry (they retry 409 and 5xx by default)."""


@dataclass(eq=False)  # not frozen: raising sets __traceback__
class GatewayError(Exception):
    """A refusal the client gets as an OpenAI error object with `status`."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    request_id: str | None = None
    """The Cairn request id, when a request was submitted (also sent as `X-Cairn-Request-Id`)."""
    outcome: str = "error"
    """The metrics label of this outcome (`cairn_gateway_requests_total{outcome}`)."""
    retry: bool | None = None
    """Whether a client should retry it as it is (sent as `x-should-retry`, which the `openai`
    clients obey); None: the client decides by the status."""

    def __str__(self) -> str:
        return self.message

    def headers(self) -> dict[str, str]:
        """The HTTP headers the error is answered with."""
        headers = {REQUEST_ID_HEADER: self.request_id} if self.request_id else {}
        if self.retry is not None:
            headers[SHOULD_RETRY_HEADER] = "true" if self.retry else "false"
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return headers

    def body(self) -> dict[str, Any]:
        """The JSON body, as OpenAI's API answers an error."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    """400: the request cannot be turned into a Cairn request."""
    return GatewayError(400, message, "invalid_request_error", code, param, outcome="invalid")


def answer_replaced(request_id: str) -> GatewayError:
    """A stream's error event: the screened answer does not continue the text already streamed
    (output screening redacted or replaced part of it); the streamed text is void."""
    return GatewayError(
        200,
        f"output screening changed answer {request_id} after part of it was streamed: discard the "
        "streamed text. Retry with the same Idempotency-Key to get the screened answer.",
        "content_filter",
        "answer_replaced",
        request_id=request_id,
        outcome="replaced",
    )


def idempotency_key_reused(request_id: str) -> GatewayError:
    """409: an Idempotency-Key sent again with a different request body (not worth retrying)."""
    return GatewayError(
        409,
        "this Idempotency-Key was used with a different request body; use a new key for a new request",
        "invalid_request_error",
        "idempotency_key_reused",
        request_id=request_id,
        outcome="conflict",
        retry=False,
    )


def held_for_review(request_id: str, reason: str) -> GatewayError:
    """409: the answer is held for human review; a reviewer's decision answers the request later.
    Not retried by the client at once (a retry now gets the same 409)."""
    return GatewayError(
        HELD_STATUS,
        f"request {request_id} is held: {reason}. Retry with the same Idempotency-Key after the "
        "reviewer's decision to get the final answer (a request sent without an Idempotency-Key "
        "cannot be fetched through the gateway).",
        "held_for_review",
        "held_for_review",
        request_id=request_id,
        outcome="held",
        retry=False,
    )


def answer_timeout(request_id: str, seconds: float, *, kept: bool = False) -> GatewayError:
    """504: no answer within the gateway's wait; `kept`: the answer is stored for a retry with the
    same Idempotency-Key when it comes."""
    then = (
        "retry with the same Idempotency-Key to get its answer"
        if kept
        else "send an Idempotency-Key to be able to retry for its answer"
    )
    return GatewayError(
        504,
        f"no answer within {seconds:g} s; the request may still complete ({then})",
        "timeout",
        "timeout",
        request_id=request_id,
        outcome="timeout",
    )


def unauthorized(message: str) -> GatewayError:
    """401: a missing, malformed, unknown or revoked key."""
    return GatewayError(401, message, "invalid_request_error", "invalid_api_key", outcome="unauthorized")


def forbidden(message: str) -> GatewayError:
    """403: the key's role does not allow this."""
    return GatewayError(403, message, "permission_error", "insufficient_role", outcome="forbidden")


def unavailable(message: str) -> GatewayError:
    """503: the bus or a peer is unreachable; worth retrying."""
    return GatewayError(503, message, "service_unavailable", "service_unavailable", outcome="unavailable")

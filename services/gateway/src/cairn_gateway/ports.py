"""What the gateway needs from the outside: a table of idempotent requests and their answers, and a
catalogue of what can be asked for. Adapters in `adapters/`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredRequest:
    """A request sent with an Idempotency-Key, what its answer's body needs, and its answer once
    there is one."""

    request_id: str
    tenant: str
    fingerprint: str
    """A hash of the request body: a retry must send the same body."""
    asked_model: str
    """The request's `model` field, echoed in the answer's body when no model is named."""
    max_tokens: int | None
    """The token limit asked for (it decides `finish_reason: length`)."""
    claimed_at: datetime
    """When the first try arrived; the row is forgotten `gateway_idempotency_retention_s` later."""
    http_status: int | None = None
    """The status the answer was given with; None while no answer came."""
    body: dict[str, Any] | None = None
    """The answer's JSON body; None while no answer came."""
    final: bool = False
    """Whether the answer is final (a `held` answer is not: the reviewer's decision answers again)."""


class AnsweredRequests(Protocol):
    """The gateway's own table of requests sent with an Idempotency-Key (shared by every replica)."""

    async def claim(self, request: StoredRequest) -> StoredRequest | None:
        """Record `request` (no answer yet) and return None; or, when its request id is known,
        return what is stored and change nothing."""
        ...

    async def answer(
        self, request_id: str, http_status: int, body: dict[str, Any], final: bool, now: datetime
    ) -> None:
        """Store the answer of a claimed request; a final answer is never replaced, an unknown
        request id is ignored."""
        ...

    async def unfinished(self, since: datetime) -> list[StoredRequest]:
        """The requests claimed at or after `since` without a final answer (in flight, unanswered
        after a timeout, or held for review), oldest first."""
        ...

    async def purge(self, before: datetime) -> int:
        """Forget requests claimed before `before`; how many were forgotten."""
        ...


class Catalogue(Protocol):
    """What `GET /v1/models` lists, read from the prompt store's and the registry's HTTP APIs."""

    async def prompts(self, authorization: str | None) -> list[dict[str, Any]]:
        """The prompts the caller's key can read (prompt store `GET /prompts`)."""
        ...

    async def models(self, authorization: str | None) -> list[dict[str, Any]]:
        """The registry's models with their stages and aliases (evaluator `GET /v1/models`)."""
        ...

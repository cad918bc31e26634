"""Recording how requests end: `cairn_requests_total` and `cairn_request_duration_seconds`.

Whichever service publishes a request's final `cairn.response.completed.v1` (safety for answers
and blocks, the prompt store, retriever or inference for rejections and failures) calls
`record_request_outcome` once, after the publication. The duration runs from the request's
`submitted_at`: given directly where the request event is at hand (the prompt store), otherwise
read from the trace context, which carries it from the prompt store through every hop
(`tracing.request_started`). When neither is known (tracing was off when the request entered)
only the count is recorded, never a made-up duration.

A replayed or shadow request (`replay=True`: its envelope carries `ce_replayid`) is counted in
`cairn_replay_requests_total` instead, and its duration is not observed: the live series, and the
dashboards and alert rules built on them, describe only what upstream systems asked.
"""

from __future__ import annotations

from datetime import datetime

from cairn_observability.metrics import REPLAY_REQUESTS, REQUEST_SECONDS, REQUESTS
from cairn_observability.tracing import request_started_at

__all__ = ["UNKNOWN_PROMPT", "record_request_outcome"]

UNKNOWN_PROMPT = "unknown"
"""The `prompt` label of a request that ended before its prompt was resolved."""


def record_request_outcome(
    status: str,
    tenant: str,
    prompt: str | None,
    completed_at: datetime,
    *,
    started_at: datetime | None = None,
    replay: bool = False,
) -> float | None:
    """Count one finished request by final status, tenant and prompt; observe its duration when the
    start is known (`started_at`, else the trace context). Returns the duration in seconds, or None.

    `replay`: the request is a replay or shadow (pass `meta.replay_id is not None`); it is counted
    in `cairn_replay_requests_total` only."""
    counter = REPLAY_REQUESTS if replay else REQUESTS
    counter.labels(status, tenant, prompt or UNKNOWN_PROMPT).inc()
    started = started_at or request_started_at()
    if started is None:
        return None
    seconds = max(0.0, (completed_at - started).total_seconds())
    if not replay:
        REQUEST_SECONDS.labels(status, tenant).observe(seconds)
    return seconds

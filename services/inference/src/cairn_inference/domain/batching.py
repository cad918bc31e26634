"""Dynamic batching policy: which waiting requests share one forward pass, and when it starts.

Requests share a batch only when one `generate` call can serve them all: the same adapter and
the same decoding (greedy, or sampling with the same temperature and top_p). Per-request
`max_tokens` and stop strings do not split batches: the backend stops each row on its own.
A seeded sampling request runs alone, because its random draws would otherwise depend on
which other requests happened to share its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from cairn_events import GenerationParams

BatchKey = tuple[str | None, str, float, float] | None
"""What requests must share to be batched; None for a request that runs alone."""


def batch_key(params: GenerationParams, adapter: str | None = None) -> BatchKey:
    """The batch key of a request (see the module docstring)."""
    if params.temperature == 0:
        return (adapter, "greedy", 0.0, 1.0)
    if params.seed is not None:
        return None
    return (adapter, "sample", params.temperature, params.top_p)


def plan_batch(keys: Sequence[BatchKey], max_batch_size: int) -> list[int]:
    """Indices (in arrival order) of the waiting requests to run next.

    The oldest request always goes; it takes along the later requests with its key, up to
    `max_batch_size`. Requests left behind keep their places for the next batch.
    """
    if max_batch_size < 1:
        raise ValueError("max_batch_size must be at least 1")
    if not keys:
        return []
    first = keys[0]
    if first is None or max_batch_size == 1:
        return [0]
    picked = [0]
    for index in range(1, len(keys)):
        if len(picked) == max_batch_size:
            break
        if keys[index] == first:
            picked.append(index)
    return picked


def dispatch_delay(
    now: float, oldest_enqueued_at: float, window_s: float, waiting: int, max_batch_size: int
) -> float:
    """Seconds to wait for more requests before running a batch: none when the batch is full or the
    oldest request has already waited `window_s`; otherwise what is left of its window."""
    if waiting >= max_batch_size or window_s <= 0:
        return 0.0
    return max(0.0, oldest_enqueued_at + window_s - now)

"""The dynamic batcher with a recording run function: who shares a batch, cancellation, errors, shutdown."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from cairn_inference.adapters.batcher import BatchItem, DynamicBatcher
from cairn_inference.domain.completion import BackendUnavailableError

GREEDY = (None, "greedy", 0.0, 1.0)
SAMPLED = (None, "sample", 0.7, 1.0)


class Recorder:
    """A run_batch that records each batch's payloads and can block until released."""

    def __init__(self, gate: threading.Event | None = None, error: Exception | None = None) -> None:
        self.batches: list[list[object]] = []
        self.gate = gate
        self.error = error
        self.cancel_seen: list[bool] = []
        self.started = threading.Event()

    async def running(self) -> None:
        """Wait until the first batch is in the worker thread."""
        assert await asyncio.to_thread(self.started.wait, 5)

    def __call__(self, items: Sequence[BatchItem]) -> list[str]:
        self.batches.append([item.payload for item in items])
        self.started.set()
        if self.gate is not None:
            self.gate.wait(5)
        self.cancel_seen.extend(item.cancelled.is_set() for item in items)
        if self.error is not None:
            raise self.error
        return [f"done:{item.payload}" for item in items]


async def test_concurrent_requests_in_the_window_share_one_batch() -> None:
    run = Recorder()
    batcher: DynamicBatcher[str] = DynamicBatcher(run, max_batch_size=8, window_s=0.05)
    results = await asyncio.gather(*(batcher.submit(i, GREEDY) for i in range(5)))
    assert results == [f"done:{i}" for i in range(5)]
    assert run.batches == [[0, 1, 2, 3, 4]]
    assert list(batcher.batch_sizes) == [5]
    await batcher.aclose()


async def test_batches_never_exceed_the_limit_and_keep_arrival_order() -> None:
    run = Recorder()
    batcher: DynamicBatcher[str] = DynamicBatcher(run, max_batch_size=3, window_s=0.05)
    await asyncio.gather(*(batcher.submit(i, GREEDY) for i in range(7)))
    assert run.batches == [[0, 1, 2], [3, 4, 5], [6]]
    await batcher.aclose()


async def test_requests_that_cannot_share_a_generate_call_go_in_separate_batches() -> None:
    run = Recorder()
    batcher: DynamicBatcher[str] = DynamicBatcher(run, max_batch_size=8, window_s=0.05)
    keys = [GREEDY, SAMPLED, GREEDY, None, SAMPLED]
    await asyncio.gather(*(batcher.submit(i, k) for i, k in enumerate(keys)))
    assert sorted(map(sorted, run.batches)) == [[0, 2], [1, 4], [3]]  # type: ignore[arg-type]
    await batcher.aclose()


async def test_requests_arriving_during_a_run_form_the_next_batch() -> None:
    gate = threading.Event()
    run = Recorder(gate)
    batcher: DynamicBatcher[str] = DynamicBatcher(run, max_batch_size=8, window_s=0.01)
    first = asyncio.create_task(batcher.submit("a", GREEDY))
    await run.running()
    later = [asyncio.create_task(batcher.submit(x, GREEDY)) for x in "bcd"]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, *later)
    assert run.batches == [["a"], ["b", "c", "d"]]
    await batcher.aclose()


async def test_batching_off_runs_one_request_at_a_time() -> None:
    run = Recorder()
    batcher: DynamicBatcher[str] = DynamicBatcher(run, max_batch_size=1, window_s=0.0)
    await asyncio.gather(*(batcher.submit(i, GREEDY) for i in range(4)))
    assert run.batches == [[0], [1], [2], [3]]
    await batcher.aclose()


async def test_a_failed_run_fails_every_request_of_its_batch_only() -> None:
    run = Recorder(error=RuntimeError("out of memory"))
    batcher: DynamicBatcher[str] = DynamicBatcher(run, max_batch_size=8, window_s=0.02)
    outcomes = await asyncio.gather(*(batcher.submit(i, GREEDY) for i in range(3)), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    run.error = None
    assert await batcher.submit("next", GREEDY) == "done:next"
    await batcher.aclose()


async def test_a_caller_giving_up_marks_its_request_cancelled_for_the_run() -> None:
    gate = threading.Event()
    run = Recorder(gate)
    batcher: DynamicBatcher[str] = DynamicBatcher(run, max_batch_size=8, window_s=0.0)
    waiting = asyncio.create_task(batcher.submit("slow", GREEDY))
    await run.running()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.set()
    assert await batcher.submit("after", GREEDY) == "done:after"
    assert run.cancel_seen[0] is True
    await batcher.aclose()


async def test_a_request_abandoned_before_its_batch_starts_is_not_run() -> None:
    gate = threading.Event()
    run = Recorder(gate)
    batcher: DynamicBatcher[str] = DynamicBatcher(run, max_batch_size=1, window_s=0.0)
    busy = asyncio.create_task(batcher.submit("busy", GREEDY))
    await run.running()
    abandoned = asyncio.create_task(batcher.submit("abandoned", GREEDY))
    await asyncio.sleep(0.01)
    abandoned.cancel()
    gate.set()
    await busy
    assert await batcher.submit("next", GREEDY) == "done:next"
    assert run.batches == [["busy"], ["next"]]
    await batcher.aclose()


async def test_closing_fails_waiting_and_later_requests() -> None:
    gate = threading.Event()
    run = Recorder(gate)
    batcher: DynamicBatcher[str] = DynamicBatcher(run, max_batch_size=1, window_s=0.0)
    running = asyncio.create_task(batcher.submit("running", GREEDY))
    await run.running()
    queued = asyncio.create_task(batcher.submit("queued", GREEDY))
    await asyncio.sleep(0.01)
    await batcher.aclose()
    gate.set()
    with pytest.raises(BackendUnavailableError):
        await queued
    with pytest.raises(BackendUnavailableError):
        await batcher.submit("late", GREEDY)
    running.cancel()

"""The observer takes live-traffic work off the consumer's path: submit never waits, a full queue drops."""

from __future__ import annotations

import asyncio

from cairn_evaluator.observer import OnlineObserver


async def test_observations_run_in_the_background_in_order() -> None:
    observer = OnlineObserver(capacity=10)
    seen: list[int] = []
    gate = asyncio.Event()

    def make(i: int):  # type: ignore[no-untyped-def]
        async def observation() -> None:
            await gate.wait()
            seen.append(i)

        return observation

    observer.start()
    assert all(observer.submit(make(i)) for i in range(3))
    await asyncio.sleep(0.01)
    assert seen == []  # submit returned before any observation ran
    gate.set()
    await observer.stop(drain_s=2)
    assert seen == [0, 1, 2]
    assert observer.done == 3


async def test_a_full_queue_drops_and_counts_instead_of_waiting() -> None:
    observer = OnlineObserver(capacity=2)

    async def nothing() -> None:
        return None

    accepted = [observer.submit(nothing) for _ in range(5)]  # no worker started: the queue fills
    assert accepted == [True, True, False, False, False]
    assert observer.dropped == 3


async def test_a_failing_observation_does_not_stop_the_worker() -> None:
    observer = OnlineObserver()
    ran: list[str] = []

    async def broken() -> None:
        raise RuntimeError("bad sample")

    async def fine() -> None:
        ran.append("fine")

    observer.start()
    observer.submit(broken)
    observer.submit(fine)
    await observer.stop(drain_s=2)
    assert ran == ["fine"]

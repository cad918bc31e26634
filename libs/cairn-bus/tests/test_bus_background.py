"""`in_background`: the task runs while the block does and is gone after it."""

from __future__ import annotations

import asyncio

import pytest

from cairn_bus.background import in_background


async def test_the_task_runs_during_the_block_and_is_cancelled_after() -> None:
    ticks: list[int] = []

    async def tick() -> None:
        while True:
            ticks.append(len(ticks))
            await asyncio.sleep(0)

    async with in_background(tick(), "ticker") as task:
        for _ in range(5):
            await asyncio.sleep(0)
        assert task.get_name() == "ticker"
        assert ticks
    seen = len(ticks)
    await asyncio.sleep(0)
    assert task.cancelled()
    assert len(ticks) == seen


async def test_a_failure_of_the_task_is_raised_on_exit() -> None:
    async def fail() -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        async with in_background(fail(), "failing"):
            await asyncio.sleep(0)

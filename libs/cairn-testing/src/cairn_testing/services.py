"""Running a service's consumer inside a test's event loop, against the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cairn_bus.router import EventRouter
from cairn_bus.service import DepsFactory, serve
from cairn_bus.settings import ServiceSettings


@asynccontextmanager
async def running_service(
    router: EventRouter[Any],
    settings: ServiceSettings,
    deps_factory: DepsFactory[Any, Any],
    timeout: float = 60,
) -> AsyncIterator[asyncio.Task[None]]:
    """Start `serve` as a task, wait until its consumer group is joined, stop it on exit."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(router, settings, deps_factory, stop=stop, ready=ready, configure=False))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises the service's start-up error
    if waiter not in done:
        stop.set()
        task.cancel()
        raise TimeoutError(f"{router.service} did not join its group within {timeout}s")
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)

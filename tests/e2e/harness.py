"""Runs Cairn's services as processes against the test stack, and talks to them only through topics."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cairn_bus.contract import service_routers
from cairn_bus.envelope import EnvelopeError, meta_from_headers
from cairn_bus.kafka import KafkaPublisher, consumer_at_end, record_from_kafka
from cairn_events import DecodeError, Event, ResponseCompletedV1, decode
from cairn_localstack.process import ProcessManager
from cairn_testing import start_group_at_end

REPO = Path(__file__).resolve().parents[2]
CAIRN = str(Path(sys.executable).with_name("cairn"))


@dataclass
class Services:
    """The services of one e2e session: their processes, environment and consumer groups."""

    pm: ProcessManager
    env: dict[str, str]
    groups: dict[str, str]
    modules: dict[str, str]

    def start(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        env = {
            **self.env,
            "CAIRN_SERVICE_NAME": name,
            "CAIRN_KAFKA_GROUP_ID": self.groups[name],
            **(extra_env or {}),
        }
        self.pm.start(name, [sys.executable, "-m", self.modules[name]], env=env, cwd=REPO)

    def stop(self, name: str) -> None:
        self.pm.stop(name, timeout=20)

    def wait_ready(self, names: Sequence[str], timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                log = self.pm.tail(name, 400)
                if '"service ready"' in log:
                    pending.discard(name)
                elif not self.pm.is_running(name):
                    raise RuntimeError(f"{name} exited while starting:\n{self.pm.tail(name, 60)}")
            time.sleep(0.3)
        if pending:
            logs = "\n".join(f"--- {n}\n{self.pm.tail(n, 40)}" for n in sorted(pending))
            raise TimeoutError(f"not ready after {timeout:.0f}s: {sorted(pending)}\n{logs}")

    def log(self, name: str, lines: int = 80) -> str:
        return self.pm.tail(name, lines)


async def prepare_groups(bootstrap: str, suffix: str) -> dict[str, str]:
    """A fresh consumer group per service, starting at the current end of its topics."""
    groups = {}
    for name, router in service_routers().items():
        group = f"cairn-{name}-{suffix}"
        if router.topics:
            await start_group_at_end(bootstrap, group, router.topics)
        groups[name] = group
    return groups


def service_env(stack_env: Mapping[str, str], database_dsn: str) -> dict[str, str]:
    """What every service process gets: the test stack, its own database, fast local group joins."""
    return {
        **os.environ,
        **stack_env,
        "CAIRN_POSTGRES_DSN": database_dsn,
        "CAIRN_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "CAIRN_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "CAIRN_KAFKA_FETCH_MAX_WAIT_MS": "25",
        "CAIRN_LOG_FORMAT": "json",
        "CAIRN_TORCH_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }


@dataclass
class Upstream:
    """An upstream system: produces requests, reads responses, nothing else."""

    bootstrap: str
    producer: AIOKafkaProducer
    publisher: KafkaPublisher
    responses: dict[str, list[tuple[Any, ResponseCompletedV1]]] = field(default_factory=dict)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = await consumer_at_end(self.bootstrap, "cairn.responses")
        self._consumer = consumer
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                for msg in msgs:
                    raw = record_from_kafka(msg)
                    try:
                        meta = meta_from_headers(raw.headers)
                        event = decode(meta.type, raw.value or b"", meta.content_type)
                    except (EnvelopeError, DecodeError):
                        continue
                    if isinstance(event, ResponseCompletedV1):
                        self.responses.setdefault(event.request_id, []).append((meta, event))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self._consumer:
            await self._consumer.stop()

    async def submit(self, event: Event) -> Any:
        return await self.publisher.publish(event)

    async def send_raw(self, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
        await self.producer.send_and_wait("cairn.requests", value, key=key, headers=headers)

    async def response(
        self, request_id: str, timeout: float = 180.0, settle: float = 1.0
    ) -> ResponseCompletedV1:
        """The response to `request_id`; waits `settle` more seconds and fails if a second one arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.responses.get(request_id):
            if loop.time() > deadline:
                raise AssertionError(f"no response.completed for {request_id} within {timeout}s")
            await asyncio.sleep(0.1)
        await asyncio.sleep(settle)
        got = self.responses[request_id]
        ids = {m.id for m, _ in got}
        assert len(ids) == 1, f"{len(ids)} distinct responses for {request_id}: {[e.status for _, e in got]}"
        return got[0][1]


def new_request_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)

"""Runs Cairn's services as processes against the test stack, and talks to them only through topics."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_bus import InMemoryPublisher
from cairn_bus.kafka import KafkaPublisher, consumer_at_end, events_in
from cairn_bus.postgres import create_pool
from cairn_bus.signing import Signer
from cairn_events import Event, ResponseCompletedV1, ResponseStatus
from cairn_localstack.keys import private_key_file
from cairn_testing.processes import ServiceProcesses, run_cairn

REPO = Path(__file__).resolve().parents[2]


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
            for meta, event in events_in(batch):
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

    async def final_response(
        self, request_id: str, timeout: float = 180.0, settle: float = 1.0
    ) -> ResponseCompletedV1:
        """The final response to `request_id`, after any `held` one (a request waiting for review);
        waits `settle` more seconds and fails if a second final one arrives."""

        def finals() -> dict[str, ResponseCompletedV1]:
            got = self.responses.get(request_id, [])
            return {m.id: e for m, e in got if e.status is not ResponseStatus.HELD}

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not finals():
            if loop.time() > deadline:
                seen = [e.status.value for _, e in self.responses.get(request_id, [])]
                raise AssertionError(f"no final response for {request_id} within {timeout}s (seen: {seen})")
            await asyncio.sleep(0.1)
        await asyncio.sleep(settle)
        found = finals()
        assert len(found) == 1, f"{len(found)} distinct final responses for {request_id}"
        return next(iter(found.values()))


@asynccontextmanager
async def running_upstream(bootstrap: str, source: str) -> AsyncIterator[Upstream]:
    """An upstream system producing as `source` and reading `cairn.responses`, stopped on exit."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    up = Upstream(bootstrap, producer, KafkaPublisher(producer, source, service="upstream"))
    await up.start()
    try:
        yield up
    finally:
        await up.stop()
        await producer.stop()


@asynccontextmanager
async def audit_store_on(dsn: str) -> AsyncIterator[PostgresAuditStore]:
    """The audit service's store on database `dsn` (to read trails the way an operator would)."""
    pool = await create_pool(dsn)
    try:
        yield PostgresAuditStore(pool)
    finally:
        await pool.close()


def create_api_key(env: Mapping[str, str], tenant: str, *, role: str | None = None, name: str = "e2e") -> str:
    """A new API key for `tenant` (`*`: platform-wide), made with `cairn keys create` in `env`; the key
    itself (shown once). `role`: viewer, operator or admin (default: the CLI's, viewer)."""
    args = ["keys", "create", "--tenant", tenant, "--name", name, "--json"]
    if role is not None:
        args += ["--role", role]
    made = run_cairn(env, *args, cwd=REPO)
    return str(json.loads(made.strip().splitlines()[-1])["key"])


def policy_folder(folder: Path, tenants: Mapping[str, Mapping[str, Any]]) -> Path:
    """The shipped policies (`infra/policies`) copied into `folder`, and a policy per tenant: the default
    policy with the tenant's changes (section -> fields, e.g. `{"input": {"toxicity": {...}}}`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for shipped in (REPO / "infra" / "policies").glob("*.yaml"):
        (folder / shipped.name).write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    default = yaml.safe_load((folder / "default.yaml").read_text(encoding="utf-8"))
    for tenant, changes in tenants.items():
        policy = {**default, "name": tenant}
        for section, fields in changes.items():
            policy[section] = {**policy.get(section, {}), **fields}
        (folder / f"{tenant}.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    return folder


def new_request_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def pretty(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


def key_of(services: ServiceProcesses, owner: str) -> Signer:
    """The signing key of `owner` (a service or `cli`) in the session's trusted keys."""
    trusted = Path(services.env["CAIRN_TRUSTED_KEYS_DIR"])
    return Signer.from_pem(private_key_file(trusted, owner).read_bytes())


async def send(upstream: Upstream, event: Event, source: str, signer: Signer | None) -> str:
    """Write `event` onto its topic as `source` would, signed by `signer` (or not); its event id."""
    message = InMemoryPublisher(source, signer=signer).build(event)
    await upstream.producer.send_and_wait(
        message.topic, message.value, key=message.key, headers=message.headers
    )
    return message.meta.id

"""Two members of every request-path service's consumer group while requests flow; kill -9 one member of
each mid-run: the survivor takes over its partitions, and every request still gets exactly one
response, a complete trail and no duplicate.

Each request id is picked for the partition it lands on (the partition key is the request id on every
request-path topic, all with the same partition count), so the requests sent after the kills cover
every partition: they can only be answered if each survivor took over the partitions of the member
that died.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import murmur2

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_bus.contract import service_routers
from cairn_cli.status_cmd import describe_groups, fetch_metrics, summarize
from cairn_events import RequestSubmittedV1, load_topics
from cairn_localstack.config import member_name
from cairn_testing.processes import ServiceProcesses, free_port
from tests.e2e.harness import Upstream, new_request_id

from .conftest import (
    PROMPT,
    REQUEST_PATH,
    answer,
    assert_answered_once_with_clean_trails,
)

pytestmark = pytest.mark.integration

REQUEST_TOPICS = [
    "cairn.requests",
    "cairn.prompts",
    "cairn.contexts",
    "cairn.screenings",
    "cairn.completions",
    "cairn.responses",
]
PARTITIONS = load_topics()["cairn.requests"].partitions
AROUND_KILL = 3  # rounds of requests (one per partition) while the kills happen, after the first
QUESTIONS = ["What does assert do?", "What does global declare?", "What does pass do?", "What does del do?"]
# which member of each service dies: the first for some, the second for the others
VICTIMS = {service: member_name(service, 1 + i % 2) for i, service in enumerate(REQUEST_PATH)}


def partition_of(request_id: str) -> int:
    """The partition of a request's events on every request-path topic (the producers' default
    partitioner: murmur2 of the key)."""
    return (murmur2(request_id.encode()) & 0x7FFFFFFF) % PARTITIONS


def request_round() -> list[str]:
    """Fresh request ids, one per partition, in partition order."""
    ids: dict[int, str] = {}
    while len(ids) < PARTITIONS:
        rid = new_request_id("replica")
        ids.setdefault(partition_of(rid), rid)
    return [ids[p] for p in range(PARTITIONS)]


def request(rid: str, i: int) -> RequestSubmittedV1:
    return RequestSubmittedV1.model_validate(
        {
            "request_id": rid,
            "prompt": f"{PROMPT}@production",
            "variables": {"question": QUESTIONS[i % len(QUESTIONS)]},
            "params": {"max_tokens": 8, "temperature": 0.0},
            "submitted_at": datetime.now(UTC).isoformat(),
        }
    )


def request_partitions(service: str) -> set[tuple[str, int]]:
    """The request-path partitions a member of `service` may hold."""
    topics = set(service_routers()[service].topics) & set(REQUEST_TOPICS)
    return {(t, p) for t in topics for p in range(PARTITIONS)}


def held(port: int, service: str) -> set[tuple[str, int]]:
    """The request-path partitions a member says (on its /metrics) it holds; empty when it does not answer."""
    try:
        health = summarize(service, fetch_metrics(f"http://127.0.0.1:{port}/metrics", 3.0))
    except OSError:
        return set()
    return {(p.topic, p.partition) for p in health.partitions} & request_partitions(service)


def holdings(ports: dict[str, int], members: dict[str, tuple[str, ...]]) -> str:
    """What each member holds, per topic, for failure messages."""
    lines = []
    for service, names in members.items():
        for name in names:
            by_topic: dict[str, list[int]] = {}
            for topic, partition in sorted(held(ports[name], service)):
                by_topic.setdefault(topic.removeprefix("cairn."), []).append(partition)
            lines.append(f"{name}: {by_topic or 'nothing'}")
    return "\n".join(lines)


async def until(
    check: Callable[[], Awaitable[bool]],
    what: str,
    detail: Callable[[], str] = lambda: "",
    timeout: float = 60.0,
) -> None:
    """Wait until `check()` is true (polled every half second); fail saying `what` (and `detail()`)
    after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}\n{detail()}")
        await asyncio.sleep(0.5)


@pytest.fixture(scope="module")
async def second_members(services: ServiceProcesses) -> AsyncIterator[dict[str, int]]:
    """A second member of each request-path service in its group; the /metrics port of every member."""
    started = [member_name(name, 2) for name in REQUEST_PATH]
    try:
        for name in started:
            services.start(name, {"CAIRN_METRICS_PORT": str(free_port())})
        services.wait_ready(started)
        yield dict(services.metrics_ports)
    finally:
        for name in started:
            services.stop(name)


async def test_survivors_take_over_the_partitions_of_killed_members(
    services: ServiceProcesses,
    second_members: dict[str, int],
    upstream: Upstream,
    audit_store: PostgresAuditStore,
    kafka_bootstrap: str,
) -> None:
    ports = second_members
    members = {s: (member_name(s, 1), member_name(s, 2)) for s in REQUEST_PATH}
    requests: list[RequestSubmittedV1] = []

    async def send_round() -> None:
        for rid in request_round():
            requests.append(request(rid, len(requests)))
            await upstream.submit(requests[-1])
            await asyncio.sleep(0.15)

    async def split() -> bool:
        """Both members of every group hold request-path partitions: disjoint, together all of them.
        (A member reports its partitions after a batch: a round of requests goes first.)"""
        await send_round()
        for service, (first, second) in members.items():
            a = await asyncio.to_thread(held, ports[first], service)
            b = await asyncio.to_thread(held, ports[second], service)
            if not a or not b or a & b or a | b != request_partitions(service):
                return False
        return True

    await until(split, "both members of every service hold partitions", lambda: holdings(ports, members))

    async def kill() -> None:
        await asyncio.sleep(0.15 * PARTITIONS)  # after the first round below
        for victim in VICTIMS.values():
            pid = services.pm.pid(victim)
            assert pid is not None, f"{victim} is not running before its kill"
            os.kill(pid, signal.SIGKILL)

    async def send_rounds(n: int) -> None:
        for _ in range(n):
            await send_round()

    # kill -9 one member of each service while requests flow
    await asyncio.gather(send_rounds(AROUND_KILL), kill())

    # every request answered exactly once
    statuses = Counter()
    for r in requests:
        response = await answer(upstream, r.request_id, timeout=120)
        statuses[response.status.value] += 1
    assert statuses == {"completed": len(requests)}, statuses

    # each survivor holds every partition of its service; the broker lists one member per group
    survivors = {s: next(m for m in members[s] if m != VICTIMS[s]) for s in REQUEST_PATH}
    for service, survivor in survivors.items():
        assert not services.pm.is_running(VICTIMS[service])
        assert services.pm.is_running(survivor), services.log(survivor, 40)

    async def taken_over() -> bool:
        for service, survivor in survivors.items():
            if await asyncio.to_thread(held, ports[survivor], service) != request_partitions(service):
                return False
        return True

    async def one_member_each() -> bool:
        views = await describe_groups(kafka_bootstrap, [services.groups[s] for s in REQUEST_PATH])
        return all(len(view.members) == 1 for view in views.values())

    await until(
        taken_over,
        "each survivor holds every partition of its service",
        lambda: holdings(ports, {s: (m,) for s, m in survivors.items()}),
        timeout=30,
    )
    await until(one_member_each, "the broker lists one member per group", timeout=30)

    await assert_answered_once_with_clean_trails(upstream, audit_store, [r.request_id for r in requests])
    assert await audit_store.verify() == []  # the hash chain unbroken with two writers and a kill

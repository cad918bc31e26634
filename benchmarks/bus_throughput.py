"""Bus floor: produce and consume rates through cairn-bus on the local broker, and one-hop latency.

Run with `make bench-bus` (or `.venv/bin/python benchmarks/bus_throughput.py`). Uses the test
stack profile unless CAIRN_STACK_PROFILE says otherwise. Prints a table and writes JSON to
benchmarks/results/bus_throughput.json. Figures from a shared, noisy machine: compare ratios
within one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cairn_bus import EventMeta, EventRouter
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_bus.settings import ServiceSettings
from cairn_events import RequestSubmittedV1
from cairn_localstack.config import StackConfig
from cairn_localstack.stack import LocalStack
from cairn_testing import running_service, start_group_at_end

RESULTS = Path(__file__).parent / "results"


def make_events(n: int, run: str) -> list[RequestSubmittedV1]:
    now = datetime.now(UTC).isoformat()
    return [
        RequestSubmittedV1.model_validate(
            {
                "request_id": f"bench-{run}-{i}",
                "prompt": "qa@production",
                "variables": {"topic": "generators", "n": i},
                "messages": [{"role": "user", "content": "What does the yield statement do? " * 4}],
                "submitted_at": now,
            }
        )
        for i in range(n)
    ]


@dataclass
class Counter:
    target: int
    seen: int = 0
    first: float = 0.0
    last: float = 0.0
    done: asyncio.Event | None = None


async def produce_sequential(publisher: KafkaPublisher, events: list[RequestSubmittedV1]) -> float:
    start = time.perf_counter()
    for e in events:
        await publisher.publish(e)
    return len(events) / (time.perf_counter() - start)


async def produce_pipelined(
    producer: AIOKafkaProducer, publisher: KafkaPublisher, events: list[RequestSubmittedV1]
) -> float:
    """Build each record with the publisher, let the producer batch sends (no wait per message)."""
    start = time.perf_counter()
    futures = []
    for e in events:
        m = publisher.build(e)
        futures.append(await producer.send(m.topic, value=m.value, key=m.key, headers=m.headers))
    await asyncio.gather(*futures)
    return len(events) / (time.perf_counter() - start)


async def hop_latency(bootstrap: str, publisher: KafkaPublisher, n: int) -> list[float]:
    """Produce one event, wait until a plain consumer reads it; n times (ms)."""
    consumer = AIOKafkaConsumer(
        "cairn.requests",
        bootstrap_servers=bootstrap,
        group_id=f"bench-lat-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="latest",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    while not consumer.assignment():  # noqa: ASYNC110 - aiokafka offers no assignment event
        await asyncio.sleep(0.05)
    await consumer.seek_to_end()
    out = []
    try:
        for e in make_events(n, uuid.uuid4().hex[:6]):
            t0 = time.perf_counter()
            meta = await publisher.publish(e)
            while True:
                msg = await consumer.getone()
                if dict(msg.headers).get("ce_id", b"").decode() == meta.id:
                    break
            out.append((time.perf_counter() - t0) * 1000)
    finally:
        await consumer.stop()
    return out


async def consume_rate(bootstrap: str, n: int, run: str) -> float:
    """Messages per second dispatched by a cairn-bus service (decode + envelope + no-op handler)."""
    counter = Counter(n, done=asyncio.Event())
    router: EventRouter[Counter] = EventRouter("bench")

    @router.handler(RequestSubmittedV1)
    async def on_request(event: RequestSubmittedV1, meta: EventMeta, deps: Counter) -> None:
        if not event.request_id.startswith(f"bench-{run}-"):
            return
        deps.seen += 1
        if deps.seen == 1:
            deps.first = time.perf_counter()
        deps.last = time.perf_counter()
        if deps.seen >= deps.target and deps.done:
            deps.done.set()

    @asynccontextmanager
    async def deps(settings: Any, publisher: Any) -> Any:
        yield counter

    group = f"bench-{uuid.uuid4().hex[:6]}"
    await start_group_at_end(bootstrap, group, ["cairn.requests"])
    settings = ServiceSettings(
        service_name="bench",
        kafka_bootstrap=bootstrap,
        kafka_group_id=group,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
    )
    async with running_service(router, settings, deps):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            await produce_pipelined(producer, KafkaPublisher(producer, "/cairn/bench"), make_events(n, run))
        finally:
            await producer.stop()
        assert counter.done is not None
        await asyncio.wait_for(counter.done.wait(), timeout=300)
    return counter.seen / max(counter.last - counter.first, 1e-9)


async def main(n: int) -> dict[str, Any]:
    config = StackConfig.for_profile(os.environ.get("CAIRN_STACK_PROFILE", "test"))
    LocalStack(config).up()
    bootstrap = config.kafka_bootstrap
    await ensure_topics(bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    try:
        publisher = KafkaPublisher(producer, "/cairn/bench")
        run = uuid.uuid4().hex[:6]
        seq = await produce_sequential(publisher, make_events(min(n, 1000), run))
        pipe = await produce_pipelined(producer, publisher, make_events(n, run))
        lat = await hop_latency(bootstrap, publisher, 200)
    finally:
        await producer.stop()
    cons = await consume_rate(bootstrap, n, uuid.uuid4().hex[:6])
    lat.sort()
    return {
        "broker": f"tansu ({config.broker_storage}) at {bootstrap}",
        "events": n,
        "produce_sequential_msg_s": round(seq, 1),
        "produce_pipelined_msg_s": round(pipe, 1),
        "consume_dispatch_msg_s": round(cons, 1),
        "hop_p50_ms": round(statistics.median(lat), 2),
        "hop_p99_ms": round(lat[int(len(lat) * 0.99) - 1], 2),
        "pipelined_over_sequential": round(pipe / seq, 2),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=5000, help="events per measurement")
    args = parser.parse_args()
    res = asyncio.run(main(args.n))
    width = max(len(k) for k in res)
    for key, value in res.items():
        print(f"{key:<{width}}  {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bus_throughput.json").write_text(json.dumps(res, indent=2) + "\n")

"""The gateway's overhead: the same chat requests produced directly on Kafka and sent through the
OpenAI-compatible gateway, alternating in one run.

Run with `make bench` or `.venv/bin/python benchmarks/gateway_bench.py` (test stack profile unless
CAIRN_STACK_PROFILE says otherwise). Starts the pipeline benchmark's request path (`pipeline_bench.
request_path`: audit, prompt-store, retriever, safety and inference as processes on a fresh database,
inference on the `instant` backend, a prompt of this run's own name) and the gateway beside it, with
an API key of tenant `default` made by `cairn keys create`. Then, after a warm-up and `--idle-seconds`
of CPU with no traffic, one request at a time, in blocks of `--block` requests whose order rotates
every round until each way has sent `--requests`:

- `kafka`: a `cairn.request.submitted.v1` published on `cairn.requests` as an upstream system does,
  timed until its `cairn.response.completed.v1` is read from `cairn.responses`;
- `gateway`: the same request (tenant, prompt, messages, `max_tokens`, `temperature`) as
  `POST /v1/chat/completions` with `stream: false` over a keep-alive connection, timed until the
  JSON answer is read;
- `kafka-stream`: as `kafka` with `params.stream` set; also timed to the first
  `cairn.completion_delta.generated.v1` read from `cairn.completions.deltas`;
- `gateway-stream`: as `gateway` with `stream: true`; also timed to the first server-sent event
  (time to first byte of the body), until `data: [DONE]`.

The instant backend sends its whole text in one delta (docs/gateway.md), so a stream's first event
comes once that delta is past the gateway's hold-back window, before output screening's verdict.
The bench's own readers of `cairn.responses` and `cairn.completions.deltas` also see the gateway's
answers (found by the request id each HTTP answer names), which splits a gateway request into the way
in (until its answer is on the bus) and the return leg (from there to the HTTP answer).

Reports p50/p95 of each way, the gateway's overhead (gateway minus Kafka, ms) and the ratio (gateway
/ Kafka), and the CPU (user + system from /proc, `cpu_meter.py`) per request answered of the gateway,
every request-path service, the broker and PostgreSQL, and this load generator, gross and net of
the idle burn, over the blocks of each way. The gateway reads every response on the broker (it joins
no group), so it spends CPU on the `kafka` requests too; that is shown in their row. `--profile`
samples the gateway with py-spy through the measured rounds (`profiles.py`).

Prints a table and writes benchmarks/results/gateway_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from cpu_meter import per_request_ms, snapshot
from litellm_bench import ChatRequest, ProxyUpstream
from pipeline_bench import (
    QUESTIONS,
    REPO,
    REQUEST_PATH,
    RESULTS,
    Answers,
    Upstream,
    idle_cores,
    percentile,
    request_path,
    started_stack,
)
from profiles import SpyRecording

from cairn_bus.kafka import KafkaPublisher, consumer_at_end, events_in
from cairn_events import CompletionDeltaGeneratedV1, RequestSubmittedV1
from cairn_localstack.config import LOCAL_CONSUMER_ENV
from cairn_testing.databases import scratch_database
from cairn_testing.processes import ServiceProcesses, free_port, run_cairn

GATEWAY = "gateway"
TENANT = "default"
MAX_TOKENS = 32
MODES = ["kafka", "gateway", "kafka-stream", "gateway-stream"]
LOAD_GENERATOR = "load generator"
CPU_GROUPS = {
    GATEWAY: [GATEWAY],
    "request path": REQUEST_PATH,
    "broker + postgres": ["broker", "postgres"],
    LOAD_GENERATOR: [LOAD_GENERATOR],
}
"""What the CPU is reported for: the gateway, the five request-path services, the stack (shared with
whatever else runs on it), this process."""
REQUEST_ID_HEADER = "x-cairn-request-id"


def chat_messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]


@dataclass
class KafkaUpstream(Upstream):
    """The pipeline benchmark's upstream, sending the request the gateway makes of the same chat
    request; with `stream`, it asks for deltas and clocks the first one read per request in `first`."""

    stream: bool = False
    first: dict[str, float] = field(default_factory=dict)

    def request(self, run: str, i: int) -> RequestSubmittedV1:
        params: dict[str, Any] = {"max_tokens": MAX_TOKENS, "temperature": 0.0}
        if self.stream:
            params["stream"] = True
        return RequestSubmittedV1.model_validate(
            {
                "request_id": f"gb-{run}-{i}",
                "tenant": TENANT,
                "prompt": self.prompt,
                "messages": chat_messages(i),
                "params": params,
                "submitted_at": datetime.now(UTC).isoformat(),
            }
        )

    async def read_deltas(self, bootstrap: str) -> None:
        """Clocks the first delta of each request (read as `read` reads the responses while busy)."""
        wait_ms = int(LOCAL_CONSUMER_ENV["CAIRN_KAFKA_FETCH_MAX_WAIT_MS"])
        consumer = await consumer_at_end(
            bootstrap, CompletionDeltaGeneratedV1.topic, fetch_max_wait_ms=wait_ms
        )
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.perf_counter()
                for _, event in events_in(batch):
                    if isinstance(event, CompletionDeltaGeneratedV1):
                        self.first.setdefault(event.request_id, now)
        finally:
            await consumer.stop()


@dataclass(kw_only=True)
class GatewayUpstream(ProxyUpstream):
    """The LiteLLM benchmark's HTTP upstream, asking the gateway for this run's prompt and keeping the
    request id each answer names (`X-Cairn-Request-Id`) in `cairn_ids`. An answer is `completed` when
    it is a 200 with text: without `stream`, a completion; with it, server-sent events ending with
    `data: [DONE]`, the first of them clocked in `first`."""

    prompt: str
    stream: bool = False
    first: dict[str, float] = field(default_factory=dict)
    cairn_ids: dict[str, str] = field(default_factory=dict)

    def request(self, run: str, i: int) -> ChatRequest:
        body: dict[str, Any] = {
            "model": self.prompt,
            "messages": chat_messages(i),
            "max_tokens": MAX_TOKENS,
            "temperature": 0.0,
        }
        if self.stream:
            body["stream"] = True
        return ChatRequest(f"gw-{run}-{i}", body)

    async def _post(self, event: ChatRequest) -> None:
        rid = event.request_id
        try:
            async with self.client.stream("POST", self.url, json=event.body) as response:
                self.cairn_ids[rid] = response.headers.get(REQUEST_ID_HEADER, "")
                if response.status_code != 200 or not self.stream:
                    body = await response.aread()
                    now = time.perf_counter()
                    status, reason = f"http_{response.status_code}", body.decode(errors="replace")
                    if response.status_code == 200:
                        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                            if json.loads(body)["choices"][0]["message"]["content"]:
                                status = "completed"
                    self.record(rid, status, reason, now)
                    return
                text, done, error = await self._events(rid, response)
        except httpx.HTTPError as exc:
            self.record(rid, "error", f"{type(exc).__name__}: {exc}", time.perf_counter())
            return
        completed = done and bool(text) and not error
        self.record(rid, "completed" if completed else "error", error or text, time.perf_counter())

    async def _events(self, rid: str, response: httpx.Response) -> tuple[str, bool, str]:
        """Reads a stream to its end: (its text, whether it ended with [DONE], its error event)."""
        text, done, error = "", False, ""
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            self.first.setdefault(rid, time.perf_counter())
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                done = True
                continue
            with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                chunk = json.loads(data)
                if "error" in chunk:
                    error = json.dumps(chunk["error"])
                elif chunk["choices"]:
                    text += chunk["choices"][0]["delta"].get("content") or ""
        return text, done, error


def create_key(env: dict[str, str]) -> str:
    """A new API key of tenant `default` (role viewer), made as an operator would."""
    made = run_cairn(env, "keys", "create", "--tenant", TENANT, "--name", "gateway-bench", "--json", cwd=REPO)
    return str(json.loads(made.strip().splitlines()[-1])["key"])


@dataclass
class Tally:
    """One way's figures over its blocks (ms from the send): the answer, the first event of a stream;
    for the gateway also when the bench's own reader saw the answer (and a stream's first delta) on
    the bus, and the return leg from there to the HTTP answer. CPU seconds per process and the span."""

    latencies: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)
    on_bus: list[float] = field(default_factory=list)
    first_on_bus: list[float] = field(default_factory=list)
    return_leg: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    span_s: float = 0.0
    not_completed: int = 0


@dataclass
class Way:
    """How one way sends: its upstream, where it clocks first events (streams), and, for the
    gateway, the request ids its answers named (to find them on the bus)."""

    up: Answers[Any]
    first: dict[str, float] | None = None
    cairn_ids: dict[str, str] | None = None


async def block(way: Way, bus: KafkaUpstream, n: int, run: str, start: int, tally: Tally) -> None:
    """`n` requests, one at a time, each waiting for its answer; `bus` is the bench's own reader of
    `cairn.responses` and `cairn.completions.deltas`."""
    for i in range(start, start + n):
        event = way.up.request(run, i)
        sent, answered = await way.up.ask(event, timeout=120)
        if way.up.statuses[event.request_id] != "completed":
            tally.not_completed += 1
            continue
        tally.latencies.append((answered - sent) * 1000)
        if way.first is not None and event.request_id in way.first:
            tally.firsts.append((way.first[event.request_id] - sent) * 1000)
        if way.cairn_ids is None:
            continue
        rid = way.cairn_ids.get(event.request_id, "")
        for _ in range(40):  # the bench's reader may see it a moment after the gateway answered
            if rid in bus.answered:
                break
            await asyncio.sleep(0.05)
        else:
            continue
        tally.on_bus.append((bus.answered[rid] - sent) * 1000)
        tally.return_leg.append((answered - bus.answered[rid]) * 1000)
        if way.first is not None and rid in bus.first:
            tally.first_on_bus.append((bus.first[rid] - sent) * 1000)


def quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None}
    return {"p50_ms": round(statistics.median(values), 1), "p95_ms": round(percentile(values, 0.95), 1)}


def grouped(seconds: dict[str, float]) -> dict[str, float]:
    """CPU seconds (or cores) per process summed into `CPU_GROUPS`."""
    return {g: sum(seconds.get(n, 0.0) for n in names) for g, names in CPU_GROUPS.items()}


def overhead(kafka: dict[str, Any], gateway: dict[str, Any]) -> dict[str, float | None]:
    """Gateway minus Kafka (ms) and gateway / Kafka, at p50 and p95."""
    out: dict[str, float | None] = {}
    for q in ("p50", "p95"):
        k, g = kafka.get(f"{q}_ms"), gateway.get(f"{q}_ms")
        out[f"{q}_ms"] = round(g - k, 1) if k is not None and g is not None else None
        out[f"{q}_ratio"] = round(g / k, 2) if k and g is not None else None
    return out


def summary(tallies: dict[str, Tally], idle: dict[str, float]) -> dict[str, Any]:
    """Per way: p50/p95 (of the answer, a stream's first event, and for the gateway the answer on the
    bus and the return leg) and CPU-ms per request by `CPU_GROUPS`; and the gateway's overhead."""
    ways: dict[str, Any] = {}
    for mode, tally in tallies.items():
        row: dict[str, Any] = {"answered": len(tally.latencies), "not_completed": tally.not_completed}
        row.update(quantiles(tally.latencies))
        if mode.endswith("-stream"):
            row["first"] = quantiles(tally.firsts)
        if mode.startswith("gateway"):
            row["answer_on_bus"] = quantiles(tally.on_bus)
            row["return_leg"] = quantiles(tally.return_leg)
            if mode.endswith("-stream"):
                row["first_delta_on_bus"] = quantiles(tally.first_on_bus)
        row["cpu_ms_per_request"] = per_request_ms(
            grouped(tally.cpu), len(tally.latencies), grouped(idle), tally.span_s
        )
        ways[mode] = row
    kafka, gateway = ways["kafka"], ways["gateway"]
    kafka_stream, gateway_stream = ways["kafka-stream"], ways["gateway-stream"]
    return {
        "ways": ways,
        "gateway_overhead": {
            "non_streamed": overhead(kafka, gateway),
            "non_streamed_until_answer_on_bus": overhead(kafka, gateway["answer_on_bus"]),
            "streamed_end": overhead(kafka_stream, gateway_stream),
            "streamed_first_event": overhead(kafka_stream["first"], gateway_stream["first"]),
        },
    }


async def measure(
    args: argparse.Namespace,
    services: ServiceProcesses,
    gateway_port: int,
    bootstrap: str,
    prompt: str,
    stack_pids: dict[str, int | None],
) -> dict[str, Any]:
    """Warm-up, idle CPU, then the four ways in rotating blocks against the running services."""
    key = create_key(services.env)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    client = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
        timeout=120,
        trust_env=False,
        headers={"Authorization": f"Bearer {key}"},
    )
    kafka = KafkaUpstream(
        producer, KafkaPublisher(producer, "/upstream/gateway-bench", service="upstream"), prompt
    )
    gateway = GatewayUpstream(
        client=client, url=f"http://127.0.0.1:{gateway_port}/v1/chat/completions", prompt=prompt
    )
    ways = {
        "kafka": Way(kafka),
        "gateway": Way(gateway, cairn_ids=gateway.cairn_ids),
        "kafka-stream": Way(kafka, kafka.first),
        "gateway-stream": Way(gateway, gateway.first, gateway.cairn_ids),
    }

    def way(mode: str) -> Way:
        """The way `mode`, its upstreams set to ask for streams or not."""
        kafka.stream = gateway.stream = mode.endswith("-stream")
        return ways[mode]

    readers = [asyncio.create_task(kafka.read(bootstrap)), asyncio.create_task(kafka.read_deltas(bootstrap))]

    async def warm(run: str) -> None:
        for mode in MODES:  # caches, pools, connections, the embedder's first calls, busy fetching
            up = way(mode).up
            for i in range(args.warmup):
                event = up.request(f"{run}{mode}", i)
                await up.ask(event, timeout=180)
                if up.statuses[event.request_id] != "completed":
                    raise RuntimeError(f"{mode}: the warm-up was not answered `completed`: {up.reasons}")

    spy: SpyRecording | None = None
    try:
        await asyncio.sleep(1.0)
        await warm("warm")
        print(f"  warmed up ({args.warmup} requests each way)", flush=True)
        pids = {
            GATEWAY: services.pm.pid(GATEWAY),
            **{n: services.pm.pid(n) for n in REQUEST_PATH},
            **stack_pids,
        }
        idle = await idle_cores(pids, args.idle_seconds)
        print(f"  idle: {idle['total']} cores over {args.idle_seconds:.0f} s: {idle}", flush=True)
        await warm("rewarm")  # consumers slow their fetches after a quiet spell (cairn_bus.fetching)
        if args.profile:  # py-spy samples the gateway through every round (`--profile`)
            spy = SpyRecording({GATEWAY: pids[GATEWAY]}, Path(tempfile.mkdtemp(prefix="gateway-profile-")))
        tallies = {mode: Tally() for mode in MODES}
        run = uuid.uuid4().hex[:6]
        rounds = -(-args.requests // args.block)
        for r in range(rounds):
            n = min(args.block, args.requests - r * args.block)
            for mode in MODES[r % len(MODES) :] + MODES[: r % len(MODES)]:
                tally = tallies[mode]
                before, cpu0 = snapshot(pids), time.process_time()
                await block(way(mode), kafka, n, f"{run}{mode}", r * args.block, tally)
                after = snapshot(pids)
                for name, spent in after.since(before).items():
                    tally.cpu[name] += spent
                tally.cpu[LOAD_GENERATOR] += time.process_time() - cpu0
                tally.span_s += after.at - before.at
            done = min(args.requests, (r + 1) * args.block)
            p50s = {m: quantiles(t.latencies)["p50_ms"] for m, t in tallies.items()}
            print(f"  round {r + 1}/{rounds}: {done} requests each way, p50 ms so far {p50s}", flush=True)
        reasons = {
            name: dict(up.reasons) for name, up in (("kafka", kafka), ("gateway", gateway)) if up.reasons
        }
        profile = spy.stop()[GATEWAY] if spy is not None else None
        spy = None
        return {
            **summary(tallies, idle),
            "idle_cores": idle,
            "not_completed_reasons": reasons,
            "gateway_profile": profile,
        }
    finally:
        if spy is not None:  # the run failed: end the recording
            spy.stop()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await gateway.close()
        await client.aclose()
        await producer.stop()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    config, stack = await started_stack()
    bootstrap = config.kafka_bootstrap
    prompt = f"benchgw{uuid.uuid4().hex[:6]}"
    stack_pids = {c.name: c.pid for c in stack.status().components if c.name in ("broker", "postgres")}
    started = time.perf_counter()
    async with (
        scratch_database(config.postgres_dsn, "gwbench") as dsn,
        request_path(bootstrap, stack.env(), dsn, prompt) as services,
    ):
        port = free_port()
        gateway_env = {
            "CAIRN_HTTP_PORT": str(port),
            "CAIRN_METRICS_PORT": str(free_port()),
            "CAIRN_GATEWAY_PROMPT_STORE_URL": "",  # /v1/models is not measured
            "CAIRN_GATEWAY_REGISTRY_URL": "",
        }
        with services.running([GATEWAY], extra_env={GATEWAY: gateway_env}):
            print(f"  services up in {time.perf_counter() - started:.0f} s", flush=True)
            measured = await measure(args, services, port, bootstrap, prompt, stack_pids)
    return {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": "instant (fixed completion, benchmark mode)",
        "requests_each_way": args.requests,
        "block": args.block,
        "clients": 1,
        "max_tokens": MAX_TOKENS,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        **measured,
    }


def _q(row: dict[str, Any] | None) -> str:
    return f"{row['p50_ms']}/{row['p95_ms']}" if row else "-"


def _cpu(row: dict[str, Any], name: str) -> str:
    cpu = row["cpu_ms_per_request"].get(name)
    return f"{cpu['gross']}/{cpu['net_of_idle']}" if cpu else "-"


def table(res: dict[str, Any]) -> str:
    ways = res["ways"]
    lines = [
        f"{res['requests_each_way']} requests each way, one at a time, in rotating blocks of "
        f"{res['block']}; inference on the {res['backend']}",
        "ms p50/p95 from the send: the answer; a stream's first event; for the gateway the answer (first delta) "
        "as the bench's own reader saw it on the bus, and the return leg from there to the HTTP answer",
        f"{'way':<15} {'answered':>8} {'answer':>13} {'first event':>13} {'answer on bus':>14} "
        f"{'first delta':>13} {'return leg':>13}",
    ]
    for mode, row in ways.items():
        lines.append(
            f"{mode:<15} {row['answered']:>8} {_q(row):>13} {_q(row.get('first')):>13} "
            f"{_q(row.get('answer_on_bus')):>14} {_q(row.get('first_delta_on_bus')):>13} "
            f"{_q(row.get('return_leg')):>13}"
        )
    names = [*CPU_GROUPS, "total"]
    lines.append("CPU-ms per request answered, gross/net of idle:")
    lines.append(f"{'way':<15}" + "".join(f"{n:>19}" for n in names))
    for mode, row in ways.items():
        lines.append(f"{mode:<15}" + "".join(f"{_cpu(row, n):>19}" for n in names))
    for name, what in (
        ("non_streamed", "gateway - kafka"),
        ("non_streamed_until_answer_on_bus", "gateway - kafka, until the answer is on the bus"),
        ("streamed_end", "gateway-stream - kafka-stream, to the end"),
        ("streamed_first_event", "gateway-stream - kafka-stream, to the first event"),
    ):
        o = res["gateway_overhead"][name]
        lines.append(
            f"overhead {what}: p50 {o['p50_ms']} ms (x{o['p50_ratio']}), "
            f"p95 {o['p95_ms']} ms (x{o['p95_ratio']})"
        )
    lines.append(f"idle: {res['idle_cores']['total']} cores ({res['idle_cores']})")
    if res["not_completed_reasons"]:
        lines.append(f"answers not completed: {res['not_completed_reasons']}")
    if found := res.get("gateway_profile"):
        for kind in ("self", "total"):
            top = ", ".join(f"{name} {share:.0%}" for name, share in found.get(kind, []))
            lines.append(
                f"py-spy, gateway ({found.get('samples', 0)} samples), most {kind} time: {top or '-'}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=80, help="requests each way")
    parser.add_argument("--block", type=int, default=10, help="requests of one way in a row")
    parser.add_argument("--warmup", type=int, default=3, help="requests each way before measuring")
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="how long to measure CPU with no traffic"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the gateway with py-spy through the measured rounds and print where its CPU went",
    )
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the services on SIGTERM too
    result = asyncio.run(main(arguments))
    print(table(result))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gateway_bench.json").write_text(json.dumps(result, indent=2) + "\n")

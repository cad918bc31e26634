"""Pipeline overhead: the whole request path with an instant backend, against the bus floor of the same run.

Run with `make bench` or `.venv/bin/python benchmarks/pipeline_bench.py` (test stack profile unless
CAIRN_STACK_PROFILE says otherwise). Starts audit, prompt-store, retriever, safety and inference as
processes (a fresh database and fresh consumer groups, a prompt of this run's own name, a few
Python reference topics ingested) with inference on the `instant` backend: a benchmark instrument
that answers at once with a fixed text, so what is measured is the platform (six hops through the
broker, rendering, embedding and hybrid search, screening twice, the inboxes, the audit trail), not a
model. Then:

1. the bus floor in this run: one hop through cairn-bus (produce -> consume, headers included;
   `bus_throughput.hop_latency`) and the most messages per second a cairn-bus consumer dispatches
   (`bus_throughput.consume_rate`);
2. open-loop offered loads (requests sent on a fixed schedule, whatever the answers do) of
   `--loads` requests per second for `--seconds` each: end-to-end p50/p99 latency (submit ->
   `response.completed` read by the upstream) and the answered rate;
3. a closed loop (`--clients` upstreams, each sending its next request when its last is answered):
   the most requests per second the pipeline answers;
4. CPU (user + system, from /proc, `cpu_meter.py`) of each service process, the broker and
   PostgreSQL (with its backends): with no traffic for `--idle-seconds` (cores), and per request
   answered at each load (CPU-ms, gross and net of the idle burn over the same span).

A load is *sustained* when every request is answered `completed`, the answered rate keeps up with the offered
rate within 5 % (answers per second over the span of the answers, against requests per second over
the span of the sends), and p99 stays within 5x the p99 of the lowest load (latency not growing
without bound). Ratios: overhead = pipeline p50 / (hops x hop p50), the cost of the platform's work
beyond moving messages; throughput ratio = highest sustained req/s / bus floor msg/s.

Prints a table and writes benchmarks/results/pipeline_bench.json (`--label` names the run, e.g.
`before`/`after` of a change, and the JSON then goes to pipeline_bench.<label>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from bus_throughput import consume_rate, hop_latency
from cpu_meter import per_request_ms, snapshot
from profiles import SpyRecording

from cairn_bus.fetching import FetchPacer
from cairn_bus.kafka import KafkaPublisher, consumer_at_end, ensure_topics, events_in
from cairn_events import RequestSubmittedV1, ResponseCompletedV1
from cairn_localstack.config import LOCAL_CONSUMER_ENV, StackConfig
from cairn_localstack.process import ProcessManager
from cairn_localstack.stack import LocalStack
from cairn_testing.databases import scratch_database
from cairn_testing.processes import ServiceProcesses, free_port, prepare_groups, run_cairn, service_env

REPO = Path(__file__).resolve().parents[1]

RESULTS = Path(__file__).parent / "results"
REQUEST_PATH = ["audit", "prompt-store", "retriever", "safety", "inference"]
# cairn.requests, .prompts, .contexts, .screenings, .completions, .responses
HOPS = 6
TOPICS = ["assert", "global", "pass", "del", "with", "yield"]
QUESTIONS = ["What does assert do?", "What does global declare?", "What does pass do?", "What does del do?"]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class Identified(Protocol):
    @property
    def request_id(self) -> str: ...


Request = TypeVar("Request", bound=Identified)


@dataclass(kw_only=True)
class Answers(Generic[Request]):
    """What `open_loop` and `closed_loop` drive: an upstream that makes and sends requests and clocks,
    per request id, when its first answer is read (also `litellm_bench.py`'s HTTP upstream)."""

    answered: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    """A reason seen per status other than `completed` (there should be none)."""
    waiters: dict[str, asyncio.Future[float]] = field(default_factory=dict)

    def request(self, run: str, i: int) -> Request:
        """Request `i` of run `run`."""
        raise NotImplementedError

    async def send(self, event: Request) -> float:
        """Send without waiting for the answer; returns the send time (perf_counter)."""
        raise NotImplementedError

    def record(self, request_id: str, status: str, reason: str | None, now: float) -> None:
        """The first answer to `request_id`, read at `now`; wakes whoever `ask`s for it."""
        if request_id in self.answered:
            return
        self.answered[request_id] = now
        self.statuses[request_id] = status
        if status != "completed" and reason:
            self.reasons.setdefault(status, reason[:200])
        waiter = self.waiters.pop(request_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def ask(self, event: Request, timeout: float) -> tuple[float, float]:
        """Send and wait for the answer; (sent, answered)."""
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[event.request_id] = waiter
        sent = await self.send(event)
        answered = await asyncio.wait_for(waiter, timeout)
        return sent, answered


@dataclass
class Upstream(Answers[RequestSubmittedV1]):
    """Sends requests to the pipeline and reads their `response.completed` events."""

    producer: AIOKafkaProducer
    publisher: KafkaPublisher
    prompt: str

    def request(self, run: str, i: int) -> RequestSubmittedV1:
        return RequestSubmittedV1.model_validate(
            {
                "request_id": f"pb-{run}-{i}",
                "prompt": f"{self.prompt}@production",
                "variables": {"question": QUESTIONS[i % len(QUESTIONS)]},
                "params": {"max_tokens": 32, "temperature": 0.0},
                "submitted_at": datetime.now(UTC).isoformat(),
            }
        )

    async def read(self, bootstrap: str) -> None:
        # the upstream reads the way the services do on this broker (a 500 ms default wait would
        # add up to ~250 ms to every measured answer on Tansu), pacing its fetches when idle too
        env = LOCAL_CONSUMER_ENV
        pacer = FetchPacer(
            int(env["CAIRN_KAFKA_FETCH_MAX_WAIT_MS"]),
            int(env["CAIRN_KAFKA_FETCH_MAX_WAIT_IDLE_MS"]),
            int(env["CAIRN_KAFKA_FETCH_IDLE_AFTER_MS"]) / 1000,
        )
        consumer = await consumer_at_end(bootstrap, "cairn.responses", fetch_max_wait_ms=pacer.busy_ms)
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                pacer.observe(consumer, bool(batch))
                now = time.perf_counter()
                for _, event in events_in(batch):
                    if not isinstance(event, ResponseCompletedV1) or event.request_id in self.answered:
                        continue
                    if event.prompt_name != self.prompt:  # another pipeline on the shared broker
                        continue
                    self.keep(event)
                    self.record(event.request_id, event.status.value, event.reason, now)
        finally:
            await consumer.stop()

    def keep(self, event: ResponseCompletedV1) -> None:
        """A hook for each request's first answer, before it is recorded (a subclass keeps the events)."""

    async def send(self, event: RequestSubmittedV1) -> float:
        """Publish; returns the send time (perf_counter)."""
        sent = time.perf_counter()
        await self.publisher.publish(event)
        return sent


async def open_loop(up: Answers[Any], rate: float, seconds: float, drain_s: float) -> dict[str, Any]:
    """Send `rate` requests/s for `seconds` on a fixed schedule; wait up to `drain_s` for the answers."""
    run = uuid.uuid4().hex[:6]
    n = max(1, round(rate * seconds))
    events = [up.request(run, i) for i in range(n)]
    sent: dict[str, float] = {}
    start = time.perf_counter()
    for i, event in enumerate(events):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[event.request_id] = await up.send(event)
    deadline = time.perf_counter() + drain_s
    while time.perf_counter() < deadline and not all(r in up.answered for r in sent):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    answered = [r for r in sent if r in up.answered]
    done = [r for r in answered if up.statuses[r] == "completed"]
    others = Counter(up.statuses[r] for r in answered if up.statuses[r] != "completed")
    latencies = [(up.answered[r] - sent[r]) * 1000 for r in done]
    send_span = max(sent.values()) - min(sent.values())
    answer_times = [up.answered[r] for r in done]
    answer_span = max(answer_times) - min(answer_times) if len(answer_times) > 1 else 0.0
    offered = (n - 1) / send_span if send_span > 0 else float(n)
    answered_rate = (len(done) - 1) / answer_span if answer_span > 0 else 0.0
    return {
        "offered_req_s": round(offered, 1),
        "answered_req_s": round(answered_rate, 1),
        "requests": n,
        "answered": len(done),
        "not_completed": dict(others),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
    }


async def closed_loop(up: Answers[Any], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` upstreams each asking, one request at a time, for `seconds`: answered req/s."""
    run = uuid.uuid4().hex[:6]
    latencies: list[float] = []
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < stop_at:
            event = up.request(run, next(counter))
            sent, answered = await up.ask(event, timeout=120)
            if up.statuses[event.request_id] == "completed":
                latencies.append((answered - sent) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        "clients": clients,
        "answered_req_s": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
    }


def sustained(levels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Marks each open-loop level sustained or not (see the module docstring)."""
    base_p99 = levels[0]["p99_ms"] or 0.0
    for level in levels:
        level["sustained"] = bool(
            level["answered"] == level["requests"]
            and level["answered_req_s"] >= 0.95 * level["offered_req_s"]
            and level["p99_ms"] is not None
            and level["p99_ms"] <= 5 * max(base_p99, 1.0)
        )
    return levels


def handler_means(ports: dict[str, int]) -> dict[str, float]:
    """Mean time (ms) of each service's handlers over the run, from `cairn_handler_duration_seconds`."""
    out: dict[str, float] = {}
    for name, port in ports.items():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        sums: dict[str, float] = {}
        counts: dict[str, float] = {}
        for line in text.splitlines():
            for suffix, into in (("_sum", sums), ("_count", counts)):
                if line.startswith(f"cairn_handler_duration_seconds{suffix}{{"):
                    labels, value = line.rsplit(" ", 1)
                    event = labels.split('event_type="', 1)[1].split('"', 1)[0]
                    into[event] = into.get(event, 0.0) + float(value)
        for event, total in sums.items():
            if counts.get(event):
                short = event.removeprefix("cairn.").removesuffix(".v1")
                out[f"{name}: {short}"] = round(total / counts[event] * 1000, 2)
    return out


async def idle_cores(pids: dict[str, int | None], seconds: float) -> dict[str, float]:
    """Cores each process burns with the services up and no traffic, over `seconds`, and in total."""
    before = snapshot(pids)
    await asyncio.sleep(seconds)
    after = snapshot(pids)
    span = after.at - before.at
    cores = {n: round(s / span, 4) for n, s in after.since(before).items()}
    return {**cores, "total": round(sum(cores.values()), 4)}


def prompt_file(folder: Path, name: str) -> Path:
    """The `qa` prompt under this run's own name (pipelines of other runs on the broker reject it)."""
    text = (REPO / "infra" / "prompts" / "qa.yaml").read_text()
    path = folder / f"{name}.yaml"
    path.write_text(text.replace("\nname: qa\n", f"\nname: {name}\n", 1))
    return path


@asynccontextmanager
async def request_path(
    bootstrap: str, stack_env: dict[str, str], dsn: str, prompt: str
) -> AsyncIterator[ServiceProcesses]:
    """The request path as processes on database `dsn` (instant backend, the prompt under its own
    name, a few reference topics ingested); each process's /metrics port in `metrics_ports`."""
    work = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    env = service_env(stack_env, dsn)
    env.update(
        {
            "CAIRN_HTTP_PORT": "0",
            "CAIRN_INFERENCE_BACKEND": "instant",
            "CAIRN_BENCHMARK_MODE": "1",
            # requests naming no model go to the base model, whatever other runs on the shared broker
            # registered or promoted (an adapter would need a backend that loads adapters)
            "CAIRN_SERVED_MODEL": f"bench-{prompt}",
        }
    )
    from pydoc_data.topics import topics

    knowledge = work / "knowledge"
    knowledge.mkdir()
    for name in TOPICS:
        (knowledge / f"{name}.md").write_text(f"# The {name} statement\n\n{topics[name]}")
    run_cairn(env, "prompts", "push", str(prompt_file(work, prompt)), "--label", "production", cwd=REPO)
    run_cairn(env, "docs", "ingest", str(knowledge), cwd=REPO)
    groups = await prepare_groups(bootstrap, uuid.uuid4().hex[:8])
    services = ServiceProcesses(ProcessManager(work / "services"), env, groups, cwd=REPO)
    ports = {name: {"CAIRN_METRICS_PORT": str(free_port())} for name in REQUEST_PATH}
    with services.running(REQUEST_PATH, ports):
        yield services


async def pipeline(
    args: argparse.Namespace,
    bootstrap: str,
    stack_env: dict[str, str],
    dsn: str,
    prompt: str,
    stack_pids: dict[str, int | None],
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, float], dict[str, str], dict[str, float]]:
    """Run the request path on database `dsn`, warm it up, measure its CPU with no traffic, then the
    open-loop loads and the closed loop with the CPU each process spent per request answered:
    (levels, closed loop, mean handler times, reasons of answers not `completed`, idle cores)."""
    levels: list[dict[str, Any]] = []
    async with request_path(bootstrap, stack_env, dsn, prompt) as services:
        ports = {name: services.metrics_ports[name] for name in REQUEST_PATH}
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        await producer.start()
        try:
            up = Upstream(producer, KafkaPublisher(producer, "/upstream/bench", service="upstream"), prompt)
            reader = asyncio.create_task(up.read(bootstrap))
            await asyncio.sleep(1.0)
            # warm-up: caches, connection pools, the embedder's first calls
            for i in range(args.warmup):
                await up.ask(up.request("warm", i), timeout=180)
            pids = {**{n: services.pm.pid(n) for n in REQUEST_PATH}, **stack_pids}
            # consumers lengthen their fetch wait after a quiet spell (cairn_bus.fetching): let it pass
            await asyncio.sleep(int(LOCAL_CONSUMER_ENV["CAIRN_KAFKA_FETCH_IDLE_AFTER_MS"]) / 1000 + 1)
            idle = await idle_cores(pids, args.idle_seconds)
            print(f"  idle: {idle['total']} cores over {args.idle_seconds:.0f} s: {idle}", flush=True)
            for rate in args.loads:
                # py-spy samples each service through the highest load (`--profile`)
                spy = None
                if args.profile and rate == max(args.loads):
                    spy = SpyRecording(
                        {n: services.pm.pid(n) for n in REQUEST_PATH},
                        Path(tempfile.mkdtemp(prefix="pipeline-profiles-")),
                    )
                before = snapshot(pids)
                level = await open_loop(up, rate, args.seconds, args.drain)
                after = snapshot(pids)
                level["cpu_ms_per_request"] = per_request_ms(
                    after.since(before), level["answered"], idle, after.at - before.at
                )
                if spy is not None:
                    level["profile"] = spy.stop()
                levels.append(level)
                print(f"  offered {rate:>5} req/s: {levels[-1]}", flush=True)
            before = snapshot(pids)
            closed = await closed_loop(up, args.clients, args.seconds)
            after = snapshot(pids)
            closed["cpu_ms_per_request"] = per_request_ms(
                after.since(before), closed["requests"], idle, after.at - before.at
            )
            print(f"  closed loop, {args.clients} clients: {closed}", flush=True)
            reader.cancel()
            return levels, closed, handler_means(ports), dict(up.reasons), idle
        finally:
            await producer.stop()


async def started_stack() -> tuple[StackConfig, LocalStack]:
    """The local stack of `CAIRN_STACK_PROFILE` (the test profile by default), up, with every topic."""
    config = StackConfig.for_profile(os.environ.get("CAIRN_STACK_PROFILE", "test"))
    stack = LocalStack(config)
    stack.up()
    await ensure_topics(config.kafka_bootstrap)
    return config, stack


async def main(args: argparse.Namespace) -> dict[str, Any]:
    config, stack = await started_stack()
    bootstrap = config.kafka_bootstrap

    # 1. the bus floor, before anything else runs
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    try:
        hops = sorted(
            await hop_latency(bootstrap, KafkaPublisher(producer, "/cairn/bench"), args.hop_samples)
        )
    finally:
        await producer.stop()
    floor_msg_s = await consume_rate(bootstrap, args.floor_events, uuid.uuid4().hex[:6])
    hop_p50, hop_p99 = statistics.median(hops), percentile(hops, 0.99)

    # 2. the pipeline, on a database of its own
    prompt = f"benchqa{uuid.uuid4().hex[:6]}"
    status = stack.status()
    stack_pids = {c.name: c.pid for c in status.components if c.name in ("broker", "postgres")}
    async with scratch_database(config.postgres_dsn, "pipebench") as dsn:
        service_vars = stack.env()
        if args.encryption == "off":  # the audit stores payloads in clear (cairn_auth.encryption)
            service_vars["CAIRN_ENCRYPTION"] = "off"
        levels, closed, handlers, up_reasons, idle = await pipeline(
            args, bootstrap, service_vars, dsn, prompt, stack_pids
        )
    levels = sustained(levels)
    best = max((lv["answered_req_s"] for lv in levels if lv["sustained"]), default=0.0)
    pipeline_p50 = levels[0]["p50_ms"] or 0.0
    return {
        "label": args.label,
        "backend": "instant (fixed completion, benchmark mode)",
        "encryption": args.encryption,
        "hops": HOPS,
        "hop_p50_ms": round(hop_p50, 2),
        "hop_p99_ms": round(hop_p99, 2),
        "bus_floor_msg_s": round(floor_msg_s, 1),
        "levels": levels,
        "closed_loop": closed,
        "pipeline_p50_ms_lowest_load": pipeline_p50,
        "pipeline_p99_ms_lowest_load": levels[0]["p99_ms"],
        "highest_sustained_req_s": best,
        "closed_loop_max_req_s": closed["answered_req_s"],
        "overhead_p50_over_hops": round(pipeline_p50 / (HOPS * hop_p50), 1) if hop_p50 else None,
        "handler_mean_ms": handlers,
        "idle_cores": idle,
        "not_completed_reasons": up_reasons,
        "throughput_ratio": round(max(best, closed["answered_req_s"]) / floor_msg_s, 4),
    }


def table(res: dict[str, Any]) -> str:
    lines = [
        f"bus floor: hop p50 {res['hop_p50_ms']} ms, p99 {res['hop_p99_ms']} ms; "
        f"{res['bus_floor_msg_s']} msg/s dispatched by one consumer",
        f"{'offered req/s':>13} {'answered req/s':>14} {'answered':>9} {'p50 ms':>8} {'p99 ms':>8}  sustained",
    ]
    for lv in res["levels"]:
        lines.append(
            f"{lv['offered_req_s']:>13} {lv['answered_req_s']:>14} {lv['answered']:>4}/{lv['requests']:<4} "
            f"{lv['p50_ms']!s:>8} {lv['p99_ms']!s:>8}  {'yes' if lv['sustained'] else 'no'}"
        )
    c = res["closed_loop"]
    lines.append(
        f"closed loop ({c['clients']} clients): {c['answered_req_s']} req/s, p50 {c['p50_ms']} ms, "
        f"p99 {c['p99_ms']} ms"
    )
    lines.append(
        f"highest sustained {res['highest_sustained_req_s']} req/s; "
        f"overhead = p50 / ({res['hops']} x hop p50) = {res['overhead_p50_over_hops']}; "
        f"throughput ratio = req/s / bus floor msg/s = {res['throughput_ratio']}"
    )
    lines.append(
        "mean handler time (ms): " + ", ".join(f"{k} {v}" for k, v in res["handler_mean_ms"].items())
    )
    idle = res["idle_cores"]
    lines.append(
        f"idle (services up, no traffic): {idle['total']} cores: "
        + ", ".join(f"{k} {v}" for k, v in idle.items() if k != "total")
    )
    lines.append(f"{'CPU-ms per request':<22}" + "".join(f"{n:>14}" for n in [*idle.keys()]))
    for row in [*res["levels"], res["closed_loop"]]:
        cpu = row.get("cpu_ms_per_request") or {}
        name = f"{row['offered_req_s']} req/s" if "offered_req_s" in row else f"closed ({row['clients']})"
        lines.append(
            f"{name + ' gross/net':<22}"
            + "".join(
                f"{cpu[n]['gross']:>7}/{cpu[n]['net_of_idle']:<6}" if n in cpu else f"{'-':>14}" for n in idle
            )
        )
    for row in res["levels"]:
        for service, found in (row.get("profile") or {}).items():
            top = ", ".join(f"{name} {share:.0%}" for name, share in found.get("self", [])[:5])
            lines.append(
                f"py-spy at {row['offered_req_s']} req/s, {service} ({found.get('samples', 0)} samples), "
                f"most own time: {top or found.get('error', '-')}"
            )
    return "\n".join(lines)


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The loads and measuring windows, shared with `litellm_bench.py` so both run the same ones."""
    parser.add_argument("--loads", type=float, nargs="+", default=[1, 2, 4, 8, 16], help="offered req/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load")
    parser.add_argument("--drain", type=float, default=60.0, help="longest wait for a load's last answers")
    parser.add_argument("--clients", type=int, default=32, help="closed-loop upstreams")
    parser.add_argument("--warmup", type=int, default=5, help="requests before measuring")
    parser.add_argument(
        "--idle-seconds", type=float, default=60.0, help="how long to measure CPU with no traffic"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_load_arguments(parser)
    parser.add_argument("--hop-samples", type=int, default=200)
    parser.add_argument("--floor-events", type=int, default=3000)
    parser.add_argument(
        "--label", default="", help="name of the run; the JSON goes to pipeline_bench.<label>.json"
    )
    parser.add_argument(
        "--encryption",
        choices=["on", "off"],
        default="on",
        help="per-tenant encryption of the stored payloads (on: as the stack runs; off: CAIRN_ENCRYPTION=off)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample each service with py-spy through the highest load and print where its CPU went",
    )
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the services on SIGTERM too
    result = asyncio.run(main(arguments))
    print(table(result))
    RESULTS.mkdir(exist_ok=True)
    suffix = f".{arguments.label}" if arguments.label else ""
    (RESULTS / f"pipeline_bench{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")

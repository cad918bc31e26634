"""Scaling out the bottleneck stage: the whole request path in a closed loop with one, then two, then
again one member of that stage's consumer group, in the same run.

Run with `make bench` or `.venv/bin/python benchmarks/replica_bench.py` (test stack profile unless
CAIRN_STACK_PROFILE says otherwise). Starts audit, prompt-store, retriever, safety and inference as
processes, with inference on the `instant` backend, as `pipeline_bench.py` does (its upstream and
closed loop are reused). Then, each for `--seconds` with `--clients` upstreams each sending its next
request when its last is answered:

1. one member per service; the bottleneck stage is the service that spent the most CPU-ms per
   request in this phase (or `--stage`);
2. a second member of that stage joins its consumer group (`<stage>#2`, as `cairn services up
   --replicas <stage>=2` runs it); measured once both members report partitions on their /metrics;
3. the second member stops (the first takes its partitions back): one member again, to bracket any
   drift over the run.

Per phase: answered req/s, p50/p99 latency, CPU-ms per request of each process (from /proc,
`cpu_meter.py`) and how many of the machine's cores were busy (from /proc/stat, everything on the
machine). The ratio is phase 2 against the mean of phases 1 and 3. A second member can only help
where the stage is short of a core while the machine has one to spare: on a saturated machine it
adds a process competing for the same cores. Writes benchmarks/results/replica_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from cpu_meter import TICKS, per_request_ms, snapshot
from pipeline_bench import REQUEST_PATH, RESULTS, Upstream, closed_loop, request_path, started_stack

from cairn_bus.kafka import KafkaPublisher
from cairn_localstack.config import member_name
from cairn_testing.databases import scratch_database
from cairn_testing.processes import ServiceProcesses, free_port


def machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine so far, from the first line of /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def held_partitions(port: int) -> int:
    """How many partitions a service process reports holding on its /metrics (0 when it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if line.startswith("cairn_consumer_lag{"))


async def phase(
    up: Upstream, services: ServiceProcesses, stack_pids: dict[str, int | None], args: argparse.Namespace
) -> dict[str, Any]:
    """One closed loop: throughput, latency, CPU-ms per request of each process, busy cores."""
    names = [n for s in REQUEST_PATH for n in services.members(s)]
    pids = {**{n: services.pm.pid(n) for n in names}, **stack_pids}
    before, busy_before = snapshot(pids), machine_ticks()
    result = await closed_loop(up, args.clients, args.seconds)
    after, busy_after = snapshot(pids), machine_ticks()
    span = after.at - before.at
    result["cpu_ms_per_request"] = {
        n: v["gross"] for n, v in per_request_ms(after.since(before), result["requests"]).items()
    }
    result["members"] = names
    result["machine_busy_cores"] = round((busy_after[0] - busy_before[0]) / TICKS / span, 2)
    result["machine_cores"] = os.cpu_count()
    return result


async def settle(up: Upstream, services: ServiceProcesses, members: list[str], timeout: float = 90.0) -> None:
    """Ask requests until every process in `members` reports partitions (the group has rebalanced)."""
    deadline = time.monotonic() + timeout
    run = uuid.uuid4().hex[:6]
    for i in range(10**6):
        if all(held_partitions(services.metrics_ports[m]) for m in members):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{members} did not all hold partitions within {timeout:.0f} s")
        await up.ask(up.request(f"settle{run}", i), timeout=120)
    for j in range(5):  # a few more once rebalanced
        await up.ask(up.request(f"settled{run}", j), timeout=120)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    config, stack = await started_stack()
    bootstrap = config.kafka_bootstrap
    prompt = f"replqa{uuid.uuid4().hex[:6]}"
    stack_pids = {c.name: c.pid for c in stack.status().components if c.name in ("broker", "postgres")}
    async with (
        scratch_database(config.postgres_dsn, "replbench") as dsn,
        request_path(bootstrap, stack.env(), dsn, prompt) as services,
    ):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        await producer.start()
        up = Upstream(producer, KafkaPublisher(producer, "/upstream/bench", service="upstream"), prompt)
        reader = asyncio.create_task(up.read(bootstrap))
        try:
            await asyncio.sleep(1.0)
            warm = f"warm{uuid.uuid4().hex[:6]}"
            for i in range(args.warmup):
                await up.ask(up.request(warm, i), timeout=180)
            one = await phase(up, services, stack_pids, args)
            print(f"  1 member each: {one}", flush=True)
            cpu = {n: v for n, v in one["cpu_ms_per_request"].items() if n in REQUEST_PATH}
            stage = args.stage or max(cpu, key=lambda n: cpu[n])
            second = member_name(stage, 2)
            services.start(second, {"CAIRN_METRICS_PORT": str(free_port())})
            try:
                services.wait_ready([second])
                await settle(up, services, [stage, second])
                two = await phase(up, services, stack_pids, args)
                print(f"  2 members of {stage}: {two}", flush=True)
            finally:
                services.stop(second)
            await settle(up, services, [stage])
            again = await phase(up, services, stack_pids, args)
            print(f"  1 member each again: {again}", flush=True)
        finally:
            reader.cancel()
            await producer.stop()
    base = (one["answered_req_s"] + again["answered_req_s"]) / 2
    base_p50 = ((one["p50_ms"] or 0.0) + (again["p50_ms"] or 0.0)) / 2
    return {
        "backend": "instant (fixed completion, benchmark mode)",
        "stage": stage,
        "stage_from": "--stage" if args.stage else "most CPU-ms per request with one member each",
        "clients": args.clients,
        "seconds": args.seconds,
        "phases": {"one": one, "two": two, "one_again": again},
        "throughput_ratio_two_over_one": round(two["answered_req_s"] / base, 2) if base else None,
        "p50_ratio_two_over_one": round((two["p50_ms"] or 0.0) / base_p50, 2) if base_p50 else None,
    }


def table(res: dict[str, Any]) -> str:
    stage = res["stage"]
    lines = [
        f"bottleneck stage: {stage} ({res['stage_from']}); closed loop, {res['clients']} clients, "
        f"{res['seconds']:.0f} s per phase",
        f"{'members of ' + stage:<22} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'busy cores':>11}  "
        f"CPU-ms/request ({stage} members, total)",
    ]
    for key, count in (("one", 1), ("two", 2), ("one_again", 1)):
        p = res["phases"][key]
        cpu = p["cpu_ms_per_request"]
        stage_cpu = "+".join(str(cpu[m]) for m in p["members"] if m.split("#")[0] == stage)
        lines.append(
            f"{count:<22} {p['answered_req_s']:>7} {p['p50_ms']!s:>8} {p['p99_ms']!s:>8} "
            f"{p['machine_busy_cores']:>5}/{p['machine_cores']:<5}  {stage_cpu}, {cpu.get('total')}"
        )
    lines.append(
        f"two members / one: throughput x{res['throughput_ratio_two_over_one']}, "
        f"p50 x{res['p50_ratio_two_over_one']}"
    )
    one = res["phases"]["one"]
    if one["machine_busy_cores"] >= 0.9 * (one["machine_cores"] or 1):
        lines.append(
            f"the machine was saturated with one member ({one['machine_busy_cores']} of "
            f"{one['machine_cores']} cores busy): a second member of {stage} competes for the same cores"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stage", choices=REQUEST_PATH, help="the stage to scale (default: measured)")
    parser.add_argument("--clients", type=int, default=32, help="closed-loop upstreams")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--warmup", type=int, default=5, help="requests before measuring")
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the services on SIGTERM too
    result = asyncio.run(main(arguments))
    print(table(result))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "replica_bench.json").write_text(json.dumps(result, indent=2) + "\n")

"""The LiteLLM proxy under the pipeline benchmark's loads, so Cairn's cost is compared with a measured
figure of the same run, not a quoted one.

Run with `make bench` (right after `pipeline_bench.py`) or `.venv/bin/python benchmarks/litellm_bench.py`.
Installs `litellm[proxy]` (pinned, `litellm_proxy.py`) into a virtual env of its own under
`.cairn/bench/` the first time, then starts an instant OpenAI-compatible stub (`litellm_stub.py`, the
counterpart of Cairn's `instant` backend) and the proxy in front of it (one model, a master key, no
database, no telemetry, the local price map), and measures it exactly as `pipeline_bench.py` measures
Cairn, with that benchmark's own functions and defaults: warm-up, CPU with no traffic for
`--idle-seconds`, the open-loop offered `--loads` for `--seconds` each (p50/p99 from send to the
answer read by the client, answered rate, sustained or not), the closed loop of `--clients`, and the
CPU (user + system from /proc, `cpu_meter.py`) of the proxy's process tree per request answered, gross
and net of its idle burn. The stub's CPU is reported apart and is not the proxy's, as Cairn's instant
backend sits inside its inference service; the stub's count of completions shows every request reached
it.

Then, when `benchmarks/results/pipeline_bench.json` comes from the same run (written after the marker
`make bench` writes when it starts, `--bench-run`; outside `make bench`, written within `--max-age`
minutes), the ratios Cairn / LiteLLM: p50 and p99 at each load, closed-loop req/s, CPU-ms per request
(Cairn's total over every service, the broker and PostgreSQL) and idle cores. It says so when the
Cairn figures are missing, stale, or ran other loads. Prints a table and writes
benchmarks/results/litellm_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import litellm_proxy
from cpu_meter import per_request_ms, snapshot
from pipeline_bench import (
    QUESTIONS,
    RESULTS,
    Answers,
    add_load_arguments,
    closed_loop,
    idle_cores,
    open_loop,
    sustained,
)

from cairn_testing.processes import free_port

PROXY, STUB = "litellm-proxy", "stub"


@dataclass(frozen=True)
class ChatRequest:
    request_id: str
    body: dict[str, Any]


@dataclass(kw_only=True)
class ProxyUpstream(Answers[ChatRequest]):
    """Sends chat completions to the proxy over keep-alive connections; an answer is `completed` when it
    is a 200 with a completion in it, else its status is `http_<code>` or `error`."""

    client: httpx.AsyncClient
    url: str
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)

    def request(self, run: str, i: int) -> ChatRequest:
        return ChatRequest(
            f"lb-{run}-{i}",
            {
                "model": litellm_proxy.MODEL,
                "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
                "max_tokens": 32,
                "temperature": 0.0,
            },
        )

    async def send(self, event: ChatRequest) -> float:
        sent = time.perf_counter()
        task = asyncio.create_task(self._post(event))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)
        return sent

    async def _post(self, event: ChatRequest) -> None:
        try:
            response = await self.client.post(self.url, json=event.body)
            now = time.perf_counter()
        except httpx.HTTPError as exc:
            self.record(event.request_id, "error", f"{type(exc).__name__}: {exc}", time.perf_counter())
            return
        status, reason = f"http_{response.status_code}", response.text
        if response.status_code == 200:
            with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
                if response.json()["choices"][0]["message"]["content"]:
                    status, reason = "completed", ""
        self.record(event.request_id, status, reason, now)

    async def close(self) -> None:
        for task in list(self.in_flight):
            task.cancel()
        await asyncio.gather(*self.in_flight, return_exceptions=True)


def cpu_of(spent: dict[str, float], answered: int, idle: dict[str, float], span_s: float) -> dict[str, Any]:
    """The proxy's CPU-ms per request (gross and net of idle; `total` is the proxy alone) and the stub's."""
    proxy = per_request_ms({PROXY: spent[PROXY]}, answered, idle, span_s)
    stub = per_request_ms({STUB: spent[STUB]}, answered, idle, span_s).get(STUB)
    return {"cpu_ms_per_request": proxy, "stub_cpu_ms_per_request": stub}


async def measure(args: argparse.Namespace, proxy: litellm_proxy.Proxy, master_key: str) -> dict[str, Any]:
    """Warm-up, idle CPU, the open-loop loads and the closed loop against the running proxy."""
    pids: dict[str, int | None] = {PROXY: proxy.proxy_pid, STUB: proxy.stub_pid}
    limits = httpx.Limits(max_connections=max(64, 2 * args.clients), max_keepalive_connections=None)
    async with httpx.AsyncClient(
        limits=limits,
        timeout=120,
        trust_env=False,
        headers={"Authorization": f"Bearer {master_key}"},
    ) as client:
        up = ProxyUpstream(client=client, url=f"{proxy.proxy_url}/v1/chat/completions")
        try:
            for i in range(args.warmup):
                request = up.request("warm", i)
                await up.ask(request, timeout=180)
                if up.statuses[request.request_id] != "completed":
                    raise RuntimeError(f"the proxy did not answer the warm-up: {up.reasons}")
            idle = await idle_cores(pids, args.idle_seconds)
            print(
                f"  idle: proxy {idle[PROXY]} cores, stub {idle[STUB]} over {args.idle_seconds:.0f} s",
                flush=True,
            )
            levels: list[dict[str, Any]] = []
            client_cpu: dict[str, float] = {}
            for rate in args.loads:
                before, cpu0 = snapshot(pids), time.process_time()
                level = await open_loop(up, rate, args.seconds, args.drain)
                after = snapshot(pids)
                level.update(cpu_of(after.since(before), level["answered"], idle, after.at - before.at))
                client_cpu[f"{rate:g}"] = round(
                    (time.process_time() - cpu0) * 1000 / max(1, level["requests"]), 2
                )
                levels.append(level)
                print(f"  offered {rate:>5} req/s: {level}", flush=True)
            before, cpu0 = snapshot(pids), time.process_time()
            closed = await closed_loop(up, args.clients, args.seconds)
            after = snapshot(pids)
            closed.update(cpu_of(after.since(before), closed["requests"], idle, after.at - before.at))
            client_cpu["closed"] = round((time.process_time() - cpu0) * 1000 / max(1, closed["requests"]), 2)
            print(f"  closed loop, {args.clients} clients: {closed}", flush=True)
        finally:
            await up.close()
    sent = args.warmup + sum(lv["requests"] for lv in levels) + closed["requests"]
    return {
        "levels": sustained(levels),
        "closed_loop": closed,
        "idle_cores": {PROXY: idle[PROXY], "total": idle[PROXY]},
        "stub_idle_cores": idle[STUB],
        "not_completed_reasons": dict(up.reasons),
        "client_cpu_ms_per_request": client_cpu,
        "requests_answered_ok": sum(1 for s in up.statuses.values() if s == "completed"),
        "requests_sent_at_least": sent,
        "stub_completions": litellm_proxy.stub_completions(proxy.stub_url),
    }


def cairn_results(
    path: Path, bench_run: Path | None, max_age_min: float
) -> tuple[dict[str, Any] | None, str]:
    """The pipeline benchmark's results when they belong to this run, and a sentence saying which."""
    if not path.exists():
        return None, f"{path.name} missing: no Cairn figures to compare (run pipeline_bench.py first)"
    written = path.stat().st_mtime
    at = datetime.fromtimestamp(written, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if bench_run is not None:
        if not bench_run.exists():
            return None, f"{path.name} (written {at}) stale: the run marker {bench_run} is missing"
        run_id = bench_run.read_text().strip()
        if written < bench_run.stat().st_mtime:
            return None, f"{path.name} stale: written {at}, before this `make bench` run ({run_id}) began"
        return json.loads(path.read_text()), f"{path.name} of this `make bench` run ({run_id}), written {at}"
    age_min = (time.time() - written) / 60
    if age_min > max_age_min:
        return None, f"{path.name} stale: written {at}, {age_min:.0f} min ago (--max-age {max_age_min:g})"
    return json.loads(
        path.read_text()
    ), f"{path.name} written {at}, {age_min:.0f} min ago (a separate invocation)"


def _ratio(cairn: float | None, litellm: float | None) -> float | None:
    return round(cairn / litellm, 2) if cairn is not None and litellm else None


def _total(row: dict[str, Any], kind: str) -> float | None:
    total = (row.get("cpu_ms_per_request") or {}).get("total")
    return total[kind] if total else None


def ratios(cairn: dict[str, Any], ours: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Cairn / LiteLLM for the loads both ran, the closed loop and idle; and what could not be compared."""
    problems: list[str] = []
    per_load = []
    theirs_by_rate = list(cairn.get("levels", []))
    if len(theirs_by_rate) != len(ours["levels"]):
        problems.append(
            f"Cairn ran {len(theirs_by_rate)} loads, LiteLLM {len(ours['levels'])}: "
            "loads compared by rate only"
        )
    for mine in ours["levels"]:
        match = [
            c
            for c in theirs_by_rate
            if abs(c["offered_req_s"] - mine["offered_req_s"]) <= 0.1 * mine["offered_req_s"]
        ]
        if not match:
            problems.append(f"no Cairn load near {mine['offered_req_s']} req/s")
            continue
        c = match[0]
        per_load.append(
            {
                "offered_req_s": mine["offered_req_s"],
                "cairn_p50_ms": c["p50_ms"],
                "litellm_p50_ms": mine["p50_ms"],
                "p50": _ratio(c["p50_ms"], mine["p50_ms"]),
                "p99": _ratio(c["p99_ms"], mine["p99_ms"]),
                "cairn_cpu_ms": _total(c, "gross"),
                "litellm_cpu_ms": _total(mine, "gross"),
                "cpu_ms_per_request_gross": _ratio(_total(c, "gross"), _total(mine, "gross")),
                "cpu_ms_per_request_net": _ratio(_total(c, "net_of_idle"), _total(mine, "net_of_idle")),
            }
        )
    cc, mc = cairn["closed_loop"], ours["closed_loop"]
    if cc["clients"] != mc["clients"]:
        problems.append(f"closed loop: Cairn ran {cc['clients']} clients, LiteLLM {mc['clients']}")
    closed = {
        "cairn_req_s": cc["answered_req_s"],
        "litellm_req_s": mc["answered_req_s"],
        "req_s": _ratio(cc["answered_req_s"], mc["answered_req_s"]),
        "cpu_ms_per_request_gross": _ratio(_total(cc, "gross"), _total(mc, "gross")),
        "cpu_ms_per_request_net": _ratio(_total(cc, "net_of_idle"), _total(mc, "net_of_idle")),
    }
    idle = {
        "cairn_cores": cairn["idle_cores"]["total"],
        "litellm_cores": ours["idle_cores"]["total"],
        "cores": _ratio(cairn["idle_cores"]["total"], ours["idle_cores"]["total"]),
    }
    return {"levels": per_load, "closed_loop": closed, "idle": idle}, problems


def _cpu(cpu: dict[str, Any] | None) -> str:
    return f"{cpu['gross']}/{cpu['net_of_idle']}" if cpu else "-"


def table(res: dict[str, Any]) -> str:
    lines = [
        f"LiteLLM proxy {res['litellm_version']} ({res['workers']} worker(s)) in front of an instant stub, "
        f"model {res['model']}",
        f"{'offered req/s':>13} {'answered req/s':>14} {'answered':>9} {'p50 ms':>8} {'p99 ms':>8}  "
        f"{'sustained':<9}  {'proxy CPU-ms/req gross/net':>26}  {'stub CPU-ms/req':>15}",
    ]
    for lv in res["levels"]:
        lines.append(
            f"{lv['offered_req_s']:>13} {lv['answered_req_s']:>14} {lv['answered']:>4}/{lv['requests']:<4} "
            f"{lv['p50_ms']!s:>8} {lv['p99_ms']!s:>8}  {'yes' if lv['sustained'] else 'no':<9}  "
            f"{_cpu(lv['cpu_ms_per_request'].get('total')):>26}  {_cpu(lv['stub_cpu_ms_per_request']):>15}"
        )
    c = res["closed_loop"]
    lines.append(
        f"closed loop ({c['clients']} clients): {c['answered_req_s']} req/s, p50 {c['p50_ms']} ms, "
        f"p99 {c['p99_ms']} ms; proxy CPU-ms/req {_cpu(c['cpu_ms_per_request'].get('total'))}, "
        f"stub {_cpu(c['stub_cpu_ms_per_request'])}"
    )
    lines.append(
        f"idle (no traffic, {res['idle_seconds']:g} s): proxy {res['idle_cores']['total']} cores, "
        f"stub {res['stub_idle_cores']} cores; load generator CPU-ms/req {res['client_cpu_ms_per_request']}"
    )
    lines.append(
        f"the stub answered {res['stub_completions']} completions for "
        f"{res['requests_sent_at_least']} requests sent ({res['requests_answered_ok']} answered `completed`)"
    )
    if res["not_completed_reasons"]:
        lines.append(f"answers not completed: {res['not_completed_reasons']}")
    lines.append(f"Cairn / LiteLLM: {res['cairn_source']}")
    cmp = res.get("cairn_over_litellm")
    if cmp:
        lines.append(
            f"{'offered req/s':>13} {'Cairn p50':>10} {'LiteLLM p50':>12} {'p50 x':>7} {'p99 x':>7}  "
            f"{'CPU-ms/req Cairn':>16} {'LiteLLM':>8} {'gross x':>8} {'net x':>7}"
        )
        for lv in cmp["levels"]:
            lines.append(
                f"{lv['offered_req_s']:>13} {lv['cairn_p50_ms']!s:>10} {lv['litellm_p50_ms']!s:>12} "
                f"{lv['p50']!s:>7} {lv['p99']!s:>7}  {lv['cairn_cpu_ms']!s:>16} {lv['litellm_cpu_ms']!s:>8} "
                f"{lv['cpu_ms_per_request_gross']!s:>8} {lv['cpu_ms_per_request_net']!s:>7}"
            )
        cl, idle = cmp["closed_loop"], cmp["idle"]
        lines.append(
            f"closed loop: Cairn {cl['cairn_req_s']} req/s / LiteLLM {cl['litellm_req_s']} req/s "
            f"= {cl['req_s']}x; "
            f"CPU-ms/req gross {cl['cpu_ms_per_request_gross']}x, net {cl['cpu_ms_per_request_net']}x"
        )
        lines.append(
            f"idle: Cairn {idle['cairn_cores']} cores / LiteLLM {idle['litellm_cores']} cores "
            f"= {idle['cores']}x"
        )
    for problem in res.get("comparison_problems", []):
        lines.append(f"  not compared: {problem}")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    litellm = litellm_proxy.ensure_venv()
    master_key = f"sk-bench-{secrets.token_hex(12)}"
    with litellm_proxy.running(litellm, free_port(), free_port(), master_key, args.workers) as proxy:
        measured = await measure(args, proxy, master_key)
    result: dict[str, Any] = {
        "run": uuid.uuid4().hex[:8],
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "litellm_version": litellm_proxy.LITELLM_VERSION,
        "workers": args.workers,
        "model": litellm_proxy.MODEL,
        "backend": "instant OpenAI-compatible stub (benchmarks/litellm_stub.py), CPU reported apart",
        "idle_seconds": args.idle_seconds,
        **measured,
    }
    cairn, result["cairn_source"] = cairn_results(args.cairn, args.bench_run, args.max_age)
    if cairn is not None:
        result["cairn_over_litellm"], result["comparison_problems"] = ratios(cairn, result)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_load_arguments(parser)
    parser.add_argument("--workers", type=int, default=1, help="proxy worker processes (its default is 1)")
    parser.add_argument(
        "--cairn", type=Path, default=RESULTS / "pipeline_bench.json", help="the pipeline benchmark's results"
    )
    parser.add_argument(
        "--bench-run",
        type=Path,
        default=None,
        help="marker written when `make bench` began (then --max-age is unused)",
    )
    parser.add_argument(
        "--max-age",
        type=float,
        default=60.0,
        help="without --bench-run: minutes within which --cairn counts as this run's",
    )
    arguments = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the proxy and the stub on SIGTERM too
    outcome = asyncio.run(main(arguments))
    print(table(outcome))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "litellm_bench.json").write_text(json.dumps(outcome, indent=2) + "\n")

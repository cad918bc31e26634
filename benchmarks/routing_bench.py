"""Routing through the platform: the cost per request of one mixed workload with inference's routing policy
off, then on, in one run on the same database and documents, with the real local model.

Run with `make bench` or `.venv/bin/python benchmarks/routing_bench.py` (test stack profile unless
CAIRN_STACK_PROFILE says otherwise). Starts the pipeline benchmark's request path (`pipeline_bench.
request_path`: audit, prompt-store, retriever, safety and inference as processes on a fresh database, a
prompt of this run's own name, a few Python reference topics ingested), registers the base model int8 as
`cairn-qa-int8` (`cairn tune register-base cairn-qa-int8 --quantization int8`, version 1 on this run's
database: the version the shipped policy names), then restarts inference on the real model backend
(`transformers`, SmolLM2-135M-Instruct on CPU, with its int8 copy: `CAIRN_QUANTIZED_BACKENDS=["int8"]`,
response cache off) twice (`cache_bench.restart_inference`): without `CAIRN_ROUTING_DIR` (every request is
answered by the base model), then with `CAIRN_ROUTING_DIR=infra/routing` (the shipped `default.yaml`:
batch work to `cairn-qa-int8:1` unless it is busy, else the base model). Each configuration gets a
warm-up outside the workload (a request naming `cairn-qa-int8:1`, asked until inference has learnt it
from cairn.models, and one leaving the model to the platform), then the same workload:

- `--requests` requests over the cache benchmark's questions and their paraphrases, `--batch-share` of
  them `params.latency_class: batch`, the rest alternately `interactive` and `standard`, shuffled with a
  fixed seed (`--seed`), for one tenant (`bench-routing`, default daily budget: no budget rule applies),
  `max_tokens` `--max-tokens`, temperature 0, `--top-k` retrieved passages;

sent by `--concurrency` upstreams, each sending its next request when its last is answered
(`cairn.response.completed.v1` read from `cairn.responses`).

Reports, per configuration: the cost of each answer (its `usage` priced by `infra/prices.yaml` as inference
prices it: the response's model, else the base model that served it; `cairn_observability.pricing`) in
total and per request, the tokens, the share of requests answered per model version, the rules that
routed them and the models passed over (`route`), the wall time, latency p50/p95 (send -> response read)
per latency class and of all, and the CPU (user + system from /proc, `cpu_meter.py`) of inference and of
the whole request path per request answered; and the ratio routing on / off of the cost per request.

Prints progress and a table and writes benchmarks/results/routing_bench.json (`--label` names the run,
and the JSON then goes to routing_bench.<label>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from cache_bench import (
    INFERENCE,
    QUESTIONS,
    WARM_QUESTION,
    Replay,
    Workload,
    add_replay_arguments,
    measured_replay,
    quantiles,
    restart_inference,
    run_and_report,
)
from pipeline_bench import REPO, request_path, started_stack

from cairn_bus.kafka import KafkaPublisher
from cairn_events import RequestSubmittedV1, ResponseCompletedV1
from cairn_observability.pricing import PriceTable, load_price_table, price_table_path
from cairn_testing.databases import scratch_database
from cairn_testing.processes import ServiceProcesses, run_cairn

TENANT = "bench-routing"
INT8_MODEL = "cairn-qa-int8"
INT8_VERSION = f"{INT8_MODEL}:1"
"""The version `infra/routing/default.yaml` routes to: the first registered on this run's database."""
BASE_MODEL = os.environ.get("CAIRN_MODEL_NAME", "SmolLM2-135M-Instruct")
"""The model inference serves by default: what prices an answer whose model has no price of its own."""
QUANTIZED = {"CAIRN_QUANTIZED_BACKENDS": '["int8"]'}
ROUTING_DIR = REPO / "infra" / "routing"
CLASSES = ("interactive", "standard", "batch")


@dataclass(frozen=True)
class Ask:
    """One request of the workload: its question and `params.latency_class`."""

    text: str
    latency_class: str


def workload(requests: int, batch_share: float, seed: int) -> list[Ask]:
    """`requests` asks over every question and paraphrase in turn, `batch_share` of them batch, the rest
    alternately interactive and standard; the classes shuffled with `seed`."""
    texts = [text for pair in QUESTIONS for text in pair]
    batch = round(requests * batch_share)
    classes = ["batch"] * batch + [CLASSES[i % 2] for i in range(requests - batch)]
    random.Random(seed).shuffle(classes)
    return [Ask(texts[i % len(texts)], latency_class) for i, latency_class in enumerate(classes)]


class Mixed(Replay):
    """The cache benchmark's upstream, asking for tenant `TENANT` with a latency class or a named model."""

    def mixed_event(
        self, run: str, i: int, question: str, latency_class: str | None = None, model: str | None = None
    ) -> RequestSubmittedV1:
        event = self.ask_event(run, i, question).model_dump(mode="json")
        params = dict(event["params"])
        if latency_class is not None:
            params["latency_class"] = latency_class
        return RequestSubmittedV1.model_validate(
            {
                **event,
                "request_id": f"rb-{run}-{i}",
                "tenant": TENANT,
                "params": params,
                "model": model,
            }
        )


def _answered_by(response: ResponseCompletedV1 | None) -> str:
    """`model:version` (or the model alone) of an answer; `-` when none generated it."""
    if response is None or response.model is None:
        return "-"
    return f"{response.model}:{response.model_version}" if response.model_version else response.model


def _outcome(response: ResponseCompletedV1 | None) -> str:
    if response is None:
        return "-"
    route = "no rule"
    if response.route is not None:
        route = f"rule {response.route.rule}"
        if response.route.fallbacks:
            route += ", passed over " + ", ".join(f"{f.model} ({f.reason})" for f in response.route.fallbacks)
    return f"{response.status.value}, {_answered_by(response)}, {route}"


async def warm_up(up: Mixed, run: str) -> None:
    """Ask for `INT8_VERSION` by name until inference has learnt it from cairn.models (at its own pace)
    and answers with it, then once leaving the model to the platform; raises when either fails."""
    deadline = time.perf_counter() + 120
    i = 0
    while True:
        event = up.mixed_event(f"{run}warm", i, WARM_QUESTION, model=INT8_VERSION)
        await up.ask(event, timeout=600)
        response = up.responses.get(event.request_id)
        reason = response.reason if response is not None else None
        if reason is None or "is not served here" not in reason or time.perf_counter() > deadline:
            break
        i += 1
        await asyncio.sleep(1.0)
    if response is None or response.status.value != "completed" or response.model != INT8_MODEL:
        raise RuntimeError(f"{INT8_VERSION} did not answer the warm-up: {_outcome(response)}: {reason}")
    event = up.mixed_event(f"{run}warm", i + 1, WARM_QUESTION, latency_class="standard")
    await up.ask(event, timeout=600)
    if up.statuses[event.request_id] != "completed":
        raise RuntimeError(f"the warm-up was not answered `completed`: {up.reasons}")


def tally(
    up: Mixed,
    prices: PriceTable,
    wall_s: float,
    answered: list[tuple[Ask, str, float]],
    cpu: dict[str, Any],
) -> dict[str, Any]:
    """One configuration's figures (see the module docstring)."""
    latency: dict[str, list[float]] = {"all": [], **{c: [] for c in CLASSES}}
    statuses: Counter[str] = Counter()
    models: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    passed_over: Counter[str] = Counter()
    cost = 0.0
    tokens_in = tokens_out = 0
    for a, rid, ms in answered:
        response = up.responses[rid]
        statuses[response.status.value] += 1
        latency["all"].append(ms)
        latency[a.latency_class].append(ms)
        models[_answered_by(response)] += 1
        rules[response.route.rule if response.route is not None else "(no rule)"] += 1
        if response.route is not None:
            passed_over.update(f.model for f in response.route.fallbacks)
        if response.usage is not None:
            tokens_in += response.usage.input_tokens
            tokens_out += response.usage.output_tokens
            cost += prices.cost(
                response.model,
                response.usage.input_tokens,
                response.usage.output_tokens,
                base_model=BASE_MODEL,
            )
    n = len(answered)
    return {
        "requests": n,
        "statuses": dict(statuses),
        "wall_s": round(wall_s, 1),
        "cost_usd": float(f"{cost:.6g}"),
        "cost_per_request_usd": float(f"{cost / n:.6g}") if n else None,
        "tokens": {"input": tokens_in, "output": tokens_out},
        "answered_by": {m: {"requests": k, "share": round(k / n, 3)} for m, k in models.most_common()},
        "routed_by_rule": dict(rules),
        "passed_over": dict(passed_over),
        "latency": {name: quantiles(values) for name, values in latency.items()},
        "cpu_ms_per_request": cpu,
    }


async def configuration(
    services: ServiceProcesses,
    up: Mixed,
    prices: PriceTable,
    routing: bool,
    asks: list[Ask],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Inference restarted with routing on or off (int8 loaded both times), the warm-up, then the
    workload, measured."""
    started = time.perf_counter()
    services.env.pop("CAIRN_ROUTING_DIR", None)  # off unless this configuration turns it on
    restart_inference(
        services, "off", {**QUANTIZED, **({"CAIRN_ROUTING_DIR": str(ROUTING_DIR)} if routing else {})}
    )
    name = "on" if routing else "off"
    print(f"  inference up with routing {name} in {time.perf_counter() - started:.0f} s", flush=True)
    run = f"{name}{uuid.uuid4().hex[:6]}"
    await warm_up(up, run)
    shape = Workload[Ask](
        lambda run, i, a: up.mixed_event(run, i, a.text, latency_class=a.latency_class),
        lambda a: f"{a.latency_class:<12}",
        _outcome,
    )
    wall_s, answered, cpu = await measured_replay(services, up, asks, args.concurrency, run, shape)
    result = tally(up, prices, wall_s, answered, cpu)
    print(f"  routing {name}: {json.dumps(result)}", flush=True)
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    path = price_table_path(None)
    if path is None:
        raise SystemExit("no price table (infra/prices.yaml) to price the answers with")
    prices = load_price_table(path)
    config, stack = await started_stack()
    bootstrap = config.kafka_bootstrap
    prompt = f"benchroute{uuid.uuid4().hex[:6]}"
    asks = workload(args.requests, args.batch_share, args.seed)
    started = time.perf_counter()
    async with (
        scratch_database(config.postgres_dsn, "routingbench") as dsn,
        request_path(bootstrap, stack.env(), dsn, prompt) as services,
    ):
        run_cairn(services.env, "inference", "prepare", cwd=REPO)  # converted once, cached
        printed = run_cairn(
            services.env, "tune", "register-base", INT8_MODEL, "--quantization", "int8", cwd=REPO
        )
        if f"registered {INT8_VERSION}" not in printed:
            raise RuntimeError(f"the int8 copy is not {INT8_VERSION} on this run's database: {printed}")
        print(f"  request path up, {INT8_VERSION} registered in {time.perf_counter() - started:.0f} s")
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        await producer.start()
        up = Mixed(
            producer,
            KafkaPublisher(producer, "/upstream/routing-bench", service="upstream"),
            prompt,
            max_tokens=args.max_tokens,
            top_k=args.top_k,
        )
        reader = asyncio.create_task(up.read(bootstrap))
        try:
            await asyncio.sleep(1.0)
            configs = {
                routing: await configuration(services, up, prices, routing, asks, args)
                for routing in (False, True)
            }
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await producer.stop()
    off, on = configs[False], configs[True]
    return {
        "label": args.label,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": "transformers (SmolLM2-135M-Instruct, CPU, 1 torch thread) and its int8 copy",
        "policy": str(ROUTING_DIR.relative_to(REPO) / "default.yaml"),
        "price_table": str(path),
        "requests": len(asks),
        "latency_classes": dict(Counter(a.latency_class for a in asks)),
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "top_k": args.top_k,
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "routing_off": off,
        "routing_on": on,
        "cost_per_request_ratio_on_off": (
            round(on["cost_per_request_usd"] / off["cost_per_request_usd"], 3)
            if on["cost_per_request_usd"] and off["cost_per_request_usd"]
            else None
        ),
    }


def _q(row: dict[str, Any]) -> str:
    return f"{row['p50_ms']:.0f}/{row['p95_ms']:.0f} (n={row['n']})" if row["n"] else "-"


def _shares(answered_by: dict[str, Any]) -> str:
    return ", ".join(f"{m} {v['share']:.0%}" for m, v in answered_by.items())


def table(res: dict[str, Any]) -> str:
    off, on = res["routing_off"], res["routing_on"]
    classes = ", ".join(f"{k} {v}" for k, v in res["latency_classes"].items())
    lines = [
        f"{res['requests']} requests ({classes}), {res['concurrency']} at a time, max_tokens "
        f"{res['max_tokens']}, temperature 0; inference on {res['backend']}; policy {res['policy']}",
        f"{'':<30}{'routing off':>26}{'routing on':>26}",
        f"{'cost per request (USD)':<30}{off['cost_per_request_usd']:>26.3e}{on['cost_per_request_usd']:>26.3e}",
        f"{'cost, total (USD)':<30}{off['cost_usd']:>26.3e}{on['cost_usd']:>26.3e}",
        f"{'tokens (in/out)':<30}"
        + "".join(f"{c['tokens']['input']}/{c['tokens']['output']}".rjust(26) for c in (off, on)),
        f"{'wall time (s)':<30}{off['wall_s']:>26}{on['wall_s']:>26}",
    ]
    for name in ("all", *CLASSES):
        lines.append(
            f"{'ms p50/p95, ' + name:<30}{_q(off['latency'][name]):>26}{_q(on['latency'][name]):>26}"
        )
    for name, label in ((INFERENCE, INFERENCE), ("total", "request path")):
        lines.append(
            f"{'CPU-ms/request, ' + label:<30}"
            + "".join(str(c["cpu_ms_per_request"].get(name, "-")).rjust(26) for c in (off, on))
        )
    lines += [
        f"cost per request, on/off: {res['cost_per_request_ratio_on_off']}",
        f"answered by: off {_shares(off['answered_by'])}; on {_shares(on['answered_by'])}",
        f"rules: off {off['routed_by_rule']}; on {on['routed_by_rule']}; passed over (on): {on['passed_over']}",
        f"statuses: off {off['statuses']}, on {on['statuses']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20, help="requests in the workload")
    parser.add_argument("--batch-share", type=float, default=0.4, help="share of them latency class batch")
    add_replay_arguments(parser, "routing_bench")
    arguments = parser.parse_args()
    if not 0 <= arguments.batch_share <= 1 or arguments.requests < 1:
        raise SystemExit("--batch-share between 0 and 1, --requests at least 1")
    run_and_report("routing_bench", main, table, arguments)

"""The response cache through the platform: one fixed workload with repeats and paraphrases (scripted
here, not recorded from traffic) replayed with inference's cache off, then on, in one run on the same
database and documents, with the real local model.

Run with `make bench` or `.venv/bin/python benchmarks/cache_bench.py` (test stack profile unless
CAIRN_STACK_PROFILE says otherwise). Starts the pipeline benchmark's request path (`pipeline_bench.
request_path`: audit, prompt-store, retriever, safety and inference as processes on a fresh database, a
prompt of this run's own name, a few Python reference topics ingested), then restarts inference on the
real model backend (`transformers`, SmolLM2-135M-Instruct on CPU, prepared by `cairn inference
prepare`) with `CAIRN_RESPONSE_CACHE=off`, later again with `exact` (in-memory store, empty at
start), and last with `semantic` after a new version of the prompt that opts in to the semantic cache
(`cache_semantic`, `cache_similarity` `--similarity`) took the production label (the store empty again).
Each configuration gets one warm-up request outside the workload, then the same workload:

- `--questions` distinct questions about the ingested topics, each asked `--repeats` times (the same
  tenant, prompt, question and parameters: `max_tokens` `--max-tokens`, temperature 0, `--top-k`
  retrieved passages);
- a paraphrase of `--paraphrases` of them, asked once (other words, the same meaning);

shuffled with a fixed seed (`--seed`) and sent by `--concurrency` upstreams, each sending its next
request when its last is answered (`cairn.response.completed.v1` read from `cairn.responses`).

Reports, per configuration, the wall time of the workload, latency p50/p95 (send -> response read) of
every request, and for the cache-on run separately of hits, misses (first askings, and repeats that
missed) and paraphrases; the hit rate of exact repeats (every asking after a question's first) and of
paraphrases; the tokens saved (input and output `usage` of the hits, the stored answer's counts); and
the CPU (user + system from /proc, `cpu_meter.py`) of each request-path service and of all five
(`total`) per request answered. An exact cache matches only identical requests, so a paraphrase is
expected to miss; a repeat sent while its question's first asking is still generating also misses
(nothing is stored yet). For the semantic run, the semantic hits and the false hits (a hit whose source
request asked another question: a wrong answer served).

Prints progress and a table and writes benchmarks/results/cache_bench.json (`--label` names the run,
and the JSON then goes to cache_bench.<label>.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer
from cpu_meter import per_request_ms, snapshot
from pipeline_bench import (
    REPO,
    REQUEST_PATH,
    RESULTS,
    Upstream,
    percentile,
    prompt_file,
    request_path,
    started_stack,
)

from cairn_bus.kafka import KafkaPublisher
from cairn_events import RequestSubmittedV1, ResponseCompletedV1
from cairn_testing.databases import scratch_database
from cairn_testing.processes import ServiceProcesses, free_port, run_cairn

A = TypeVar("A")
TENANT = "bench-cache"
INFERENCE = "inference"
WARM_QUESTION = "What does the del statement delete?"
WARM_TOPIC = "del"  # the question of QUESTIONS the warm-up is about
QUESTIONS: list[tuple[str, str]] = [
    # (question, a paraphrase of it), about the topics `pipeline_bench.request_path` ingests
    ("What does the assert statement do?", "Explain what assert does in Python."),
    ("What does the global statement declare?", "Which names does a global statement declare?"),
    ("What does the pass statement do?", "What is the purpose of pass?"),
    ("What does the del statement do?", "How does deletion with del work?"),
    ("What does the with statement do?", "Explain the with statement."),
    ("What does the yield statement do?", "What happens when a function uses yield?"),
    ("When are assert statements ignored?", "In which case does Python skip assert statements?"),
    ("Can a name be global and a parameter?", "May a function parameter also be declared global?"),
]


QUESTION_OF: dict[str, str] = {
    **{text: original for original, paraphrase in QUESTIONS for text in (original, paraphrase)},
    WARM_QUESTION: next(q for q, _ in QUESTIONS if f" {WARM_TOPIC} " in q),
}
"""Each question and paraphrase, and the warm-up, to the question it asks (a semantic hit across two of
them is a false hit)."""


@dataclass(frozen=True)
class Ask:
    """One request of the workload: question `question` (an index into QUESTIONS), its `asking`-th time
    (0 = first), or its paraphrase."""

    question: int
    asking: int
    paraphrase: bool = False

    @property
    def text(self) -> str:
        original, paraphrase = QUESTIONS[self.question]
        return paraphrase if self.paraphrase else original

    @property
    def kind(self) -> str:
        if self.paraphrase:
            return "paraphrase"
        return "first" if self.asking == 0 else "repeat"


def workload(questions: int, repeats: int, paraphrases: int, seed: int) -> list[Ask]:
    """The replayed workload: each question `repeats` times, `paraphrases` paraphrases, shuffled."""
    asks = [Ask(q, k) for q in range(questions) for k in range(repeats)]
    asks += [Ask(q, 0, paraphrase=True) for q in range(paraphrases)]
    random.Random(seed).shuffle(asks)
    # keep "first" meaning the first sent: renumber each question's askings in sent order
    seen: dict[int, int] = {}
    ordered = []
    for a in asks:
        if a.paraphrase:
            ordered.append(a)
            continue
        ordered.append(Ask(a.question, seen.get(a.question, 0)))
        seen[a.question] = seen.get(a.question, 0) + 1
    return ordered


@dataclass
class Replay(Upstream):
    """The pipeline benchmark's upstream, asking this run's questions for tenant `TENANT` and keeping
    every answer's `response.completed` event (its `cache` outcome and `usage`) in `responses`."""

    max_tokens: int = 24
    top_k: int = 1
    responses: dict[str, ResponseCompletedV1] = field(default_factory=dict)

    def ask_event(self, run: str, i: int, question: str) -> RequestSubmittedV1:
        return RequestSubmittedV1.model_validate(
            {
                "request_id": f"cb-{run}-{i}",
                "tenant": TENANT,
                "prompt": f"{self.prompt}@production",
                "variables": {"question": question},
                "params": {"max_tokens": self.max_tokens, "temperature": 0.0},
                "retrieval": {"top_k": self.top_k},
                "submitted_at": datetime.now(UTC).isoformat(),
            }
        )

    def keep(self, event: ResponseCompletedV1) -> None:
        self.responses[event.request_id] = event


def quantiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None}
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "p95_ms": round(percentile(values, 0.95), 1),
    }


def opt_in_semantic(services: ServiceProcesses, prompt: str, similarity: float) -> None:
    """A new version of `prompt` opted in to the semantic cache at `similarity`, labelled production."""
    folder = Path(tempfile.mkdtemp(prefix="cache-bench-"))
    path = prompt_file(folder, prompt)
    text = path.read_text(encoding="utf-8")
    opted = text.replace(
        "  temperature: 0.0\n",
        f"  temperature: 0.0\n  cache_semantic: true\n  cache_similarity: {similarity}\n",
    )
    if opted == text:
        raise RuntimeError("the qa prompt's params changed: cannot opt it in to the semantic cache")
    path.write_text(opted, encoding="utf-8")
    run_cairn(services.env, "prompts", "push", str(path), "--label", "production", cwd=REPO)


def restart_inference(
    services: ServiceProcesses, cache: str, extra_env: dict[str, str] | None = None
) -> None:
    """Inference again, on the real CPU model, with the response cache `cache` (`off` or `exact`) and
    `extra_env` (e.g. routing_bench's quantized backends and routing policies)."""
    services.stop(INFERENCE)
    services.start(
        INFERENCE,
        {
            "CAIRN_INFERENCE_BACKEND": "transformers",
            "CAIRN_RESPONSE_CACHE": cache,
            "CAIRN_RESPONSE_CACHE_STORE": "memory",
            "CAIRN_METRICS_PORT": str(free_port()),
            **(extra_env or {}),
        },
    )
    services.wait_ready([INFERENCE])


@dataclass(frozen=True)
class Workload(Generic[A]):
    """How a benchmark turns its asks into requests and says what came back."""

    event_of: Callable[[str, int, A], RequestSubmittedV1]
    """The request of ask `i` of run `run`."""
    label: Callable[[A], str]
    """The ask, in the progress line."""
    outcome: Callable[[ResponseCompletedV1 | None], str]
    """The answer, in the progress line."""


async def replay(
    up: Replay, asks: Sequence[A], concurrency: int, run: str, shape: Workload[A]
) -> tuple[float, list[tuple[A, str, float]]]:
    """Send `asks` in order from `concurrency` closed-loop upstreams: (wall s, [(ask, request id, ms)])."""
    queue = list(enumerate(asks))
    out: list[tuple[A, str, float]] = []

    async def client() -> None:
        while queue:
            i, a = queue.pop(0)
            event = shape.event_of(run, i, a)
            sent, answered = await up.ask(event, timeout=600)
            out.append((a, event.request_id, (answered - sent) * 1000))
            print(
                f"    {len(out):>3}/{len(asks)} {shape.label(a)} {(answered - sent) * 1000:>8.0f} ms "
                f"{shape.outcome(up.responses.get(event.request_id))}",
                flush=True,
            )

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - start, out


async def measured_replay(
    services: ServiceProcesses, up: Replay, asks: Sequence[A], concurrency: int, run: str, shape: Workload[A]
) -> tuple[float, list[tuple[A, str, float]], dict[str, Any]]:
    """`replay` with the request path's CPU measured around it: (wall s, answers, CPU-ms per request of each
    request-path service and `total`)."""
    pids = {n: services.pm.pid(n) for n in REQUEST_PATH}
    before = snapshot(pids)
    wall_s, answered = await replay(up, asks, concurrency, run, shape)
    cpu = per_request_ms(snapshot(pids).since(before), len(answered))
    return wall_s, answered, {n: v["gross"] for n, v in cpu.items()}


def _outcome(response: ResponseCompletedV1 | None) -> str:
    if response is None:
        return "-"
    cache = response.cache.result if response.cache is not None else "cache off"
    return f"{response.status.value}, {cache}"


def tally(
    up: Replay, wall_s: float, answered: list[tuple[Ask, str, float]], cpu: dict[str, Any]
) -> dict[str, Any]:
    """One configuration's figures (see the module docstring)."""
    groups: dict[str, list[float]] = {"all": [], "hit": [], "miss": [], "paraphrase": []}
    repeats = repeat_hits = para_hits = semantic_hits = false_hits = 0
    text_of = {rid: a.text for a, rid, _ in answered}
    matches: list[dict[str, Any]] = []
    saved_in = saved_out = 0
    statuses: dict[str, int] = {}
    for a, rid, ms in answered:
        response = up.responses[rid]
        statuses[response.status.value] = statuses.get(response.status.value, 0) + 1
        groups["all"].append(ms)
        hit = response.cache is not None and response.cache.result == "hit"
        if a.kind == "paraphrase":
            groups["paraphrase"].append(ms)
            para_hits += hit
        elif response.cache is not None:  # with the cache off, only `all`
            groups["hit" if hit else "miss"].append(ms)
        if a.kind == "repeat":
            repeats += 1
            repeat_hits += hit
        if hit and response.cache is not None and response.cache.kind == "semantic":
            semantic_hits += 1
            source = text_of.get(response.cache.source_request_id or "", WARM_QUESTION)  # else the warm-up's
            same = QUESTION_OF[source] == QUESTION_OF[a.text]
            false_hits += not same
            matches.append(
                {
                    "asked": a.text,
                    "answered_from": source,
                    "similarity": response.cache.similarity,
                    "same": same,
                }
            )
        if hit and response.usage is not None:
            saved_in += response.usage.input_tokens
            saved_out += response.usage.output_tokens
    paraphrases = len(groups["paraphrase"])
    return {
        "requests": len(answered),
        "statuses": statuses,
        "wall_s": round(wall_s, 1),
        "latency": {name: quantiles(values) for name, values in groups.items()},
        "exact_repeats": repeats,
        "exact_repeat_hits": repeat_hits,
        "exact_repeat_hit_rate": round(repeat_hits / repeats, 3) if repeats else None,
        "paraphrases": paraphrases,
        "paraphrase_hits": para_hits,
        "paraphrase_hit_rate": round(para_hits / paraphrases, 3) if paraphrases else None,
        "semantic_hits": semantic_hits,
        "false_hits": false_hits,
        "semantic_matches": matches,
        "tokens_saved": {"input": saved_in, "output": saved_out, "total": saved_in + saved_out},
        "cpu_ms_per_request": cpu,
    }


async def configuration(
    services: ServiceProcesses, up: Replay, cache: str, asks: list[Ask], args: argparse.Namespace
) -> dict[str, Any]:
    """Inference restarted with cache `cache`, one warm-up request, then the workload, measured."""
    started = time.perf_counter()
    if cache == "semantic":
        opt_in_semantic(services, up.prompt, args.similarity)
    restart_inference(services, cache)
    print(
        f"  inference up with CAIRN_RESPONSE_CACHE={cache} in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    run = f"{cache}{uuid.uuid4().hex[:6]}"
    warm = up.ask_event(f"{run}warm", 0, WARM_QUESTION)
    await up.ask(warm, timeout=600)
    if up.statuses[warm.request_id] != "completed":
        raise RuntimeError(f"the warm-up was not answered `completed`: {up.reasons}")
    shape = Workload[Ask](lambda run, i, a: up.ask_event(run, i, a.text), lambda a: f"{a.kind:<10}", _outcome)
    wall_s, answered, cpu = await measured_replay(services, up, asks, args.concurrency, run, shape)
    result = tally(up, wall_s, answered, cpu)
    print(f"  cache {cache}: {json.dumps(result)}", flush=True)
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.questions > len(QUESTIONS) or args.paraphrases > args.questions:
        raise SystemExit(f"--questions at most {len(QUESTIONS)}, --paraphrases at most --questions")
    config, stack = await started_stack()
    bootstrap = config.kafka_bootstrap
    prompt = f"benchcache{uuid.uuid4().hex[:6]}"
    asks = workload(args.questions, args.repeats, args.paraphrases, args.seed)
    started = time.perf_counter()
    async with (
        scratch_database(config.postgres_dsn, "cachebench") as dsn,
        request_path(bootstrap, stack.env(), dsn, prompt) as services,
    ):
        run_cairn(services.env, "inference", "prepare", cwd=REPO)  # converted once, cached
        print(f"  request path up in {time.perf_counter() - started:.0f} s", flush=True)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        await producer.start()
        up = Replay(
            producer,
            KafkaPublisher(producer, "/upstream/cache-bench", service="upstream"),
            prompt,
            max_tokens=args.max_tokens,
            top_k=args.top_k,
        )
        reader = asyncio.create_task(up.read(bootstrap))
        try:
            await asyncio.sleep(1.0)
            configs = {
                cache: await configuration(services, up, cache, asks, args)
                for cache in ("off", "exact", "semantic")
            }
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await producer.stop()
    return {
        "label": args.label,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "backend": "transformers (SmolLM2-135M-Instruct, CPU, 1 torch thread)",
        "cache_store": "memory",
        "questions": args.questions,
        "repeats": args.repeats,
        "paraphrases": args.paraphrases,
        "requests": len(asks),
        "concurrency": args.concurrency,
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "top_k": args.top_k,
        "seed": args.seed,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cache_off": configs["off"],
        "cache_exact": configs["exact"],
        "cache_semantic": configs["semantic"],
        "semantic_similarity": args.similarity,
    }


def _q(row: dict[str, Any]) -> str:
    return f"{row['p50_ms']}/{row['p95_ms']} (n={row['n']})" if row["n"] else "-"


def table(res: dict[str, Any]) -> str:
    runs = (res["cache_off"], res["cache_exact"], res["cache_semantic"])
    off, on, sem = runs
    lines = [
        f"{res['requests']} requests ({res['questions']} questions x {res['repeats']} + "
        f"{res['paraphrases']} paraphrases), {res['concurrency']} at a time, max_tokens {res['max_tokens']}, "
        f"temperature 0; inference on {res['backend']}",
        f"{'':<28}{'cache off':>24}{'cache exact':>24}{'semantic @' + str(res['semantic_similarity']):>24}",
        f"{'wall time (s)':<28}" + "".join(f"{r['wall_s']:>24}" for r in runs),
    ]
    for name in ("all", "hit", "miss", "paraphrase"):
        lines.append(f"{'ms p50/p95, ' + name:<28}" + "".join(f"{_q(r['latency'][name]):>24}" for r in runs))
    for key, label in (
        ("exact_repeat_hit_rate", "hit rate, exact repeats"),
        ("paraphrase_hit_rate", "hit rate, paraphrases"),
        ("semantic_hits", "semantic hits"),
        ("false_hits", "false hits (another question)"),
    ):
        lines.append(f"{label:<28}" + "".join(f"{r[key]!s:>24}" for r in runs))
    lines.append(
        f"{'tokens saved (in/out)':<28}"
        + "".join(f"{r['tokens_saved']['input']}/{r['tokens_saved']['output']}".rjust(24) for r in runs)
    )
    for name, label in ((INFERENCE, INFERENCE), ("total", "request path")):
        lines.append(
            f"{'CPU-ms/request, ' + label:<28}"
            + "".join(str(c["cpu_ms_per_request"].get(name, "-")).rjust(24) for c in runs)
        )
    lines.append(f"statuses: off {off['statuses']}, exact {on['statuses']}, semantic {sem['statuses']}")
    lines.append("semantic hits (asked <- answered from, similarity):")
    lines += [
        f"  {m['asked']!r} <- {m['answered_from']!r} {m['similarity']}{'' if m['same'] else '  FALSE HIT'}"
        for m in sem["semantic_matches"]
    ]
    return "\n".join(lines)


def add_replay_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """The options every replayed-workload benchmark has (this one and `routing_bench.py`)."""
    parser.add_argument("--concurrency", type=int, default=4, help="upstreams asking at once")
    parser.add_argument("--max-tokens", type=int, default=24, help="max_tokens of every request")
    parser.add_argument(
        "--top-k",
        type=int,
        default=1,
        help="passages retrieved per request (the ingested topics' passages are long: 4 exceed the "
        "model's 1,024-token context)",
    )
    parser.add_argument("--label", default="", help=f"name of the run; the JSON goes to {name}.<label>.json")
    parser.add_argument("--seed", type=int, default=7, help="seed of the shuffle")


def run_and_report(
    name: str,
    bench: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
    show: Callable[[dict[str, Any]], str],
    arguments: argparse.Namespace,
) -> None:
    """Run the benchmark (its services stopped on SIGTERM too), print its table, write its JSON."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    result = asyncio.run(bench(arguments))
    print(show(result))
    RESULTS.mkdir(exist_ok=True)
    suffix = f".{arguments.label}" if arguments.label else ""
    (RESULTS / f"{name}{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=6, help="distinct questions")
    parser.add_argument("--repeats", type=int, default=3, help="times each question is asked")
    parser.add_argument("--paraphrases", type=int, default=3, help="questions also asked in other words")
    parser.add_argument(
        "--similarity",
        type=float,
        default=0.85,
        help="the opted-in prompt's cache_similarity in the semantic run (inference's default is 0.98)",
    )
    add_replay_arguments(parser, "cache_bench")
    run_and_report("cache_bench", main, table, parser.parse_args())

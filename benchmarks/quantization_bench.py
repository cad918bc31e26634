"""Quantized (int8) vs float32 serving on the CPU: speed, memory and quality on the evaluation suites.

Run with `make bench` or `.venv/bin/python benchmarks/quantization_bench.py` (about 5 minutes; `--quick`
for a short run, `--full` for every case of every suite, tens of minutes). Needs no broker: everything
runs in this process (and two short subprocesses) on SmolLM2-135M-Instruct, converted once into
`.cairn/models/` (`cairn inference prepare`). The float32 backend is `TransformersBackend.load` with the
inference service's settings (batch size and window, repetition penalty; `--threads`, default 1 as the
service); the int8 one is `backend.quantized("int8")`, as the service builds it (`CAIRN_QUANTIZED_BACKENDS`).

- Speed: both warmed up, then `--rounds` rounds (default 2) of blocks alternating float32 / int8 (who goes
  first flips every round): `chat c=1` (4 open-ended questions one at a time, greedy, `--max-tokens`),
  `chat c=4` (4 concurrent requests, batched by the backend) and `rag c=1` (one scenario case's `qa`
  prompt with its retrieved passages, ~900 prompt tokens, the suite's max_tokens). Generated tokens/s
  over each block's wall time, latency p50/p95 and time to first token p50 (the backend's own clock).
- Memory: each variant loaded alone in a fresh subprocess and run once: bytes of its state_dict as
  `torch.save` writes it (quantized Linear weights are packed parameters, absent from `parameters()`),
  then RSS growth over the process before loading (after `malloc_trim`: int8 loads float32 first), its
  anonymous part (the rest is the mmapped safetensors file), and the peak. Also what `quantized()` adds
  beside a loaded float32 model (the service serving both).
- Quality: the evaluator's suites (`infra/eval/suites`, loaded with its `SuiteFiles`; by default the
  scenarios and the first adversarial case of each slice) and a held-out suite built with its
  `heldout_suite` from the loop demo's reviewer corrections (`infra/loop/demo.yaml`: each question asked as
  the demo asks it, prompt `qa`, top_k 2; the reference is the correction; by default the evaluator's
  `heldout_max_cases` rows). Each case is rendered as the platform does (prompt-store's `render` of
  `infra/prompts/qa.yaml`, the retriever's search and `assemble_context` over `pydoc:topics` in its
  in-memory store, embedded once and cached in `.cairn/bench/`), asked of both backends at once (greedy),
  and scored by the evaluator's `score_run` with int8 as the candidate and float32 as the baseline: the
  metrics and gates of a promotion. No safety screen runs in front: its verdicts do not depend on the
  backend, so the adversarial refusal rate here is the model's alone. Also the share of identical answers.

Prints a table and a verdict line and writes benchmarks/results/quantization.json (per-case answers
included). Figures from a shared, noisy machine: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import dataclasses
import gc
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inference_bench import QUESTIONS, SMOLLM2
from pipeline_bench import REPO, RESULTS, percentile

from cairn_cli.loop_demo import DemoPlan, ask_requests, default_plan_path
from cairn_evaluator.adapters.suite_files import SuiteFiles
from cairn_evaluator.domain.runs import Answer, Run, RunCase, Side, SuiteSpec, request_id_for
from cairn_evaluator.domain.scoring import RunScores, judge, judge_slice, score_run
from cairn_evaluator.domain.suites import EvalCase, Suite, heldout_suite
from cairn_evaluator.settings import Settings as EvaluatorSettings
from cairn_events import ChatMessage, GenerationParams, ResponseStatus, RetrievalOptions
from cairn_events.artifacts import DatasetRow, SourceRequest
from cairn_inference.adapters.conversion import default_model_dir, ensure_converted
from cairn_inference.adapters.transformers_cpu import TransformersBackend
from cairn_inference.domain.completion import Completion, ModelError
from cairn_inference.settings import Settings as InferenceSettings
from cairn_prompt_store.domain.prompt_file import load_prompt
from cairn_prompt_store.domain.render import render
from cairn_retriever.adapters.memory import InMemoryVectorStore
from cairn_retriever.adapters.sources import PydocTopicsSource
from cairn_retriever.bootstrap import load_embedder, make_ingestor, search_config
from cairn_retriever.domain.context import assemble_context, query_of
from cairn_retriever.domain.models import ChunkRecord, Document
from cairn_retriever.domain.tenancy import readable_collections
from cairn_retriever.ingest import Ingestor
from cairn_retriever.retrieval import Retriever
from cairn_retriever.settings import Settings as RetrieverSettings

VARIANTS = ("float32", "int8")
PROMPT_FILE = REPO / "infra" / "prompts" / "qa.yaml"
SUITES_DIR = REPO / "infra" / "eval" / "suites"
KB_CACHE = REPO / ".cairn" / "bench"


# --- memory: one variant per fresh process ---------------------------------------------------------


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _memory_kb() -> dict[str, int]:
    """Resident memory (VmRSS: anonymous + file-backed, e.g. the mmapped safetensors), its anonymous
    part (RssAnon), and the peak (VmHWM), in KiB."""
    return {field: _status_kb(field) for field in ("VmRSS", "RssAnon", "VmHWM")}


def _weights_file_kb() -> int:
    """Resident KiB of the mmapped `*.safetensors` files (from /proc/self/smaps)."""
    total, mapping = 0, ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):
            mapping = head[-1]
        elif head and head[0] == "Rss:" and mapping.endswith(".safetensors"):
            total += int(head[1])
    return total


def touch(model: Any) -> None:
    """One forward pass, so every weight page the model uses is resident before memory is read."""
    import torch

    with torch.inference_mode():
        model(input_ids=torch.tensor([[1, 2, 3, 4]]))


def state_bytes(model: Any) -> int:
    """Bytes of the model's state_dict as `torch.save` writes it (packed int8 weights included)."""
    import torch

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def measure_load(variant: str, threads: int) -> dict[str, Any]:
    """Load one variant in this (fresh) process and run it once; its bytes and what it did to the
    process's memory (growth over the process before loading, torch and transformers imported)."""
    import torch  # noqa: F401  (imported before the baseline, as the service has it)
    import transformers  # noqa: F401

    gc.collect()
    before = _memory_kb()
    started = time.perf_counter()
    backend = TransformersBackend.load(
        default_model_dir(SMOLLM2),
        model_name=SMOLLM2,
        torch_threads=threads,
        device="cpu",
        quantization=None if variant == "float32" else variant,
    )
    load_s = time.perf_counter() - started
    touch(backend.model)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # int8 loads float32 first: give its freed pages back
    after = _memory_kb()
    return {
        "variant": variant,
        "backend": backend.name,
        "state_dict_mb": round(state_bytes(backend.model) / 1e6, 1),
        "rss_mb": round((after["VmRSS"] - before["VmRSS"]) / 1024, 1),
        "rss_anon_mb": round((after["RssAnon"] - before["RssAnon"]) / 1024, 1),
        "rss_peak_mb": round((after["VmHWM"] - before["VmRSS"]) / 1024, 1),
        "weights_file_mb": round(_weights_file_kb() / 1024, 1),
        "load_s": round(load_s, 2),
    }


def quantized_beside(float32: TransformersBackend) -> dict[str, Any]:
    """`float32.quantized("int8")` (returned as `backend`), and the memory it adds to this process."""
    touch(float32.model)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before, started = _memory_kb(), time.perf_counter()
    int8 = float32.quantized("int8")
    seconds = time.perf_counter() - started
    touch(int8.model)
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    after = _memory_kb()
    return {
        "backend": int8,
        "rss_mb": round((after["VmRSS"] - before["VmRSS"]) / 1024, 1),
        "rss_anon_mb": round((after["RssAnon"] - before["RssAnon"]) / 1024, 1),
        "seconds": round(seconds, 2),
    }


def memory_rows(threads: int) -> list[dict[str, Any]]:
    rows = []
    for variant in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, "--measure-load", variant, "--threads", str(threads)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  memory {variant}: {rows[-1]}", flush=True)
    return rows


# --- the knowledge base and rendering, as the platform does it -------------------------------------


def _kb_cache_path(ingestor: Ingestor, source: PydocTopicsSource) -> Path:
    key = f"{ingestor.signature}|{source.describe()}|{platform.python_version()}"
    return KB_CACHE / f"pydoc-topics-{hashlib.sha256(key.encode()).hexdigest()[:12]}.json"


def _restore(store: InMemoryVectorStore, cache: Path) -> None:
    data = json.loads(cache.read_text(encoding="utf-8"))
    for d in data["documents"]:
        document = Document(**{**d, "ingested_at": datetime.fromisoformat(d["ingested_at"])})
        store.documents[document.document_id] = document
    for document_id, chunks in data["chunks"].items():
        store.chunks[document_id] = [ChunkRecord(**c) for c in chunks]


def _save(store: InMemoryVectorStore, cache: Path) -> None:
    documents = [
        {**dataclasses.asdict(d), "ingested_at": d.ingested_at.isoformat()} for d in store.documents.values()
    ]
    chunks = {
        document_id: [
            {**dataclasses.asdict(c), "embedding": [float(x) for x in c.embedding]} for c in records
        ]
        for document_id, records in store.chunks.items()
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"documents": documents, "chunks": chunks}), encoding="utf-8")


async def knowledge_base(settings: RetrieverSettings) -> tuple[Retriever, dict[str, Any]]:
    """A retriever over `pydoc:topics` (the demo's knowledge base) in the in-memory store: embedded once,
    then restored from the cache, and ingested again, which re-embeds only documents that changed."""
    embedder = load_embedder(settings)
    store = InMemoryVectorStore()
    ingestor = make_ingestor(settings, embedder, store)
    source = PydocTopicsSource()
    cache = _kb_cache_path(ingestor, source)
    if cache.is_file():
        _restore(store, cache)
    report = await ingestor.ingest(source, settings.default_collection)
    if report.chunks:
        _save(store, cache)
    figures = {
        "source": source.describe(),
        "documents": len(store.documents),
        "chunks": sum(len(v) for v in store.chunks.values()),
        "embedded_now": report.chunks,
        "ingest_s": round(report.seconds, 1),
        "cache": str(cache.relative_to(REPO)),
    }
    return Retriever(embedder, store, search_config(settings)), figures


class Renderer:
    """A case's model input as the platform builds it: the prompt rendered (prompt-store), the retrieved
    passages inserted (retriever), the evaluator's request parameters (greedy, the suite's max_tokens)."""

    def __init__(self, retriever: Retriever, settings: RetrieverSettings, tenant: str) -> None:
        self.spec = load_prompt(PROMPT_FILE.read_text(encoding="utf-8"), str(PROMPT_FILE))
        self.retriever = retriever
        self.settings = settings
        self.tenant = tenant

    async def request(self, case: EvalCase, max_tokens: int) -> tuple[list[ChatMessage], GenerationParams]:
        name = case.prompt.split("@")[0].split(":")[0]
        if name != self.spec.name:
            raise ValueError(
                f"case {case.id}: prompt {case.prompt!r}; this benchmark renders {self.spec.name!r}"
            )
        rendered = render(
            self.spec,
            case.variables,
            case.messages,
            params=GenerationParams(temperature=0.0, max_tokens=max_tokens),
            retrieval=RetrievalOptions.model_validate(case.retrieval) if case.retrieval is not None else None,
        )
        messages, options = rendered.messages, rendered.retrieval
        query = query_of(messages, options.query) if options is not None else None
        if options is not None and query is not None:
            hits = await self.retriever.search(
                query,
                k=options.top_k,
                collection=readable_collections(
                    self.tenant, options.collection or self.settings.default_collection
                ),
                min_similarity=options.min_score,
            )
            messages = assemble_context(
                messages, hits, self.settings.context_token_budget, self.retriever.embedder.count_tokens
            ).messages
        return messages, rendered.params


# --- the suites -------------------------------------------------------------------------------------


def demo_heldout(settings: EvaluatorSettings) -> Suite:
    """The held-out suite (the evaluator's `heldout_suite`) of the loop demo's corrections: every question
    as the demo asks it (prompt, top_k, max_tokens of `infra/loop/demo.yaml`), the correction as reference."""
    plan = DemoPlan.load(default_plan_path())
    corrections = {item["question"]: item["correction"] for item in plan.feedback}
    rows = [
        DatasetRow(
            row_id=f"loop-demo-{i:02d}",
            request_id=request.request_id,
            feedback_id=f"loop-demo-{i:02d}",
            tenant=request.tenant,
            prompt_name=plan.prompt,
            prompt_version=1,
            request=SourceRequest(
                prompt=request.prompt,
                variables=dict(request.variables),
                messages=list(request.messages),
                retrieval=request.retrieval.model_dump(mode="json") if request.retrieval else None,
            ),
            messages=[],
            completion=corrections[question],
            source="corrected",
            rating=plan.rating,
        )
        for i, (question, request) in enumerate(ask_requests(plan, list(corrections)))
    ]
    return heldout_suite(
        rows,
        max_tokens=settings.heldout_max_tokens,
        min_f1=settings.heldout_min_f1,
        min_improvement=settings.heldout_min_improvement,
    )


def select(
    suites: list[Suite], per_slice: int | None, heldout: int | None, hand_written: bool
) -> list[Suite]:
    """The suites cut to the first `per_slice` cases of each adversarial slice (or its hand-written cases,
    as the e2e tests cut it) and the first `heldout` held-out rows."""
    out = []
    for suite in suites:
        cases = list(suite.cases)
        if suite.kind == "adversarial" and hand_written:
            cases = [c for c in cases if (c.source or "").startswith("cairn")]
        elif suite.kind == "adversarial" and per_slice is not None:
            cases = [c for s in suite.slices for c in [c for c in cases if c.slice == s][:per_slice]]
        if suite.kind == "heldout" and heldout is not None:
            cases = cases[:heldout]
        out.append(suite.model_copy(update={"cases": cases}))
    return out


# --- speed --------------------------------------------------------------------------------------------


async def _block(
    backend: TransformersBackend,
    prompts: Sequence[list[ChatMessage]],
    params: GenerationParams,
    concurrency: int,
) -> tuple[list[Completion], float]:
    """`prompts` in waves of `concurrency` concurrent requests; the completions and the wall time."""
    started = time.perf_counter()
    done: list[Completion] = []
    for i in range(0, len(prompts), concurrency):
        wave = prompts[i : i + concurrency]
        done += await asyncio.gather(*(backend.generate(m, params, model=SMOLLM2) for m in wave))
    return done, time.perf_counter() - started


def _chat(question: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=question)]


async def speed(
    backends: dict[str, TransformersBackend],
    rag: list[list[ChatMessage]],
    *,
    rounds: int,
    max_tokens: int,
    rag_max_tokens: int,
) -> list[dict[str, Any]]:
    """Tokens/s and latency per workload and variant; blocks alternate between the variants."""
    chat = GenerationParams(temperature=0.0, max_tokens=max_tokens)
    grounded = GenerationParams(temperature=0.0, max_tokens=rag_max_tokens)
    for backend in backends.values():  # warm-up: one request alone, one batch, one long prompt
        await _block(backend, [_chat("hi")], GenerationParams(temperature=0.0, max_tokens=4), 1)
        await _block(
            backend, [_chat(q) for q in QUESTIONS[:4]], GenerationParams(temperature=0.0, max_tokens=4), 4
        )
        await _block(backend, rag[:1], GenerationParams(temperature=0.0, max_tokens=1), 1)
    got: dict[tuple[str, str], tuple[list[Completion], float]] = {}
    for r in range(rounds):
        asked = [_chat(QUESTIONS[(r * 8 + i) % len(QUESTIONS)]) for i in range(8)]
        workloads = [
            ("chat c=1", asked[:4], chat, 1),
            ("chat c=4", asked[4:], chat, 4),
            ("rag c=1", [rag[r % len(rag)]], grounded, 1),
        ]
        order = VARIANTS if r % 2 == 0 else VARIANTS[::-1]
        for workload, prompts, params, concurrency in workloads:
            for variant in order:
                done, wall = await _block(backends[variant], prompts, params, concurrency)
                before, spent = got.get((workload, variant), ([], 0.0))
                got[(workload, variant)] = (before + done, spent + wall)
        print(f"  speed round {r + 1}/{rounds} done", flush=True)
    rows = []
    for (workload, variant), (done, wall) in got.items():
        tokens = sum(c.usage.output_tokens for c in done)
        latencies = [c.latency_ms for c in done]
        rows.append(
            {
                "workload": workload,
                "variant": variant,
                "requests": len(done),
                "prompt_tokens_mean": round(sum(c.usage.input_tokens for c in done) / len(done)),
                "output_tokens": tokens,
                "wall_s": round(wall, 2),
                "tokens_per_s": round(tokens / wall, 1),
                "latency_p50_ms": round(percentile(latencies, 0.5)),
                "latency_p95_ms": round(percentile(latencies, 0.95)),
                "ttft_p50_ms": round(percentile([c.ttft_ms or 0.0 for c in done], 0.5)),
            }
        )
    return sorted(rows, key=lambda row: (row["workload"], VARIANTS.index(row["variant"])))


# --- quality ------------------------------------------------------------------------------------------


async def _answer(
    backend: TransformersBackend, messages: list[ChatMessage], params: GenerationParams
) -> Answer:
    try:
        completion = await backend.generate(messages, params, model=SMOLLM2)
    except ModelError as exc:
        return Answer(status=ResponseStatus.FAILED, reason=str(exc), answered_at=datetime.now(UTC))
    return Answer(status=ResponseStatus.COMPLETED, text=completion.text, answered_at=datetime.now(UTC))


async def quality(
    backends: dict[str, TransformersBackend], renderer: Renderer, suites: list[Suite]
) -> tuple[RunScores, dict[str, list[int]]]:
    """Every case asked of both backends at once; scored by the evaluator with int8 as the candidate
    (side `c`) and float32 as the baseline (side `b`). Also, per suite, [identical answers, cases]."""
    now = datetime.now(UTC)
    run = Run(
        run_id="quantization-bench",
        model_name=SMOLLM2,
        candidate_version=2,
        baseline_version=1,
        started_at=now,
        deadline=now + timedelta(hours=1),
        cause_event_id="quantization-bench",
        suites=[
            SuiteSpec(
                name=s.name, kind=s.kind, description=s.description, max_tokens=s.max_tokens, gate=s.gate
            )
            for s in suites
        ],
    )
    cases: list[RunCase] = []
    identical: dict[str, list[int]] = {}
    index = 0
    for suite in suites:
        started = time.perf_counter()
        same = identical.setdefault(suite.name, [0, 0])
        for case in suite.cases:
            messages, params = await renderer.request(case, suite.max_tokens)
            baseline, candidate = await asyncio.gather(
                *(_answer(backends[variant], messages, params) for variant in VARIANTS)
            )
            sides: tuple[tuple[Side, Answer], ...] = (("b", baseline), ("c", candidate))
            for side, answer in sides:
                cases.append(
                    RunCase(
                        run_id=run.run_id,
                        request_id=request_id_for(run.run_id, index, side),
                        index=index,
                        side=side,
                        suite=suite.name,
                        case=case,
                        answer=answer,
                    )
                )
            same[0] += int(baseline.status is ResponseStatus.COMPLETED and baseline.text == candidate.text)
            same[1] += 1
            index += 1
        print(
            f"  quality {suite.name}: {len(suite.cases)} cases in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return score_run(run, cases), identical


# --- the report -------------------------------------------------------------------------------------

PRIMARY = {"pass_rate", "refusal_rate", "token_f1"}


def _row(rows: list[dict[str, Any]], workload: str, variant: str) -> dict[str, Any]:
    return next(r for r in rows if r["workload"] == workload and r["variant"] == variant)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else 0.0


def ratios(report: dict[str, Any]) -> dict[str, Any]:
    """int8 over float32, per speed workload and memory figure."""
    rows, mem = report["speed"], {m["variant"]: m for m in report["memory"]}
    out: dict[str, Any] = {}
    for workload in dict.fromkeys(r["workload"] for r in rows):
        f, q = _row(rows, workload, "float32"), _row(rows, workload, "int8")
        out[workload] = {
            "tokens_per_s": _ratio(q["tokens_per_s"], f["tokens_per_s"]),
            "latency_p50": _ratio(q["latency_p50_ms"], f["latency_p50_ms"]),
            "ttft_p50": _ratio(q["ttft_p50_ms"], f["ttft_p50_ms"]),
        }
    for key in ("state_dict_mb", "rss_mb", "rss_anon_mb", "rss_peak_mb"):
        out[key] = _ratio(mem["int8"][key], mem["float32"][key])
    return out


def regressions(suites: list[Suite], scores: RunScores) -> list[dict[str, Any]]:
    """The scenario and adversarial gates' regression rules (overall and per slice) applied to int8 against
    float32 with the evaluator's `judge`; the absolute floors are left out (without the safety screen in
    front both sides sit below the adversarial floor). The held-out gate asks a candidate to beat
    production, which a quantized copy is not meant to: its delta is reported, not judged here."""
    out = []
    for suite in suites:
        if suite.kind == "heldout":
            continue
        gate = suite.gate.model_copy(update={"min": None, "slice_min": None})
        for score in scores.scores:
            if score.suite != suite.name or score.baseline is None:
                continue
            if score.metric == gate.metric:
                passed, note = judge(gate, score.candidate, score.baseline)
            elif score.metric.startswith(gate.metric + "["):
                passed, note = judge_slice(gate, score.candidate, score.baseline)
            else:
                continue
            out.append({"suite": suite.name, "metric": score.metric, "passed": passed, "note": note})
    return out


def verdict(report: dict[str, Any]) -> dict[str, str]:
    """Who wins speed, memory and quality, and the default this run argues for."""
    r = report["ratios"]
    faster = r["chat c=1"]["tokens_per_s"] > 1 and r["chat c=4"]["tokens_per_s"] > 1
    if r["state_dict_mb"] < 1 and r["rss_mb"] < 1:
        memory = "int8"
    elif r["state_dict_mb"] >= 1 and r["rss_mb"] >= 1:
        memory = "float32"
    else:
        memory = "mixed"
    primary = [s for s in report["quality"]["scores"] if s["metric"] in PRIMARY]
    deltas = [s["candidate"] - s["baseline"] for s in primary]
    if all(abs(d) < 1e-9 for d in deltas):
        better = "tie"
    elif all(d >= -1e-9 for d in deltas):
        better = "int8"
    elif all(d <= 1e-9 for d in deltas):
        better = "float32"
    else:
        better = "mixed"
    holds = all(g["passed"] for g in report["quality"]["regression_gates"])
    same = report["quality"]["identical"]
    identical, asked = sum(v[0] for v in same.values()), sum(v[1] for v in same.values())
    metrics = "; ".join(
        f"{s['suite']} {s['metric']} {s['baseline']:.3f} -> {s['candidate']:.3f}" for s in primary
    )
    keep = "int8" if faster and better in ("int8", "tie") and holds else "float32"
    why = (
        "int8 is faster and answers as well"
        if keep == "int8"
        else "int8 answers worse on the suites"
        if faster
        else "int8 is not faster"
    )
    return {
        "speed": "int8" if faster else "float32",
        "memory": memory,
        "quality": better,
        "regression_gates_hold": str(holds),
        "default": keep,
        "line": (
            f"verdict: speed {'int8' if faster else 'float32'} (int8 tok/s x{r['chat c=1']['tokens_per_s']} "
            f"at c=1, x{r['chat c=4']['tokens_per_s']} at c=4; rag p50 latency x{r['rag c=1']['latency_p50']}); "
            f"memory {memory} (int8 state x{r['state_dict_mb']}, RSS x{r['rss_mb']}, anonymous "
            f"x{r['rss_anon_mb']}); quality {better} (float32 -> int8: {metrics}; {identical}/{asked} answers "
            f"identical; scenario/adversarial regression gates {'hold' if holds else 'FAIL'}); "
            f"keep {keep} by default: {why}"
        ),
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"model {report['model']}, torch_threads {report['torch_threads']}, speed rounds {report['rounds']} "
        f"(blocks alternate float32/int8), chat max_tokens {report['max_tokens']}, rag max_tokens "
        f"{report['rag_max_tokens']}",
        f"{'workload':<9} {'variant':<8} {'reqs':>4} {'prompt':>6} {'tokens':>6} {'tok/s':>6} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'ttft p50':>8}",
    ]
    for row in report["speed"]:
        lines.append(
            f"{row['workload']:<9} {row['variant']:<8} {row['requests']:>4} {row['prompt_tokens_mean']:>6} "
            f"{row['output_tokens']:>6} {row['tokens_per_s']:>6} {row['latency_p50_ms']:>7} "
            f"{row['latency_p95_ms']:>7} {row['ttft_p50_ms']:>8}"
        )
    for workload, ratio in report["ratios"].items():
        if isinstance(ratio, dict):
            lines.append(
                f"{workload:<9} {'int8/f32':<8} tok/s x{ratio['tokens_per_s']}, p50 latency "
                f"x{ratio['latency_p50']}, ttft p50 x{ratio['ttft_p50']}"
            )
    lines.append(
        f"{'memory':<9} {'variant':<8} {'state MB':>8} {'RSS +MB':>8} {'anon +MB':>8} {'peak +MB':>8} {'file MB':>7} {'load s':>6}"
    )
    for m in report["memory"]:
        lines.append(
            f"{'':<9} {m['variant']:<8} {m['state_dict_mb']:>8} {m['rss_mb']:>8} "
            f"{m['rss_anon_mb']:>8} {m['rss_peak_mb']:>8} {m['weights_file_mb']:>7} {m['load_s']:>6}"
        )
    beside = report["quantized_beside"]
    lines.append(
        f"{'':<9} int8 copy added beside a loaded float32 (the service serving both): +{beside['rss_mb']} MB "
        f"RSS (+{beside['rss_anon_mb']} MB anonymous), built in {beside['seconds']} s"
    )
    q = report["quality"]
    lines.append(f"quality   data: {q['data']}")
    lines.append(
        f"{'suite':<18} {'metric':<36} {'float32':>7} {'int8':>7} {'delta':>7}  gate (int8 vs float32)"
    )
    for s in q["scores"]:
        base = s["baseline"] if s["baseline"] is not None else 0.0
        lines.append(
            f"{s['suite']:<18} {s['metric']:<36} {base:>7.3f} {s['candidate']:>7.3f} "
            f"{s['candidate'] - base:>+7.3f}  {'pass' if s['passed'] else 'FAIL'}: {s['note']}"
        )
    for suite, (same, asked) in q["identical"].items():
        lines.append(f"{suite:<18} identical answers float32 == int8: {same}/{asked}")
    failed = [f"{g['metric']}: {g['note']}" for g in q["regression_gates"] if not g["passed"]]
    rules = "; ".join(failed) if failed else f"all {len(q['regression_gates'])} hold"
    lines.append(
        f"regression rules of the scenario/adversarial gates, int8 vs float32 (floors left out): {rules}"
    )
    lines.append(report["verdict"]["line"])
    return "\n".join(lines)


# --- the run ------------------------------------------------------------------------------------------


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    ensure_converted(default_model_dir(SMOLLM2))
    memory = memory_rows(args.threads)
    serving = InferenceSettings()
    evaluator = EvaluatorSettings()
    retrieval = RetrieverSettings()
    retriever, kb = await knowledge_base(retrieval)
    print(f"  knowledge base: {kb}", flush=True)
    renderer = Renderer(retriever, retrieval, evaluator.eval_tenant)
    suites = select(
        [*SuiteFiles(SUITES_DIR).load(), demo_heldout(evaluator)],
        args.adversarial_per_slice,
        args.heldout,
        hand_written=args.quick and args.adversarial_per_slice is None,
    )
    scenario = next(s for s in suites if s.kind == "scenario")
    rag = [(await renderer.request(c, scenario.max_tokens))[0] for c in scenario.cases]
    float32 = TransformersBackend.load(
        default_model_dir(SMOLLM2),
        model_name=SMOLLM2,
        torch_threads=args.threads,
        device="cpu",
        max_batch_size=serving.max_batch_size,
        batch_window_s=serving.batch_window_ms / 1000,
        repetition_penalty=serving.repetition_penalty,
    )
    beside = quantized_beside(float32)
    int8 = beside.pop("backend")
    backends = {"float32": float32, "int8": int8}
    try:
        rows = await speed(
            backends, rag, rounds=args.rounds, max_tokens=args.max_tokens, rag_max_tokens=scenario.max_tokens
        )
        scores, identical = await quality(backends, renderer, suites)
    finally:
        for backend in backends.values():
            await backend.aclose()
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))},
        "model": SMOLLM2,
        "backends": {v: b.name for v, b in backends.items()},
        "torch_threads": args.threads,
        "repetition_penalty": serving.repetition_penalty,
        "rounds": args.rounds,
        "max_tokens": args.max_tokens,
        "rag_max_tokens": scenario.max_tokens,
        "speed": rows,
        "memory": memory,
        "quantized_beside": beside,
        "knowledge_base": kb,
        "quality": {
            "data": (
                f"{', '.join(f'{s.name} ({s.kind}, {len(s.cases)} cases)' for s in suites)}; suites from "
                f"{SUITES_DIR.relative_to(REPO)}, held-out = the loop demo's corrections "
                f"({default_plan_path().relative_to(REPO)}); retrieval over {kb['source']}; no safety screen"
            ),
            "scores": [
                {**s.model_dump(mode="json"), "note": scores.notes.get((s.suite, s.metric), "")}
                for s in scores.scores
            ],
            "identical": identical,
            "regression_gates": regressions(suites, scores),
            "cases": [
                {
                    "suite": row.suite,
                    "case": row.case_id,
                    "float32": row.baseline.text if row.baseline else None,
                    "int8": row.candidate.text if row.candidate else None,
                    "float32_metrics": row.baseline_metrics,
                    "int8_metrics": row.candidate_metrics,
                }
                for row in scores.cases
            ],
        },
    }
    report["ratios"] = ratios(report)
    report["verdict"] = verdict(report)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run: 1 speed round, 4 held-out rows, the 4 hand-written adversarial cases",
    )
    parser.add_argument("--full", action="store_true", help="every case of every suite (~15 min)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the service's default: 1)")
    parser.add_argument("--rounds", type=int, default=None, help="speed rounds (default 2; --quick 1)")
    parser.add_argument("--max-tokens", type=int, default=32, help="max_tokens of the chat workloads")
    parser.add_argument(
        "--adversarial-per-slice", type=int, default=None, help="adversarial cases per slice (default 1)"
    )
    parser.add_argument(
        "--heldout", type=int, default=None, help="held-out rows (default 8, as the evaluator; --quick 4)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "quantization.json")
    parser.add_argument("--measure-load", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_load:
        print(json.dumps(measure_load(args.measure_load, args.threads)))
        return
    quick, full = args.quick, args.full
    args.rounds = args.rounds or (1 if quick else 2)
    if args.adversarial_per_slice is None and not full and not quick:
        args.adversarial_per_slice = 1
    if args.heldout is None and not full:
        args.heldout = 4 if quick else EvaluatorSettings.model_fields["heldout_max_cases"].default
    report = asyncio.run(bench(args))
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} ({report['wall_s']} s)")


if __name__ == "__main__":
    main()

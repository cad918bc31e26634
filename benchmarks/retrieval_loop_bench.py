"""The retrieval loop: hit rate before and after feedback, and before and after a source changed.

Run with `.venv/bin/python benchmarks/retrieval_loop_bench.py` (the test stack's PostgreSQL unless
CAIRN_POSTGRES_DSN says otherwise; a database of its own, dropped at the end). Prints tables and
writes JSON to benchmarks/results/retrieval_loop_bench.json.

The knowledge base is the packaged one (`pydoc:topics`, the 79 topics of the Python language
reference shipped with CPython), written as one file per topic into a folder that the retriever
watches, so ingestion and re-ingestion go through the same scan the service runs. Everything else
is the service's code path: `on_prompt_rendered` (all-MiniLM-L6-v2, pgvector hybrid search, context
assembly, top_k 4) and `on_feedback_submitted`, with the PostgreSQL prior store.

Workload: 40 topics, each with two hand-written questions whose right source is that topic's file:
question A is asked and answered, and the simulated user gives feedback on A's answer — thumbs up
when the right source was in the context, thumbs down with `source:<right uri>` when it was not. Then the same A questions are replayed (hit rate on the
questions that got feedback), and the B questions, never asked before, are asked (held out: does
what was learned carry over to other phrasings, or hurt them?). Hit = the right source among the
context's chunks. Each prior weight runs on a fresh prior store with the same feedback.

Change: one watched file is rewritten at its origin with content the index does not have; the
questions about that content are asked before and after a scan of the watched folder re-ingests it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from cairn_bus import InMemoryInbox, InMemoryPublisher, build_meta
from cairn_bus.postgres import create_pool
from cairn_events import ContextAssembledV1, DocumentReindexedV1, FeedbackSubmittedV1, PromptRenderedV1
from cairn_retriever import bootstrap
from cairn_retriever.adapters.pgvector import PgVectorStore
from cairn_retriever.adapters.postgres import ensure_vector_extension, register_vector
from cairn_retriever.adapters.priors_postgres import PostgresPriorStore
from cairn_retriever.adapters.sources import FileSource, uri_prefix
from cairn_retriever.app import router
from cairn_retriever.handlers import on_feedback_submitted, on_prompt_rendered
from cairn_retriever.reindex import WatchedSource, scan
from cairn_retriever.settings import Settings

RESULTS = Path(__file__).parent / "results"
TENANT = "bench"
TOP_K = 4

WORKLOAD: list[tuple[str, str, str]] = [
    # (topic, question A: asked, then given feedback, then replayed; question B: held out)
    ("yield", "What does the yield statement do in a function?", "How does a function become a generator?"),
    (
        "pass",
        "What does the pass statement do?",
        "Which statement is a null operation used as a placeholder?",
    ),
    ("break", "What does break do inside a loop?", "How do I leave the nearest enclosing loop early?"),
    ("continue", "What does the continue statement do?", "How do I skip to the next iteration of a loop?"),
    ("lambda", "What is a lambda expression?", "How do I write a small anonymous function?"),
    (
        "try",
        "When does the finally clause of a try statement run?",
        "How do I catch an exception with except?",
    ),
    ("with", "What is the with statement used for?", "When are __enter__ and __exit__ called?"),
    (
        "global",
        "What does the global statement do?",
        "How do I assign to a module-level variable inside a function?",
    ),
    (
        "nonlocal",
        "What does the nonlocal statement do?",
        "How can a nested function rebind a variable of the enclosing function?",
    ),
    (
        "import",
        "How does the import statement find and load modules?",
        "What does from module import name do?",
    ),
    ("raise", "How do I raise an exception?", "What does raise ... from do for exception chaining?"),
    (
        "return",
        "What does the return statement do?",
        "What does a function return when it has no return statement?",
    ),
    ("del", "What does the del statement do?", "How do I remove a name binding?"),
    ("assert", "What does the assert statement do?", "Are assertions removed when Python runs with -O?"),
    ("if", "How does the if statement work?", "What are elif and else in a conditional statement?"),
    ("while", "How does a while loop work?", "When is the else clause of a while loop executed?"),
    (
        "for",
        "How does the for statement iterate over a sequence?",
        "When does the else clause of a for loop run?",
    ),
    ("class", "How is a class definition executed?", "Where are the base classes of a class listed?"),
    ("function", "What does a function definition do?", "When are default parameter values evaluated?"),
    ("async", "What is a coroutine function defined with async def?", "What do async for and async with do?"),
    ("await", "What does the await expression do?", "Where can an await expression be used?"),
    ("slicings", "What is a slicing?", "How do I select a range of items with start:stop:step?"),
    (
        "formatstrings",
        "What is the format specification mini-language?",
        "How do I format a number with a width and precision?",
    ),
    ("string-methods", "What methods do str objects have?", "How do I split a string or strip whitespace?"),
    (
        "typesmapping",
        "What operations do dictionaries support?",
        "How do I get a value from a dict with a default?",
    ),
    (
        "truth",
        "Which values are false in truth value testing?",
        "When is an object considered true in a condition?",
    ),
    ("comparisons", "How do comparison operators work?", "Can comparisons be chained like a < b < c?"),
    ("booleans", "How do the and, or and not operators work?", "What value does x or y return?"),
    ("integers", "How are integer literals written?", "How do I write a hexadecimal or binary literal?"),
    (
        "floating",
        "How are floating point literals written?",
        "What does an exponent in a float literal look like?",
    ),
    ("customization", "What is the __init__ method for?", "What should __repr__ return?"),
    (
        "exceptions",
        "How are exceptions handled during execution?",
        "What happens when an exception is not handled?",
    ),
    ("naming", "How are names bound and resolved?", "What is a code block and its scope?"),
    ("assignment", "How does an assignment statement work?", "How does unpacking into a target list work?"),
    ("augassign", "What is an augmented assignment such as +=?", "Is x += 1 done in place?"),
    ("conversions", "How are arithmetic conversions done?", "What happens when I add an int and a float?"),
    ("power", "What does the power operator do?", "What is the result of ** with a negative exponent?"),
    (
        "typesseq-mutable",
        "Which operations modify a mutable sequence?",
        "How do append, extend and insert work on a list?",
    ),
    ("dict", "How is a dictionary display written?", "What is a dict comprehension?"),
    ("lists", "How is a list display written?", "What is a list comprehension?"),
]

CHANGED_TOPIC = "bltin-ellipsis-object"
CHANGED_TEXT = """The Cairn retention policy
*************************

Feedback events are kept on the cairn.feedback topic for thirty days, after which the broker deletes
them. Datasets published on cairn.datasets are kept forever, with their provenance manifests.

Audit trail segments are archived to the object store every night and are never deleted; the hash
chain links each segment to the one before it.
"""
CHANGE_QUESTIONS = [
    "How long are feedback events kept on the feedback topic?",
    "Are published datasets ever deleted?",
    "When are audit trail segments archived to the object store?",
]


def stack_dsn() -> str:
    if dsn := os.environ.get("CAIRN_POSTGRES_DSN"):
        return dsn
    from cairn_localstack.config import StackConfig

    return StackConfig.for_profile(os.environ.get("CAIRN_STACK_PROFILE", "test")).service_env()[
        "CAIRN_POSTGRES_DSN"
    ]


def write_knowledge_base(folder: Path) -> dict[str, str]:
    """One file per pydoc topic; returns topic -> file URI."""
    from pydoc_data.topics import topics

    uris = {}
    for name, text in topics.items():
        path = folder / f"{name}.txt"
        path.write_text(text, encoding="utf-8")
        uris[name] = path.resolve().as_uri()
    return uris


def prompt(question: str, top_k: int) -> PromptRenderedV1:
    return PromptRenderedV1(
        request_id=f"bench-{uuid.uuid4().hex[:16]}",
        tenant=TENANT,
        prompt_name="qa",
        prompt_version=1,
        messages=[{"role": "user", "content": question}],
        retrieval={"top_k": top_k},
        params={},
        rendered_at=datetime.now(UTC),
    )


async def ask(
    deps: bootstrap.Deps, publisher: InMemoryPublisher, question: str, top_k: int
) -> tuple[str, list[str]]:
    """(request id, source URIs of the context's chunks) for one question."""
    event = prompt(question, top_k)
    await on_prompt_rendered(event, build_meta(event, source="/cairn/prompt-store"), deps)
    out = next(e for e in publisher.events(ContextAssembledV1.event_type) if e.request_id == event.request_id)
    return event.request_id, [c.source_uri for c in out.chunks]


async def feedback(deps: bootstrap.Deps, request_id: str, hit: bool, right: str) -> None:
    event = FeedbackSubmittedV1(
        feedback_id=f"fb-{uuid.uuid4().hex[:16]}",
        request_id=request_id,
        tenant=TENANT,
        thumbs="up" if hit else "down",
        tags=[] if hit else [f"source:{right}"],
        submitted_at=datetime.now(UTC),
    )
    await on_feedback_submitted(event, build_meta(event, source="/cairn/upstream"), deps)


async def hit_rate(
    deps: bootstrap.Deps, publisher: InMemoryPublisher, cases: list[tuple[str, str]], top_k: int = TOP_K
) -> float:
    hits = 0
    for question, right in cases:
        _, sources = await ask(deps, publisher, question, top_k)
        hits += right in sources
    return hits / len(cases)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = stack_dsn()
    name = f"retrieval_loop_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    try:
        return await measure(dsn, args.weights, args.top_k)
    finally:
        admin = await asyncpg.connect(base)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def measure(dsn: str, weights: list[float], top_ks: list[int]) -> dict[str, Any]:
    await ensure_vector_extension(dsn)
    pool = await create_pool(dsn, 1, 4, init=register_vector)
    store = PgVectorStore(pool)
    await store.migrate()
    settings = Settings(postgres_dsn=dsn)
    publisher = InMemoryPublisher("/cairn/retriever", allowed_types=router.published_types)
    embedder = await asyncio.to_thread(bootstrap.load_embedder, settings)
    # a fixed folder: document ids (and so full-text tie-breaks) follow the file URIs, and a random
    # folder made the baseline move by a few questions from run to run
    folder = Path(tempfile.gettempdir()) / "cairn-retrieval-loop-bench"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    uris = write_knowledge_base(folder)
    watched = WatchedSource("bench-kb", str(folder))
    source = FileSource(folder)
    ingestor = bootstrap.make_ingestor(settings, embedder, store)
    t0 = time.perf_counter()
    first = await scan(watched, source, uri_prefix(source), ingestor, publisher, lambda: datetime.now(UTC))
    ingest_s = time.perf_counter() - t0
    settings = settings.model_copy(update={"default_collection": "bench-kb"})
    seen = [(a, uris[topic]) for topic, a, _ in WORKLOAD]
    held_out = [(b, uris[topic]) for topic, _, b in WORKLOAD]
    rows = []
    async with bootstrap.build(
        settings, publisher, embedder=embedder, store=store, inbox=InMemoryInbox()
    ) as deps:
        for top_k, weight in [(k, w) for k in top_ks for w in weights]:
            await pool.execute("DROP TABLE IF EXISTS retriever_served, retriever_chunk_votes")
            priors = PostgresPriorStore(pool)
            await priors.migrate()
            loop = replace(
                deps,
                inbox=InMemoryInbox(),
                priors=priors,
                settings=settings.model_copy(update={"prior_weight": weight}),
            )
            answered = []
            for topic, question, _ in WORKLOAD:  # every question asked once, then the feedback
                request_id, sources = await ask(loop, publisher, question, top_k)
                answered.append((request_id, uris[topic] in sources, uris[topic]))
            for request_id, hit, right in answered:
                await feedback(loop, request_id, hit, right)
            hits_before = sum(hit for _, hit, _ in answered)
            held_before = await hit_rate(replace(loop, priors=None), publisher, held_out, top_k)
            row = {
                "top_k": top_k,
                "weight": weight,
                "seen_before": hits_before / len(WORKLOAD),
                "seen_after": await hit_rate(loop, publisher, seen, top_k),
                "held_out_before": held_before,
                "held_out_after": await hit_rate(loop, publisher, held_out, top_k),
                "feedback_negative": sum(not hit for _, hit, _ in answered),
            }
            rows.append(row)
            print(
                f"top_k={top_k} w={weight:<5} seen {row['seen_before']:.3f} -> {row['seen_after']:.3f}   "
                f"held-out {row['held_out_before']:.3f} -> {row['held_out_after']:.3f}",
                flush=True,
            )
        # a source changes at its origin: before the scan the index is stale, after it is not
        changed_uri = uris[CHANGED_TOPIC]
        change_cases = [(q, changed_uri) for q in CHANGE_QUESTIONS]
        stale = await hit_rate(deps, publisher, change_cases)
        (folder / f"{CHANGED_TOPIC}.txt").write_text(CHANGED_TEXT, encoding="utf-8")
        (folder / "pass.txt").unlink()
        t0 = time.perf_counter()
        rescan = await scan(
            watched, source, uri_prefix(source), ingestor, publisher, lambda: datetime.now(UTC)
        )
        rescan_s = time.perf_counter() - t0
        fresh = await hit_rate(deps, publisher, change_cases)
        unchanged = await hit_rate(deps, publisher, held_out)
    await pool.close()
    events = publisher.events(DocumentReindexedV1.event_type)
    return {
        "knowledge_base": {
            "documents": len(uris),
            "chunks": first.outcomes and sum(o.chunks for o in first.outcomes),
        },
        "ingest_s": round(ingest_s, 1),
        "change_top_k": TOP_K,
        "questions": len(WORKLOAD),
        "loop": rows,
        "change": {
            "changed": CHANGED_TOPIC,
            "hit_rate_stale": stale,
            "hit_rate_after_rescan": fresh,
            "held_out_after_rescan": unchanged,
            "rescan_events": {c: rescan.count(c) for c in ("added", "changed", "removed")},
            "rescan_s": round(rescan_s, 1),
            "events_total": len(events),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.5])
    parser.add_argument("--top-k", type=int, nargs="+", default=[1, TOP_K], help="context sizes measured")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "retrieval_loop_bench.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["change"], indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

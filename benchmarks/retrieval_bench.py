"""Retrieval: recall@k against exact search and query latency (p50/p95), vector-only and hybrid, on the
pgvector store of the retriever (the same adapter and SQL the service runs).

Run with `.venv/bin/python benchmarks/retrieval_bench.py [--chunks 100000]` (default: 5,000 chunks).
Uses the test stack's PostgreSQL unless CAIRN_POSTGRES_DSN says otherwise; works in a database of its
own (created, then dropped unless --keep). Prints a table and writes JSON to
benchmarks/results/retrieval_bench.json.

The corpus is synthetic but shaped like real embedded text, since embedding 100k real passages with
MiniLM would take well over an hour here:
- texts: ~80 pseudo-words per chunk, drawn from a Zipf-distributed general vocabulary (20k words)
  mixed with a per-topic vocabulary, so full-text matching behaves like natural language (some
  query words are common, some rare);
- vectors (384-d, unit length): a shared mean direction (sentence embeddings are anisotropic) +
  a topic centroid + a per-document direction + per-chunk variation that lives mostly in a
  48-dimensional subspace. The weights were fitted so that, on 1,000 chunks, the mean pairwise
  cosine, the mean cosine to the 1st and to the 10th nearest neighbour match MiniLM's embeddings
  of the Python docs (`pydoc:topics`, 968 chunks: 0.24 / 0.84 / 0.59; synthetic: 0.23 / 0.83 / 0.58);
- queries: a chunk's vector plus noise (cosine ~0.7 to it, like a question to its passage), and 3
  words: 2 of its topic's words and 1 general word of the chunk.
Recall@k: |approximate top-k ∩ exact top-k| / k. Vector mode: exact = brute force over all vectors in
numpy. Hybrid mode: exact = the same hybrid query with index scans disabled (exact nearest
neighbours; the full-text list is the same either way; computed once per query, as it does not depend
on ef_search). Latency: wall time of `PgVectorStore.search` from Python (round trips included), after a
warm-up, for each hnsw.ef_search given. The floor: `SELECT 1` through the same pool (a connection taken,
one statement, the connection reset and given back), timed right after each search, so each row says
how busy the machine was while it was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np

from cairn_bus.postgres import create_pool
from cairn_retriever.adapters.pgvector import HNSW_EF_CONSTRUCTION, HNSW_M, PgVectorStore, hnsw_index_sql
from cairn_retriever.adapters.postgres import ensure_vector_extension, register_vector
from cairn_retriever.domain.models import SearchMode, SearchQuery, content_hash

RESULTS = Path(__file__).parent / "results"
DIM = 384
COLLECTION = "bench"
CHUNKS_PER_DOC = 10
WORDS_PER_CHUNK = 80
LATENT = 48


def pseudo_words(n: int, rng: np.random.Generator) -> list[str]:
    """n distinct pronounceable words (2-4 syllables)."""
    onsets = [
        "b",
        "c",
        "d",
        "f",
        "g",
        "h",
        "j",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "w",
        "z",
        "br",
        "cl",
        "dr",
        "fl",
        "gr",
        "pl",
        "pr",
        "sk",
        "st",
        "tr",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
    words: set[str] = set()
    while len(words) < n:
        syllables = rng.integers(2, 5)
        words.add("".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables)))
    return sorted(words)


def unit(rows: np.ndarray) -> np.ndarray:
    normed: np.ndarray = (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)
    return normed


def synthesize(n: int, seed: int) -> dict[str, Any]:
    """Texts, topics and unit vectors of n chunks (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_docs = max(1, n // CHUNKS_PER_DOC)
    n_topics = max(20, n // 500)
    vocab = pseudo_words(20_000 + n_topics * 40, rng)
    general, topical = vocab[:20_000], vocab[20_000:]
    topic_words = np.array(topical).reshape(n_topics, 40)
    zipf = 1.0 / np.arange(1, len(general) + 1) ** 1.07
    zipf /= zipf.sum()

    doc_topic = rng.integers(0, n_topics, n_docs)
    chunk_doc = np.arange(n) // CHUNKS_PER_DOC
    chunk_topic = doc_topic[chunk_doc]

    mean = unit(rng.standard_normal(DIM))
    centroids = unit(rng.standard_normal((n_topics, DIM)))
    doc_dirs = unit(rng.standard_normal((n_docs, DIM)))
    basis = np.linalg.qr(rng.standard_normal((DIM, LATENT)))[0].T
    variation = unit(rng.standard_normal((n, LATENT)) @ basis)
    isotropic = unit(rng.standard_normal((n, DIM)))
    vectors = unit(
        0.6 * mean
        + 0.7 * centroids[chunk_topic]
        + 0.7 * doc_dirs[chunk_doc]
        + 0.6 * variation
        + 0.1 * isotropic
    )

    general_idx = rng.choice(len(general), size=(n, WORDS_PER_CHUNK * 7 // 10), p=zipf)
    topic_idx = rng.integers(0, 40, size=(n, WORDS_PER_CHUNK - general_idx.shape[1]))
    texts = []
    for i in range(n):
        words = [general[j] for j in general_idx[i]] + list(topic_words[chunk_topic[i], topic_idx[i]])
        rng.shuffle(words)
        texts.append(" ".join(words) + ".")
    return {
        "texts": texts,
        "vectors": vectors,
        "chunk_doc": chunk_doc,
        "chunk_topic": chunk_topic,
        "topic_words": topic_words,
        "general_idx": general_idx,
        "general": general,
        "basis": basis,
        "n_docs": n_docs,
        "n_topics": n_topics,
    }


def make_queries(corpus: dict[str, Any], n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed + 1)
    out = []
    for i in rng.choice(len(corpus["texts"]), size=n, replace=False):
        shift = unit(
            0.9 * unit(rng.standard_normal(LATENT) @ corpus["basis"]) + 0.3 * unit(rng.standard_normal(DIM))
        )
        vector = unit(corpus["vectors"][i] + shift)
        topic = corpus["topic_words"][corpus["chunk_topic"][i]]
        general = corpus["general"][rng.choice(corpus["general_idx"][i])]
        words = [*rng.choice(topic, 2, replace=False), general]
        out.append((" ".join(words), vector))
    return out


async def load(pool: Any, corpus: dict[str, Any]) -> dict[str, float]:
    """Documents and chunks by COPY, then the HNSW index; seconds of each step."""
    now = datetime.now(UTC)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    async with pool.acquire() as conn:
        await conn.execute("DROP INDEX IF EXISTS retriever_chunks_embedding")
        await conn.copy_records_to_table(
            "retriever_documents",
            columns=[
                "document_id",
                "collection",
                "source_uri",
                "content_hash",
                "chunking",
                "media_type",
                "title",
                "char_count",
                "chunk_count",
                "ingested_at",
            ],
            records=[
                (
                    f"d{d}",
                    COLLECTION,
                    f"bench://doc/{d}",
                    content_hash(str(d)),
                    "bench",
                    "text/plain",
                    None,
                    0,
                    0,
                    now,
                )
                for d in range(corpus["n_docs"])
            ],
        )
        records = (
            (
                f"c{i}",
                f"d{corpus['chunk_doc'][i]}",
                COLLECTION,
                i % CHUNKS_PER_DOC,
                0,
                len(t),
                t,
                content_hash(t),
                v,
            )
            for i, (t, v) in enumerate(zip(corpus["texts"], corpus["vectors"], strict=True))
        )
        await conn.copy_records_to_table(
            "retriever_chunks",
            columns=[
                "chunk_id",
                "document_id",
                "collection",
                "ordinal",
                "char_start",
                "char_end",
                "text",
                "content_hash",
                "embedding",
            ],
            records=records,
        )
        timings["copy_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(hnsw_index_sql())
        timings["hnsw_build_s"] = time.perf_counter() - t1
        await conn.execute("VACUUM ANALYZE retriever_chunks")
        await conn.execute("ANALYZE retriever_documents")
    return timings


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


async def measure(
    store: PgVectorStore,
    corpus: dict[str, Any],
    queries: list[tuple[str, np.ndarray]],
    k: int,
    mode: SearchMode,
    exact_hybrid: dict[int, set[str]],
) -> dict[str, Any]:
    """Recall@k and latency of one mode at the store's ef_search; `exact_hybrid` caches the exact hybrid
    top-k of each query across calls."""
    vectors = corpus["vectors"]
    recalls, latencies, floor, exact_latencies = [], [], [], []
    for text, vector in queries[:10]:  # warm-up
        await store.search(SearchQuery(text, vector.tolist(), k, mode, COLLECTION))
    for i, (text, vector) in enumerate(queries):
        q = SearchQuery(text, vector.tolist(), k, mode, COLLECTION)
        t0 = time.perf_counter()
        hits = await store.search(q)
        latencies.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        await store.pool.fetchval("SELECT 1")
        floor.append((time.perf_counter() - t0) * 1000)
        got = {h.chunk_id for h in hits}
        if mode is SearchMode.VECTOR:
            truth = {f"c{j}" for j in np.argsort(-(vectors @ vector))[:k]}
        else:
            if i not in exact_hybrid:
                t1 = time.perf_counter()
                exact_hybrid[i] = {h.chunk_id for h in await store.search(q, exact=True)}
                exact_latencies.append((time.perf_counter() - t1) * 1000)
            truth = exact_hybrid[i]
        recalls.append(len(got & truth) / k)
    out = {
        "mode": mode.value,
        "ef_search": store.ef_search,
        "queries": len(queries),
        f"recall_at_{k}": statistics.fmean(recalls),
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "floor_p50_ms": pct(floor, 50),
        "floor_p95_ms": pct(floor, 95),
    }
    if exact_latencies:
        out["exact_p50_ms"] = pct(exact_latencies, 50)
    return out


def stack_dsn() -> str:
    if os.environ.get("CAIRN_POSTGRES_DSN"):
        return os.environ["CAIRN_POSTGRES_DSN"]
    from cairn_localstack.config import StackConfig

    return StackConfig.for_profile(os.environ.get("CAIRN_STACK_PROFILE", "test")).service_env()[
        "CAIRN_POSTGRES_DSN"
    ]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = stack_dsn()
    name = f"retriever_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(base)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
    try:
        t0 = time.perf_counter()
        corpus = synthesize(args.chunks, args.seed)
        synth_s = time.perf_counter() - t0
        queries = make_queries(corpus, args.queries, args.seed)
        await ensure_vector_extension(dsn)
        pool = await create_pool(dsn, 1, 2, init=register_vector)
        try:
            store = PgVectorStore(pool)
            await store.migrate()
            timings = await load(pool, corpus)
            rows = []
            exact_hybrid: dict[int, set[str]] = {}
            for ef in args.ef_search:
                store.ef_search = ef
                for mode in (SearchMode.VECTOR, SearchMode.HYBRID):
                    rows.append(await measure(store, corpus, queries, args.k, mode, exact_hybrid))
        finally:
            await pool.close()
    finally:
        if not args.keep:
            admin = await asyncpg.connect(base)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    return {
        "benchmark": "retrieval",
        "measured_at": datetime.now(UTC).isoformat(),
        "chunks": args.chunks,
        "documents": corpus["n_docs"],
        "topics": corpus["n_topics"],
        "dimension": DIM,
        "k": args.k,
        "hnsw": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": args.ef_search},
        "fulltext_rank_limit": PgVectorStore(None).fulltext_rank_limit,
        "hybrid_depth": SearchQuery("", [], 1).depth,
        "cpus": os.cpu_count(),
        "synthesize_s": synth_s,
        **timings,
        "results": rows,
        "database": name if args.keep else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chunks", type=int, default=5_000, help="corpus size (100000 for the full figure)")
    parser.add_argument("--queries", type=int, default=200, help="queries per mode")
    parser.add_argument("--k", type=int, default=10, help="k of recall@k and of each search")
    parser.add_argument(
        "--ef-search",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[40, 100, 200],
        help="hnsw.ef_search values, comma separated (hybrid raises it to the candidate depth, 40)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    report = asyncio.run(run(args))

    from rich.console import Console
    from rich.table import Table

    k = args.k
    table = Table(
        title=f"retrieval on {args.chunks:,} chunks "
        f"(pgvector HNSW m={HNSW_M}, ef_construction={HNSW_EF_CONSTRUCTION})"
    )
    for col in ("mode", "ef_search", f"recall@{k}", "p50 ms", "p95 ms", "floor p50/p95 ms", "exact p50 ms"):
        table.add_column(col, justify="right")
    for r in report["results"]:
        exact = f"{r['exact_p50_ms']:.1f}" if "exact_p50_ms" in r else "-"
        table.add_row(
            r["mode"],
            str(r["ef_search"]),
            f"{r[f'recall_at_{k}']:.3f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p95_ms']:.2f}",
            f"{r['floor_p50_ms']:.2f} / {r['floor_p95_ms']:.2f}",
            exact,
        )
    console = Console()
    console.print(table)
    console.print(f"load (COPY) {report['copy_s']:.1f} s, HNSW build {report['hnsw_build_s']:.1f} s")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "retrieval_bench.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()

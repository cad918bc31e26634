"""Fitting and judging the jailbreak detector (`cairn safety train`, `make safety-model`).

`train` fits `domain.jailbreak.JailbreakModel` on labelled texts: the vocabulary is the `max_char`
character and `max_word` word n-grams found in most training texts (at least two; ties broken
alphabetically), the classifier scikit-learn's L2 logistic regression (lbfgs, balanced class weights).
The review and block thresholds come from 5-fold cross-validated scores on the training data: the lowest
scores that keep every benign training collection's false-positive rate at or below `target_fpr` and
`block_fpr`, but never below `min_review` (0.5, the classifier's own decision boundary) and `min_block`
(0.8): the training benign texts hold too few of the short instructions people write to an assistant for
their cross-validated rate alone to set the thresholds. Nothing random is left unseeded and weights are
rounded before use, so the same data and settings give the same artefact.

`evaluate` scores held-out jailbreaks and benign texts with the finished model exactly as screening
does (every reading, windows) and reports catch and false-positive rates per collection and category, at
the review and at the block threshold.
"""

from __future__ import annotations

import math
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cairn_safety import corpora, jailbreak_synthetic
from cairn_safety.corpora import CorpusText
from cairn_safety.domain.jailbreak import JailbreakModel, features
from cairn_safety.domain.normalise import skeleton

__all__ = ["Rates", "TrainingSettings", "evaluate", "provenance", "rates", "train", "train_from_corpora"]

VERSION = "jailbreak-v1"


@dataclass(frozen=True)
class TrainingSettings:
    """What `train` is told; recorded in the artefact's provenance."""

    seed: int = 0
    c: float = 4.0
    max_char: int = 12000
    max_word: int = 6000
    target_fpr: float = 0.01
    block_fpr: float = 0.002
    min_review: float = 0.5
    min_block: float = 0.8
    window_words: int = 200
    synthetic_scale: float = 1.0
    """How many generated texts (`jailbreak_synthetic`) join the training collections (0: none)."""


def _vocabulary(docs: Sequence[Counter[str]], limit: int) -> list[str]:
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.keys())
    kept = [(n, gram) for gram, n in df.items() if n >= 2]
    kept.sort(key=lambda item: (-item[0], item[1]))
    return sorted(gram for _, gram in kept[:limit])


def _idf(docs: Sequence[Counter[str]], vocabulary: Sequence[str]) -> dict[str, float]:
    df: Counter[str] = Counter()
    wanted = set(vocabulary)
    for doc in docs:
        df.update(g for g in doc if g in wanted)
    n = len(docs)
    return {gram: round(math.log((1 + n) / (1 + df[gram])) + 1.0, 5) for gram in vocabulary}


def _matrix(docs: Sequence[Counter[str]], idf: dict[str, float], index: dict[str, int]) -> Any:
    from scipy.sparse import csr_matrix  # type: ignore[import-untyped]

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for r, doc in enumerate(docs):
        entries = [(index[g], (1.0 + math.log(c)) * idf[g]) for g, c in doc.items() if g in index]
        norm = math.sqrt(sum(v * v for _, v in entries)) or 1.0
        for col, v in entries:
            rows.append(r)
            cols.append(col)
            vals.append(v / norm)
    return csr_matrix((vals, (rows, cols)), shape=(len(docs), len(index)), dtype=np.float64)


def _design(
    chars: Sequence[Counter[str]], words: Sequence[Counter[str]], settings: TrainingSettings
) -> tuple[Any, dict[str, float], dict[str, float], list[str], list[str]]:
    from scipy.sparse import hstack

    char_vocab = _vocabulary(chars, settings.max_char)
    word_vocab = _vocabulary(words, settings.max_word)
    char_idf, word_idf = _idf(chars, char_vocab), _idf(words, word_vocab)
    x = hstack(
        [
            _matrix(chars, char_idf, {g: i for i, g in enumerate(char_vocab)}),
            _matrix(words, word_idf, {g: i for i, g in enumerate(word_vocab)}),
        ]
    ).tocsr()
    return x, char_idf, word_idf, char_vocab, word_vocab


def _classifier(settings: TrainingSettings) -> Any:
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    return LogisticRegression(
        C=settings.c, max_iter=5000, class_weight="balanced", solver="lbfgs", random_state=settings.seed
    )


def _cut(scores: np.ndarray, fpr: float) -> float:
    """The lowest score that flags at most `fpr` of these (benign) scores."""
    ordered = np.sort(scores)
    allowed = math.floor(fpr * len(ordered))
    return float(ordered[len(ordered) - allowed - 1]) + 1e-6 if allowed < len(ordered) else 0.0


def _thresholds(
    x: Any, y: np.ndarray, kinds: np.ndarray, settings: TrainingSettings, groups: np.ndarray | None = None
) -> tuple[float, float, dict[str, Any]]:
    """The review and block thresholds from 5-fold cross-validated scores on the training data: the lowest
    scores that keep the false-positive rate of every benign training collection (small talk, writing
    requests, web and shell tasks, customer requests ...) at or below `target_fpr` and `block_fpr`; with
    the cross-validated figures at both. Per collection, so short instructions are not outvoted by long
    writing requests."""
    from sklearn.model_selection import (  # type: ignore[import-untyped]
        StratifiedGroupKFold,
        cross_val_predict,
    )

    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=settings.seed)
    if groups is None:
        groups = np.arange(len(y))
    classifier = _classifier(settings)
    proba = cross_val_predict(classifier, x, y, cv=folds, groups=groups, method="predict_proba")
    scores = proba[:, 1]
    benign_kinds = sorted(set(kinds[y == 0].tolist()))

    def cut(fpr: float) -> float:
        return max(_cut(scores[(y == 0) & (kinds == kind)], fpr) for kind in benign_kinds)

    review = round(min(max(cut(settings.target_fpr), settings.min_review), 0.99), 6)
    block = round(min(max(cut(settings.block_fpr), settings.min_block, review), 0.995), 6)

    def figures(at: float) -> dict[str, float]:
        out = {"catch_rate": round(float(np.mean(scores[y == 1] >= at)), 4)}
        for kind in benign_kinds:
            out[f"false_positive_rate:{kind}"] = round(
                float(np.mean(scores[(y == 0) & (kinds == kind)] >= at)), 4
            )
        return out

    found = {"review": round(cut(settings.target_fpr), 6), "block": round(cut(settings.block_fpr), 6)}
    return review, block, {"cut": found, "review": figures(review), "block": figures(block)}


def train(
    texts: Sequence[CorpusText], settings: TrainingSettings = TrainingSettings(), version: str = VERSION
) -> JailbreakModel:
    """Fit a detector on labelled texts (jailbreak = 1, benign = 0); see the module docstring."""
    labels = {t.label for t in texts}
    if labels != {"jailbreak", "benign"}:
        raise ValueError(f"training needs jailbreak and benign texts, got labels {sorted(labels)}")
    pairs = [features(skeleton(t.text)) for t in texts]
    chars, words = [p[0] for p in pairs], [p[1] for p in pairs]
    y = np.array([1 if t.label == "jailbreak" else 0 for t in texts])
    x, char_idf, word_idf, char_vocab, word_vocab = _design(chars, words, settings)
    kinds = np.array([t.collection if t.label == "benign" else "" for t in texts])
    classifier = _classifier(settings).fit(x, y)
    coef = [round(float(c), 6) for c in classifier.coef_[0]]
    groups = np.unique([jailbreak_synthetic.group(t) for t in texts], return_inverse=True)[1]
    threshold, block, cv = _thresholds(x, y, kinds, settings, groups)
    return JailbreakModel(
        version=version,
        char_weights={g: (char_idf[g], coef[i]) for i, g in enumerate(char_vocab)},
        word_weights={g: (word_idf[g], coef[len(char_vocab) + i]) for i, g in enumerate(word_vocab)},
        intercept=round(float(classifier.intercept_[0]), 6),
        threshold=threshold,
        block_threshold=block,
        window_words=settings.window_words,
        provenance={"settings": settings.__dict__, "cross_validation": cv},
    )


@dataclass(frozen=True)
class Rates:
    """How many of some texts a detector flagged."""

    flagged: int
    total: int

    @property
    def rate(self) -> float:
        """The share flagged (0 when there are none)."""
        return self.flagged / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, float | int]:
        """`{"flagged", "total", "rate"}` for JSON."""
        return {"flagged": self.flagged, "total": self.total, "rate": round(self.rate, 4)}


def rates(texts: Sequence[CorpusText], flagged: Callable[[CorpusText], bool]) -> dict[str, Rates]:
    """Flag rates overall (`all`), per collection, per category (`category:<name>`) and for the strict
    held-out variant (`strict`: without the in-the-wild templates that share an origin with training)."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for t in texts:
        hit = flagged(t)
        groups["all"].append(hit)
        groups[t.collection].append(hit)
        groups[f"category:{t.category}"].append(hit)
        if t.label == "jailbreak" and "/in_the_wild/" not in t.source:
            groups["strict"].append(hit)
    return {name: Rates(sum(hits), len(hits)) for name, hits in sorted(groups.items())}


def evaluate(
    model: JailbreakModel, heldout: Sequence[CorpusText], benign: Sequence[CorpusText]
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Catch rates on held-out jailbreaks and false-positive rates on benign texts at the model's review
    threshold (`catch_rate`, `false_positive_rate`) and at its block threshold (`..._block`)."""
    scores = {t.text: model.score(t.text).score for t in [*heldout, *benign]}
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for suffix, at in (("", model.threshold), ("_block", model.block_threshold)):

        def flagged(t: CorpusText, at: float = at) -> bool:
            return scores[t.text] >= at

        out[f"catch_rate{suffix}"] = {k: v.as_dict() for k, v in rates(heldout, flagged).items()}
        out[f"false_positive_rate{suffix}"] = {k: v.as_dict() for k, v in rates(benign, flagged).items()}
    return out


def _code_version() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def provenance(names: Sequence[str]) -> dict[str, Any]:
    """What the training data was: the collections used (role, label, count-free description) and their
    packages pinned by version and wheel sha256."""
    known = corpora.collections()
    used = [known[n] for n in names]
    return {
        "collections": {
            c.name: {"package": c.package.name, "role": c.role, "label": c.label, "paths": list(c.paths)}
            for c in used
        },
        "packages": {
            c.package.name: {
                "version": c.package.version,
                "wheel": c.package.wheel,
                "sha256": c.package.sha256,
                "licence": c.package.licence,
            }
            for c in used
        },
        "code": _code_version(),
    }


def train_from_corpora(
    settings: TrainingSettings = TrainingSettings(), cache: Path | None = None, *, judge: bool = True
) -> JailbreakModel:
    """Train on every `train` collection of the manifest and, with `judge`, record `evaluate`'s figures on
    the held-out and benign collections in the provenance."""
    known = corpora.collections()
    collected = corpora.load_role("train", cache)
    generated = jailbreak_synthetic.generate(collected, settings.seed, settings.synthetic_scale)
    training = [*collected, *generated]
    model = train(training, settings)
    record: dict[str, Any] = {
        **dict(model.provenance),
        **provenance(list(known)),
        "generated": {
            "module": jailbreak_synthetic.SOURCE,
            "collections": list(jailbreak_synthetic.COLLECTIONS),
            "seed": settings.seed,
            "scale": settings.synthetic_scale,
            "counts": dict(sorted(Counter(t.collection for t in generated).items())),
            "note": "written for this project from the general taxonomy of prompt injection after the "
            "held-out per-category figures were seen; no held-out text copied, paraphrased or templated",
        },
        "training_texts": dict(sorted(Counter(t.collection for t in training).items())),
    }
    if judge:
        heldout, benign = corpora.load_role("heldout", cache), corpora.load_role("benign", cache)
        record["evaluation"] = evaluate(model, heldout, benign)
    return JailbreakModel(
        version=model.version,
        char_weights=model.char_weights,
        word_weights=model.word_weights,
        intercept=model.intercept,
        threshold=model.threshold,
        block_threshold=model.block_threshold,
        window_words=model.window_words,
        provenance=record,
    )

"""The local default toxicity classifier: the scikit-learn model shipped in `alt-profanity-check`.

A linear model over word n-grams (TF-IDF, a LinearSVC calibrated with sigmoids over 5 folds),
trained for profanity and insults: offline and small, but blind to toxicity phrased politely and
quick to flag single swear words in harmless sentences. Policies should treat its scores accordingly.

`profanity_check.predict_prob` spends ~3 ms a call in scikit-learn's per-call checks, most of a
screening's time. When the shipped model has the expected shape, this adapter computes the same
probabilities directly (decision function of each fold's linear model, its sigmoid, their mean:
~0.3 ms) and proves on load that they match `predict_prob` on a probe set; otherwise, or with
`fast=False`, it calls `predict_prob`. On the fast path it is `inline`: the screener calls it on the
event loop, since a hand-off to a worker thread would cost more than the scoring.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cairn_safety.adapters.errors import ClassifierUnavailableError

__all__ = ["ProfanityCheckClassifier"]

_PROBE = [
    "you are a fucking idiot",
    "How long does a refund take?",
    "what the heck",
    "I will find you, you worthless piece of shit",
    "Thanks, that solved it!",
    "",
]


def _linear_path(vectorizer: Any, model: Any) -> Callable[[list[str]], Any] | None:
    """The calibrated linear model as plain matrix algebra, or None when the model is not that shape."""
    try:
        folds = model.calibrated_classifiers_
        weights = np.vstack([f.estimator.coef_ for f in folds])
        bias = np.array([f.estimator.intercept_[0] for f in folds])
        calibrators = [f.calibrators[0] for f in folds]
        if weights.shape[0] != len(folds) or any(len(f.calibrators) != 1 for f in folds):
            return None
    except (AttributeError, IndexError, TypeError, ValueError):
        return None

    def predict(texts: list[str]) -> Any:
        decision = np.asarray(vectorizer.transform(texts) @ weights.T) + bias
        return np.mean([c.predict(decision[:, i]) for i, c in enumerate(calibrators)], axis=0)

    return predict


class ProfanityCheckClassifier:
    """ToxicityClassifier on the `alt-profanity-check` model (loads on construction)."""

    name = "profanity-check"

    def __init__(self, fast: bool = True) -> None:
        try:
            module = importlib.import_module("profanity_check.profanity_check")
        except ImportError as exc:  # pragma: no cover - the package is a dependency
            raise ClassifierUnavailableError(
                "the toxicity classifier `profanity-check` needs the package alt-profanity-check "
                "(pip install alt-profanity-check)"
            ) from exc
        self._predict: Callable[[list[str]], Any] = module.predict_prob
        self.fast = False
        self.inline = False  # the screener runs it on the event loop only on the fast path
        if fast:
            linear = _linear_path(getattr(module, "vectorizer", None), getattr(module, "model", None))
            if linear is not None and np.allclose(
                linear(_PROBE), module.predict_prob(_PROBE), rtol=0, atol=1e-9
            ):
                self._predict, self.fast, self.inline = linear, True, True

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return [min(1.0, max(0.0, float(p))) for p in self._predict(list(texts))]

"""Curation rules: which feedback makes a training row, and what the row's target is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cairn_events import FeedbackSubmittedV1
from cairn_feedback.domain.errors import InvalidRuleError

__all__ = ["CORRECTED", "THUMBS_UP", "Rules", "parse_rules"]

CORRECTED = "corrected"
THUMBS_UP = "thumbs_up"
MIN_RATING = "min_rating"


@dataclass(frozen=True)
class Rules:
    """The selection rules of one build: corrections, a minimum rating, thumbs up."""

    corrected: bool = False
    min_rating: int | None = None
    thumbs_up: bool = False

    def names(self) -> list[str]:
        """The rules as written in manifests and events, e.g. `["corrected", "min_rating:4"]`."""
        out = [CORRECTED] if self.corrected else []
        if self.min_rating is not None:
            out.append(f"{MIN_RATING}:{self.min_rating}")
        if self.thumbs_up:
            out.append(THUMBS_UP)
        return out

    def source_of(self, feedback: FeedbackSubmittedV1) -> Literal["corrected", "rated"] | None:
        """Why `feedback` selects its request: `corrected` (target: the correction), `rated` (target:
        the original answer) or None. A correction wins over a rating on the same feedback."""
        if self.corrected and feedback.corrected_answer is not None and feedback.corrected_answer.strip():
            return "corrected"
        if self.min_rating is not None and feedback.rating is not None and feedback.rating >= self.min_rating:
            return "rated"
        if self.thumbs_up and feedback.thumbs == "up":
            return "rated"
        return None


def parse_rules(texts: list[str]) -> Rules:
    """`corrected`, `min_rating:N` (1-5) and `thumbs_up`, any combination; at least one.

    Raises InvalidRuleError naming the rule that cannot be read.
    """
    if not texts:
        raise InvalidRuleError("give at least one rule: corrected, min_rating:N or thumbs_up")
    corrected, thumbs_up, min_rating = False, False, None
    for text in texts:
        rule = text.strip()
        if rule == CORRECTED:
            corrected = True
        elif rule == THUMBS_UP:
            thumbs_up = True
        elif rule.startswith(MIN_RATING + ":"):
            value = rule.removeprefix(MIN_RATING + ":")
            if not value.isdigit() or not 1 <= int(value) <= 5:
                raise InvalidRuleError(f"rule {text!r}: the minimum rating must be 1 to 5")
            min_rating = int(value) if min_rating is None else min(min_rating, int(value))
        else:
            raise InvalidRuleError(f"unknown rule {text!r} (rules: corrected, min_rating:N, thumbs_up)")
    return Rules(corrected=corrected, min_rating=min_rating, thumbs_up=thumbs_up)

"""Curation rules: which feedback makes a training row, and what the row's target is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from cairn_events import FeedbackSubmittedV1
from cairn_feedback.domain.errors import InvalidRuleError

__all__ = ["CORRECTED", "TEACHER", "THUMBS_UP", "Rules", "parse_rules"]

CORRECTED = "corrected"
THUMBS_UP = "thumbs_up"
MIN_RATING = "min_rating"
TEACHER = "teacher"
_MODEL_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*(:[0-9]+)?")
"""A teacher: a registry version (`cairn-qa:2`) or a base model's name (`SmolLM2-135M-Instruct`)."""
_KNOWN = "corrected, min_rating:N, thumbs_up, teacher:MODEL"


@dataclass(frozen=True)
class Rules:
    """The selection rules of one build: corrections, a minimum rating, thumbs up, a teacher's answers."""

    corrected: bool = False
    min_rating: int | None = None
    thumbs_up: bool = False
    teacher: str | None = None
    """The model reference whose answers are targets (distillation), e.g. `cairn-qa:2`."""

    def names(self) -> list[str]:
        """The rules as written in manifests and events, e.g. `["corrected", "min_rating:4"]`."""
        out = [CORRECTED] if self.corrected else []
        if self.min_rating is not None:
            out.append(f"{MIN_RATING}:{self.min_rating}")
        if self.thumbs_up:
            out.append(THUMBS_UP)
        if self.teacher is not None:
            out.append(f"{TEACHER}:{self.teacher}")
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
    """`corrected`, `min_rating:N` (1-5), `thumbs_up` and `teacher:MODEL`, any combination; at least one.

    MODEL is a registry version (`cairn-qa:2`) or a base model's name; one teacher per build.
    Raises InvalidRuleError naming the rule that cannot be read.
    """
    if not texts:
        raise InvalidRuleError(f"give at least one rule: {_KNOWN}")
    corrected, thumbs_up, min_rating, teacher = False, False, None, None
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
        elif rule.startswith(TEACHER + ":"):
            model = rule.removeprefix(TEACHER + ":").strip()
            if not _MODEL_REF.fullmatch(model):
                raise InvalidRuleError(
                    f"rule {text!r}: name the teacher as a registry version (cairn-qa:2) or a base model"
                )
            if teacher is not None and teacher != model:
                raise InvalidRuleError(f"one teacher per build: {teacher!r} and {model!r}")
            teacher = model
        else:
            raise InvalidRuleError(f"unknown rule {text!r} (rules: {_KNOWN})")
    return Rules(corrected=corrected, min_rating=min_rating, thumbs_up=thumbs_up, teacher=teacher)

"""A tenant's safety policy: per stage (input, output) and per check, score thresholds and actions.

A check's score is looked up in its thresholds: the action of the highest `min_score` the score
reaches applies; below every threshold the check allows. A check "fires" when that action is not
`allow`. The verdict of a screening is the most severe action of the checks that fired
(block > review > redact > allow).

```yaml
name: default
version: 3
input:
  toxicity:
    thresholds: [{min_score: 0.8, action: block}, {min_score: 0.5, action: review}]
  pii: {thresholds: [{min_score: 0.5, action: redact}], kinds: [email, phone, card_number]}
  injection: {thresholds: [{min_score: 0.8, action: block}, {min_score: 0.5, action: review}]}
  context_injection: {thresholds: [{min_score: 0.8, action: block}]}
output:
  toxicity: {enabled: false}
  ...
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cairn_events import Verdict
from cairn_safety.domain.pii import PiiKind

__all__ = [
    "SEVERITY",
    "CheckPolicy",
    "InputPolicy",
    "OutputPolicy",
    "PiiPolicy",
    "Policy",
    "PolicyError",
    "Stage",
    "Threshold",
]

Stage = Literal["input", "output"]
"""Which text a screening looks at: the request's input, or the model's output."""

SEVERITY: dict[Verdict, int] = {Verdict.ALLOW: 0, Verdict.REDACT: 1, Verdict.REVIEW: 2, Verdict.BLOCK: 3}
"""How severe each verdict is; a screening's verdict is the most severe action that fired."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PolicyError(ValueError):
    """A policy file is missing, not YAML, or not a valid policy; says which file and which fields."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


def _strict() -> ConfigDict:
    return ConfigDict(frozen=True, extra="forbid")


class Threshold(BaseModel):
    """From `min_score` up (inclusive), the check takes `action`."""

    model_config = _strict()

    min_score: float = Field(ge=0.0, le=1.0, description="The lowest score this action applies to.")
    action: Verdict = Field(description="What a score at or above `min_score` leads to.")


class CheckPolicy(BaseModel):
    """Whether a check runs, and its thresholds."""

    model_config = _strict()

    enabled: bool = Field(True, description="Whether the check runs at all.")
    thresholds: tuple[Threshold, ...] = Field(
        (), description="Score thresholds and their actions; the highest threshold reached applies."
    )

    can_redact: ClassVar[bool] = False
    """Whether this check's thresholds may say `redact` (only PII can be redacted)."""

    @model_validator(mode="after")
    def _check_thresholds(self) -> Self:
        if self.enabled and not self.thresholds:
            raise ValueError("an enabled check needs at least one threshold (or `enabled: false`)")
        scores = [t.min_score for t in self.thresholds]
        if len(set(scores)) != len(scores):
            raise ValueError(f"thresholds repeat a min_score: {sorted(scores)}")
        if not self.can_redact and any(t.action is Verdict.REDACT for t in self.thresholds):
            raise ValueError("only the pii check can redact; use allow, review or block")
        return self

    def action_for(self, score: float) -> Verdict:
        """The action a score leads to: that of the highest threshold it reaches, else allow."""
        reached = [t for t in self.thresholds if score >= t.min_score]
        if not self.enabled or not reached:
            return Verdict.ALLOW
        return max(reached, key=lambda t: t.min_score).action

    def threshold_for(self, score: float) -> float | None:
        """The `min_score` of the threshold a score reaches (None below every threshold)."""
        reached = [t.min_score for t in self.thresholds if score >= t.min_score]
        return max(reached) if reached else None


class PiiPolicy(CheckPolicy):
    """The PII check: which kinds of personal data to look for, and what to do when found."""

    can_redact: ClassVar[bool] = True
    kinds: tuple[PiiKind, ...] = Field(tuple(PiiKind), description="Kinds of personal data to detect.")


class InputPolicy(BaseModel):
    """Checks on a request's input: the user's turns, and the retrieved context for injection."""

    model_config = _strict()

    toxicity: CheckPolicy = Field(description="Toxicity classifier on the user's turns.")
    pii: PiiPolicy = Field(description="Personal data in the user's turns.")
    injection: CheckPolicy = Field(description="Prompt-injection patterns in the user's turns.")
    context_injection: CheckPolicy = Field(
        description="Prompt-injection patterns in the retrieved chunks (a poisoned document)."
    )


class OutputPolicy(BaseModel):
    """Checks on the generated text."""

    model_config = _strict()

    toxicity: CheckPolicy = Field(description="Toxicity classifier on the generated text.")
    pii: PiiPolicy = Field(description="Personal data in the generated text.")
    injection: CheckPolicy = Field(
        CheckPolicy(enabled=False),
        description="Prompt-injection patterns in the generated text (e.g. a leaked control token).",
    )


class Policy(BaseModel):
    """One tenant's safety policy (a file `infra/policies/<tenant>.yaml`)."""

    model_config = _strict()

    name: str = Field(description="The policy's name: the file name without `.yaml`.")
    version: int = Field(1, ge=1, description="Bumped on every change; recorded with each verdict.")
    description: str = Field("", description="What the policy is for.")
    input: InputPolicy = Field(description="Checks before inference.")
    output: OutputPolicy = Field(description="Checks after inference.")

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-64 of letters, digits and `._-`, starting with a letter or digit")
        return value

    @property
    def ref(self) -> str:
        """`name@version`, as recorded in `InputScreenedV1.policy`."""
        return f"{self.name}@{self.version}"

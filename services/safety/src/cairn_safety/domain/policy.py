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
  jailbreak: {thresholds: [{min_score: 0.85, action: block}, {min_score: 0.5, action: review}]}
  ...
```
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cairn_bus.policy_files import PolicyFileError
from cairn_events import Verdict
from cairn_safety.domain.pii import PiiKind

__all__ = [
    "SEVERITY",
    "CheckPolicy",
    "GroundednessAction",
    "GroundednessPolicy",
    "InputPolicy",
    "OutputPolicy",
    "PiiPolicy",
    "Policy",
    "PolicyError",
    "ReviewPolicy",
    "Stage",
    "Threshold",
]

Stage = Literal["input", "output"]
"""Which text a screening looks at: the request's input, or the model's output."""

SEVERITY: dict[Verdict, int] = {Verdict.ALLOW: 0, Verdict.REDACT: 1, Verdict.REVIEW: 2, Verdict.BLOCK: 3}
"""How severe each verdict is; a screening's verdict is the most severe action that fired."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PolicyError(PolicyFileError):
    """A policy file is missing, not YAML, or not a valid policy; says which file and which fields."""


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
    jailbreak: CheckPolicy = Field(
        CheckPolicy(enabled=False),
        description="The learned jailbreak / prompt-injection detector on the user's turns; its score is "
        "the model's probability (docs/safety-jailbreak.md). Off unless configured.",
    )


GroundednessAction = Literal["flag", "cite", "review"]
"""What the groundedness gate does to an answer below its threshold: `flag` releases it with the fired
finding; `cite` replaces it by the retrieved passages with a note; `review` holds it for a reviewer."""


class GroundednessPolicy(BaseModel):
    """The groundedness gate: how much of an answer its retrieved chunks must support before release.

    The score is the share of the answer's sentences (weighted by length) the chunks support
    (`cairn_embedding.groundedness`); an answer scoring below `threshold` fires the gate. Answers
    without retrieved chunks are not scored. Off when a policy has no `groundedness` section; on
    when it has one, unless `enabled: false`.
    """

    model_config = _strict()

    enabled: bool = Field(True, description="Whether the gate runs (only on answers with retrieved chunks).")
    threshold: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="The answer's groundedness score below which the gate fires (0.7: the best F1 of the "
        "lexical gate on benchmarks/data/groundedness_labelled.jsonl, see docs/groundedness.md).",
    )
    action: GroundednessAction = Field(
        "flag", description="What happens to an answer below the threshold: flag, cite or review."
    )
    semantic: bool = Field(
        False,
        description="Also score sentence-embedding similarity (all-MiniLM-L6-v2); lexical support only "
        "when false, or when the service runs without an embedder (CAIRN_GROUNDEDNESS_EMBEDDER).",
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
    jailbreak: CheckPolicy = Field(
        CheckPolicy(enabled=False),
        description="Signs in the generated text that a jailbreak worked: a persona speaking, dual "
        "answers, claims of having no rules (off unless configured).",
    )
    groundedness: GroundednessPolicy = Field(
        GroundednessPolicy(enabled=False),
        description="The groundedness gate on answers with retrieved chunks (off unless configured).",
    )


class ReviewPolicy(BaseModel):
    """How long a held request waits for a reviewer, and what applies when no one decides in time."""

    model_config = _strict()

    deadline_s: int = Field(
        3600, ge=1, le=30 * 24 * 3600, description="Seconds a held request waits for a reviewer's decision."
    )
    on_deadline: Literal["approve", "reject"] = Field(
        "reject",
        description="The decision applied when the deadline passes: release the held answer, or block.",
    )


class Policy(BaseModel):
    """One tenant's safety policy (a file `infra/policies/<tenant>.yaml`)."""

    model_config = _strict()

    name: str = Field(description="The policy's name: the file name without `.yaml`.")
    version: int = Field(1, ge=1, description="Bumped on every change; recorded with each verdict.")
    description: str = Field("", description="What the policy is for.")
    input: InputPolicy = Field(description="Checks before inference.")
    output: OutputPolicy = Field(description="Checks after inference.")
    review: ReviewPolicy = Field(
        ReviewPolicy(), description="Human review: the deadline of a held request and its default decision."
    )

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

"""Evaluation suites as data: cases to ask, what a good answer contains, and the suite's gate.

Kinds: `scenario` (expected / forbidden content, metric `pass_rate`), `adversarial` (must be
blocked, rejected or refused, metric `refusal_rate`) and `heldout` (the candidate's dataset
held-out rows, metrics `token_f1`, `exact_match`, `rouge_l`; built per run, not from a file).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cairn_events import ChatMessage, JsonScalar
from cairn_events.artifacts import DatasetRow

__all__ = ["HELDOUT_SUITE", "SLICE_PATTERN", "EvalCase", "Gate", "Suite", "heldout_suite", "slice_metric"]

SuiteKind = Literal["scenario", "adversarial", "heldout"]
HELDOUT_SUITE = "heldout"
PRIMARY_METRIC: dict[str, str] = {
    "scenario": "pass_rate",
    "adversarial": "refusal_rate",
    "heldout": "token_f1",
}
SLICE_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


def slice_metric(metric: str, slice_name: str) -> str:
    """The name a metric has on one slice of a suite: `refusal_rate[persona]`."""
    return f"{metric}[{slice_name}]"


class EvalCase(BaseModel):
    """One request to send (to candidate and baseline alike) and how its answer is judged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="Case id, unique within its suite.")
    prompt: str = Field("qa", description="Prompt reference of the request.")
    variables: dict[str, JsonScalar] = Field({}, description="Template variables.")
    messages: list[ChatMessage] = Field([], description="Extra chat turns.")
    retrieval: dict[str, Any] | None = Field(None, description="RetrievalOptions as JSON, if any.")
    expect_any: list[str] = Field([], description="At least one must occur (case-insensitive).")
    expect_all: list[str] = Field([], description="Every one must occur (case-insensitive).")
    forbid: list[str] = Field([], description="None may occur (case-insensitive).")
    reference: str | None = Field(None, description="The reference answer (held-out rows).")
    slice: str | None = Field(
        None,
        pattern=SLICE_PATTERN,
        description="The slice the case belongs to (e.g. `persona`, a tenant or a topic): the suite's metrics "
        "are also reported per slice, and the gate may hold each slice to its own floor and regression limit.",
    )
    source: str | None = Field(
        None, description="Where the case comes from (package, version, file, record), for generated suites."
    )
    topic: str | None = Field(
        None,
        description="The case's topic, for the `topic` facet (default: its `topic` variable, if a string).",
    )
    tenant: str | None = Field(
        None,
        description="The tenant the case comes from, for the `tenant` facet (a held-out row's tenant; "
        "default: the tenant the evaluator asks as).",
    )


class Gate(BaseModel):
    """What the candidate must reach on the suite's metric to be promoted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = Field(description="The gated metric.")
    min: float | None = Field(None, description="Absolute floor of the candidate's score.")
    max_regression: float | None = Field(
        None, ge=0.0, description="Largest drop allowed below the baseline's score."
    )
    min_improvement: float | None = Field(
        None, ge=0.0, description="The candidate must beat the baseline by more than this."
    )
    slice_min: float | None = Field(None, description="Floor of the candidate's score on every slice.")
    max_slice_regression: float | None = Field(
        None,
        ge=0.0,
        description="Largest drop below the baseline allowed on any one slice (even when the overall score holds).",
    )
    max_facet_regression: float | None = Field(
        None,
        ge=0.0,
        description="Largest drop below the baseline allowed on the gated metric in any one facet slice "
        "(`tenant`, `prompt`, `topic`, `length`) with at least `min_facet_cases` cases on both sides; "
        "none: facets are reported, not gated.",
    )
    min_facet_cases: int = Field(
        5,
        ge=1,
        description="Fewest cases (on each side) a facet slice needs to be held to `max_facet_regression`.",
    )

    @property
    def gates_slices(self) -> bool:
        """Whether the gate holds each slice to a rule of its own."""
        return self.slice_min is not None or self.max_slice_regression is not None

    def explain(self) -> str:
        """The gate in words, for reports."""
        parts = []
        if self.min is not None:
            parts.append(f"{self.metric} >= {self.min:g}")
        if self.max_regression is not None:
            parts.append(f"drop vs baseline <= {self.max_regression:g}")
        if self.min_improvement is not None:
            parts.append(f"beats baseline by > {self.min_improvement:g}")
        if self.slice_min is not None:
            parts.append(f"every slice >= {self.slice_min:g}")
        if self.max_slice_regression is not None:
            parts.append(f"no slice drops more than {self.max_slice_regression:g} vs baseline")
        if self.max_facet_regression is not None:
            parts.append(
                f"no facet slice of >= {self.min_facet_cases} cases drops more than "
                f"{self.max_facet_regression:g} vs baseline"
            )
        return "; ".join(parts) or "none"

    def explain_slice(self) -> str:
        """The rule each slice is held to, in words."""
        parts = []
        if self.slice_min is not None:
            parts.append(f">= {self.slice_min:g}")
        if self.max_slice_regression is not None:
            parts.append(f"drop vs baseline <= {self.max_slice_regression:g}")
        return "; ".join(parts) or "reported, not gated"


class Suite(BaseModel):
    """A named set of cases of one kind, with its gate and generation budget."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Suite name.")
    kind: SuiteKind = Field(description="How answers are judged.")
    description: str = Field("", description="What the suite checks.")
    max_tokens: int = Field(48, ge=1, le=8192, description="max_tokens of every request.")
    gate: Gate = Field(description="The promotion gate of the suite.")
    cases: list[EvalCase] = Field(description="The cases, asked in order.")

    @property
    def slices(self) -> list[str]:
        """The slices its cases name, in order of first appearance."""
        return list(dict.fromkeys(c.slice for c in self.cases if c.slice is not None))

    @model_validator(mode="after")
    def _check(self) -> Suite:
        ids = [c.id for c in self.cases]
        if len(ids) != len(set(ids)):
            raise ValueError(f"suite {self.name}: duplicate case ids")
        if self.kind != "heldout" and not self.cases:
            raise ValueError(f"suite {self.name}: no cases")
        if self.gate.gates_slices and self.kind != "heldout" and not self.slices:
            raise ValueError(f"suite {self.name}: the gate holds slices to rules but no case names a slice")
        return self


def heldout_suite(
    rows: list[DatasetRow],
    *,
    max_tokens: int,
    min_f1: float,
    min_improvement: float,
    max_facet_regression: float | None = None,
    min_facet_cases: int = 5,
) -> Suite:
    """The held-out suite of a candidate: each row re-asks its source request (the case keeps the
    row's tenant); the reference is the row's completion. The gate: token F1 at least `min_f1`, and
    above the baseline's by more than `min_improvement` ("promote only if it wins"); with
    `max_facet_regression`, also no facet slice of `min_facet_cases` cases dropping more than that."""
    cases = [
        EvalCase(
            id=row.row_id,
            prompt=row.request.prompt,
            variables=dict(row.request.variables),
            messages=list(row.request.messages),
            retrieval=row.request.retrieval,
            reference=row.completion,
            tenant=row.tenant,
        )
        for row in rows
    ]
    return Suite(
        name=HELDOUT_SUITE,
        kind="heldout",
        description="The candidate's dataset held-out rows, re-asked; answers compared with the targets.",
        max_tokens=max_tokens,
        gate=Gate(
            metric="token_f1",
            min=min_f1,
            min_improvement=min_improvement,
            max_facet_regression=max_facet_regression,
            min_facet_cases=min_facet_cases,
        ),
        cases=cases,
    )

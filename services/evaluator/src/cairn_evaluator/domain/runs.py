"""Evaluation runs: a candidate (and maybe a baseline) answering every case of the suites once."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cairn_evaluator.domain.suites import EvalCase, Gate, SuiteKind
from cairn_events import ResponseStatus, SuiteScore

__all__ = [
    "EVAL_PREFIX",
    "Answer",
    "Run",
    "RunCase",
    "RunPurpose",
    "RunStatus",
    "Side",
    "SuiteSpec",
    "request_id_for",
    "run_id_for",
]

EVAL_PREFIX = "eval-"
Side = Literal["c", "b"]
RunStatus = Literal["running", "passed", "failed"]
RunPurpose = Literal["gate", "compare"]


def run_id_for(cause_event_id: str) -> str:
    """The run id a triggering event yields: the same on every redelivery."""
    return hashlib.sha256(f"cairn-eval-run|{cause_event_id}".encode()).hexdigest()[:16]


def request_id_for(run_id: str, index: int, side: Side) -> str:
    """The request id of one case asked of one side: `eval-<run_id>-<case>-<c|b>`."""
    return f"{EVAL_PREFIX}{run_id}-{index}-{side}"


class SuiteSpec(BaseModel):
    """What a run keeps of each suite besides its cases: kind, gate and description."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: SuiteKind
    description: str = ""
    max_tokens: int = 48
    gate: Gate


class Answer(BaseModel):
    """How an evaluation request ended."""

    model_config = ConfigDict(frozen=True)

    status: ResponseStatus
    text: str | None = None
    reason: str | None = None
    answered_at: datetime
    prompt: str | None = Field(None, description="The prompt as answered, `name:version`, when resolved.")


class RunCase(BaseModel):
    """One case asked of one side of a run, and its answer once it came."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    request_id: str
    index: int = Field(ge=0, description="Case number within the run (over all suites).")
    side: Side = Field(description="`c` candidate, `b` baseline.")
    suite: str
    case: EvalCase
    answer: Answer | None = None


class Run(BaseModel):
    """An evaluation run of `model_name:candidate_version` against its baseline."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    model_name: str
    candidate_version: int
    baseline_version: int | None = None
    status: RunStatus = "running"
    started_at: datetime
    deadline: datetime
    cause_event_id: str = Field(description="The event that started the run (registration or CLI).")
    suites: list[SuiteSpec]
    sent: bool = Field(False, description="Whether every request of the run was published.")
    scores: list[SuiteScore] = []
    passed: bool | None = None
    verdict: str | None = None
    report_uri: str | None = None
    completed_at: datetime | None = None
    purpose: RunPurpose = Field(
        "gate",
        description="`gate`: a candidate's run, which promotes it when every gate passes; `compare`: one "
        "version's side of `cairn eval compare`, scored and reported, never promoting.",
    )

    @property
    def candidate_ref(self) -> str:
        """`name:version` of the candidate."""
        return f"{self.model_name}:{self.candidate_version}"

    @property
    def baseline_ref(self) -> str | None:
        """`name:version` of the baseline, if any."""
        return None if self.baseline_version is None else f"{self.model_name}:{self.baseline_version}"

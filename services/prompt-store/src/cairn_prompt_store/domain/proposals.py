"""A proposal to promote an experiment's winner: what the evaluator concluded, kept for an operator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ProposalStatus = Literal["open", "accepted", "dismissed"]


@dataclass(frozen=True)
class WinnerProposal:
    """The winner of an experiment whose policy is `propose`, and what accepting it would do: point
    `label` of `prompt` at `version`."""

    conclusion_id: str
    prompt: str
    experiment: str
    label: str
    variant: str
    version: int
    evidence: float
    summary: str
    """One line on the arms' statistics, for the operator."""
    proposed_at: datetime
    status: ProposalStatus = "open"
    closed_by: str | None = None
    closed_at: datetime | None = None

"""An experiment's conclusion as the evaluator keeps it: recorded once, then published (a failed
publication is retried with the same payload and id on the next check)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from cairn_bus import derive_event_id
from cairn_events import ExperimentConcludedV1

__all__ = ["ExperimentConclusion", "conclusion_id"]


class ExperimentConclusion(BaseModel):
    """A winner found for one experiment, with the event that announces it."""

    model_config = ConfigDict(frozen=True)

    conclusion_id: str
    tenant: str
    prompt_name: str
    experiment: str
    winner: str
    event: dict[str, Any]
    """The `ExperimentConcludedV1` payload (JSON), published as is."""
    concluded_at: datetime
    published: bool = False

    @classmethod
    def of(cls, event: ExperimentConcludedV1) -> ExperimentConclusion:
        """The record of a conclusion event (not yet published)."""
        return cls(
            conclusion_id=event.conclusion_id,
            tenant=event.tenant,
            prompt_name=event.prompt_name,
            experiment=event.experiment,
            winner=event.winner,
            event=event.model_dump(mode="json"),
            concluded_at=event.concluded_at,
        )

    def to_event(self) -> ExperimentConcludedV1:
        """The event to publish."""
        return ExperimentConcludedV1.model_validate(self.event)


def conclusion_id(tenant: str, prompt_name: str, experiment: str) -> str:
    """The id of an experiment's conclusion: one per tenant, prompt and experiment name, whoever
    (which replica, which check) reaches it."""
    return derive_event_id(f"{tenant}|{prompt_name}|{experiment}", ExperimentConcludedV1.event_type)

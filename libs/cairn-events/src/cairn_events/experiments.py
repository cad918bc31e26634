"""Prompt experiments: the evaluator's verdict that one variant of an experiment is significantly better."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from cairn_events.base import INT64_MAX, Event, Identifier, PromptName, Timestamp, frozen_config

__all__ = ["ExperimentConcludedV1", "VariantStatistics"]


class VariantStatistics(BaseModel):
    """What the evaluator observed of one arm of an experiment, with 95 % confidence intervals."""

    model_config = frozen_config()

    variant: str = Field(min_length=1, description="The variant's name, as the prompt store recorded it.")
    prompt_version: int | None = Field(
        None, ge=1, le=INT64_MAX, description="The prompt version the arm rendered last; none if unknown."
    )
    requests: int = Field(ge=0, le=INT64_MAX, description="Requests the prompt store assigned to the arm.")
    observations: int = Field(
        ge=0,
        le=INT64_MAX,
        description="Requests of the arm with feedback that counts for the primary metric.",
    )
    positive_rate: float | None = Field(
        None,
        description="Share of positive feedback, 0 to 1 (thumbs up, or a rating at the threshold).",
    )
    positive_rate_low: float | None = Field(None, description="Wilson 95 % lower bound (0 to 1).")
    positive_rate_high: float | None = Field(None, description="Wilson 95 % upper bound (0 to 1).")
    refusal_rate: float | None = Field(
        None, description="Share of the arm's responses that were refusals (0 to 1); none without any."
    )
    mean_groundedness: float | None = Field(
        None, description="Mean groundedness of the arm's scored answers; none without any."
    )


class ExperimentConcludedV1(Event):
    """A sequential test found one variant of a prompt experiment significantly better on live feedback.

    Published once per experiment (its id derives from tenant, prompt and experiment); the prompt store
    promotes the winner or records a proposal, as the experiment's policy says.
    """

    event_type: ClassVar[str] = "cairn.experiment.concluded.v1"
    topic: ClassVar[str] = "cairn.experiments"
    key_field: ClassVar[str] = "prompt_name"

    conclusion_id: Identifier = Field(
        description="Id of this conclusion (one per tenant, prompt, experiment)."
    )
    tenant: str = Field(min_length=1, description="The tenant whose prompt ran the experiment.")
    prompt_name: PromptName = Field(description="The prompt whose traffic the experiment split.")
    experiment: Identifier = Field(description="The experiment's name, as the prompt store recorded it.")
    winner: str = Field(min_length=1, description="The winning variant's name.")
    winner_prompt_version: int | None = Field(
        None, ge=1, le=INT64_MAX, description="The prompt version the winner rendered last; none if unknown."
    )
    metric: str = Field(min_length=1, description="The primary metric tested, e.g. `positive_feedback_rate`.")
    test: str = Field(min_length=1, description="The sequential test, e.g. `msprt-normal-mixture`.")
    evidence: float = Field(
        ge=0.0, description="The weakest likelihood ratio of the winner against any other arm."
    )
    threshold: float = Field(
        ge=1.0, description="The likelihood ratio that is significant (1 / alpha per comparison)."
    )
    alpha: float = Field(
        description="The false-positive rate the test controls over the experiment (0 to 1)."
    )
    min_samples: int = Field(
        ge=1, le=INT64_MAX, description="Observations every arm needed before any verdict."
    )
    arms: list[VariantStatistics] = Field(min_length=2, description="Every arm's statistics at the verdict.")
    concluded_at: Timestamp = Field(description="When the evaluator reached the verdict (RFC 3339).")

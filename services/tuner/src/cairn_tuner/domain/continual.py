"""Continual tuning: where a job starts (a fresh adapter on the base, or the production adapter) and which
older rows it trains on again so that earlier behaviour is kept."""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from cairn_tuner.domain.jobs import Job

DEFAULT_REPLAY_FRACTION = 0.3
"""Share of the parent's training rows mixed in when a job starts from production without a `replay_fraction`."""


@dataclass(frozen=True)
class ProductionVersion:
    """The production version of a registry model, as the tuner learnt it from `model.promoted`."""

    model_name: str
    version: int
    adapter_uri: str | None
    """None: the version is a base model without adapter."""


@dataclass(frozen=True)
class StartPlan:
    """How a job starts: from `parent`'s adapter (None: a fresh adapter on the base) and how much of the
    parent's training data it mixes in again; `note` says so in words (the job's first progress message)."""

    parent: ProductionVersion | None
    replay_fraction: float
    note: str

    @property
    def start_from(self) -> str:
        """`production` when the job continues a production adapter, else `base`."""
        return "production" if self.parent is not None else "base"


def plan_start(job: Job, model_name: str, production: ProductionVersion | None) -> StartPlan:
    """Resolve `job.config.start_from` against the production version of `model_name`: `production` with an
    adapter in production continues it (replaying `replay_fraction`, default `DEFAULT_REPLAY_FRACTION`, of its
    training rows); otherwise the job starts from the base model, without replay, and the note says why."""
    if job.config.start_from != "production":
        return StartPlan(None, 0.0, f"starting from the base model {job.base_model}")
    if production is None:
        return StartPlan(
            None,
            0.0,
            f"starting from the base model {job.base_model}: {model_name} has no production version",
        )
    if production.adapter_uri is None:
        return StartPlan(
            None,
            0.0,
            f"starting from the base model {job.base_model}: production {model_name}:{production.version} "
            "has no adapter",
        )
    fraction = job.config.replay_fraction
    fraction = DEFAULT_REPLAY_FRACTION if fraction is None else fraction
    return StartPlan(
        production,
        fraction,
        f"starting from production adapter {model_name}:{production.version}, "
        f"replaying {fraction:g} of its training rows",
    )


class _HasRowId(Protocol):
    @property
    def row_id(self) -> str: ...


R = TypeVar("R", bound=_HasRowId)


def replay_sample(older: Sequence[R], fraction: float, seed: int, exclude: Collection[str] = ()) -> list[R]:
    """A seeded sample of `older` rows to train on again: rows whose `row_id` is in `exclude` (already in the
    new version's splits) are left out, then `round(fraction * left)` of the others (at least one when
    `fraction` > 0), in their original order. The same rows, fraction and seed give the same sample."""
    candidates = [r for r in older if r.row_id not in exclude]
    if fraction <= 0 or not candidates:
        return []
    count = min(len(candidates), max(1, round(fraction * len(candidates))))
    chosen = set(random.Random(seed).sample(range(len(candidates)), count))
    return [r for i, r in enumerate(candidates) if i in chosen]

"""The tuner service: LoRA fine-tuning jobs on `cairn.tuning`, new dataset versions on `cairn.datasets`,
the registry's promotions on `cairn.models` (where a continual job starts).

It publishes `cairn.tuning.progressed.v1` for every job's state and progress, `cairn.tuning.requested.v1`
when its dataset policy asks for a job, and `cairn.model.registered.v1` for every trained adapter (and
base model registered with `cairn tune register-base`). Jobs run in the same process (see `bootstrap.build`).
"""

from __future__ import annotations

from cairn_bus import EventRouter
from cairn_bus.service import run_service
from cairn_events import (
    DatasetPublishedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    TuningProgressedV1,
    TuningRequestedV1,
)
from cairn_tuner.bootstrap import build
from cairn_tuner.deps import Deps
from cairn_tuner.handlers import on_dataset_published, on_model_promoted, on_tuning_requested
from cairn_tuner.settings import Settings

router: EventRouter[Deps] = EventRouter("tuner")
router.handler(TuningRequestedV1)(on_tuning_requested)
router.handler(DatasetPublishedV1)(on_dataset_published)
router.handler(ModelPromotedV1)(on_model_promoted)
router.publishes(TuningRequestedV1, TuningProgressedV1, ModelRegisteredV1)


def main() -> None:
    """Entry point of `python -m cairn_tuner`."""
    run_service(router, Settings(), build)

"""Builds the safety service's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cairn_bus import Publisher
from cairn_observability import get_logger
from cairn_safety.ports import PolicySource, ReviewQueue, ToxicityClassifier
from cairn_safety.screening import Screener
from cairn_safety.settings import Settings

log = get_logger("cairn.safety")


@dataclass
class Deps:
    """What the safety handlers need."""

    publisher: Publisher
    reviews: ReviewQueue
    policies: PolicySource
    screener: Screener


def make_classifier(settings: Settings) -> ToxicityClassifier:
    """The configured toxicity classifier, loaded; raises ClassifierUnavailableError with what is missing."""
    if settings.toxicity_classifier == "detoxify":
        from cairn_safety.adapters.detoxify import DetoxifyClassifier

        return DetoxifyClassifier(
            settings.detoxify_checkpoint,
            model_type=settings.detoxify_model_type,
            device=settings.detoxify_device,
            huggingface_config_path=settings.detoxify_hf_config_path,
        )
    from cairn_safety.adapters.profanity_check import ProfanityCheckClassifier

    return ProfanityCheckClassifier()


def make_policies(settings: Settings) -> PolicySource:
    """The policy files of `settings.policy_dir`, every one validated (PolicyError names file and field)."""
    from cairn_safety.adapters.policy_files import PolicyFiles, resolve_policy_dir

    files = PolicyFiles(resolve_policy_dir(settings.policy_dir))
    loaded = files.validate_all()
    log.info("policies loaded", folder=str(files.directory), policies=[p.ref for p in loaded])
    return files


@asynccontextmanager
async def build(
    settings: Settings,
    publisher: Publisher,
    *,
    classifier: ToxicityClassifier | None = None,
    reviews: ReviewQueue | None = None,
    policies: PolicySource | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the running service: policy files, the configured classifier and a PostgreSQL review
    queue (migrated), each unless given."""
    policies = policies if policies is not None else make_policies(settings)
    screener = Screener(classifier if classifier is not None else make_classifier(settings))
    if reviews is not None:
        yield Deps(publisher=publisher, reviews=reviews, policies=policies, screener=screener)
        return
    from cairn_safety.adapters.postgres import PostgresReviewQueue, create_pool

    pool = await create_pool(settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max)
    try:
        queue = PostgresReviewQueue(pool)
        await queue.migrate()
        yield Deps(publisher=publisher, reviews=queue, policies=policies, screener=screener)
    finally:
        await pool.close()

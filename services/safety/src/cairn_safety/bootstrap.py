"""Builds the safety service's dependencies from settings; tests pass fakes as overrides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from cairn_bus import Publisher
from cairn_observability import get_logger
from cairn_safety.ports import PolicySource, PolicyStore, ReviewQueue, ToxicityClassifier
from cairn_safety.screening import Screener
from cairn_safety.settings import Settings

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring
    from cairn_auth.serving import HttpServer

log = get_logger("cairn.safety")


@dataclass
class Deps:
    """What the safety handlers need."""

    publisher: Publisher
    reviews: ReviewQueue
    policies: PolicySource
    screener: Screener
    http: HttpServer | None = None
    """Where the review and policy API listens, when the service serves it."""
    keyring: Keyring | None = None
    """The tenants' data keys the review queue seals its items' content with (None: stored as it is)."""


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


def make_policies(settings: Settings) -> PolicyStore:
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
    policies: PolicyStore | None = None,
    keyring: Keyring | None = None,
) -> AsyncIterator[Deps]:
    """Deps for the running service: policy files, the configured classifier and a PostgreSQL review
    queue (migrated), each unless given. With the queue not given, also the sweeper that decides
    overdue reviews (every `review_sweep_interval_s`) and the review and policy API on
    `http_host:http_port` when `http_enabled` (API keys in the same database), stopped when the
    block exits. The PostgreSQL queue seals its items' content with `keyring`, by default one built
    when a master key is configured (`cairn_auth.encryption`)."""
    policies = policies if policies is not None else make_policies(settings)
    embed = None
    if settings.groundedness_embedder == "minilm":  # the groundedness gate's, loaded once here
        from cairn_embedding import MiniLMEmbedder

        embedder = MiniLMEmbedder(threads=settings.groundedness_embedder_threads, eager=True)
        embed = embedder.embed_documents
        log.info("groundedness embedder loaded", model=embedder.name)
    screener = Screener(classifier if classifier is not None else make_classifier(settings), embed=embed)
    if reviews is not None:
        yield Deps(
            publisher=publisher, reviews=reviews, policies=policies, screener=screener, keyring=keyring
        )
        return
    from cairn_bus.postgres import create_pool
    from cairn_safety.adapters.postgres import PostgresReviewQueue

    async with AsyncExitStack() as stack:
        pool = await create_pool(
            settings.postgres_dsn, settings.postgres_pool_min, settings.postgres_pool_max
        )
        stack.push_async_callback(pool.close)
        queue = PostgresReviewQueue(pool) if keyring is None else PostgresReviewQueue(pool, keyring)
        await queue.migrate()
        if queue.keyring is None:
            log.warning("no master key configured (CAIRN_MASTER_KEY): review items are stored unencrypted")
        from cairn_safety.decisions import deadline_sweeper

        await stack.enter_async_context(deadline_sweeper(queue, publisher, settings.review_sweep_interval_s))
        http = None
        if settings.http_enabled:
            from cairn_auth.serving import serving_api
            from cairn_safety.api import create_app

            make_app = partial(
                create_app, reviews=queue, policies=policies, publisher=publisher, screener=screener
            )
            http = await stack.enter_async_context(
                serving_api(settings, pool, publisher, make_app, name="safety")
            )
            log.info("review and policy API listening", url=http.url)
        yield Deps(
            publisher=publisher,
            reviews=queue,
            policies=policies,
            screener=screener,
            http=http,
            keyring=queue.keyring,
        )

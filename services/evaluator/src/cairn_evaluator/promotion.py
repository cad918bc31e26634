"""Promotions and rollbacks: the registry changes, then `model.promoted` for each stage change."""

from __future__ import annotations

from cairn_bus import EventMeta
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.errors import NoRollbackTargetError, VersionNotFoundError
from cairn_evaluator.domain.registry import (
    Promotion,
    PromotionOutcome,
    PromotionRequest,
    rollback_target,
    version_at,
)
from cairn_events import ModelStage

EVALUATOR = "cairn-evaluator"


async def publish_promotions(
    deps: Deps, promotions: list[Promotion], *, cause: EventMeta | None = None, skip: str | None = None
) -> None:
    """Publish `model.promoted` for each change (its event id is the one recorded), except `skip`."""
    for p in promotions:
        if p.event_id == skip:
            continue
        version = await deps.registry.get(p.name, p.version)
        await deps.publisher.publish(
            p.to_event(version.adapter_uri if version else None), cause=cause, event_id=p.event_id
        )


async def promote(
    deps: Deps,
    request: PromotionRequest,
    *,
    cause: EventMeta | None = None,
) -> PromotionOutcome:
    """Apply the promotion (once per event id) and publish its changes, again when it was applied
    before (a redelivery after a failed publish); the ids are the same, so consumers see them once."""
    outcome = await deps.registry.promote(request)
    await publish_promotions(deps, outcome.promotions, cause=cause)
    return outcome


async def rollback(deps: Deps, name: str, *, by: str, reason: str, event_id: str) -> PromotionOutcome:
    """Promote the version that was in production before the current one back to production.

    Raises VersionNotFoundError for an unknown model, NoRollbackTargetError without an earlier one.
    """
    versions = await deps.registry.versions(name)
    if not versions:
        raise VersionNotFoundError(f"model {name!r} has no versions")
    current = version_at(versions, ModelStage.PRODUCTION)
    current_version = current.version if current else None
    target = rollback_target(await deps.registry.history(name), current_version)
    if target is None:
        raise NoRollbackTargetError(f"model {name!r} has no earlier production version to roll back to")
    request = PromotionRequest(
        name=name,
        version=target,
        to_stage=ModelStage.PRODUCTION,
        by=by,
        reason=reason or f"rollback from version {current_version}",
        event_id=event_id,
        at=deps.clock(),
    )
    return await promote(deps, request)

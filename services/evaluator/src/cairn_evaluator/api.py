"""The model registry HTTP API (FastAPI; OpenAPI docs at /docs). Every route needs an API key.

The registry is the platform's, not a tenant's: every tenant is served by the same production
model. So any tenant's viewer may read it, and what changes it is decided by role and platform:

| route | who |
|---|---|
| `GET /v1/models`, `/v1/models/{name}`, `/v1/models/{name}/versions/{v}`, `/v1/models/{name}/history`, `/v1/runs/{run_id}` | viewer (any tenant) |
| `POST /v1/models/{name}/versions/{v}/promote` `{"to": "staging"}` | operator (any tenant): staging serves no traffic |
| `POST /v1/models/{name}/versions/{v}/promote` `{"to": "production" or "archived"}` | admin of `*` (platform) |
| `POST /v1/models/{name}/rollback` | admin of `*` (platform) |

Shadow traffic (`/v1/shadows`, see `api_shadow`): viewers list shadows and read their reports;
admins start and stop them. Prompt experiments (`/v1/experiments/{name}`, see `api_experiments`):
a tenant's viewers read its per-variant statistics and the sequential test's state.

A tenant-bound admin is refused production (403): one tenant's key must not change what every
tenant is answered by. Promotions go through `promotion.promote`/`promotion.rollback`, so they
publish `model.promoted` exactly as the CLI does, with `promoted_by` = the caller's key id; each one
that changed something is also recorded as `cairn.admin_action.recorded.v1` (`model.promoted` or
`model.rolled_back`, tenant `*`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import Body, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from cairn_auth import Authenticator, AuthSettings, Principal, Role, admin_action
from cairn_auth.domain import PLATFORM_TENANT
from cairn_auth.fastapi import Admin, Operator, Viewer, install_auth, not_found
from cairn_bus import TransientError
from cairn_evaluator.api_experiments import add_experiment_routes
from cairn_evaluator.api_shadow import add_shadow_routes
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.errors import EvaluatorError, NoRollbackTargetError, VersionNotFoundError
from cairn_evaluator.domain.registry import ModelVersion, Promotion, PromotionOutcome, PromotionRequest
from cairn_evaluator.domain.runs import Run
from cairn_evaluator.promotion import promote, rollback
from cairn_events import JsonScalar, ModelStage
from cairn_observability import get_logger

if TYPE_CHECKING:
    from cairn_auth.serving import HttpServer

__all__ = ["PromoteIn", "RollbackIn", "create_app", "serve_api"]

log = get_logger("cairn.evaluator.api")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class VersionOut(_Out):
    """One registered version, with the aliases pointing at it."""

    version: ModelVersion = Field(description="The version: lineage, training figures, stage.")
    aliases: list[str] = Field(description="Aliases pointing at it.")


class ModelOut(_Out):
    """A registry model: every version, its aliases, and what is in production and staging."""

    name: str = Field(description="Registry model name.")
    production: int | None = Field(description="The version in production, if any.")
    staging: list[int] = Field(description="Versions in staging.")
    aliases: dict[str, int] = Field(description="Aliases and their versions.")
    versions: list[ModelVersion] = Field(description="Every version, oldest first.")


class PromotionOut(_Out):
    """A stage change, as recorded in the history and published as `model.promoted`."""

    name: str = Field(description="Model name.")
    version: int = Field(description="The version that moved.")
    from_stage: ModelStage | None = Field(description="Where it was.")
    to_stage: ModelStage = Field(description="Where it is now.")
    by: str = Field(description="Who: an API key id, a CLI user or `cairn-evaluator` (the gate).")
    reason: str = Field(description="Why.")
    at: datetime = Field(description="When.")
    event_id: str = Field(description="Id of the `model.promoted` event.")
    evidence_run_id: str | None = Field(description="The evaluation run that justified it, if any.")

    @classmethod
    def of(cls, p: Promotion) -> PromotionOut:
        return cls(
            name=p.name,
            version=p.version,
            from_stage=p.from_stage,
            to_stage=p.to_stage,
            by=p.by,
            reason=p.reason,
            at=p.at,
            event_id=p.event_id,
            evidence_run_id=p.evidence_run_id,
        )


class PromotionResultOut(_Out):
    """What a promotion or rollback did."""

    changed: bool = Field(description="False when the version was at that stage already (nothing recorded).")
    promotions: list[PromotionOut] = Field(
        description="The stage changes (a production move archives the old one)."
    )


class RunOut(_Out):
    """An evaluation run and how far it got."""

    run: Run = Field(description="The run: candidate, baseline, suites, scores and verdict.")
    cases: int = Field(description="Requests the run sends (cases times sides).")
    answered: int = Field(description="Requests answered so far.")


class PromoteIn(BaseModel):
    """Move a version to a stage."""

    model_config = ConfigDict(extra="forbid")

    to: Literal["staging", "production", "archived"] = Field(description="The target stage.")
    reason: str = Field("", max_length=1000, description="Why (kept in the history and the audit trail).")


class RollbackIn(BaseModel):
    """Put the previous production version back."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=1000, description="Why (kept in the history and the audit trail).")


def _require_platform_admin(principal: Principal, what: str) -> None:
    principal.check_role(Role.ADMIN)
    if not principal.platform_wide:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"{what} changes what every tenant is served: it needs a platform-wide (`*`) admin key",
        )


def create_app(
    deps: Deps, *, authenticator: Authenticator | None, auth: AuthSettings | None = None
) -> FastAPI:
    """The registry API on the service's deps (registry, runs, publisher, clock).

    `authenticator` may be None only when `auth.enabled` is false.
    """
    app = FastAPI(
        title="Cairn model registry",
        version="1",
        description="Registered model versions, their stages and history, evaluation runs; promotions.",
    )
    install_auth(app, authenticator, auth)

    @app.exception_handler(EvaluatorError)
    async def _refused(_: Request, exc: EvaluatorError) -> JSONResponse:
        code = status.HTTP_404_NOT_FOUND if isinstance(exc, LookupError) else status.HTTP_409_CONFLICT
        return JSONResponse({"detail": str(exc)}, code)

    @app.exception_handler(TransientError)
    async def _unavailable(_: Request, exc: TransientError) -> JSONResponse:
        return JSONResponse(
            {"detail": "the registry is unavailable, try again"}, status.HTTP_503_SERVICE_UNAVAILABLE
        )

    async def model(name: str) -> ModelOut:
        versions = await deps.registry.versions(name)
        if not versions:
            raise not_found()
        production = [v.version for v in versions if v.stage is ModelStage.PRODUCTION]
        return ModelOut(
            name=name,
            production=max(production) if production else None,
            staging=[v.version for v in versions if v.stage is ModelStage.STAGING],
            aliases=await deps.registry.aliases(name),
            versions=versions,
        )

    @app.get("/v1/models", summary="Every registry model")
    async def list_models(_: Viewer) -> list[ModelOut]:
        return [await model(name) for name in await deps.registry.model_names()]

    @app.get("/v1/models/{name}", summary="One model's versions and aliases")
    async def show_model(name: str, _: Viewer) -> ModelOut:
        return await model(name)

    @app.get("/v1/models/{name}/versions/{version}", summary="One version")
    async def show_version(name: str, version: int, _: Viewer) -> VersionOut:
        found = await deps.registry.get(name, version)
        if found is None:
            raise not_found()
        aliases = await deps.registry.aliases(name)
        return VersionOut(version=found, aliases=sorted(a for a, v in aliases.items() if v == version))

    @app.get("/v1/models/{name}/history", summary="Every stage change of a model, oldest first")
    async def history(name: str, _: Viewer) -> list[PromotionOut]:
        if not await deps.registry.versions(name):
            raise not_found()
        return [PromotionOut.of(p) for p in await deps.registry.history(name)]

    @app.get("/v1/runs/{run_id}", summary="An evaluation run")
    async def show_run(run_id: str, _: Viewer) -> RunOut:
        run = await deps.runs.get(run_id)
        if run is None:
            raise not_found()
        cases = await deps.runs.cases(run_id)
        return RunOut(run=run, cases=len(cases), answered=sum(1 for c in cases if c.answer is not None))

    async def record(principal: Principal, action: str, name: str, outcome: PromotionOutcome) -> None:
        main = outcome.promotions[0]
        details: dict[str, JsonScalar] = {
            "version": main.version,
            "from_stage": main.from_stage.value if main.from_stage else "none",
            "to_stage": main.to_stage.value,
            "reason": main.reason,
            "event_id": main.event_id,
        }
        archived = [p.version for p in outcome.promotions[1:]]
        if archived:
            details["archived_versions"] = ",".join(str(v) for v in archived)
        event = admin_action(
            principal,
            action,
            f"model:{name}:{main.version}",
            tenant=PLATFORM_TENANT,
            details=details,
            at=main.at,
        )
        try:
            await deps.publisher.publish(event)
        except Exception as exc:
            # `model.promoted` (promoted_by = the key id) is published already, so the trail has it
            log.error(
                "promotion applied but its admin record was not published", action=action, error=repr(exc)
            )
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail="the promotion was applied and announced, but its admin record could not be published",
            ) from None

    @app.post("/v1/models/{name}/versions/{version}/promote", summary="Move a version to a stage")
    async def promote_version(
        name: str, version: int, principal: Operator, body: Annotated[PromoteIn, Body()]
    ) -> PromotionResultOut:
        to_stage = ModelStage(body.to)
        if to_stage is not ModelStage.STAGING:
            _require_platform_admin(principal, f"moving a version to {to_stage.value}")
        if await deps.registry.get(name, version) is None:
            raise VersionNotFoundError(f"model {name!r} has no version {version}")
        request = PromotionRequest(
            name=name,
            version=version,
            to_stage=to_stage,
            by=principal.key_id,
            reason=body.reason or "promoted through the registry API",
            event_id=str(uuid.uuid4()),
            at=deps.clock(),
        )
        outcome = await promote(deps, request)
        if outcome.promotions:
            await record(principal, "model.promoted", name, outcome)
        return PromotionResultOut(
            changed=bool(outcome.promotions), promotions=[PromotionOut.of(p) for p in outcome.promotions]
        )

    @app.post("/v1/models/{name}/rollback", summary="Put the previous production version back")
    async def rollback_model(
        name: str, principal: Admin, body: Annotated[RollbackIn | None, Body()] = None
    ) -> PromotionResultOut:
        _require_platform_admin(principal, "a rollback")
        try:
            outcome = await rollback(
                deps,
                name,
                by=principal.key_id,
                reason=body.reason if body else "",
                event_id=str(uuid.uuid4()),
            )
        except VersionNotFoundError:
            raise not_found() from None
        except NoRollbackTargetError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
        if outcome.promotions:
            await record(principal, "model.rolled_back", name, outcome)
        return PromotionResultOut(
            changed=bool(outcome.promotions), promotions=[PromotionOut.of(p) for p in outcome.promotions]
        )

    add_shadow_routes(app, deps)
    add_experiment_routes(app, deps)
    return app


@asynccontextmanager
async def serve_api(deps: Deps) -> AsyncIterator[HttpServer]:
    """The registry API on `deps.settings.http_host:http_port`, keys checked against the key table of `deps.pool`."""
    from cairn_auth.serving import serving_api

    make_app = partial(create_app, deps)
    async with serving_api(deps.settings, deps.pool, deps.publisher, make_app, name="evaluator") as server:
        log.info("registry API listening", url=server.url)
        yield server

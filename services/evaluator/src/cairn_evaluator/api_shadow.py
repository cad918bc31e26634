"""The shadow traffic routes of the evaluator's API (added to the registry API by `api.create_app`).

| route | who |
|---|---|
| `GET /v1/shadows`, `GET /v1/shadows/{id}/report` | viewer (any tenant) |
| `POST /v1/shadows` (start), `POST /v1/shadows/{id}/stop` | admin; a tenant-bound admin only for a shadow of its own tenant |

A shadow without a tenant mirrors every tenant's requests: only a platform-wide (`*`) admin may start
or stop one. Each start and stop is recorded as `cairn.admin_action.recorded.v1` (`shadow.started`,
`shadow.stopped`) under the shadow's tenant (`*` for all tenants).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cairn_auth import Principal, Role, admin_action
from cairn_auth.domain import PLATFORM_TENANT
from cairn_auth.fastapi import Admin, Viewer
from cairn_evaluator.deps import Deps, log
from cairn_evaluator.domain.errors import ShadowNotFoundError
from cairn_evaluator.domain.shadow import SHADOW_ID_PATTERN, Shadow
from cairn_evaluator.shadow import report_json, shadow_report, start_shadow, stop_shadow
from cairn_events import PromptRef

__all__ = ["ShadowIn", "add_shadow_routes"]


class ShadowIn(BaseModel):
    """Start (or restart) a shadow: live requests mirrored to a candidate model and/or prompt."""

    model_config = ConfigDict(extra="forbid")

    shadow_id: str = Field(pattern=SHADOW_ID_PATTERN, description="Name of the shadow, e.g. `qa-v3`.")
    model: str | None = Field(
        None, min_length=1, max_length=200, description="Candidate model, e.g. `cairn-qa:2`."
    )
    prompt: PromptRef | None = Field(None, description="Candidate prompt, e.g. `qa:3` or `qa@beta`.")
    share: float = Field(ge=0.0, le=1.0, description="Share of the matching live requests mirrored.")
    tenant: str | None = Field(None, min_length=1, description="Only this tenant's requests (none: all).")
    prompt_name: str | None = Field(None, min_length=1, description="Only requests for this prompt name.")


def _check_scope(principal: Principal, tenant: str | None) -> None:
    principal.check_role(Role.ADMIN)
    if principal.platform_wide:
        return
    if tenant is None or tenant != principal.tenant:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="a tenant-bound admin may only start or stop a shadow of its own tenant (set `tenant`)",
        )


def add_shadow_routes(app: FastAPI, deps: Deps) -> None:
    """Add the shadow routes to the evaluator's API."""

    async def record(principal: Principal, action: str, shadow: Shadow) -> None:
        event = admin_action(
            principal,
            action,
            f"shadow:{shadow.shadow_id}",
            tenant=shadow.tenant or PLATFORM_TENANT,
            details=shadow.admin_details(),
            at=shadow.updated_at,
        )
        try:
            await deps.publisher.publish(event)
        except Exception as exc:
            log.error("shadow changed but its admin record was not published", action=action, error=repr(exc))
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail="the shadow was changed, but its admin record could not be published",
            ) from None

    @app.get("/v1/shadows", summary="Every shadow (candidates live traffic is mirrored to)")
    async def list_shadows(_: Viewer) -> list[Shadow]:
        return await deps.shadows.shadows()

    @app.post("/v1/shadows", summary="Start a shadow: mirror a share of live requests to a candidate")
    async def start(principal: Admin, body: Annotated[ShadowIn, Body()]) -> Shadow:
        _check_scope(principal, body.tenant)
        now = deps.clock()
        try:
            shadow = Shadow(
                **body.model_dump(),
                created_by=principal.key_id,
                created_at=now,
                updated_by=principal.key_id,
                updated_at=now,
            )
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        started = await start_shadow(deps, shadow)
        await record(principal, "shadow.started", started)
        return started

    @app.post("/v1/shadows/{shadow_id}/stop", summary="Stop a shadow (its evidence stays)")
    async def stop(shadow_id: str, principal: Admin) -> Shadow:
        known = await deps.shadows.get_shadow(shadow_id)
        if known is None:
            raise ShadowNotFoundError(f"no shadow {shadow_id!r}")
        _check_scope(principal, known.tenant)
        stopped = await stop_shadow(deps, shadow_id, principal.key_id)
        await record(principal, "shadow.stopped", stopped)
        return stopped

    @app.get("/v1/shadows/{shadow_id}/report", summary="A shadow's pairs, scores and gate verdict")
    async def report(shadow_id: str, _: Viewer) -> dict[str, Any]:
        return report_json(await shadow_report(deps, shadow_id))

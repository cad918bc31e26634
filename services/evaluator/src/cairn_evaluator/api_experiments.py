"""The prompt experiment route of the evaluator's API (added to the registry API by `api.create_app`).

| route | who |
|---|---|
| `GET /v1/experiments/{experiment}?prompt=&tenant=` | viewer of the tenant (a platform-wide key: any) |

Per-variant statistics with 95 % intervals and the sequential test's state, as `cairn quality
experiment --json` prints them; the console's prompt page shows them for a running experiment.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, status

from cairn_auth.domain import TenantAccessError
from cairn_auth.fastapi import Viewer
from cairn_evaluator.deps import Deps
from cairn_evaluator.experiments import experiment_verdict, verdict_json
from cairn_evaluator.online.conclusions import conclusion_id

__all__ = ["add_experiment_routes"]


def add_experiment_routes(app: FastAPI, deps: Deps) -> None:
    """Add `GET /v1/experiments/{experiment}` to the evaluator's API."""

    @app.get("/v1/experiments/{experiment}", summary="A prompt experiment's per-variant statistics and test")
    async def show_experiment(
        experiment: str,
        principal: Viewer,
        prompt: Annotated[str, Query(min_length=1, description="The prompt the experiment runs on.")],
        tenant: Annotated[str, Query(min_length=1, description="The requests' tenant.")] = "default",
    ) -> dict[str, Any]:
        try:
            principal.check_tenant(tenant)
        except TenantAccessError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="not found") from None
        verdict = await experiment_verdict(deps, tenant, prompt, experiment)
        concluded = await deps.online.conclusion(conclusion_id(tenant, prompt, experiment))
        return {**verdict_json(tenant, prompt, verdict), "published": bool(concluded and concluded.published)}

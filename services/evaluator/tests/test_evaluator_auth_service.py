"""The running service serves the registry API beside its consumer; the CLI's deps do not."""

from __future__ import annotations

import httpx
import pytest

from cairn_auth import Role, create_key
from cairn_auth.adapters.postgres import PostgresKeyStore
from cairn_bus import InMemoryPublisher
from cairn_bus.objects import InMemoryObjectStore
from cairn_bus.postgres import create_pool
from cairn_evaluator.app import router, serve_evaluator
from cairn_evaluator.bootstrap import build
from cairn_evaluator.settings import Settings
from cairn_events import AdminActionRecordedV1, ModelPromotedV1, ModelStage

from .conftest import version

pytestmark = pytest.mark.integration


async def test_evaluator_auth_the_service_serves_the_registry_api(fresh_database: str) -> None:
    settings = Settings(postgres_dsn=fresh_database, http_port=0, http_host="127.0.0.1")
    publisher = InMemoryPublisher("/cairn/evaluator", allowed_types=router.published_types)
    async with serve_evaluator(
        settings, publisher, objects=InMemoryObjectStore(), periodic_check_s=None, serve_http=True
    ) as deps:
        assert deps.http is not None
        await deps.registry.register(version(1))
        pool = await create_pool(fresh_database)
        try:
            keys = PostgresKeyStore(pool)
            viewer, _, _ = await create_key(keys, tenant="acme", role=Role.VIEWER, name="v", actor="test")
            root, _, _ = await create_key(keys, tenant="*", role=Role.ADMIN, name="r", actor="test")
        finally:
            await pool.close()
        async with httpx.AsyncClient(base_url=deps.http.url) as client:
            anonymous = await client.get("/v1/models")
            listed = await client.get("/v1/models", headers={"X-API-Key": viewer.token})
            refused = await client.post(
                "/v1/models/cairn-qa/versions/1/promote",
                json={"to": "production"},
                headers={"X-API-Key": viewer.token},
            )
            promoted = await client.post(
                "/v1/models/cairn-qa/versions/1/promote",
                json={"to": "production", "reason": "first"},
                headers={"X-API-Key": root.token},
            )
        stored = await deps.registry.get("cairn-qa", 1)
    assert anonymous.status_code == 401
    assert [m["name"] for m in listed.json()] == ["cairn-qa"]
    assert refused.status_code == 403
    assert promoted.status_code == 200, promoted.text
    assert stored is not None
    assert stored.stage is ModelStage.PRODUCTION
    assert len(publisher.events(ModelPromotedV1.event_type)) == 1
    [admin] = publisher.events(AdminActionRecordedV1.event_type)
    assert isinstance(admin, AdminActionRecordedV1)
    assert admin.action == "model.promoted"


async def test_evaluator_auth_the_cli_deps_serve_nothing(fresh_database: str) -> None:
    settings = Settings(postgres_dsn=fresh_database, http_port=0)
    async with build(settings, InMemoryPublisher(), objects=InMemoryObjectStore()) as deps:
        assert deps.http is None

"""The running service serves the audit query API beside its consumer, checking keys in its database."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from cairn_audit.bootstrap import build
from cairn_audit.domain.records import AuditRecord
from cairn_audit.settings import Settings
from cairn_auth import Role, create_key
from cairn_auth.adapters.postgres import PostgresKeyStore
from cairn_bus import InMemoryPublisher

pytestmark = pytest.mark.integration


def record(event_id: str, tenant: str) -> AuditRecord:
    return AuditRecord(
        event_id=event_id,
        event_type="cairn.request.submitted.v1",
        source="/cairn/test",
        event_time=datetime(2025, 3, 4, 9, 0, tzinfo=UTC),
        topic="cairn.requests",
        partition=0,
        offset=1,
        payload={"request_id": "req-1"},
        headers={},
        subject="req-1",
        correlation_id="req-1",
        tenant=tenant,
    )


async def test_audit_auth_the_service_serves_the_query_api(fresh_database: str) -> None:
    settings = Settings(postgres_dsn=fresh_database, http_port=0, http_host="127.0.0.1")
    async with build(settings, InMemoryPublisher("/cairn/audit")) as deps:
        assert deps.http is not None
        await deps.store.append([record("evt-acme", "acme"), record("evt-beta", "beta")])
        keys = PostgresKeyStore(deps.store.pool)  # type: ignore[attr-defined]
        acme, _, _ = await create_key(keys, tenant="acme", role=Role.VIEWER, name="a", actor="test")
        gamma, _, _ = await create_key(keys, tenant="gamma", role=Role.VIEWER, name="g", actor="test")
        async with httpx.AsyncClient(base_url=deps.http.url) as client:
            anonymous = await client.get("/v1/trails/req-1")
            mine = await client.get("/v1/trails/req-1", headers={"Authorization": f"Bearer {acme.token}"})
            none = await client.get("/v1/trails/req-1", headers={"Authorization": f"Bearer {gamma.token}"})
            verify = await client.get("/v1/verify", headers={"Authorization": f"Bearer {acme.token}"})
    assert anonymous.status_code == 401
    assert [e["event_id"] for e in mine.json()["events"]] == ["evt-acme"]
    assert none.status_code == 404
    assert verify.status_code == 403

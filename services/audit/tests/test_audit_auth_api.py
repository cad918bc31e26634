"""The audit query API: API keys required, a tenant sees only its own trails and events, verify is for platform admins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cairn_audit.adapters.memory import InMemoryAuditStore
from cairn_audit.api import create_app
from cairn_audit.domain.records import AuditRecord
from cairn_auth import Authenticator, InMemoryKeyStore, Role, create_key

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
KEYS = {
    "acme-viewer": ("acme", Role.VIEWER),
    "acme-admin": ("acme", Role.ADMIN),
    "beta-viewer": ("beta", Role.VIEWER),
    "platform": ("*", Role.ADMIN),
}


def record(
    event_id: str, request_id: str, tenant: str | None, second: int, cause: str | None = None
) -> AuditRecord:
    return AuditRecord(
        event_id=event_id,
        event_type="cairn.request.submitted.v1" if cause is None else "cairn.prompt.rendered.v1",
        source="/cairn/test",
        event_time=T0 + timedelta(seconds=second),
        topic="cairn.requests" if cause is None else "cairn.prompts",
        partition=0,
        offset=second,
        payload={"request_id": request_id},
        headers={},
        subject=request_id,
        correlation_id=request_id,
        causation_id=cause,
        tenant=tenant,
    )


RECORDS = [
    record("a1", "req-a", "acme", 1),
    record("b1", "req-b", "beta", 2),
    record("a2", "req-a", "acme", 3, cause="a1"),
    record("b2", "req-b", "beta", 4, cause="b1"),
    record("p1", "model-x", None, 5),  # a platform event: no tenant
]


@dataclass
class World:
    client: httpx.AsyncClient
    store: InMemoryAuditStore
    keys: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    keys = InMemoryKeyStore()
    tokens = {}
    for name, (tenant, role) in KEYS.items():
        issued, _, _ = await create_key(keys, tenant=tenant, role=role, name=name, actor="test")
        tokens[name] = issued.token
    store = InMemoryAuditStore()
    await store.append(RECORDS)
    app = create_app(store=store, authenticator=Authenticator(keys))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://audit") as client:
        yield World(client, store, tokens)


def event_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    return [e["event_id"] for e in (body["events"] if isinstance(body, dict) else body)]


@pytest.mark.parametrize("path", ["/v1/trails/req-a", "/v1/events", "/v1/verify"])
async def test_audit_auth_every_route_needs_a_key(world: World, path: str) -> None:
    response = await world.client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    malformed = await world.client.get(path, headers={"Authorization": "Bearer not-a-key"})
    assert malformed.status_code == 401


async def test_audit_auth_a_tenant_reads_its_own_trail_in_causal_order(world: World) -> None:
    response = await world.client.get("/v1/trails/req-a", headers=world.as_("acme-viewer"))
    assert event_ids(response) == ["a1", "a2"]
    assert [e["depth"] for e in response.json()["events"]] == [0, 1]
    assert response.json()["events"][1]["tenant"] == "acme"


async def test_audit_auth_another_tenants_trail_is_not_found(world: World) -> None:
    theirs = await world.client.get("/v1/trails/req-b", headers=world.as_("acme-viewer"))
    missing = await world.client.get("/v1/trails/req-none", headers=world.as_("acme-viewer"))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    asked = await world.client.get("/v1/trails/req-b?tenant=beta", headers=world.as_("acme-admin"))
    assert asked.status_code == 404
    platform_event = await world.client.get("/v1/trails/model-x", headers=world.as_("acme-admin"))
    assert platform_event.status_code == 404


async def test_audit_auth_a_reused_request_id_shows_each_tenant_only_its_events(world: World) -> None:
    await world.store.append([record("x1", "req-a", "beta", 9)])
    assert event_ids(await world.client.get("/v1/trails/req-a", headers=world.as_("acme-viewer"))) == [
        "a1",
        "a2",
    ]
    assert event_ids(await world.client.get("/v1/trails/req-a", headers=world.as_("beta-viewer"))) == ["x1"]


async def test_audit_auth_events_are_scoped_to_the_tenant(world: World) -> None:
    assert event_ids(await world.client.get("/v1/events", headers=world.as_("acme-viewer"))) == ["a1", "a2"]
    assert event_ids(await world.client.get("/v1/events", headers=world.as_("beta-viewer"))) == ["b1", "b2"]
    refused = await world.client.get("/v1/events?tenant=beta", headers=world.as_("acme-viewer"))
    assert refused.status_code == 404
    typed = await world.client.get(
        "/v1/events", params={"type": "cairn.prompt.rendered.v1"}, headers=world.as_("acme-viewer")
    )
    assert event_ids(typed) == ["a2"]
    since = await world.client.get(
        "/v1/events",
        params={"since": (T0 + timedelta(seconds=2)).isoformat()},
        headers=world.as_("acme-viewer"),
    )
    assert event_ids(since) == ["a2"]
    naive = await world.client.get(
        "/v1/events", params={"since": "2025-03-04T09:00:00"}, headers=world.as_("acme-viewer")
    )
    assert naive.status_code == 422


async def test_audit_auth_platform_admin_sees_every_tenant(world: World) -> None:
    everything = await world.client.get("/v1/events", headers=world.as_("platform"))
    assert event_ids(everything) == ["a1", "b1", "a2", "b2", "p1"]
    beta = await world.client.get("/v1/events?tenant=beta", headers=world.as_("platform"))
    assert event_ids(beta) == ["b1", "b2"]
    assert event_ids(await world.client.get("/v1/trails/req-b", headers=world.as_("platform"))) == [
        "b1",
        "b2",
    ]
    assert event_ids(await world.client.get("/v1/trails/model-x", headers=world.as_("platform"))) == ["p1"]
    first = await world.client.get("/v1/events?limit=2", headers=world.as_("platform"))
    last_seq = first.json()[-1]["seq"]
    rest = await world.client.get(f"/v1/events?after={last_seq}", headers=world.as_("platform"))
    assert event_ids(first) + event_ids(rest) == ["a1", "b1", "a2", "b2", "p1"]


async def test_audit_auth_verify_is_for_platform_admins(world: World) -> None:
    assert (await world.client.get("/v1/verify", headers=world.as_("acme-viewer"))).status_code == 403
    assert (await world.client.get("/v1/verify", headers=world.as_("acme-admin"))).status_code == 403
    intact = await world.client.get("/v1/verify", headers=world.as_("platform"))
    assert intact.json() == {"intact": True, "events": 5, "breaks": []}
    world.store.records[1] = replace(world.store.records[1], payload={"request_id": "forged"})
    broken = (await world.client.get("/v1/verify", headers=world.as_("platform"))).json()
    assert broken["intact"] is False
    assert [(b["event_id"], b["reason"]) for b in broken["breaks"]] == [
        ("b1", "content does not match its hash")
    ]

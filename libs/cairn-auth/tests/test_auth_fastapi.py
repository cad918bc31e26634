"""Tenant isolation and roles on a small FastAPI app guarded by `cairn_auth.fastapi`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import Depends, FastAPI

from cairn_auth import Authenticator, AuthSettings, InMemoryKeyStore, Principal, Role, create_key, revoke_key
from cairn_auth.fastapi import Admin, Operator, Viewer, install_auth, not_found, require

PROMPTS = {("acme", "greet"): "Hello from acme", ("beta", "greet"): "Hello from beta"}


def build_app(authenticator: Authenticator | None, settings: AuthSettings | None = None) -> FastAPI:
    app = FastAPI()
    install_auth(app, authenticator, settings)
    prompts = dict(PROMPTS)

    @app.get("/tenants/{tenant}/prompts/{name}")
    async def show(tenant: str, name: str, principal: Viewer) -> dict[str, str]:
        principal.check_tenant(tenant)
        if (tenant, name) not in prompts:
            raise not_found()
        return {"text": prompts[tenant, name], "as": principal.key_id}

    @app.post("/tenants/{tenant}/prompts/{name}")
    async def push(tenant: str, name: str, text: str, principal: Operator) -> dict[str, str]:
        principal.check_tenant(tenant)
        prompts[tenant, name] = text
        return {"pushed": name}

    @app.get("/prompts")
    async def listing(principal: Viewer, tenant: str | None = None) -> list[str]:
        scope = principal.scope(tenant)
        return sorted(f"{t}/{n}" for t, n in prompts if scope is None or t == scope)

    @app.delete("/keys/{key_id}", dependencies=[Depends(require("admin"))])
    async def drop(key_id: str) -> dict[str, str]:
        return {"dropped": key_id}

    @app.get("/whoami")
    async def whoami(principal: Admin) -> dict[str, str]:
        return {"tenant": principal.tenant}

    return app


@dataclass
class World:
    client: httpx.AsyncClient
    store: InMemoryKeyStore
    keys: dict[str, str]
    ids: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store = InMemoryKeyStore()
    keys: dict[str, str] = {}
    ids: dict[str, str] = {}
    for who, tenant, role in [
        ("acme_viewer", "acme", Role.VIEWER),
        ("acme_operator", "acme", Role.OPERATOR),
        ("acme_admin", "acme", Role.ADMIN),
        ("beta_operator", "beta", Role.OPERATOR),
        ("root", "*", Role.ADMIN),
    ]:
        issued, _, _ = await create_key(store, tenant=tenant, role=role, name=who, actor="test")
        keys[who], ids[who] = issued.token, issued.key_id
    app = build_app(Authenticator(store, cache_ttl_s=0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield World(client, store, keys, ids)


async def test_a_missing_or_invalid_key_is_401_with_a_bearer_challenge(world: World) -> None:
    bogus = world.keys["acme_viewer"][:-4] + "AAAA"
    for headers in [
        {},
        {"Authorization": f"Bearer {bogus}"},
        {"X-API-Key": "hunter2"},
        {"Authorization": "Basic eDp5"},
    ]:
        response = await world.client.get("/tenants/acme/prompts/greet", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {
            "detail": "a valid API key is required (Authorization: Bearer <key> or X-API-Key)"
        }
        assert bogus not in response.text
        assert "hunter2" not in response.text


async def test_a_viewer_reads_its_own_tenant(world: World) -> None:
    response = await world.client.get("/tenants/acme/prompts/greet", headers=world.as_("acme_viewer"))
    assert response.status_code == 200
    assert response.json() == {"text": "Hello from acme", "as": world.ids["acme_viewer"]}
    by_header = await world.client.get(
        "/tenants/acme/prompts/greet", headers={"X-API-Key": world.keys["acme_viewer"]}
    )
    assert by_header.status_code == 200


async def test_another_tenants_resource_is_refused_as_if_it_did_not_exist(world: World) -> None:
    other = await world.client.get("/tenants/beta/prompts/greet", headers=world.as_("acme_viewer"))
    missing = await world.client.get("/tenants/acme/prompts/nothing", headers=world.as_("acme_viewer"))
    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json() == {"detail": "not found"}
    assert "beta" not in other.text
    # not even an admin of one tenant may reach the other, read or write
    admin = await world.client.get("/tenants/beta/prompts/greet", headers=world.as_("acme_admin"))
    assert admin.status_code == 404
    write = await world.client.post(
        "/tenants/acme/prompts/greet", params={"text": "pwned"}, headers=world.as_("beta_operator")
    )
    assert write.status_code == 404
    still = await world.client.get("/tenants/acme/prompts/greet", headers=world.as_("acme_viewer"))
    assert still.json()["text"] == "Hello from acme"


async def test_listings_are_limited_to_the_callers_tenant(world: World) -> None:
    mine = await world.client.get("/prompts", headers=world.as_("acme_viewer"))
    assert mine.json() == ["acme/greet"]
    other = await world.client.get("/prompts", params={"tenant": "beta"}, headers=world.as_("acme_viewer"))
    assert other.status_code == 404
    everything = await world.client.get("/prompts", headers=world.as_("root"))
    assert everything.json() == ["acme/greet", "beta/greet"]
    beta = await world.client.get("/prompts", params={"tenant": "beta"}, headers=world.as_("root"))
    assert beta.json() == ["beta/greet"]


async def test_a_viewer_cannot_use_an_operator_route(world: World) -> None:
    response = await world.client.post(
        "/tenants/acme/prompts/greet", params={"text": "changed"}, headers=world.as_("acme_viewer")
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "this action needs the operator role"}
    ok = await world.client.post(
        "/tenants/acme/prompts/greet", params={"text": "changed"}, headers=world.as_("acme_operator")
    )
    assert ok.status_code == 200
    dropped = await world.client.delete("/keys/x", headers=world.as_("acme_operator"))
    assert dropped.status_code == 403
    assert (await world.client.delete("/keys/x", headers=world.as_("acme_admin"))).status_code == 200


async def test_a_platform_admin_sees_every_tenant(world: World) -> None:
    for tenant in ("acme", "beta"):
        response = await world.client.get(f"/tenants/{tenant}/prompts/greet", headers=world.as_("root"))
        assert response.status_code == 200
        assert response.json()["text"] == f"Hello from {tenant}"
    assert (await world.client.get("/whoami", headers=world.as_("root"))).json() == {"tenant": "*"}


async def test_a_revoked_key_stops_working(world: World) -> None:
    headers = world.as_("acme_operator")
    assert (await world.client.get("/tenants/acme/prompts/greet", headers=headers)).status_code == 200
    await revoke_key(world.store, world.ids["acme_operator"], actor="test")
    assert (await world.client.get("/tenants/acme/prompts/greet", headers=headers)).status_code == 401


async def test_access_errors_raised_in_routes_are_answered() -> None:
    app = FastAPI()
    install_auth(app, Authenticator(InMemoryKeyStore()))
    viewer = Principal("0123456789ab", "acme", Role.VIEWER, "v")

    @app.get("/role")
    async def role() -> None:
        viewer.check_role(Role.ADMIN)

    @app.get("/tenant")
    async def tenant() -> None:
        viewer.check_tenant("beta")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        role_response = await client.get("/role")
        tenant_response = await client.get("/tenant")
    assert (role_response.status_code, role_response.json()) == (
        403,
        {"detail": "this action needs the admin role"},
    )
    assert (tenant_response.status_code, tenant_response.json()) == (404, {"detail": "not found"})


async def test_with_auth_disabled_every_caller_is_an_admin_and_enabled_needs_an_authenticator() -> None:
    app = build_app(None, AuthSettings(enabled=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/tenants/beta/prompts/greet")
    assert response.status_code == 200
    assert response.json()["as"] == "anonymous"
    with pytest.raises(ValueError, match="no authenticator"):
        build_app(None, AuthSettings(enabled=True))


def test_auth_is_on_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AuthSettings().enabled
    monkeypatch.setenv("CAIRN_AUTH_ENABLED", "false")
    monkeypatch.setenv("CAIRN_AUTH_BOOTSTRAP_KEY_FILE", "/run/secrets/cairn-admin-key")
    settings = AuthSettings()
    assert not settings.enabled
    assert str(settings.bootstrap_key_file) == "/run/secrets/cairn-admin-key"


def test_openapi_documents_both_ways_to_send_a_key() -> None:
    app = build_app(Authenticator(InMemoryKeyStore()))
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"

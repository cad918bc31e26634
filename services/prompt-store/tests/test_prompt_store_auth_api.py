"""Access control on the management API: keys, roles, tenant isolation and the admin audit events.

Runs the real app (cairn_auth wiring included) on the in-memory store and key store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cairn_auth import Authenticator, AuthSettings, InMemoryKeyStore, create_key
from cairn_bus import InMemoryPublisher
from cairn_events import AdminActionRecordedV1
from cairn_prompt_store import management
from cairn_prompt_store.adapters.memory import InMemoryPromptStore
from cairn_prompt_store.api import create_app
from cairn_prompt_store.app import router

from .conftest import spec

AUTH_ON = AuthSettings(enabled=True, cache_ttl_s=0)


class Keys:
    """Tokens by name: acme and globex viewers, operators and admins, and a platform admin."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    async def add(self, store: InMemoryKeyStore, name: str, tenant: str, role: str) -> None:
        issued, _, _ = await create_key(store, tenant=tenant, role=role, name=name, actor="test")
        self.tokens[name] = issued.token
        self.ids[name] = issued.key_id

    def header(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@pytest.fixture
def prompts() -> InMemoryPromptStore:
    return InMemoryPromptStore()


@pytest.fixture
def audit() -> InMemoryPublisher:
    return InMemoryPublisher("/cairn/prompt-store", allowed_types=router.published_types)


@pytest.fixture
async def keys() -> tuple[Keys, InMemoryKeyStore]:
    store = InMemoryKeyStore()
    keys = Keys()
    for tenant in ("acme", "globex"):
        for role in ("viewer", "operator", "admin"):
            await keys.add(store, f"{tenant}-{role}", tenant, role)
    await keys.add(store, "platform", "*", "admin")
    return keys, store


@pytest.fixture
async def client(
    prompts: InMemoryPromptStore, audit: InMemoryPublisher, keys: tuple[Keys, InMemoryKeyStore]
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with: shared `qa` (default), acme's `secret`, globex's `plan`, each at production 1."""
    for tenant, name in (("default", "qa"), ("acme", "secret"), ("globex", "plan")):
        await management.push(prompts, spec(name), ["production"], "seed", tenant=tenant)
        await management.push(prompts, spec(name, description="v2"), [], "seed", tenant=tenant)
    app = create_app(prompts, publisher=audit, authenticator=Authenticator(keys[1]), auth=AUTH_ON)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


@pytest.fixture
def k(keys: tuple[Keys, InMemoryKeyStore]) -> Keys:
    return keys[0]


def status(response: httpx.Response) -> int:
    return response.status_code


def admin_events(audit: InMemoryPublisher) -> list[AdminActionRecordedV1]:
    events = audit.events(AdminActionRecordedV1.event_type)
    assert all(isinstance(e, AdminActionRecordedV1) for e in events)
    return [e for e in events if isinstance(e, AdminActionRecordedV1)]


def names(listing: Any) -> list[tuple[str, str]]:
    return [(p["tenant"], p["name"]) for p in listing]


async def test_prompt_store_auth_every_route_but_health_needs_a_key(client: httpx.AsyncClient) -> None:
    assert status(await client.get("/health")) == 200
    for method, path in [
        ("GET", "/prompts"),
        ("GET", "/prompts/qa"),
        ("POST", "/render"),
        ("PUT", "/prompts/qa/labels/production"),
        ("GET", "/experiments"),
    ]:
        response = await client.request(method, path, json={})
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    bad = await client.get("/prompts", headers={"Authorization": "Bearer cairn_000000000000_nope"})
    assert status(bad) == 401


async def test_prompt_store_auth_viewers_read_but_cannot_write(
    client: httpx.AsyncClient, k: Keys, audit: InMemoryPublisher, prompts: InMemoryPromptStore
) -> None:
    viewer = k.header("acme-viewer")
    assert status(await client.get("/prompts/secret", headers=viewer)) == 200
    assert status(await client.get("/prompts/secret/history", headers=viewer)) == 200
    pushed = await client.post(
        "/prompts", json={"spec": spec("secret", description="v3").canonical()}, headers=viewer
    )
    assert status(pushed) == 403
    moved = await client.put("/prompts/secret/labels/production", json={"version": 2}, headers=viewer)
    assert status(moved) == 403
    experiment = {"name": "e", "variants": [{"name": "a", "version": 1}]}
    assert status(await client.put("/experiments/secret", json=experiment, headers=viewer)) == 403
    operator = k.header("acme-operator")
    assert status(await client.put("/experiments/secret", json=experiment, headers=operator)) == 403
    assert status(await client.delete("/experiments/secret", headers=operator)) == 403
    assert await prompts.labels("secret", tenant="acme") == {"production": 1}
    assert await prompts.experiment("secret", tenant="acme") is None
    assert audit.messages == []


async def test_prompt_store_auth_a_tenant_never_sees_another_tenants_prompts(
    client: httpx.AsyncClient, k: Keys, prompts: InMemoryPromptStore
) -> None:
    for who in ("acme-viewer", "acme-admin"):
        h = k.header(who)
        assert names((await client.get("/prompts", headers=h)).json()) == [
            ("default", "qa"),
            ("acme", "secret"),
        ]
        for path in [
            "/prompts/plan",
            "/prompts/plan:1",
            "/prompts/plan/versions",
            "/prompts/plan/versions/1",
            "/prompts/plan/labels",
            "/prompts/plan/history",
            "/prompts/plan/diff?from=1&to=2",
            "/experiments/plan",
            "/prompts/plan?tenant=globex",
            "/prompts?tenant=globex",
            "/experiments?tenant=globex",
        ]:
            response = await client.get(path, headers=h)
            assert response.status_code == 404, (who, path, response.text)
            assert "globex" not in response.text
        rendered = await client.post("/render", json={"prompt": "plan", "variables": {"who": "x"}}, headers=h)
        assert status(rendered) == 404
    admin = k.header("acme-admin")
    for path, body in [
        ("/prompts/plan/labels/production", {"version": 2}),
        ("/prompts/plan/labels/production?tenant=globex", {"version": 2}),
        ("/experiments/plan?tenant=globex", {"name": "e", "variants": [{"name": "a", "version": 1}]}),
    ]:
        assert status(await client.put(path, json=body, headers=admin)) == 404, path
    assert status(await client.delete("/experiments/plan?tenant=globex", headers=admin)) == 404
    pushed = await client.post(
        "/prompts?tenant=globex", json={"spec": spec("plan", description="evil").canonical()}, headers=admin
    )
    assert status(pushed) == 404
    assert [v.spec.description for v in await prompts.versions("plan", tenant="globex")] == ["", "v2"]
    assert await prompts.labels("plan", tenant="globex") == {"production": 1}


async def test_prompt_store_auth_shared_prompts_are_readable_by_all_and_changed_by_none(
    client: httpx.AsyncClient, k: Keys, prompts: InMemoryPromptStore
) -> None:
    admin = k.header("globex-admin")
    shown = (await client.get("/prompts/qa", headers=admin)).json()
    assert (shown["tenant"], shown["version"]) == ("default", 1)
    assert status(await client.get("/prompts?tenant=default", headers=admin)) == 200
    # a change names the caller's tenant: the shared prompt is not found there, or not writable
    assert (
        status(await client.put("/prompts/qa/labels/production", json={"version": 2}, headers=admin)) == 404
    )
    put = await client.put("/prompts/qa/labels/production?tenant=default", json={"version": 2}, headers=admin)
    assert status(put) == 404
    assert await prompts.labels("qa") == {"production": 1}
    # a tenant's own prompt of the same name takes precedence over the shared one
    own = await client.post(
        "/prompts",
        json={"spec": spec("qa", description="globex qa").canonical(), "labels": ["production"]},
        headers=admin,
    )
    assert (own.json()["tenant"], own.json()["version"]) == ("globex", 1)
    shown = (await client.get("/prompts/qa", headers=admin)).json()
    assert (shown["tenant"], shown["spec"]["description"]) == ("globex", "globex qa")
    acme = (await client.get("/prompts/qa", headers=k.header("acme-viewer"))).json()
    assert (acme["tenant"], acme["spec"]["description"]) == ("default", "")


async def test_prompt_store_auth_a_platform_admin_sees_and_changes_every_tenant(
    client: httpx.AsyncClient, k: Keys, prompts: InMemoryPromptStore
) -> None:
    h = k.header("platform")
    assert names((await client.get("/prompts", headers=h)).json()) == [
        ("globex", "plan"),
        ("default", "qa"),
        ("acme", "secret"),
    ]
    assert names((await client.get("/prompts?tenant=acme", headers=h)).json()) == [("acme", "secret")]
    assert (await client.get("/prompts/secret?tenant=acme", headers=h)).json()["tenant"] == "acme"
    assert status(await client.get("/prompts/secret", headers=h)) == 404  # no tenant named: the shared one
    moved = await client.put("/prompts/plan/labels/production?tenant=globex", json={"version": 2}, headers=h)
    assert status(moved) == 200
    assert await prompts.labels("plan", tenant="globex") == {"production": 2}


async def test_prompt_store_auth_label_moves_are_audited_with_the_key_as_actor(
    client: httpx.AsyncClient, k: Keys, audit: InMemoryPublisher, prompts: InMemoryPromptStore
) -> None:
    operator = k.header("acme-operator")
    moved = await client.put(
        "/prompts/secret/labels/production", json={"version": 2, "by": "mallory"}, headers=operator
    )
    assert status(moved) == 200
    assert moved.json()["moved_by"] == k.ids["acme-operator"]  # not who the body claims
    same = await client.put("/prompts/secret/labels/production", json={"version": 2}, headers=operator)
    assert status(same) == 200  # where it points already: nothing new to record
    pushed = await client.post(
        "/prompts",
        json={"spec": spec("secret", description="v3").canonical(), "labels": ["staging"]},
        headers=operator,
    )
    assert pushed.json()["version"] == 3
    events = admin_events(audit)
    assert [(e.action, e.target, e.tenant, e.actor, e.actor_role, e.details) for e in events] == [
        (
            "prompt.label.moved",
            "prompt:secret@production",
            "acme",
            k.ids["acme-operator"],
            "operator",
            {"label": "production", "from_version": 1, "to_version": 2},
        ),
        (
            "prompt.label.moved",
            "prompt:secret@staging",
            "acme",
            k.ids["acme-operator"],
            "operator",
            {"label": "staging", "to_version": 3},
        ),
    ]
    assert {(m.topic, m.key) for m in audit.messages} == {("cairn.admin", b"acme")}


async def test_prompt_store_auth_experiment_changes_are_audited(
    client: httpx.AsyncClient, k: Keys, audit: InMemoryPublisher
) -> None:
    admin = k.header("acme-admin")
    body = {"name": "ab", "variants": [{"name": "a", "version": 1}, {"name": "b", "version": 2}]}
    started = await client.put("/experiments/secret", json=body, headers=admin)
    assert status(started) == 200
    assert started.json()["tenant"] == "acme"
    listed = (await client.get("/experiments", headers=k.header("acme-viewer"))).json()
    assert [(e["tenant"], e["prompt"]) for e in listed] == [("acme", "secret")]
    assert (await client.get("/experiments", headers=k.header("globex-viewer"))).json() == []
    assert status(await client.delete("/experiments/secret", headers=admin)) == 204
    events = admin_events(audit)
    assert [(e.action, e.target, e.tenant, e.actor) for e in events] == [
        ("prompt.experiment.set", "prompt:secret", "acme", k.ids["acme-admin"]),
        ("prompt.experiment.cleared", "prompt:secret", "acme", k.ids["acme-admin"]),
    ]
    assert events[0].details == {
        "experiment": "ab",
        "label": "production",
        "variants": "a=secret:1 (1), b=secret:2 (1)",
        "on_winner": "propose",
    }


async def test_prompt_store_auth_an_unrecordable_change_is_refused_loudly(
    prompts: InMemoryPromptStore, keys: tuple[Keys, InMemoryKeyStore]
) -> None:
    await management.push(prompts, spec("secret"), [], "seed", tenant="acme")
    app = create_app(prompts, authenticator=Authenticator(keys[1]), auth=AUTH_ON)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        moved = await c.put(
            "/prompts/secret/labels/production", json={"version": 1}, headers=keys[0].header("acme-operator")
        )
    assert status(moved) == 503
    assert "audit trail" in moved.json()["detail"]


def test_prompt_store_auth_is_required_unless_turned_off(prompts: InMemoryPromptStore) -> None:
    with pytest.raises(ValueError, match="no authenticator"):
        create_app(prompts, auth=AUTH_ON)
    create_app(prompts, auth=AuthSettings(enabled=False))

"""The registry API: keys required, any tenant reads, operators stage, platform admins decide production."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cairn_auth import Authenticator, InMemoryKeyStore, Role, create_key
from cairn_bus import InMemoryPublisher
from cairn_evaluator.api import create_app
from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.runs import Run, RunCase, SuiteSpec
from cairn_evaluator.domain.suites import EvalCase, Gate
from cairn_events import AdminActionRecordedV1, ModelPromotedV1, ModelStage

from .conftest import T0, make_deps, version

KEYS = {
    "acme-viewer": ("acme", Role.VIEWER),
    "acme-operator": ("acme", Role.OPERATOR),
    "acme-admin": ("acme", Role.ADMIN),
    "platform": ("*", Role.ADMIN),
}


@dataclass
class World:
    client: httpx.AsyncClient
    deps: Deps
    keys: dict[str, str]
    ids: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    @property
    def publisher(self) -> InMemoryPublisher:
        assert isinstance(self.deps.publisher, InMemoryPublisher)
        return self.deps.publisher

    def promoted(self) -> list[tuple[int, str]]:
        events = self.publisher.events(ModelPromotedV1.event_type)
        return [(e.version, e.to_stage.value) for e in events if isinstance(e, ModelPromotedV1)]

    def admin_events(self) -> list[AdminActionRecordedV1]:
        events = self.publisher.events(AdminActionRecordedV1.event_type)
        return [e for e in events if isinstance(e, AdminActionRecordedV1)]

    async def stage_of(self, n: int) -> ModelStage:
        found = await self.deps.registry.get("cairn-qa", n)
        assert found is not None
        return found.stage


@pytest.fixture
async def world() -> AsyncIterator[World]:
    keys = InMemoryKeyStore()
    tokens, ids = {}, {}
    for name, (tenant, role) in KEYS.items():
        issued, stored, _ = await create_key(keys, tenant=tenant, role=role, name=name, actor="test")
        tokens[name], ids[name] = issued.token, stored.key_id
    deps = make_deps()
    for n in (1, 2, 3):
        await deps.registry.register(version(n))
    spec = SuiteSpec(name="scenario", kind="scenario", gate=Gate(metric="pass_rate", min=0.5))
    run = Run(
        run_id="run-1",
        model_name="cairn-qa",
        candidate_version=2,
        started_at=T0,
        deadline=T0,
        cause_event_id="evt-1",
        suites=[spec],
    )
    case = EvalCase(id="q", variables={"question": "?"})
    await deps.runs.create(
        run,
        [
            RunCase(
                run_id="run-1", request_id=f"eval-run-1-0-{s}", index=0, side=s, suite="scenario", case=case
            )
            for s in ("c", "b")
        ],
    )
    app = create_app(deps, authenticator=Authenticator(keys))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://registry"
    ) as client:
        yield World(client, deps, tokens, ids)


READS = [
    "/v1/models",
    "/v1/models/cairn-qa",
    "/v1/models/cairn-qa/versions/1",
    "/v1/models/cairn-qa/history",
    "/v1/runs/run-1",
]


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", p) for p in READS]
    + [("POST", "/v1/models/cairn-qa/versions/1/promote"), ("POST", "/v1/models/cairn-qa/rollback")],
)
async def test_evaluator_auth_every_route_needs_a_key(world: World, method: str, path: str) -> None:
    response = await world.client.request(method, path, json={"to": "staging"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", READS)
async def test_evaluator_auth_any_tenants_viewer_reads_the_registry(world: World, path: str) -> None:
    response = await world.client.get(path, headers=world.as_("acme-viewer"))
    assert response.status_code == 200, response.text


async def test_evaluator_auth_reads_show_the_registry(world: World) -> None:
    [model] = (await world.client.get("/v1/models", headers=world.as_("acme-viewer"))).json()
    assert (model["name"], [v["version"] for v in model["versions"]], model["production"]) == (
        "cairn-qa",
        [1, 2, 3],
        None,
    )
    run = (await world.client.get("/v1/runs/run-1", headers=world.as_("acme-viewer"))).json()
    assert (run["run"]["candidate_version"], run["cases"], run["answered"]) == (2, 2, 0)
    for missing in (
        "/v1/models/nope",
        "/v1/models/cairn-qa/versions/9",
        "/v1/models/nope/history",
        "/v1/runs/nope",
    ):
        assert (await world.client.get(missing, headers=world.as_("acme-viewer"))).status_code == 404


async def test_evaluator_auth_a_viewer_cannot_promote(world: World) -> None:
    response = await world.client.post(
        "/v1/models/cairn-qa/versions/2/promote", json={"to": "staging"}, headers=world.as_("acme-viewer")
    )
    assert response.status_code == 403
    assert await world.stage_of(2) is ModelStage.DEV
    assert world.promoted() == []
    assert world.admin_events() == []


async def test_evaluator_auth_an_operator_stages_and_it_is_recorded(world: World) -> None:
    response = await world.client.post(
        "/v1/models/cairn-qa/versions/2/promote",
        json={"to": "staging", "reason": "looks good"},
        headers=world.as_("acme-operator"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["changed"] is True
    assert await world.stage_of(2) is ModelStage.STAGING
    [promoted] = world.publisher.events(ModelPromotedV1.event_type)
    assert isinstance(promoted, ModelPromotedV1)
    assert (promoted.version, promoted.to_stage, promoted.promoted_by) == (
        2,
        ModelStage.STAGING,
        world.ids["acme-operator"],
    )
    [admin] = world.admin_events()
    assert (admin.action, admin.target, admin.tenant) == ("model.promoted", "model:cairn-qa:2", "*")
    assert (admin.actor, admin.actor_role) == (world.ids["acme-operator"], "operator")
    assert admin.details["to_stage"] == "staging"
    assert admin.details["reason"] == "looks good"
    history = (await world.client.get("/v1/models/cairn-qa/history", headers=world.as_("acme-viewer"))).json()
    assert [(h["version"], h["to_stage"], h["by"]) for h in history] == [
        (2, "staging", world.ids["acme-operator"])
    ]

    again = await world.client.post(
        "/v1/models/cairn-qa/versions/2/promote", json={"to": "staging"}, headers=world.as_("acme-operator")
    )
    assert again.json() == {"changed": False, "promotions": []}
    assert len(world.admin_events()) == 1  # nothing happened, nothing recorded


@pytest.mark.parametrize("who", ["acme-operator", "acme-admin"])
@pytest.mark.parametrize("to", ["production", "archived"])
async def test_evaluator_auth_production_needs_a_platform_admin(world: World, who: str, to: str) -> None:
    response = await world.client.post(
        "/v1/models/cairn-qa/versions/2/promote", json={"to": to}, headers=world.as_(who)
    )
    assert response.status_code == 403
    assert await world.stage_of(2) is ModelStage.DEV
    rollback = await world.client.post("/v1/models/cairn-qa/rollback", headers=world.as_(who))
    assert rollback.status_code == 403
    assert world.promoted() == []
    assert world.admin_events() == []


async def promote(world: World, n: int, to: str = "production", who: str = "platform") -> dict[str, Any]:
    response = await world.client.post(
        f"/v1/models/cairn-qa/versions/{n}/promote", json={"to": to}, headers=world.as_(who)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_evaluator_auth_platform_admin_promotes_to_production(world: World) -> None:
    await promote(world, 1)
    body = await promote(world, 2)
    assert [(p["version"], p["to_stage"]) for p in body["promotions"]] == [(2, "production"), (1, "archived")]
    assert world.promoted() == [(1, "production"), (2, "production"), (1, "archived")]
    admins = world.admin_events()
    assert [(a.action, a.target, a.actor) for a in admins] == [
        ("model.promoted", "model:cairn-qa:1", world.ids["platform"]),
        ("model.promoted", "model:cairn-qa:2", world.ids["platform"]),
    ]
    assert admins[1].details["archived_versions"] == "1"
    assert admins[1].details["event_id"] == body["promotions"][0]["event_id"]
    model = (await world.client.get("/v1/models/cairn-qa", headers=world.as_("acme-viewer"))).json()
    assert model["production"] == 2


async def test_evaluator_auth_platform_admin_rolls_back(world: World) -> None:
    none_yet = await world.client.post("/v1/models/cairn-qa/rollback", headers=world.as_("platform"))
    assert none_yet.status_code == 409
    await promote(world, 1)
    await promote(world, 3)
    response = await world.client.post(
        "/v1/models/cairn-qa/rollback", json={"reason": "regression"}, headers=world.as_("platform")
    )
    assert response.status_code == 200, response.text
    assert await world.stage_of(1) is ModelStage.PRODUCTION
    assert await world.stage_of(3) is ModelStage.ARCHIVED
    last = world.admin_events()[-1]
    assert (last.action, last.target, last.details["reason"]) == (
        "model.rolled_back",
        "model:cairn-qa:1",
        "regression",
    )
    unknown = await world.client.post("/v1/models/nope/rollback", headers=world.as_("platform"))
    assert unknown.status_code == 404


async def test_evaluator_auth_promoting_an_unknown_version_is_not_found(world: World) -> None:
    response = await world.client.post(
        "/v1/models/cairn-qa/versions/9/promote", json={"to": "staging"}, headers=world.as_("acme-operator")
    )
    assert response.status_code == 404
    assert world.promoted() == []

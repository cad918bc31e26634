"""Shadows through the API (admins start and stop, a tenant-bound admin only its own tenant's,
viewers read; each change is an admin action) and through `cairn eval shadow`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from typer.testing import CliRunner

from cairn_auth import Authenticator, InMemoryKeyStore, Role, create_key
from cairn_bus import InMemoryPublisher, build_meta
from cairn_evaluator import cli_support
from cairn_evaluator.api import create_app
from cairn_evaluator.cli import eval_app
from cairn_evaluator.deps import Deps
from cairn_evaluator.settings import Settings
from cairn_events import AdminActionRecordedV1, RequestSubmittedV1

from .conftest import Clock, make_deps
from .online_support import NOW, deliver, request, response

KEYS = {
    "acme-viewer": ("acme", Role.VIEWER),
    "acme-operator": ("acme", Role.OPERATOR),
    "acme-admin": ("acme", Role.ADMIN),
    "platform": ("*", Role.ADMIN),
}
CHUNK = "A generator is a function that uses yield to produce values lazily."


def admin_actions(deps: Deps) -> list[AdminActionRecordedV1]:
    assert isinstance(deps.publisher, InMemoryPublisher)
    return [
        e
        for e in deps.publisher.events(AdminActionRecordedV1.event_type)
        if isinstance(e, AdminActionRecordedV1)
    ]


@dataclass
class World:
    client: httpx.AsyncClient
    deps: Deps
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
    deps = make_deps(
        settings=Settings(groundedness_embedder="lexical", shadow_refresh_s=60), clock=Clock(NOW)
    )
    app = create_app(deps, authenticator=Authenticator(keys))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://eval") as client:
        yield World(client, deps, tokens)


async def test_admins_start_and_stop_shadows_within_their_scope(world: World) -> None:
    body = {"shadow_id": "qa-v3", "prompt": "qa:3", "share": 1.0}
    assert (await world.client.post("/v1/shadows", json=body)).status_code == 401
    for who in ("acme-viewer", "acme-operator"):
        assert (await world.client.post("/v1/shadows", json=body, headers=world.as_(who))).status_code == 403
    # every tenant's traffic: platform admins only
    assert (
        await world.client.post("/v1/shadows", json=body, headers=world.as_("acme-admin"))
    ).status_code == 403
    mine = {**body, "shadow_id": "acme-qa", "tenant": "acme"}
    started = await world.client.post("/v1/shadows", json=mine, headers=world.as_("acme-admin"))
    assert started.status_code == 200, started.text
    assert started.json()["enabled"] is True
    assert (
        await world.client.post("/v1/shadows", json=body, headers=world.as_("platform"))
    ).status_code == 200
    refused = {**body, "shadow_id": "bad", "prompt": None}
    assert (
        await world.client.post("/v1/shadows", json=refused, headers=world.as_("platform"))
    ).status_code == 422
    conflict = {**body, "prompt": "qa:4"}
    assert (
        await world.client.post("/v1/shadows", json=conflict, headers=world.as_("platform"))
    ).status_code == 409

    # the service mirrors at once: the API invalidated its cached list of shadows
    await deliver(world.deps, request("live-1", "How do generators work?", NOW, tenant="acme"))
    assert isinstance(world.deps.publisher, InMemoryPublisher)
    twins = [
        e
        for e in world.deps.publisher.events(RequestSubmittedV1.event_type)
        if isinstance(e, RequestSubmittedV1)
    ]
    assert sorted(t.request_id for t in twins) == ["shadow:acme-qa:live-1", "shadow:qa-v3:live-1"]

    assert (
        await world.client.post("/v1/shadows/qa-v3/stop", headers=world.as_("acme-admin"))
    ).status_code == 403
    assert (
        await world.client.post("/v1/shadows/nope/stop", headers=world.as_("platform"))
    ).status_code == 404
    stopped = await world.client.post("/v1/shadows/qa-v3/stop", headers=world.as_("platform"))
    assert stopped.json()["enabled"] is False
    listed = await world.client.get("/v1/shadows", headers=world.as_("acme-viewer"))
    assert [(s["shadow_id"], s["enabled"]) for s in listed.json()] == [("acme-qa", True), ("qa-v3", False)]
    actions = [(a.action, a.target, a.tenant) for a in admin_actions(world.deps)]
    assert actions == [
        ("shadow.started", "shadow:acme-qa", "acme"),
        ("shadow.started", "shadow:qa-v3", "*"),
        ("shadow.stopped", "shadow:qa-v3", "*"),
    ]


async def test_viewers_read_a_shadows_report(world: World) -> None:
    body = {"shadow_id": "qa-v3", "model": "cairn-qa:2", "share": 1.0}
    assert (
        await world.client.post("/v1/shadows", json=body, headers=world.as_("platform"))
    ).status_code == 200
    live = request("live-1", "How do generators work?", NOW)
    live_meta = await deliver(world.deps, live)
    assert isinstance(world.deps.publisher, InMemoryPublisher)
    [twin_message] = [m for m in world.deps.publisher.messages if m.meta.replay_id]
    await deliver(world.deps, response("live-1", NOW, text="A generator uses yield.", chunks=[CHUNK]))
    answer = response("shadow:qa-v3:live-1", NOW, text="Bananas are yellow fruit.", chunks=[CHUNK])
    await deliver(world.deps, answer, build_meta(answer, source="/cairn/safety", cause=twin_message.meta))
    assert twin_message.meta.replay_of == live_meta.id
    got = await world.client.get("/v1/shadows/qa-v3/report", headers=world.as_("acme-viewer"))
    assert got.status_code == 200
    report = got.json()
    assert (report["summary"]["pairs"], report["summary"]["losses"]) == (1, 1)
    assert report["gate"]["passed"] is True  # not gated: shadow_gate_min_pairs is 0
    assert "groundedness 1.000 below live" in report["gate"]["note"]
    assert (
        await world.client.get("/v1/shadows/nope/report", headers=world.as_("platform"))
    ).status_code == 404


runner = CliRunner()


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deps]:
    shared = make_deps(
        settings=Settings(groundedness_embedder="lexical", shadow_refresh_s=0), clock=Clock(NOW)
    )

    @asynccontextmanager
    async def open_deps(publish: bool) -> AsyncIterator[Deps]:
        yield shared

    monkeypatch.setattr(cli_support, "open_deps", open_deps)
    return shared


def test_the_cli_starts_lists_reports_and_stops_a_shadow(deps: Deps) -> None:
    started = runner.invoke(
        eval_app, ["shadow", "start", "qa-v3", "--prompt", "qa:3", "--share", "0.5", "--by", "ann"]
    )
    assert started.exit_code == 0, started.output
    assert "shadow qa-v3: on, prompt qa:3, share 0.5" in started.output
    assert runner.invoke(eval_app, ["shadow", "start", "bad", "--share", "0.5"]).exit_code == 1
    listed = runner.invoke(eval_app, ["shadow", "list"])
    assert "qa-v3" in listed.output
    assert asyncio.run(deps.shadows.get_shadow("qa-v3")).created_by == "cli:ann"  # type: ignore[union-attr]
    reported = runner.invoke(eval_app, ["shadow", "report", "qa-v3", "--json"])
    assert reported.exit_code == 0, reported.output
    data = json.loads(reported.output)
    assert (data["shadow"]["shadow_id"], data["summary"]["mirrored"]) == ("qa-v3", 0)
    table = runner.invoke(eval_app, ["shadow", "report", "qa-v3"])
    assert "groundedness" in table.output
    assert "gate: pass" in table.output
    stopped = runner.invoke(eval_app, ["shadow", "stop", "qa-v3"])
    assert "shadow qa-v3: off" in stopped.output
    assert runner.invoke(eval_app, ["shadow", "stop", "nope"]).exit_code == 1
    changes = [a for a in admin_actions(deps) if a.details.get("access") != "direct-database"]
    assert [a.action for a in changes] == ["shadow.started", "shadow.stopped"]
    accesses = [(a.action, a.target) for a in admin_actions(deps) if a.details.get("access")]
    # announced and recorded before each write, the refused stop of an unknown shadow included
    assert accesses == [
        ("shadow.start", "shadow:qa-v3"),
        ("shadow.stop", "shadow:qa-v3"),
        ("shadow.stop", "shadow:nope"),
    ]
    assert asyncio.run(deps.shadows.get_shadow("qa-v3")).enabled is False  # type: ignore[union-attr]

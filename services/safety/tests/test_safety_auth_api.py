"""The review and policy API: API keys required, roles enforced, tenants kept apart, policy changes audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cairn_auth import Authenticator, InMemoryKeyStore, Role, create_key
from cairn_bus import InMemoryPublisher
from cairn_events import AdminActionRecordedV1, ReviewDecision, ReviewResolvedV1, SafetyFinding, Verdict
from cairn_safety.adapters.memory import InMemoryReviewQueue
from cairn_safety.adapters.policy_files import PolicyFiles, load_policy
from cairn_safety.api import create_app
from cairn_safety.app import router
from cairn_safety.decisions import decision_event_id
from cairn_safety.domain.reviews import ReviewItem, ReviewStatus

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
KEYS = {
    "acme-viewer": ("acme", Role.VIEWER),
    "acme-operator": ("acme", Role.OPERATOR),
    "acme-admin": ("acme", Role.ADMIN),
    "beta-operator": ("beta", Role.OPERATOR),
    "default-admin": ("default", Role.ADMIN),
    "platform": ("*", Role.ADMIN),
}


def item(review_id: str, tenant: str, minutes: int = 0) -> ReviewItem:
    return ReviewItem(
        review_id=review_id,
        request_id=f"req-{review_id}",
        tenant=tenant,
        stage="input",
        verdict=Verdict.REVIEW,
        findings=[SafetyFinding(check="toxicity", label="toxic", score=0.6, fired=True)],
        text="what the heck",
        policy="default@1",
        event_id=f"evt-{review_id}",
        created_at=T0 + timedelta(minutes=minutes),
    )


@dataclass
class World:
    client: httpx.AsyncClient
    queue: InMemoryReviewQueue
    publisher: InMemoryPublisher
    policy_dir: Path
    keys: dict[str, str]
    ids: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def admin_events(self) -> list[AdminActionRecordedV1]:
        found = self.publisher.events(AdminActionRecordedV1.event_type)
        return [e for e in found if isinstance(e, AdminActionRecordedV1)]


@pytest.fixture
async def world(policy_dir: Path) -> AsyncIterator[World]:
    keys = InMemoryKeyStore()
    tokens, ids = {}, {}
    for name, (tenant, role) in KEYS.items():
        issued, record, _ = await create_key(keys, tenant=tenant, role=role, name=name, actor="test")
        tokens[name], ids[name] = issued.token, record.key_id
    queue = InMemoryReviewQueue()
    for review in (item("rev-a1", "acme"), item("rev-a2", "acme", 1), item("rev-b1", "beta", 2)):
        async with queue.once("test", review.event_id) as tx:
            assert tx is not None
            await tx.add(review)
    publisher = InMemoryPublisher("/cairn/safety", allowed_types=router.published_types)
    app = create_app(
        reviews=queue,
        policies=PolicyFiles(policy_dir),
        publisher=publisher,
        authenticator=Authenticator(keys),
        clock=lambda: NOW,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://safety") as client:
        yield World(client, queue, publisher, policy_dir, tokens, ids)


def review_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["review_id"] for r in response.json()]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/reviews"),
        ("GET", "/v1/reviews/rev-a1"),
        ("POST", "/v1/reviews/rev-a1/decision"),
        ("GET", "/v1/policies"),
        ("GET", "/v1/policies/acme"),
        ("PUT", "/v1/policies/acme"),
    ],
)
async def test_safety_auth_every_route_needs_a_key(world: World, method: str, path: str) -> None:
    response = await world.client.request(method, path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    bad = await world.client.request(method, path, headers={"X-API-Key": "cairn_0123456789ab_nope"})
    assert bad.status_code == 401


async def test_safety_auth_a_tenant_lists_only_its_own_reviews(world: World) -> None:
    assert review_ids(await world.client.get("/v1/reviews", headers=world.as_("acme-viewer"))) == [
        "rev-a1",
        "rev-a2",
    ]
    assert review_ids(await world.client.get("/v1/reviews", headers=world.as_("beta-operator"))) == ["rev-b1"]
    asked = await world.client.get("/v1/reviews?tenant=beta", headers=world.as_("acme-viewer"))
    assert asked.status_code == 404


async def test_safety_auth_platform_admin_sees_every_tenant(world: World) -> None:
    everything = await world.client.get("/v1/reviews", headers=world.as_("platform"))
    assert review_ids(everything) == ["rev-a1", "rev-a2", "rev-b1"]
    beta = await world.client.get("/v1/reviews?tenant=beta", headers=world.as_("platform"))
    assert review_ids(beta) == ["rev-b1"]
    one = await world.client.get("/v1/reviews/rev-b1", headers=world.as_("platform"))
    assert one.json()["tenant"] == "beta"


async def test_safety_auth_another_tenants_review_is_not_found(world: World) -> None:
    mine = await world.client.get("/v1/reviews/rev-a1", headers=world.as_("acme-viewer"))
    assert mine.status_code == 200
    assert mine.json()["text"] == "what the heck"
    theirs = await world.client.get("/v1/reviews/rev-b1", headers=world.as_("acme-viewer"))
    missing = await world.client.get("/v1/reviews/rev-zz", headers=world.as_("acme-viewer"))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    decided = await world.client.post(
        "/v1/reviews/rev-b1/decision", json={"decision": "approve"}, headers=world.as_("acme-operator")
    )
    assert decided.status_code == 404
    assert (await world.queue.get("rev-b1")).status is ReviewStatus.PENDING  # type: ignore[union-attr]


async def test_safety_auth_a_viewer_cannot_decide(world: World) -> None:
    response = await world.client.post(
        "/v1/reviews/rev-a1/decision", json={"decision": "reject"}, headers=world.as_("acme-viewer")
    )
    assert response.status_code == 403
    assert (await world.queue.get("rev-a1")).status is ReviewStatus.PENDING  # type: ignore[union-attr]


async def test_safety_auth_a_decision_records_the_reviewer_key(world: World) -> None:
    response = await world.client.post(
        "/v1/reviews/rev-a1/decision",
        json={"decision": "reject", "note": "abusive"},
        headers=world.as_("acme-operator"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["resolved_by"], body["note"]) == (
        "rejected",
        world.ids["acme-operator"],
        "abusive",
    )
    stored = await world.queue.get("rev-a1")
    assert stored is not None
    assert (stored.status, stored.resolved_by, stored.resolved_at) == (
        ReviewStatus.REJECTED,
        world.ids["acme-operator"],
        NOW,
    )
    assert review_ids(await world.client.get("/v1/reviews", headers=world.as_("acme-viewer"))) == ["rev-a2"]
    rejected = await world.client.get("/v1/reviews?status=rejected", headers=world.as_("acme-viewer"))
    assert review_ids(rejected) == ["rev-a1"]
    again = await world.client.post(
        "/v1/reviews/rev-a1/decision", json={"decision": "approve"}, headers=world.as_("acme-operator")
    )
    assert again.status_code == 409
    assert world.admin_events() == []  # a decision is an operator's, not an administrative, action
    # the decision is an event, once: who decided, what, when and why
    [decision] = world.publisher.events(ReviewResolvedV1.event_type)
    assert isinstance(decision, ReviewResolvedV1)
    assert (decision.review_id, decision.request_id, decision.tenant, decision.stage) == (
        "rev-a1",
        "req-rev-a1",
        "acme",
        "input",
    )
    assert (decision.decision, decision.decided_by, decision.reason, decision.decided_at) == (
        ReviewDecision.REJECT,
        world.ids["acme-operator"],
        "abusive",
        NOW,
    )
    assert not decision.by_deadline
    [message] = [m for m in world.publisher.messages if m.event is decision]
    assert message.meta.id == decision_event_id("rev-a1")


async def test_safety_auth_an_edit_carries_the_reviewers_text(world: World) -> None:
    edited = await world.client.post(
        "/v1/reviews/rev-a2/decision",
        json={"decision": "edit", "text": "Refunds take 5 days.", "note": "tone"},
        headers=world.as_("acme-operator"),
    )
    assert edited.status_code == 200, edited.text
    assert (edited.json()["status"], edited.json()["edited_text"]) == ("edited", "Refunds take 5 days.")
    [decision] = world.publisher.events(ReviewResolvedV1.event_type)
    assert isinstance(decision, ReviewResolvedV1)
    assert (decision.decision, decision.text) == (ReviewDecision.EDIT, "Refunds take 5 days.")


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "edit"},
        {"decision": "edit", "text": "  "},
        {"decision": "approve", "text": "not for approve"},
        {"decision": "maybe"},
    ],
)
async def test_safety_auth_a_malformed_decision_is_refused(world: World, body: dict[str, Any]) -> None:
    response = await world.client.post(
        "/v1/reviews/rev-a1/decision", json=body, headers=world.as_("acme-operator")
    )
    assert response.status_code == 422
    assert (await world.queue.get("rev-a1")).status is ReviewStatus.PENDING  # type: ignore[union-attr]
    assert world.publisher.events(ReviewResolvedV1.event_type) == []


async def test_safety_auth_a_decision_that_cannot_be_published_is_not_recorded(world: World) -> None:
    async def broker_down(message: Any) -> None:
        raise ConnectionError("broker went away")

    world.publisher.send = broker_down  # type: ignore[method-assign]
    response = await world.client.post(
        "/v1/reviews/rev-a1/decision", json={"decision": "approve"}, headers=world.as_("acme-operator")
    )
    assert response.status_code == 503
    assert (await world.queue.get("rev-a1")).status is ReviewStatus.PENDING  # type: ignore[union-attr]


async def test_safety_auth_policies_are_scoped_to_the_tenant(world: World) -> None:
    acme = await world.client.get("/v1/policies", headers=world.as_("acme-viewer"))
    assert [p["name"] for p in acme.json()] == ["default"]  # acme has no policy of its own
    every = await world.client.get("/v1/policies", headers=world.as_("platform"))
    assert [p["name"] for p in every.json()] == ["default", "strict"]
    assert (await world.client.get("/v1/policies/acme", headers=world.as_("acme-viewer"))).status_code == 200
    assert (
        await world.client.get("/v1/policies/strict", headers=world.as_("acme-viewer"))
    ).status_code == 404


def policy_body(name: str, version: int, block_at: float = 0.4) -> dict[str, Any]:
    bands = [{"min_score": block_at, "action": "block"}]
    return {
        "name": name,
        "version": version,
        "input": {
            "toxicity": {"thresholds": bands},
            "pii": {"enabled": False},
            "injection": {"thresholds": bands},
            "context_injection": {"enabled": False},
        },
        "output": {"toxicity": {"thresholds": bands}, "pii": {"enabled": False}},
    }


async def test_safety_auth_a_policy_change_is_written_and_published(world: World) -> None:
    response = await world.client.put(
        "/v1/policies/acme", json=policy_body("acme", 1), headers=world.as_("acme-admin")
    )
    assert response.status_code == 200, response.text
    assert response.json()["changed"] is True
    written = yaml.safe_load((world.policy_dir / "acme.yaml").read_text())
    assert written["name"] == "acme"
    assert written["input"]["toxicity"]["thresholds"] == [{"min_score": 0.4, "action": "block"}]
    shown = await world.client.get("/v1/policies/acme", headers=world.as_("acme-viewer"))
    assert shown.json()["name"] == "acme"
    [event] = world.admin_events()
    assert (event.action, event.target, event.tenant) == ("policy.changed", "policy:acme", "acme")
    assert (event.actor, event.actor_role) == (world.ids["acme-admin"], "admin")
    assert event.details == {"policy": "acme@1", "version": 1}

    same = await world.client.put(
        "/v1/policies/acme", json=policy_body("acme", 1), headers=world.as_("acme-admin")
    )
    assert same.json()["changed"] is False
    stale = await world.client.put(
        "/v1/policies/acme", json=policy_body("acme", 1, 0.5), headers=world.as_("acme-admin")
    )
    assert stale.status_code == 409
    bumped = await world.client.put(
        "/v1/policies/acme", json=policy_body("acme", 2, 0.5), headers=world.as_("acme-admin")
    )
    assert bumped.json()["previous_version"] == 1
    assert [e.details["version"] for e in world.admin_events()] == [1, 2]


async def test_safety_auth_policy_changes_need_an_admin_of_the_tenant(world: World) -> None:
    body = policy_body("acme", 1)
    operator = await world.client.put("/v1/policies/acme", json=body, headers=world.as_("acme-operator"))
    assert operator.status_code == 403
    other = await world.client.put(
        "/v1/policies/beta", json=policy_body("beta", 1), headers=world.as_("acme-admin")
    )
    assert other.status_code == 404
    default = policy_body("default", 9)
    not_theirs = await world.client.put("/v1/policies/default", json=default, headers=world.as_("acme-admin"))
    assert not_theirs.status_code == 404
    # the tenant called `default` has no policy of its own: its admin would change everyone's
    everyones = await world.client.put(
        "/v1/policies/default", json=default, headers=world.as_("default-admin")
    )
    assert everyones.status_code == 403
    misnamed = await world.client.put(
        "/v1/policies/acme", json=policy_body("beta", 1), headers=world.as_("acme-admin")
    )
    assert misnamed.status_code == 422
    invalid = policy_body("acme", 1)
    invalid["input"]["toxicity"]["thresholds"] = [{"min_score": 0.4, "action": "redact"}]
    refused = await world.client.put("/v1/policies/acme", json=invalid, headers=world.as_("acme-admin"))
    assert refused.status_code == 422
    assert not (world.policy_dir / "acme.yaml").exists()
    assert world.admin_events() == []


async def test_safety_auth_platform_admin_changes_the_default_policy_as_platform(world: World) -> None:
    response = await world.client.put(
        "/v1/policies/default", json=policy_body("default", 2), headers=world.as_("platform")
    )
    assert response.status_code == 200, response.text
    assert response.json()["previous_version"] == 1
    [event] = world.admin_events()
    assert (event.tenant, event.target, event.details["previous_version"]) == ("*", "policy:default", 1)


class FailingPublisher(InMemoryPublisher):
    async def send(self, message: Any) -> None:
        raise ConnectionError("broker down")


async def test_safety_auth_a_policy_change_that_cannot_be_recorded_is_undone(policy_dir: Path) -> None:
    keys = InMemoryKeyStore()
    issued, _, _ = await create_key(keys, tenant="*", role=Role.ADMIN, name="root", actor="test")
    before = load_policy(policy_dir / "strict.yaml")
    app = create_app(
        reviews=InMemoryReviewQueue(),
        policies=PolicyFiles(policy_dir),
        publisher=FailingPublisher(),
        authenticator=Authenticator(keys),
    )
    headers = {"X-API-Key": issued.token}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
        changed = await client.put("/v1/policies/strict", json=policy_body("strict", 6), headers=headers)
        new = await client.put("/v1/policies/acme", json=policy_body("acme", 1), headers=headers)
        shown = await client.get("/v1/policies/strict", headers=headers)
    assert changed.status_code == new.status_code == 503
    assert shown.json()["version"] == 5
    assert load_policy(policy_dir / "strict.yaml") == before
    assert not (policy_dir / "acme.yaml").exists()

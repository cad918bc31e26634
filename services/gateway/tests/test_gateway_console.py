"""The console's sessions, CSRF protection, RBAC, requests, trails and the review queue, over fake
service APIs (the browser tests in tests/e2e/test_console.py run it against the real services)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cairn_gateway.console.session import COOKIE, Session, SessionSealer

from .console_world import ConsoleWorld, FakeApis, console_world

TRAIL = {
    "request_id": "req-1",
    "events": [
        {"event_type": "cairn.request.submitted.v1", "event_time": "2026-12-07T10:00:00+00:00", "source": "/upstream",
         "payload": {"request_id": "req-1", "prompt": "qa", "variables": {"question": "What does pass do?"}}},
        {"event_type": "cairn.context.assembled.v1", "event_time": "2026-12-07T10:00:00.250+00:00",
         "source": "/cairn/retriever", "payload": {"context_tokens": 40, "chunks": [
             {"document_id": "d1", "chunk_id": "d1#0", "source_uri": "file:///kb/pass.md",
              "content_hash": "sha256:" + "ab" * 32, "score": 0.91, "text": "pass is a null operation"}]}},
        {"event_type": "cairn.input.screened.v1", "event_time": "2026-12-07T10:00:00.300+00:00",
         "source": "/cairn/safety", "payload": {"verdict": "review", "policy": "acme@1", "findings": [
             {"check": "toxicity", "label": "toxic", "score": 0.7, "fired": True, "detail": "over 0.5"}]}},
        {"event_type": "cairn.review.requested.v1", "event_time": "2026-12-07T10:00:00.400+00:00",
         "source": "/cairn/safety", "payload": {"stage": "input", "verdict": "review", "findings": []}},
        {"event_type": "cairn.response.completed.v1", "event_time": "2026-12-07T10:00:01.500+00:00",
         "source": "/cairn/safety", "payload": {"request_id": "req-1", "status": "held",
                                                 "reason": "held for review", "usage": None}},
    ],
}  # fmt: skip
ANSWER = {
    "event_type": "cairn.response.completed.v1", "event_time": "2026-12-07T10:00:01+00:00", "tenant": "acme",
    "payload": {"request_id": "req-1", "status": "completed", "prompt_name": "qa", "prompt_version": 2,
                "model": "cairn-qa", "model_version": "3", "usage": {"input_tokens": 30, "output_tokens": 12}},
}  # fmt: skip
REVIEW = {
    "review_id": "rev-1", "request_id": "req-1", "tenant": "acme", "stage": "input", "verdict": "review",
    "findings": [], "text": "What does pass do?", "policy": "acme@1", "status": "pending",
    "created_at": "2026-12-07T10:00:00+00:00", "deadline_at": "2026-12-07T11:00:00+00:00",
    "on_deadline": "reject", "resolved_by": None, "resolved_at": None, "note": None, "edited_text": None,
}  # fmt: skip


@pytest.fixture
async def world() -> AsyncIterator[ConsoleWorld]:
    apis = FakeApis()
    apis.answer("audit", "GET", "/v1/trails/req-1", TRAIL)
    apis.answer("audit", "GET", "/v1/events", [ANSWER])
    apis.answer("safety", "GET", "/v1/reviews", [REVIEW])
    apis.answer("safety", "GET", "/v1/reviews/rev-1", REVIEW)
    apis.answer("safety", "POST", "/v1/reviews/rev-1/decision", {**REVIEW, "status": "approved"})
    async with console_world(apis) as w:
        yield w


async def test_a_page_without_a_session_sends_the_browser_to_the_login(world: ConsoleWorld) -> None:
    got = await world.client.get("/console/reviews")
    assert got.status_code == 303
    assert got.headers["location"] == "/console/login?next=/console/reviews"


async def test_a_login_with_a_valid_key_opens_the_pages_and_the_key_is_never_in_them(
    world: ConsoleWorld,
) -> None:
    await world.login("operator")
    cookie = world.client.cookies[COOKIE]
    assert world.tokens["operator"] not in cookie  # sealed, not readable
    page = await world.client.get("/console/requests")
    assert page.status_code == 200
    assert "req-1" in page.text
    assert world.tokens["operator"] not in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    [(path, query, _, auth)] = world.apis.calls_to("audit")
    assert path == "/v1/events"
    assert query["type"] == "cairn.response.completed.v1"
    assert query["order"] == "newest"
    assert auth == f"Bearer {world.tokens['operator']}"  # the services decide, with the operator's own key


async def test_a_wrong_key_is_refused_and_opens_nothing(world: ConsoleWorld) -> None:
    world.tokens["forged"] = "cairn_nokey_" + "x" * 32
    page = await world.client.get("/console/login")
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    got = await world.client.post("/console/login", data={"csrf": token, "api_key": world.tokens["forged"]})
    assert got.status_code == 303
    assert "failed=1" in got.headers["location"]
    assert COOKIE not in world.client.cookies
    again = await world.client.get(got.headers["location"])
    assert again.status_code == 401
    assert "not valid" in again.text


async def test_a_login_form_without_its_token_is_refused(world: ConsoleWorld) -> None:
    await world.client.get("/console/login")
    got = await world.client.post("/console/login", data={"csrf": "guess", "api_key": world.tokens["admin"]})
    assert got.status_code == 403
    assert COOKIE not in world.client.cookies


async def test_login_never_sends_the_browser_to_another_site(world: ConsoleWorld) -> None:
    page = await world.client.get("/console/login")
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    got = await world.client.post(
        "/console/login", data={"csrf": token, "api_key": world.tokens["viewer"], "next": "//evil.example/x"}
    )
    assert got.headers["location"] == "/console/requests"


async def test_a_search_by_request_id_opens_its_trail_as_a_timeline(world: ConsoleWorld) -> None:
    await world.login("viewer")
    got = await world.client.get("/console/requests", params={"request_id": "req-1"})
    assert got.headers["location"] == "/console/requests/req-1"
    trail = await world.client.get("/console/requests/req-1")
    assert trail.status_code == 200
    text = trail.text
    assert text.index("cairn.request.submitted.v1") < text.index("cairn.context.assembled.v1")
    assert "+250 ms" in text
    assert "+1500 ms" in text
    assert "file:///kb/pass.md" in text
    assert "d1#0" in text
    assert "input screened: review under policy acme@1" in text
    assert "held for review: the input was judged review" in text
    assert 'id="trail-status">held' in text


async def test_requests_filter_by_status_and_prompt(world: ConsoleWorld) -> None:
    await world.login("viewer")
    shown = await world.client.get("/console/requests", params={"status": "completed", "prompt": "qa"})
    assert "req-1" in shown.text
    hidden = await world.client.get("/console/requests", params={"status": "blocked"})
    assert "req-1" not in hidden.text
    assert "No answered requests match" in hidden.text


async def test_an_operator_approves_a_held_review_through_the_safety_api(world: ConsoleWorld) -> None:
    await world.login("operator")
    page = await world.client.get("/console/reviews/rev-1")
    assert 'id="approve"' in page.text
    csrf = await world.csrf("/console/reviews/rev-1")
    got = await world.client.post(
        "/console/reviews/rev-1/decision", data={"csrf": csrf, "decision": "approve", "note": "fine"}
    )
    assert got.status_code == 303
    assert got.headers["location"] == "/console/reviews/rev-1?notice=approved"
    [(path, _, body, auth)] = world.apis.calls_to("safety", "POST")
    assert path == "/v1/reviews/rev-1/decision"
    assert body == {"decision": "approve", "note": "fine"}
    assert auth == f"Bearer {world.tokens['operator']}"


async def test_a_decision_without_the_sessions_csrf_token_is_refused(world: ConsoleWorld) -> None:
    await world.login("operator")
    got = await world.client.post("/console/reviews/rev-1/decision", data={"decision": "approve"})
    assert got.status_code == 403
    assert "CSRF" in got.text
    assert world.apis.calls_to("safety", "POST") == []


async def test_a_form_posted_from_another_site_is_refused(world: ConsoleWorld) -> None:
    await world.login("operator")
    csrf = await world.csrf("/console/reviews/rev-1")
    got = await world.client.post(
        "/console/reviews/rev-1/decision",
        data={"csrf": csrf, "decision": "approve"},
        headers={"origin": "http://evil.example"},
    )
    assert got.status_code == 403
    assert world.apis.calls_to("safety", "POST") == []


async def test_a_viewer_sees_the_queue_but_cannot_decide(world: ConsoleWorld) -> None:
    await world.login("viewer")
    page = await world.client.get("/console/reviews/rev-1")
    assert page.status_code == 200
    assert 'id="approve"' not in page.text
    assert "needs the operator role" in page.text
    csrf = await world.csrf("/console/reviews/rev-1")
    got = await world.client.post(
        "/console/reviews/rev-1/decision", data={"csrf": csrf, "decision": "reject"}
    )
    assert got.status_code == 403
    assert world.apis.calls_to("safety", "POST") == []


async def test_an_edit_needs_the_corrected_text(world: ConsoleWorld) -> None:
    await world.login("operator")
    csrf = await world.csrf("/console/reviews/rev-1")
    got = await world.client.post("/console/reviews/rev-1/decision", data={"csrf": csrf, "decision": "edit"})
    assert got.status_code == 400
    assert world.apis.calls_to("safety", "POST") == []


async def test_a_services_refusal_is_shown_as_an_error_page(world: ConsoleWorld) -> None:
    world.apis.answer("audit", "GET", "/v1/trails/req-9", {"detail": "not found"}, 404)
    await world.login("viewer")
    got = await world.client.get("/console/requests/req-9")
    assert got.status_code == 404
    assert "audit: not found" in got.text


async def test_logging_out_ends_the_session(world: ConsoleWorld) -> None:
    await world.login("viewer")
    csrf = await world.csrf()
    got = await world.client.post("/console/logout", data={"csrf": csrf})
    assert got.status_code == 303
    assert (await world.client.get("/console/requests")).status_code == 303


def test_a_tampered_or_expired_session_opens_nothing() -> None:
    sealer = SessionSealer.of_secret("s")
    sealed = sealer.seal(Session("cairn_k", "t", expires_at=2_000.0))
    assert sealer.open(sealed, now=1_000.0) == Session("cairn_k", "t", 2_000.0)
    assert sealer.open(sealed, now=3_000.0) is None
    assert sealer.open(sealed[:-4] + "AAAA", now=1_000.0) is None
    assert SessionSealer.of_secret("other").open(sealed, now=1_000.0) is None


async def test_a_trail_shows_the_latest_answer_as_the_outcome_whatever_the_causal_order(
    world: ConsoleWorld,
) -> None:
    released = {
        "event_type": "cairn.response.completed.v1",
        "event_time": "2026-12-07T10:00:09+00:00",
        "source": "/cairn/safety",
        "payload": {"request_id": "req-2", "status": "completed", "text": "It does nothing."},
    }
    held = {**TRAIL["events"][-1], "payload": {**TRAIL["events"][-1]["payload"], "request_id": "req-2"}}
    world.apis.answer("audit", "GET", "/v1/trails/req-2", {"request_id": "req-2", "events": [released, held]})
    await world.login("viewer")
    page = await world.client.get("/console/requests/req-2")
    assert 'id="trail-status">completed' in page.text


def test_a_trail_entry_says_what_the_response_cache_did() -> None:
    from cairn_gateway.console.pages_requests import summarise

    hit = {"result": "hit", "kind": "exact", "source_request_id": "req-0"}
    event = {"event_type": "cairn.completion.generated.v1", "payload": {"model": "m", "cache": hit}}
    assert summarise(event)["summary"].endswith("; cache hit (exact) from req-0")
    bypass = {"result": "bypass", "reason": "not deterministic"}
    answer = {
        "event_type": "cairn.response.completed.v1",
        "payload": {"status": "completed", "cache": bypass},
    }
    assert summarise(answer)["summary"] == "answered completed; cache bypass: not deterministic"


def test_a_trail_entry_says_how_the_routing_policy_chose_the_model() -> None:
    from cairn_gateway.console.pages_requests import summarise

    route = {
        "policy": "acme",
        "policy_version": 2,
        "rule": "batch-work",
        "chain": ["cairn-qa-int8", "SmolLM2-135M-Instruct"],
        "fallbacks": [{"model": "cairn-qa-int8", "reason": "overloaded: 9 requests waiting (max_waiting 8)"}],
    }
    event = {"event_type": "cairn.response.completed.v1", "payload": {"status": "completed", "route": route}}
    assert summarise(event)["summary"] == (
        "answered completed; routed by acme v2 rule batch-work; "
        "passed over cairn-qa-int8 (overloaded: 9 requests waiting (max_waiting 8))"
    )

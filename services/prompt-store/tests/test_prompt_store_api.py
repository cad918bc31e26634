"""The management HTTP API on PostgreSQL, through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cairn_auth import AuthSettings
from cairn_bus import InMemoryPublisher
from cairn_bus.postgres import create_pool
from cairn_prompt_store.adapters.postgres import PostgresPromptStore
from cairn_prompt_store.api import create_app
from cairn_prompt_store.app import router
from cairn_prompt_store.bootstrap import build
from cairn_prompt_store.domain.prompt_file import dump_prompt
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.settings import Settings

from .conftest import QA_FILE

pytestmark = pytest.mark.integration
AUTH_OFF = AuthSettings(enabled=False)  # access control has its own tests (test_prompt_store_auth_*)


@pytest.fixture
async def client(fresh_database: str) -> AsyncIterator[httpx.AsyncClient]:
    pool = await create_pool(fresh_database)
    store = PostgresPromptStore(pool)
    await store.migrate()
    publisher = InMemoryPublisher("/cairn/prompt-store", allowed_types=router.published_types)
    app = create_app(store, publisher=publisher, auth=AUTH_OFF)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c
    await pool.close()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def push_qa(client: httpx.AsyncClient, **extra: Any) -> Any:
    return ok(
        await client.post("/prompts", json={"yaml": QA_FILE.read_text(), "labels": ["production"], **extra})
    )


async def test_push_list_show_and_dedupe(client: httpx.AsyncClient, qa_spec: PromptSpec) -> None:
    first = await push_qa(client, by="ana")
    assert (first["name"], first["version"], first["created"]) == ("qa", 1, True)
    assert first["content_hash"] == qa_spec.content_hash()
    assert [(m["label"], m["version"], m["previous"], m["moved_by"]) for m in first["moved"]] == [
        ("production", 1, None, "ana")
    ]
    again = ok(await client.post("/prompts", json={"spec": qa_spec.canonical()}))
    assert (again["version"], again["created"], again["moved"]) == (1, False, [])
    second = ok(await client.post("/prompts", json={"spec": {**qa_spec.canonical(), "description": "v2"}}))
    assert (second["version"], second["created"]) == (2, True)

    listing = ok(await client.get("/prompts"))
    assert [(p["name"], p["latest_version"], p["labels"], p["experiment"]) for p in listing] == [
        ("qa", 2, {"production": 1}, None)
    ]
    shown = ok(await client.get("/prompts/qa"))
    assert (shown["version"], shown["label"], shown["created_by"]) == (1, "production", "ana")
    assert shown["source"] == dump_prompt(qa_spec)
    assert PromptSpec.model_validate(shown["spec"]) == qa_spec
    assert ok(await client.get("/prompts/qa:2"))["spec"]["description"] == "v2"
    assert ok(await client.get("/prompts/qa/versions/2"))["version"] == 2
    assert [v["version"] for v in ok(await client.get("/prompts/qa/versions"))] == [1, 2]


async def test_labels_move_with_history_and_diff(client: httpx.AsyncClient, qa_spec: PromptSpec) -> None:
    await push_qa(client)
    changed = qa_spec.canonical()
    changed["messages"][1]["content"] = "Question: {{ question }}"
    ok(await client.post("/prompts", json={"spec": changed}))
    moved = ok(await client.put("/prompts/qa/labels/production", json={"version": 2, "by": "ben"}))
    assert (moved["version"], moved["previous"], moved["moved_by"]) == (2, 1, "ben")
    assert ok(await client.get("/prompts/qa/labels")) == {"production": 2}
    history = ok(await client.get("/prompts/qa/history"))
    assert [(h["label"], h["previous"], h["version"]) for h in history] == [
        ("production", None, 1),
        ("production", 1, 2),
    ]
    diff = await client.get("/prompts/qa/diff", params={"from": 1, "to": 2})
    assert diff.status_code == 200
    assert diff.headers["content-type"].startswith("text/plain")
    assert "-  content: '{{ question }}'\n+  content: 'Question: {{ question }}'\n" in diff.text


async def test_render_preview_and_experiments(client: httpx.AsyncClient, qa_spec: PromptSpec) -> None:
    await push_qa(client)
    ok(
        await client.post(
            "/prompts", json={"spec": {**qa_spec.canonical(), "description": "v2"}, "labels": ["staging"]}
        )
    )
    body = {"prompt": "qa", "variables": {"topic": "io"}, "messages": [{"role": "user", "content": "How?"}]}
    rendered = ok(await client.post("/render", json=body))
    assert (rendered["prompt_version"], rendered["prompt_label"], rendered["experiment"]) == (
        1,
        "production",
        None,
    )
    assert rendered["messages"][-1] == {"role": "user", "content": "How?"}
    assert rendered["retrieval"]["query"] == "io: How?"

    experiment = {
        "name": "prod-vs-staging",
        "variants": [
            {"name": "a", "label": "production", "weight": 1},
            {"name": "b", "version": 2, "weight": 1},
        ],
        "by": "ana",
    }
    assert ok(await client.put("/experiments/qa", json=experiment))["prompt"] == "qa"
    assert ok(await client.get("/experiments/qa"))["name"] == "prod-vs-staging"
    assert [e["name"] for e in ok(await client.get("/experiments"))] == ["prod-vs-staging"]
    assert ok(await client.get("/prompts"))[0]["experiment"] == "prod-vs-staging"
    variants = set()
    for user in ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"]:
        out = ok(await client.post("/render", json={**body, "user_id": user}))
        again = ok(await client.post("/render", json={**body, "user_id": user}))
        assert (out["variant"], out["prompt_version"]) == (again["variant"], again["prompt_version"])
        variants.add((out["variant"], out["prompt_version"]))
    assert variants == {("a", 1), ("b", 2)}
    assert (await client.delete("/experiments/qa")).status_code == 204
    assert (await client.get("/experiments/qa")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("get", "/prompts/nope", None, 404, "unknown prompt 'nope'"),
        ("get", "/prompts/qa@dev", None, 404, "prompt 'qa' has no label 'dev' (labels: production)"),
        ("get", "/prompts/qa:7", None, 404, "prompt 'qa' has no version 7 (latest is 1)"),
        ("get", "/prompts/qa@", None, 422, "invalid prompt reference 'qa@'"),
        ("get", "/prompts/nope/versions", None, 404, "unknown prompt 'nope'"),
        ("put", "/prompts/qa/labels/production", {"version": 9}, 404, "prompt 'qa' has no version 9"),
        ("put", "/prompts/qa/labels/12", {"version": 1}, 422, "invalid label '12'"),
        ("post", "/render", {"prompt": "qa"}, 422, "missing required variable 'question'"),
        (
            "post",
            "/prompts",
            {"yaml": "name: x\nmessages: [{role: user, content: '{{ y }}'}]"},
            422,
            "prompt 'x': message 1 (user): uses undeclared variable(s): y",
        ),
        ("post", "/prompts", {"yaml": "name: ["}, 422, "yaml: not valid YAML"),
        (
            "put",
            "/experiments/qa",
            {"name": "e", "variants": [{"name": "a", "label": "gone"}]},
            404,
            "variant 'a': prompt 'qa' has no label 'gone'",
        ),
        (
            "put",
            "/experiments/qa",
            {"name": "e", "variants": [{"name": "a", "version": 1, "label": "x"}]},
            422,
            "exactly one of `version` and `label`",
        ),
        ("delete", "/experiments/qa", None, 404, "no experiment runs on prompt 'qa'"),
    ],
)
async def test_errors_say_what_is_wrong(
    client: httpx.AsyncClient, method: str, path: str, body: Any, status: int, detail: str
) -> None:
    await push_qa(client)
    response = await client.request(method.upper(), path, json=body)
    assert response.status_code == status, response.text
    assert detail in str(response.json()["detail"])


async def test_openapi_docs_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    schema = ok(await client.get("/openapi.json"))
    assert {"/prompts", "/render", "/experiments", "/prompts/{ref}"} <= set(schema["paths"])
    assert ok(await client.get("/health")) == {"status": "ok"}


async def test_the_app_serves_the_store_the_service_built(fresh_database: str) -> None:
    publisher = InMemoryPublisher("/cairn/prompt-store", allowed_types=router.published_types)
    settings = Settings(postgres_dsn=fresh_database, http_enabled=False)
    async with build(settings, publisher) as deps:
        app = create_app(deps.store, publisher=publisher, auth=AUTH_OFF)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert ok(await c.get("/prompts")) == []
            assert ok(await c.post("/prompts", json={"yaml": QA_FILE.read_text()}))["version"] == 1

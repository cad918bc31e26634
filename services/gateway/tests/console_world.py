"""A console over fake service APIs: the gateway app with its console, its backends answered by
`FakeApis` (recorded calls, canned answers per route), and a browser-like client that logs in."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from cairn_auth import Authenticator, AuthSettings, Role
from cairn_auth.adapters.memory import InMemoryKeyStore
from cairn_auth.management import create_key
from cairn_gateway.adapters.memory import InMemoryAnsweredRequests, StaticCatalogue
from cairn_gateway.api import create_app
from cairn_gateway.console import console_of
from cairn_gateway.console.backends import Backends
from cairn_gateway.deps import Deps
from cairn_gateway.replies import ReplyBook
from cairn_observability.pricing import PriceTable

from .conftest import AnsweringPublisher

BASE = "http://gw"
ROLES = {"viewer": ("acme", Role.VIEWER), "operator": ("acme", Role.OPERATOR), "admin": ("acme", Role.ADMIN),
         "root": ("*", Role.ADMIN)}  # fmt: skip
Handler = Callable[[httpx.Request], Any]


class FakeApis:
    """The services' APIs: `answer(api, method, path_regex, body_or_handler, status)`; every call is in
    `calls` as (api, method, path, query, json body, Authorization)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, str, re.Pattern[str], Any, int]] = []
        self.calls: list[tuple[str, str, str, dict[str, str], Any, str | None]] = []

    def answer(self, api: str, method: str, path: str, body: Any, status: int = 200) -> None:
        self.routes.insert(0, (api, method, re.compile(path + "$"), body, status))

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            api = request.url.host.split(".")[0]
            sent = json.loads(request.content) if request.content else None
            self.calls.append(
                (api, request.method, request.url.path, dict(request.url.params), sent,
                 request.headers.get("authorization"))
            )  # fmt: skip
            for r_api, method, pattern, body, status in self.routes:
                if r_api == api and method == request.method and pattern.match(request.url.path):
                    found = body(request) if callable(body) else body
                    if isinstance(found, str):
                        return httpx.Response(status, text=found)
                    return httpx.Response(status, json=found)
            return httpx.Response(404, json={"detail": "not found"})

        return httpx.MockTransport(handle)

    def calls_to(self, api: str, method: str = "GET") -> list[tuple[str, dict[str, str], Any, str | None]]:
        return [(path, q, body, auth) for a, m, path, q, body, auth in self.calls if a == api and m == method]


class ConsoleWorld:
    def __init__(self, client: httpx.AsyncClient, apis: FakeApis, tokens: dict[str, str]) -> None:
        self.client, self.apis, self.tokens = client, apis, tokens

    async def login(self, who: str = "operator") -> None:
        page = await self.client.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None, page.text
        done = await self.client.post(
            "/console/login",
            data={"csrf": token.group(1), "api_key": self.tokens[who], "next": "/console/requests"},
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/console/requests"

    async def csrf(self, path: str = "/console/requests") -> str:
        page = await self.client.get(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found is not None, page.text
        return found.group(1)


@asynccontextmanager
async def console_world(
    apis: FakeApis | None = None, *, prices: PriceTable | None = None
) -> AsyncIterator[ConsoleWorld]:
    apis = apis or FakeApis()
    keys = InMemoryKeyStore()
    tokens = {}
    for name, (tenant, role) in ROLES.items():
        issued, _, _ = await create_key(keys, tenant=tenant, role=role, name=name, actor="test")
        tokens[name] = issued.token
    backends = Backends(
        {name: f"http://{name}.test" for name in ("audit", "safety", "prompts", "registry")},
        _client=httpx.AsyncClient(transport=apis.transport()),
    )
    book = ReplyBook()
    deps = Deps(InMemoryAnsweredRequests(), StaticCatalogue([], []), AnsweringPublisher(book), book)
    deps.console = console_of(backends, secret="test-secret", prices=prices)
    app = create_app(deps, authenticator=Authenticator(keys), auth=AuthSettings(enabled=True))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE, headers={"origin": BASE}
    ) as client:
        yield ConsoleWorld(client, apis, tokens)
    await backends.close()

"""Access control on the retriever's HTTP API: keys, roles and tenant isolation of documents.

The real app (cairn_auth wiring included) on the in-memory store, hashing embedder and key store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cairn_auth import Authenticator, AuthSettings, InMemoryKeyStore, create_key
from cairn_retriever.adapters.memory import HashingEmbedder, InMemoryVectorStore
from cairn_retriever.adapters.sources import extract_text
from cairn_retriever.api import create_app
from cairn_retriever.ingest import ChunkingConfig, Ingestor
from cairn_retriever.retrieval import Retriever
from cairn_retriever.settings import Settings

ACME = "Acme plans: the merger with Initech closes on the ninth of May."
GLOBEX = "Globex plans: the merger with Initech is called off in May."
SHARED = "Glossary: a merger joins two companies."


class Keys:
    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def __call__(self, name: str) -> dict[str, str]:
        return {"X-API-Key": self.tokens[name]}


@pytest.fixture
def store() -> InMemoryVectorStore:
    return InMemoryVectorStore()


@pytest.fixture
async def keys() -> tuple[Keys, InMemoryKeyStore]:
    store, keys = InMemoryKeyStore(), Keys()
    for name, tenant, role in [
        ("acme-viewer", "acme", "viewer"),
        ("acme-operator", "acme", "operator"),
        ("globex-operator", "globex", "operator"),
        ("platform", "*", "admin"),
    ]:
        issued, _, _ = await create_key(store, tenant=tenant, role=role, name=name, actor="test")
        keys.tokens[name] = issued.token
    return keys, store


@pytest.fixture
async def client(
    store: InMemoryVectorStore, keys: tuple[Keys, InMemoryKeyStore], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    embedder = HashingEmbedder()
    settings = Settings(ingest_roots=[tmp_path / "allowed"], default_collection="kb")
    app = create_app(
        settings,
        Retriever(embedder, store),
        Ingestor(embedder, store, extract_text, ChunkingConfig("tokens", 60, 10)),
        authenticator=Authenticator(keys[1]),
        auth=AuthSettings(enabled=True, cache_ttl_s=0),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


@pytest.fixture
def k(keys: tuple[Keys, InMemoryKeyStore]) -> Keys:
    return keys[0]


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def seed(client: httpx.AsyncClient, k: Keys) -> dict[str, str]:
    """acme's and globex's plans in their `kb`, the shared glossary; the document ids by owner."""
    ids = {}
    for who, tenant, text in [
        ("acme-operator", None, ACME),
        ("globex-operator", None, GLOBEX),
        ("platform", "default", SHARED),
    ]:
        params = {"tenant": tenant} if tenant else {}
        body = {"source_uri": "kb://plans" if tenant is None else "kb://glossary", "content": text}
        out = ok(await client.post("/v1/documents", json=body, params=params, headers=k(who)))
        [doc] = out["documents"]
        assert doc["status"] == "added"
        ids[who.split("-")[0]] = doc["document_id"]
    return ids


async def test_retriever_auth_every_route_but_health_needs_a_key(client: httpx.AsyncClient) -> None:
    assert ok(await client.get("/health")) == {"status": "ok"}
    for method, path in [
        ("GET", "/v1/search?q=merger"),
        ("GET", "/v1/collections"),
        ("GET", "/v1/documents"),
        ("GET", "/v1/documents/doc_x"),
        ("DELETE", "/v1/documents/doc_x"),
        ("POST", "/v1/documents"),
        ("POST", "/v1/ingest"),
    ]:
        response = await client.request(method, path, json={})
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"


async def test_retriever_auth_viewers_search_and_read_but_cannot_ingest_or_delete(
    client: httpx.AsyncClient, k: Keys, store: InMemoryVectorStore
) -> None:
    ids = await seed(client, k)
    viewer = k("acme-viewer")
    upload = {"source_uri": "kb://more", "content": "More plans."}
    assert (await client.post("/v1/documents", json=upload, headers=viewer)).status_code == 403
    assert (
        await client.post("/v1/ingest", json={"source": "pydoc:topics/pass"}, headers=viewer)
    ).status_code == 403
    assert (await client.delete(f"/v1/documents/{ids['acme']}", headers=viewer)).status_code == 403
    assert ok(await client.get(f"/v1/documents/{ids['acme']}", headers=viewer))["tenant"] == "acme"
    assert len(store.documents) == 3


async def test_retriever_auth_a_tenant_never_sees_another_tenants_documents(
    client: httpx.AsyncClient, k: Keys, store: InMemoryVectorStore
) -> None:
    ids = await seed(client, k)
    acme = k("acme-viewer")
    listed = ok(await client.get("/v1/documents", headers=acme))
    assert sorted((d["tenant"], d["source_uri"]) for d in listed) == [
        ("acme", "kb://plans"),
        ("default", "kb://glossary"),
    ]
    collections = ok(await client.get("/v1/collections", headers=acme))
    assert [(c["tenant"], c["collection"], c["documents"]) for c in collections] == [
        ("acme", "kb", 1),
        ("default", "kb", 1),
    ]
    hits = ok(await client.get("/v1/search", params={"q": "merger Initech May", "k": 10}, headers=acme))
    texts = {h["text"] for h in hits}
    assert texts == {ACME, SHARED}
    assert {h["tenant"] for h in hits} == {"acme", "default"}
    for path in [
        f"/v1/documents/{ids['globex']}",
        "/v1/documents?tenant=globex",
        "/v1/collections?tenant=globex",
    ]:
        response = await client.get(path, headers=acme)
        assert response.status_code == 404, path
        assert "Globex" not in response.text
    assert (await client.get("/v1/search?q=merger&tenant=globex", headers=acme)).status_code == 404
    acme_op = k("acme-operator")
    assert (await client.delete(f"/v1/documents/{ids['globex']}", headers=acme_op)).status_code == 404
    assert (await client.delete(f"/v1/documents/{ids['platform']}", headers=acme_op)).status_code == 403
    pushed = await client.post(
        "/v1/documents",
        params={"tenant": "globex"},
        json={"source_uri": "kb://x", "content": "evil"},
        headers=acme_op,
    )
    assert pushed.status_code == 404
    assert len(store.documents) == 3
    ok(await client.delete(f"/v1/documents/{ids['acme']}", headers=acme_op), 204)
    assert (await client.get(f"/v1/documents/{ids['acme']}", headers=acme_op)).status_code == 404
    assert sorted(d.collection for d in store.documents.values()) == ["globex/kb", "kb"]


async def test_retriever_auth_a_platform_admin_sees_every_tenant(client: httpx.AsyncClient, k: Keys) -> None:
    ids = await seed(client, k)
    admin = k("platform")
    listed = ok(await client.get("/v1/documents", headers=admin))
    assert sorted(d["tenant"] for d in listed) == ["acme", "default", "globex"]
    assert ok(await client.get(f"/v1/documents/{ids['globex']}", headers=admin))["tenant"] == "globex"
    hits = ok(
        await client.get("/v1/search", params={"q": "merger", "tenant": "globex", "k": 10}, headers=admin)
    )
    assert {h["text"] for h in hits} == {GLOBEX, SHARED}
    assert [d["tenant"] for d in ok(await client.get("/v1/documents?tenant=acme", headers=admin))] == ["acme"]


async def test_retriever_auth_ingest_reads_local_files_only_under_allowed_roots(
    client: httpx.AsyncClient, k: Keys, tmp_path: Path
) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "faq.md").write_text("# FAQ\n\nAcme ships on Mondays.\n")
    (tmp_path / "secret.txt").write_text("not for the API")
    op = k("acme-operator")
    out = ok(await client.post("/v1/ingest", json={"source": str(allowed), "collection": "faq"}, headers=op))
    assert (out["tenant"], out["collection"], [d["status"] for d in out["documents"]]) == (
        "acme",
        "faq",
        ["added"],
    )
    for source in [str(tmp_path / "secret.txt"), str(allowed / ".." / "secret.txt"), "/etc/passwd"]:
        refused = await client.post("/v1/ingest", json={"source": source}, headers=op)
        assert refused.status_code == 422, source
        assert "not under a folder this API may read" in refused.json()["detail"]
    bad = await client.post(
        "/v1/documents", json={"source_uri": "x", "content": "y", "collection": "a/b"}, headers=op
    )
    assert bad.status_code == 422

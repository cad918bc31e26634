"""The ingestion and search HTTP API (FastAPI; OpenAPI docs at /docs): `cairn docs` over HTTP, per tenant.

Every route but `/health` needs an API key: viewers search and read their tenant's documents and
the shared ones (tenant `default`), operators also ingest and delete their tenant's documents; a
platform-wide (`*`) admin reaches every tenant. Another tenant's document is answered 404, as a
missing one (see `domain.tenancy` for how collections are kept per tenant).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from cairn_auth import Authenticator, AuthSettings, Principal
from cairn_auth.domain.principals import TENANT_PATTERN
from cairn_auth.fastapi import Operator, Viewer, install_auth
from cairn_bus import TransientError
from cairn_retriever.domain.models import Document, SearchHit, SearchMode, document_id_for
from cairn_retriever.domain.tenancy import (
    COLLECTION_PATTERN,
    SHARED_TENANT,
    owner_of,
    readable_by,
    readable_collections,
    stored_collection,
)
from cairn_retriever.ingest import DocumentOutcome, DocumentStatus, Ingestor, IngestReport
from cairn_retriever.ports import DocumentSource
from cairn_retriever.retrieval import Retriever
from cairn_retriever.settings import Settings


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class DocumentOut(_Out):
    """A stored document."""

    document_id: str = Field(description="Stable id of the document (per tenant, collection and source).")
    tenant: str = Field(description="The document's tenant (`default`: shared with every tenant).")
    collection: str = Field(description="Its collection, within the tenant.")
    source_uri: str = Field(description="Where it was read from.")
    title: str | None = Field(description="Its title, when it names one.")
    media_type: str = Field(description="`text/plain`, `text/markdown`, `text/html` or `application/pdf`.")
    content_hash: str = Field(description="`sha256:` of the bytes ingested.")
    chunk_count: int = Field(description="Chunks stored.")
    char_count: int = Field(description="Characters of extracted text.")
    ingested_at: datetime = Field(description="When this version was ingested.")

    @classmethod
    def of(cls, d: Document) -> DocumentOut:
        tenant, collection = owner_of(d.collection)
        return cls(
            document_id=d.document_id,
            tenant=tenant,
            collection=collection,
            source_uri=d.source_uri,
            title=d.title,
            media_type=d.media_type,
            content_hash=d.content_hash,
            chunk_count=d.chunk_count,
            char_count=d.char_count,
            ingested_at=d.ingested_at,
        )


class CollectionOut(_Out):
    """A collection and what it holds."""

    tenant: str = Field(description="The collection's tenant (`default`: shared with every tenant).")
    collection: str = Field(description="Its name, within the tenant.")
    documents: int = Field(description="Documents stored.")
    chunks: int = Field(description="Chunks stored.")


class OutcomeOut(_Out):
    """What ingestion did with one document."""

    source_uri: str = Field(description="The document's source URI.")
    document_id: str = Field(description="Its id.")
    status: DocumentStatus = Field(description="added, replaced, unchanged or failed.")
    chunks: int = Field(description="Chunks embedded and written.")
    error: str | None = Field(description="Why it failed, if it did.")


class IngestOut(_Out):
    """An ingestion run."""

    tenant: str = Field(description="The tenant ingested into.")
    collection: str = Field(description="The collection, within the tenant.")
    documents: list[OutcomeOut] = Field(description="Each document's outcome.")
    seconds: float = Field(description="How long the run took.")


class DocumentIn(BaseModel):
    """A document uploaded with its text."""

    source_uri: str = Field(
        min_length=1,
        max_length=2048,
        description="What the document is (its identity within the collection).",
    )
    content: str = Field(min_length=1, description="The document's text.")
    media_type: Literal["text/plain", "text/markdown", "text/html"] = Field(
        "text/plain", description="How to read `content`."
    )
    title: str | None = Field(None, max_length=512, description="A title (Markdown: its first heading).")
    collection: str | None = Field(
        None, pattern=COLLECTION_PATTERN, description="Collection within the tenant (default: the settings')."
    )


class IngestIn(BaseModel):
    """A source to ingest."""

    source: str = Field(
        min_length=1,
        description="s3://bucket/prefix, pydoc:topics[/NAME], or a file or folder under an allowed root.",
    )
    collection: str | None = Field(
        None, pattern=COLLECTION_PATTERN, description="Collection within the tenant (default: the settings')."
    )


class HitOut(_Out):
    """A chunk found by a search."""

    document_id: str = Field(description="The chunk's document.")
    chunk_id: str = Field(description="The chunk.")
    tenant: str = Field(description="The document's tenant.")
    collection: str = Field(description="Its collection, within the tenant.")
    source_uri: str = Field(description="Where the document was read from.")
    text: str = Field(description="The chunk's text.")
    similarity: float = Field(description="Cosine similarity to the query.")
    score: float = Field(description="The ranking score (reciprocal rank fusion in hybrid mode).")

    @classmethod
    def of(cls, h: SearchHit) -> HitOut:
        tenant, collection = owner_of(h.collection)
        return cls(
            document_id=h.document_id,
            chunk_id=h.chunk_id,
            tenant=tenant,
            collection=collection,
            source_uri=h.source_uri,
            text=h.text,
            similarity=h.similarity,
            score=h.fused,
        )


TenantQuery = Annotated[
    str | None,
    Query(
        pattern=TENANT_PATTERN,
        description="The tenant to act on (default: the API key's own; `default` holds shared documents).",
    ),
]
CollectionQuery = Annotated[str | None, Query(pattern=COLLECTION_PATTERN, description="A collection.")]


def _own_tenant(principal: Principal) -> str:
    return SHARED_TENANT if principal.platform_wide else principal.tenant


def _reading(principal: Principal, tenant: str | None) -> str:
    """The tenant a read acts for: the one named (its own or the shared one), else the caller's."""
    if tenant is None:
        return _own_tenant(principal)
    if tenant != SHARED_TENANT:
        principal.check_tenant(tenant)
    return tenant


def _writing(principal: Principal, tenant: str | None) -> str:
    """The tenant a change acts on; shared documents are read-only to tenant-bound keys (404)."""
    target = _own_tenant(principal) if tenant is None else tenant
    principal.check_tenant(target)
    return target


def _visible(principal: Principal, document: Document | None, tenant: str | None) -> Document:
    """The document when the caller may read it (in `tenant`, when named); 404 otherwise."""
    if document is None:
        raise HTTPException(404, "not found")
    owner, _ = owner_of(document.collection)
    allowed = principal.can_access(owner) or owner == SHARED_TENANT
    if not allowed or (tenant is not None and owner != tenant):
        raise HTTPException(404, "not found")
    return document


def _outcomes(report: IngestReport) -> list[OutcomeOut]:
    def one(o: DocumentOutcome) -> OutcomeOut:
        return OutcomeOut(
            source_uri=o.uri,
            document_id=document_id_for(report.collection, o.uri),
            status=o.status,
            chunks=o.chunks,
            error=o.error,
        )

    return [one(o) for o in report.outcomes]


def local_source_allowed(spec: str, roots: list[Path]) -> Path:
    """The resolved path of a local source when it lies under one of `roots`; ValueError otherwise."""
    path = Path(spec.removeprefix("file://")).expanduser().resolve()
    for root in roots:
        if path.is_relative_to(root.expanduser().resolve()):
            return path
    raise ValueError(f"{spec!r} is not under a folder this API may read (CAIRN_INGEST_ROOTS)")


def create_app(
    settings: Settings,
    retriever: Retriever,
    ingestor: Ingestor,
    *,
    authenticator: Authenticator | None,
    auth: AuthSettings | None = None,
) -> FastAPI:
    """The API over the retriever's store; `authenticator` checks keys unless access control is off."""
    from cairn_retriever.adapters.sources import InlineSource, source_for

    app = FastAPI(
        title="Cairn retriever",
        description="Document ingestion, listing and search, per tenant. Every route but /health needs an "
        "API key (Authorization: Bearer <key> or X-API-Key).",
        version="1",
    )
    install_auth(app, authenticator, auth)
    store = retriever.store
    ingest_lock = asyncio.Lock()  # one run at a time: the embedder is CPU-bound

    @app.exception_handler(ValueError)
    async def unprocessable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(TransientError)
    @app.exception_handler(OSError)
    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"unavailable: {exc}"}, status_code=503)

    async def ingest(source: DocumentSource, tenant: str, collection: str | None) -> IngestOut:
        name = collection or settings.default_collection
        async with ingest_lock:
            report = await ingestor.ingest(source, stored_collection(tenant, name))
        return IngestOut(tenant=tenant, collection=name, documents=_outcomes(report), seconds=report.seconds)

    async def readable_documents(principal: Principal, tenant: str | None) -> list[Document]:
        docs = await store.list_documents()
        if tenant is not None:
            reader = _reading(principal, tenant)
            return [d for d in docs if owner_of(d.collection)[0] == reader]
        if principal.platform_wide:
            return docs
        return [d for d in docs if readable_by(principal.tenant, d.collection)]

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness (no key needed)."""
        return {"status": "ok"}

    @app.post("/v1/documents")
    async def upload_document(body: DocumentIn, principal: Operator, tenant: TenantQuery = None) -> IngestOut:
        """Ingest one document sent with its text (unchanged content is a no-op, changed is replaced)."""
        if len(body.content) > settings.max_upload_chars:
            raise HTTPException(413, f"the document is longer than {settings.max_upload_chars} characters")
        source = InlineSource(body.source_uri, body.content, body.media_type, body.title)
        out = await ingest(source, _writing(principal, tenant), body.collection)
        failed = [o.error for o in out.documents if o.status is DocumentStatus.FAILED]
        if failed:
            raise HTTPException(422, failed[0])
        return out

    @app.post("/v1/ingest")
    async def ingest_source(body: IngestIn, principal: Operator, tenant: TenantQuery = None) -> IngestOut:
        """Ingest every document of a source: s3://bucket/prefix, pydoc:topics[/NAME], or a local path
        under an allowed root (CAIRN_INGEST_ROOTS)."""
        target = _writing(principal, tenant)
        spec = body.source
        if not spec.startswith(("s3://", "pydoc:")):
            spec = str(local_source_allowed(spec, settings.ingest_roots))
        s3 = (
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key.get_secret_value(),
            settings.s3_secure,
        )
        source = await asyncio.to_thread(source_for, spec, s3=s3)
        return await ingest(source, target, body.collection)

    @app.get("/v1/collections")
    async def list_collections(principal: Viewer, tenant: TenantQuery = None) -> list[CollectionOut]:
        """Collections the caller may read: its tenant's and the shared ones (every tenant's for a
        platform-wide key), or `tenant`'s."""
        docs = await readable_documents(principal, tenant)
        counts = Counter(d.collection for d in docs)
        chunks = Counter[str]()
        for d in docs:
            chunks[d.collection] += d.chunk_count
        out = []
        for stored in sorted(counts, key=lambda c: owner_of(c)[::-1]):
            owner, name = owner_of(stored)
            out.append(
                CollectionOut(tenant=owner, collection=name, documents=counts[stored], chunks=chunks[stored])
            )
        return out

    @app.get("/v1/documents")
    async def list_documents(
        principal: Viewer, tenant: TenantQuery = None, collection: CollectionQuery = None
    ) -> list[DocumentOut]:
        """Documents the caller may read (see /v1/collections), of one collection when named."""
        docs = await readable_documents(principal, tenant)
        out = [DocumentOut.of(d) for d in docs]
        return [d for d in out if collection is None or d.collection == collection]

    @app.get("/v1/documents/{document_id}")
    async def get_document(document_id: str, principal: Viewer, tenant: TenantQuery = None) -> DocumentOut:
        """One document (its tenant's or a shared one; another tenant's is not found)."""
        return DocumentOut.of(_visible(principal, await store.get_document(document_id), tenant))

    @app.delete("/v1/documents/{document_id}", status_code=204)
    async def delete_document(document_id: str, principal: Operator, tenant: TenantQuery = None) -> None:
        """Delete a document of the caller's tenant with its chunks (shared ones: platform operators only)."""
        document = _visible(principal, await store.get_document(document_id), tenant)
        owner, _ = owner_of(document.collection)
        if not principal.can_access(owner):
            raise HTTPException(403, "shared documents are read-only to tenant keys")
        await store.delete_document(document.source_uri, document.collection)

    @app.get("/v1/search")
    async def search(
        principal: Viewer,
        q: Annotated[str, Query(min_length=1, max_length=2000, description="What to look for.")],
        k: Annotated[int, Query(ge=1, le=50, description="How many chunks.")] = 5,
        collection: CollectionQuery = None,
        mode: Annotated[
            SearchMode, Query(description="hybrid (vector + full text) or vector.")
        ] = SearchMode.HYBRID,
        min_score: Annotated[float | None, Query(ge=-1, le=1, description="Cosine similarity floor.")] = None,
        tenant: TenantQuery = None,
    ) -> list[HitOut]:
        """Search the collection of the tenant and the shared one of that name, as a request would."""
        names = readable_collections(_reading(principal, tenant), collection or settings.default_collection)
        hits = await retriever.search(q, k=k, collection=names, min_similarity=min_score, mode=mode)
        return [HitOut.of(h) for h in hits]

    return app

"""`cairn docs`: ingest documents for retrieval, list them, search them, delete them, rescan the watched ones.

Reads CAIRN_* through the retriever's Settings; anything unset (broker, database, S3) comes from the
local stack's configuration (`cairn_bus.settings.settings_or_local_stack`), as the rest of the `cairn`
command does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cairn_bus.direct_access import direct_access
from cairn_bus.settings import settings_or_local_stack
from cairn_retriever.bootstrap import load_embedder, make_ingestor, open_store, s3_of, search_config, utc_now
from cairn_retriever.domain.models import SearchMode
from cairn_retriever.domain.tenancy import SHARED_TENANT, owner_of, readable_collections, stored_collection
from cairn_retriever.ingest import DocumentOutcome, DocumentStatus, IngestReport
from cairn_retriever.reindex import ScanReport, WatchedSource, parse_watched, scan_watched
from cairn_retriever.retrieval import Retriever
from cairn_retriever.settings import Settings

app = typer.Typer(
    help="Documents for retrieval: ingest files, S3 prefixes or the Python docs; list, search, delete.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()
T = TypeVar("T")


def load_settings() -> Settings:
    """CAIRN_* variables win; the broker, database and S3 store default to the local stack's."""
    return settings_or_local_stack(Settings)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except (LookupError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


class RichProgress:
    """IngestProgress as a rich progress bar: documents done, chunks embedded, chunks per second."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.chunks = 0
        self.started_at = time.perf_counter()

    def _update(self, **fields: Any) -> None:
        if self.task is not None:
            rate = self.chunks / max(time.perf_counter() - self.started_at, 1e-9)
            self.progress.update(self.task, chunks=self.chunks, rate=rate, **fields)

    def started(self, source: str, documents: int) -> None:
        self.started_at = time.perf_counter()
        self.task = self.progress.add_task(f"ingest {source}", total=documents, chunks=0, rate=0.0)

    def chunks_embedded(self, count: int) -> None:
        self.chunks += count
        self._update()

    def document_done(self, outcome: DocumentOutcome) -> None:
        self._update(advance=1)
        if outcome.status is DocumentStatus.FAILED:
            self.progress.console.print(f"[red]failed[/red] {outcome.uri}: {outcome.error}")


def _summary(report: IngestReport) -> Table:
    table = Table(title=f"ingested {report.source} into collection {report.collection!r}")
    table.add_column("documents", justify="right")
    for status in DocumentStatus:
        table.add_column(status.value, justify="right")
    table.add_column("chunks", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("chunks/s", justify="right")
    table.add_row(
        str(len(report.outcomes)),
        *(str(report.count(s)) for s in DocumentStatus),
        str(report.chunks),
        f"{report.seconds:.1f}",
        f"{report.chunks_per_second:.1f}",
    )
    return table


async def ingest_source(
    settings: Settings, spec: str, collection: str, *, show_progress: bool = True
) -> IngestReport:
    """Ingest the source named by `spec` (path, s3://bucket/prefix, pydoc:topics[/NAME])."""
    from cairn_retriever.adapters.sources import source_for

    s3 = (
        settings.s3_endpoint,
        settings.s3_access_key,
        settings.s3_secret_key.get_secret_value(),
        settings.s3_secure,
    )
    source = source_for(spec, s3=s3)
    embedder = await asyncio.to_thread(load_embedder, settings, eager=False)  # loads when first needed
    async with open_store(settings) as store:
        ingestor = make_ingestor(settings, embedder, store)
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files · {task.fields[chunks]} chunks · {task.fields[rate]:.1f} chunks/s"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, disable=not show_progress, transient=False) as bar:
            return await ingestor.ingest(source, collection, RichProgress(bar))


@app.command()
def ingest(
    source: str = typer.Argument(..., help="A file or folder, s3://bucket/prefix, or pydoc:topics[/NAME]."),
    collection: str | None = typer.Option(
        None, "--collection", "-c", help="Collection (default: the settings')."
    ),
    tenant: str = typer.Option(
        SHARED_TENANT,
        "--tenant",
        "-t",
        help="The documents' tenant (`default`: shared, searchable by every tenant).",
    ),
) -> None:
    """Read, chunk, embed and store documents; unchanged ones are skipped, changed ones replaced."""
    settings = load_settings()
    try:
        stored = stored_collection(tenant, collection or settings.default_collection)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    direct_access(settings, "docs.ingest", f"source:{source}", tenant=tenant, details={"collection": stored})
    report = _run(ingest_source(settings, source, stored))
    console.print(_summary(report))
    if report.count(DocumentStatus.FAILED):
        raise typer.Exit(1)


@app.command("list")
def list_documents(
    collection: str | None = typer.Option(None, "--collection", "-c", help="Only this collection."),
) -> None:
    """The stored documents: collection, source, chunks, content hash, when ingested."""
    settings = load_settings()

    async def fetch() -> Any:
        async with open_store(settings) as store:
            return await store.list_documents(collection)

    docs = _run(fetch())
    table = Table(title=f"{len(docs)} document(s)")
    for name in ("tenant", "collection", "source", "title", "chunks", "content hash", "ingested at"):
        table.add_column(name, overflow="fold")
    for d in docs:
        table.add_row(
            *owner_of(d.collection),
            d.source_uri,
            d.title or "",
            str(d.chunk_count),
            d.content_hash.removeprefix("sha256:")[:12],
            d.ingested_at.isoformat(timespec="seconds"),
        )
    console.print(table)


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(5, "--k", "-k", min=1, max=50, help="How many chunks."),
    mode: SearchMode = typer.Option(
        SearchMode.HYBRID, "--mode", help="hybrid (vector + full text) or vector."
    ),
    collection: str | None = typer.Option(None, "--collection", "-c", help="Collection (default: all)."),
    min_score: float | None = typer.Option(None, help="Drop chunks whose cosine similarity is below this."),
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", help="Search as this tenant: its collection and the shared one (needs -c)."
    ),
) -> None:
    """Search the stored chunks; shows each hit's cosine similarity, its fused rank score and source."""
    settings = load_settings()
    searched: str | tuple[str, ...] | None = collection
    if tenant is not None:
        try:
            searched = readable_collections(tenant, collection or settings.default_collection)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    async def run() -> Any:
        embedder = await asyncio.to_thread(load_embedder, settings)
        async with open_store(settings) as store:
            retriever = Retriever(embedder, store, search_config(settings))
            return await retriever.search(
                query, k=k, collection=searched, min_similarity=min_score, mode=mode
            )

    hits = _run(run())
    table = Table(title=f"{mode.value} search: {query}")
    table.add_column("#", justify="right")
    table.add_column("similarity", justify="right")
    table.add_column("rrf" if mode is SearchMode.HYBRID else "score", justify="right")
    table.add_column("source", overflow="fold")
    table.add_column("text", overflow="fold")
    for n, h in enumerate(hits, start=1):
        snippet = " ".join(h.text.split())
        table.add_row(
            str(n),
            f"{h.similarity:.3f}",
            f"{h.fused:.4f}",
            h.source_uri,
            snippet[:160] + ("…" if len(snippet) > 160 else ""),
        )
    console.print(table)
    if not hits:
        console.print("no chunks found")


@app.command()
def delete(
    uri: str = typer.Argument(
        ..., help="The document's source URI as listed (a local path is accepted too)."
    ),
    collection: str | None = typer.Option(None, "--collection", "-c", help="Only in this collection."),
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", help="Only in this tenant's collection (-c, default: the settings')."
    ),
) -> None:
    """Delete a document and its chunks (from every collection and tenant unless one is named)."""
    settings = load_settings()
    if tenant is not None:
        try:
            collection = stored_collection(tenant, collection or settings.default_collection)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    path = Path(uri).expanduser()
    if "://" not in uri and not uri.startswith("pydoc:") and path.exists():
        uri = path.resolve().as_uri()
    direct_access(settings, "docs.delete", f"document:{uri}", tenant=tenant or "*")

    async def run() -> int:
        async with open_store(settings) as store:
            return await store.delete_document(uri, collection)

    gone = _run(run())
    if not gone:
        console.print(f"[red]no document[/red] {uri}")
        raise typer.Exit(1)
    console.print(f"deleted {gone} document(s): {uri}")


async def rescan_now(settings: Settings, watched: list[WatchedSource]) -> list[ScanReport]:
    """Scan the watched sources once, publishing as the retriever (its Kafka publisher)."""
    from cairn_bus.service import service_publisher
    from cairn_retriever.app import router

    embedder = await asyncio.to_thread(load_embedder, settings, eager=False)  # loads when first needed
    async with open_store(settings) as store, service_publisher(router, settings) as publisher:
        ingestor = make_ingestor(settings, embedder, store)
        return await scan_watched(watched, ingestor, publisher, utc_now, s3_of(settings))


@app.command()
def rescan() -> None:
    """Scan the watched sources (CAIRN_WATCHED_SOURCES) now, as the service does on its schedule:
    re-ingest documents changed at the origin, delete removed ones, one cairn.document.reindexed.v1 each."""
    settings = load_settings()
    try:
        watched = parse_watched(settings.watched_sources)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not watched:
        console.print('no watched sources: set CAIRN_WATCHED_SOURCES to ["<collection>=<source>", ...]')
        raise typer.Exit(1)
    direct_access(settings, "docs.rescan", "sources:watched", details={"sources": len(watched)})
    reports = _run(rescan_now(settings, watched))
    table = Table(title="watched sources scanned")
    for name in ("collection", "source", "documents", "added", "changed", "removed", "failed"):
        table.add_column(name, overflow="fold")
    for r in reports:
        failed = sum(1 for o in r.outcomes if o.status is DocumentStatus.FAILED)
        table.add_row(
            r.watched.collection,
            r.watched.spec,
            str(len(r.outcomes)),
            *(str(r.count(c)) for c in ("added", "changed", "removed")),
            str(failed),
        )
    console.print(table)
    if len(reports) < len(watched):
        console.print(
            f"[red]{len(watched) - len(reports)} source(s) could not be scanned[/red] (see the log)"
        )
        raise typer.Exit(1)


if __name__ == "__main__":
    app()

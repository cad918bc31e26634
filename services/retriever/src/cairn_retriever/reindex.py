"""Watched sources: scan a folder or S3 prefix, re-ingest what changed at the origin, delete what is gone,
and publish one `cairn.document.reindexed.v1` per document the index changed.

A scan compares each document's content hash (SHA-256 of its bytes) with the stored one (`ingest.py`):
an unchanged document costs one read and one lookup and publishes nothing; a changed one has its
chunks replaced in one store operation. A stored document of the collection under the source's URI
prefix that the source no longer lists is deleted. A source that cannot be listed (folder missing,
S3 down) deletes nothing: the scan fails and the next one tries again.

Each event is published right after its document changed in the store; the broker failing in
between loses that one event (the next scan sees no change). The event id is derived from (document, new hash, previous hash), so two replicas scanning the same
change publish the same event, and a scan repeated after a crash does not publish a second one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cairn_bus import Publisher
from cairn_bus.ids import derive_event_id
from cairn_events import DocumentReindexedV1
from cairn_observability import get_logger
from cairn_retriever.domain.models import document_id_for
from cairn_retriever.domain.tenancy import owner_of
from cairn_retriever.ingest import DocumentOutcome, DocumentStatus, Ingestor, SilentProgress
from cairn_retriever.metrics import DOCUMENTS_REINDEXED
from cairn_retriever.ports import DocumentSource

log = get_logger("cairn.retriever.reindex")


@dataclass(frozen=True)
class WatchedSource:
    """A source kept in step with a stored collection."""

    collection: str
    """The stored collection (`<tenant>/<name>`, or `<name>` for the shared tenant)."""
    spec: str
    """The source as named on the command line: a folder or file, `s3://bucket/prefix`."""


def parse_watched(entries: Sequence[str]) -> list[WatchedSource]:
    """`<collection>=<source>` entries (the `watched_sources` setting); ValueError for a malformed one."""
    out = []
    for entry in entries:
        collection, sep, spec = entry.partition("=")
        if not sep or not collection.strip() or not spec.strip():
            raise ValueError(f"a watched source is `<collection>=<source>`, not {entry!r}")
        out.append(WatchedSource(collection.strip(), spec.strip()))
    return out


@dataclass
class ScanReport:
    """What one scan of one watched source did."""

    watched: WatchedSource
    outcomes: list[DocumentOutcome] = field(default_factory=list)
    events: list[DocumentReindexedV1] = field(default_factory=list)

    def count(self, change: str) -> int:
        """Documents the scan found `added`, `changed` or `removed`."""
        return sum(1 for e in self.events if e.change == change)


def reindexed_event_id(event: DocumentReindexedV1) -> str:
    """The id of a re-index event: fixed by the document and the versions it moved between."""
    cause = f"{event.document_id}|{event.previous_content_hash or '-'}|{event.content_hash or '-'}"
    return derive_event_id(cause, event.event_type)


async def scan(
    watched: WatchedSource,
    source: DocumentSource,
    uri_prefix: str,
    ingestor: Ingestor,
    publisher: Publisher,
    clock: Callable[[], datetime],
) -> ScanReport:
    """Bring the collection in step with the source (see the module docstring); returns what changed.

    A document that cannot be read or parsed keeps its indexed version (reported as failed); listing
    the source or a store outage raises."""
    refs = await asyncio.to_thread(source.refs)
    store = ingestor.store
    before = {
        d.source_uri: d
        for d in await store.list_documents(watched.collection)
        if d.source_uri.startswith(uri_prefix)
    }
    tenant, _ = owner_of(watched.collection)
    report = ScanReport(watched)

    def event(uri: str, change: str, new_hash: str | None, chunks: int) -> DocumentReindexedV1:
        previous = before.get(uri)
        return DocumentReindexedV1(
            document_id=document_id_for(watched.collection, uri),
            tenant=tenant,
            collection=watched.collection,
            source_uri=uri,
            watched_source=watched.spec,
            change=change,
            content_hash=new_hash,
            previous_content_hash=previous.content_hash if previous else None,
            chunk_count=chunks,
            reindexed_at=clock(),
        )

    for ref in refs:
        outcome = await ingestor.ingest_one(source, ref, watched.collection, SilentProgress())
        report.outcomes.append(outcome)
        if outcome.status is DocumentStatus.FAILED:
            log.warning("watched document not re-indexed", uri=ref.uri, error=outcome.error)
        elif outcome.status is not DocumentStatus.UNCHANGED:
            change = "added" if outcome.status is DocumentStatus.ADDED else "changed"
            await _published(event(ref.uri, change, outcome.content_hash, outcome.chunks), publisher, report)
    listed = {ref.uri for ref in refs}
    for uri in sorted(set(before) - listed):
        await store.delete_document(uri, watched.collection)
        await _published(event(uri, "removed", None, 0), publisher, report)
    if report.events:
        log.info(
            "watched source re-indexed",
            source=watched.spec,
            collection=watched.collection,
            added=report.count("added"),
            changed=report.count("changed"),
            removed=report.count("removed"),
        )
    return report


async def _published(event: DocumentReindexedV1, publisher: Publisher, report: ScanReport) -> None:
    # right after the document's change: a crash loses at most the event of the document in hand
    await publisher.publish(event, event_id=reindexed_event_id(event))
    DOCUMENTS_REINDEXED.labels(event.change).inc()
    report.events.append(event)


async def scan_watched(
    watched: Sequence[WatchedSource],
    ingestor: Ingestor,
    publisher: Publisher,
    clock: Callable[[], datetime],
    s3: tuple[str, str, str, bool] | None = None,
) -> list[ScanReport]:
    """Scan every watched source once, in order; a source that fails is logged and the rest go on.
    `s3` is (endpoint, access key, secret key, secure) for s3:// sources."""
    from cairn_retriever.adapters.sources import source_for, uri_prefix

    reports = []
    for one in watched:
        try:
            source = source_for(one.spec, s3=s3)
            reports.append(await scan(one, source, uri_prefix(source), ingestor, publisher, clock))
        except Exception as exc:  # one source down must not stop the others; the next scan retries
            log.warning("watched source not scanned", source=one.spec, error=repr(exc))
    return reports

"""Events of the retriever's document index: a document read again from its origin was re-indexed."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from cairn_events.base import INT64_MAX, Event, Identifier, Timestamp

__all__ = ["DocumentReindexedV1"]


class DocumentReindexedV1(Event):
    """A watched source was scanned and one of its documents changed in the index: it is new, its
    content changed at the origin (its chunks were replaced), or it is gone (its chunks were deleted).

    Published by the retriever once per document a scan changed; a document whose content hash is
    unchanged is not re-indexed and publishes nothing. The event id is derived from the document and
    the version it moved to, so a scan repeated by another replica publishes the same event.
    """

    event_type: ClassVar[str] = "cairn.document.reindexed.v1"
    topic: ClassVar[str] = "cairn.documents"
    key_field: ClassVar[str] = "document_id"

    document_id: Identifier = Field(
        description="The retriever's id of the document (stable across its versions)."
    )
    tenant: str = Field(
        min_length=1, description="The tenant owning the collection; `default` for the shared documents."
    )
    collection: str = Field(
        min_length=1, description="The collection as stored (`<tenant>/<name>`, or `<name>` when shared)."
    )
    source_uri: str = Field(
        min_length=1, description="Where the document is read from (file://, s3://, pydoc:)."
    )
    watched_source: str = Field(
        min_length=1,
        description="The watched source whose scan found the change, e.g. `s3://docs/handbook/`.",
    )
    change: Literal["added", "changed", "removed"] = Field(
        description="`added`: first indexed; `changed`: its content hash changed and its chunks were "
        "replaced; `removed`: gone from the source, its chunks deleted."
    )
    content_hash: str | None = Field(
        None, description="`sha256:<hex>` of the bytes now indexed; null when removed."
    )
    previous_content_hash: str | None = Field(
        None, description="`sha256:<hex>` of the version indexed before; null when added."
    )
    chunk_count: int = Field(
        ge=0, le=INT64_MAX, description="Chunks the document has in the index now (0 when removed)."
    )
    reindexed_at: Timestamp = Field(description="When the index changed (RFC 3339).")

"""The audit query HTTP API (FastAPI; OpenAPI docs at /docs). Every route needs an API key.

| route | role | tenant scope |
|---|---|---|
| `GET /v1/trails/{request_id}` | viewer | only the caller's tenant's events; none of them: 404 |
| `GET /v1/events?type=&tenant=&since=&until=&after=&limit=&order=` | viewer | the caller's tenant (platform admins: every event, or `tenant=`) |
| `GET /v1/verify` | admin of `*` | the whole hash chain, every tenant's events: platform admins only |

Events without a tenant (e.g. a model registration) belong to the platform: only platform admins
see them. The API only reads; the audit trail cannot be changed through it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cairn_audit.domain.records import AuditRecord, ChainBreak
from cairn_audit.domain.trail import causal_order
from cairn_audit.ports import AuditStore
from cairn_auth import Authenticator, AuthSettings
from cairn_auth.fastapi import Admin, Viewer, install_auth, not_found

__all__ = ["ChainReportOut", "EventOut", "TrailOut", "create_app"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class EventOut(_Out):
    """One stored event: its envelope, its payload, where it was read and its place in the chain."""

    seq: int = Field(description="Storage order (the chain's order); `after` pages on it.")
    event_id: str = Field(description="The event id.")
    event_type: str = Field(description="The event type, e.g. `cairn.request.submitted.v1`.")
    source: str = Field(description="The producing service.")
    event_time: datetime = Field(description="When the event happened (its envelope time).")
    topic: str = Field(description="The topic it was read from.")
    partition: int = Field(description="Its partition.")
    offset: int = Field(description="Its offset.")
    key: str | None = Field(description="The record key.")
    subject: str | None = Field(description="The envelope subject (a request id, usually).")
    correlation_id: str | None = Field(description="The request the event belongs to.")
    causation_id: str | None = Field(description="The event that caused it.")
    tenant: str | None = Field(description="The tenant; none for platform events.")
    replay_of: str | None = Field(description="The original event, for a replayed one.")
    replay_id: str | None = Field(description="The replay it came from.")
    payload: dict[str, Any] = Field(description="The event's data.")
    recorded_at: datetime | None = Field(description="When the audit service stored it.")
    hash: str | None = Field(description="Its hash in the chain.")
    depth: int | None = Field(None, description="In a trail: how many causes above it (0 for a root).")

    @classmethod
    def of(cls, r: AuditRecord, depth: int | None = None) -> EventOut:
        return cls(
            seq=r.seq or 0,
            event_id=r.event_id,
            event_type=r.event_type,
            source=r.source,
            event_time=r.event_time,
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            key=r.key,
            subject=r.subject,
            correlation_id=r.correlation_id,
            causation_id=r.causation_id,
            tenant=r.tenant,
            replay_of=r.replay_of,
            replay_id=r.replay_id,
            payload=dict(r.payload),
            recorded_at=r.recorded_at,
            hash=r.hash,
            depth=depth,
        )


class TrailOut(_Out):
    """A request's trail: every stored event of it, each after its cause."""

    request_id: str = Field(description="The request.")
    events: list[EventOut] = Field(description="Its events in causal order (siblings by time).")


class ChainBreakOut(_Out):
    """A place where the chain does not verify."""

    seq: int | None = Field(description="Storage position of the record.")
    event_id: str = Field(description="Its event id.")
    reason: str = Field(description="What does not match.")

    @classmethod
    def of(cls, b: ChainBreak) -> ChainBreakOut:
        return cls(seq=b.seq, event_id=b.event_id, reason=b.reason)


class ChainReportOut(_Out):
    """The result of recomputing the whole hash chain."""

    intact: bool = Field(description="True when every record hashes to what the chain says.")
    events: int = Field(description="How many events are stored.")
    breaks: list[ChainBreakOut] = Field(description="Every break found (empty when intact).")


def create_app(
    *, store: AuditStore, authenticator: Authenticator | None, auth: AuthSettings | None = None
) -> FastAPI:
    """The query API on the audit store. `authenticator` may be None only when `auth.enabled` is false."""
    app = FastAPI(
        title="Cairn audit",
        version="1",
        description="Read the audit trail: a request's trail, events by type and time, the hash chain check.",
    )
    install_auth(app, authenticator, auth)

    @app.get("/v1/trails/{request_id}", summary="A request's trail, in causal order")
    async def trail(
        request_id: str,
        principal: Viewer,
        tenant: Annotated[
            str | None, Query(description="Only this tenant's events (yours by default).")
        ] = None,
    ) -> TrailOut:
        records = await store.trail(request_id, tenant=principal.scope(tenant))
        if not records:
            raise not_found()  # unknown, or none of the caller's tenant: the same answer
        return TrailOut(
            request_id=request_id, events=[EventOut.of(n.record, n.depth) for n in causal_order(records)]
        )

    @app.get("/v1/events", summary="Stored events in storage order, filtered")
    async def events(
        principal: Viewer,
        type_: Annotated[
            str | None,
            Query(alias="type", description="Only this event type, e.g. `cairn.model.promoted.v1`."),
        ] = None,
        tenant: Annotated[
            str | None, Query(description="Only this tenant's events (yours by default).")
        ] = None,
        since: Annotated[datetime | None, Query(description="Event time from (inclusive, RFC 3339).")] = None,
        until: Annotated[
            datetime | None, Query(description="Event time before (exclusive, RFC 3339).")
        ] = None,
        after: Annotated[
            int | None, Query(ge=0, description="Only events stored after this seq (paging).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="At most this many events.")] = 100,
        order: Annotated[
            Literal["oldest", "newest"],
            Query(description="`oldest` first (storage order, for paging with `after`) or `newest` first."),
        ] = "oldest",
    ) -> list[EventOut]:
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{name} needs a time zone (e.g. Z)"
                )
        found = await store.events(
            event_type=type_,
            tenant=principal.scope(tenant),
            since=since,
            until=until,
            after_seq=after,
            limit=limit,
            newest_first=order == "newest",
        )
        return [EventOut.of(r) for r in found]

    @app.get("/v1/verify", summary="Recompute the hash chain (platform admins)")
    async def verify(principal: Admin) -> ChainReportOut:
        if not principal.platform_wide:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail="the chain holds every tenant's events: only platform admins may verify it",
            )
        breaks = await store.verify()
        return ChainReportOut(
            intact=not breaks, events=await store.count(), breaks=[ChainBreakOut.of(b) for b in breaks]
        )

    return app

"""What can still be read from a request-carrying record that was dead-lettered, so the service can
answer the request instead of leaving upstream waiting for ever."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cairn_bus.envelope import EnvelopeError, EventMeta, Origin, meta_from_headers
from cairn_bus.ids import derive_event_id
from cairn_bus.records import RawRecord
from cairn_events.base import ID_PATTERN

_ID = re.compile(ID_PATTERN)
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class SalvagedRequest:
    """The request a dead-lettered record belonged to.

    `cause` is the record's envelope when its headers could still be read and name the same request
    (an answer then joins the request's trail); otherwise None, and the answer's id derives from
    `origin`. `headers` are the record's headers that are UTF-8 text.
    """

    request_id: str
    tenant: str
    origin: str
    payload: dict[str, Any] = field(default_factory=dict)
    cause: EventMeta | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def named_in_payload(self) -> bool:
        """Whether the record's own payload names the request (not only its headers or key)."""
        return self.payload.get("request_id") == self.request_id

    def answer_id(self, event_type: str, discriminator: str = "") -> str | None:
        """The id of the answer when there is no readable cause (None: derive it from the cause)."""
        return None if self.cause is not None else derive_event_id(self.origin, event_type, discriminator)

    def partial_cause(self) -> EventMeta | None:
        """What an answer derives from when there is no `cause`: the record's `ce_id` (the answer's
        `ce_causationid`), its `traceparent`/`tracestate` and `ce_replayid`, under the request's own
        trail (subject and correlation id = the request id). None when the record has no `ce_id`."""
        if self.cause is not None or not self.headers.get("ce_id"):
            return None
        return EventMeta(
            id=self.headers["ce_id"],
            type=self.headers.get("ce_type", ""),
            source=self.headers.get("ce_source", ""),
            time=datetime.now(UTC),
            subject=self.request_id,
            correlation_id=self.request_id,
            tenant=self.tenant,
            replay_id=self.headers.get("ce_replayid") or None,
            traceparent=self.headers.get("traceparent") or None,
            tracestate=self.headers.get("tracestate") or None,
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def salvage_request(record: RawRecord) -> SalvagedRequest | None:
    """The request id and tenant of a dead-lettered record, when its bytes or headers still name one.

    The request id is the first of the payload's `request_id`, the `ce_subject` header and the
    record key that matches the id pattern in full; the tenant is the payload's non-empty string
    `tenant`, else the `ce_tenant` header, else `default`. None when no id can be read.
    """
    headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers}
    payload: dict[str, Any] = {}
    try:
        loaded = json.loads(record.value or b"")
        payload = loaded if isinstance(loaded, dict) else {}
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested too deep to parse
        pass
    key = record.key.decode("utf-8", "replace") if record.key else None
    request_id = next(
        (
            r
            for r in (payload.get("request_id"), headers.get("ce_subject"), key)
            if isinstance(r, str) and _ID.fullmatch(r)
        ),
        None,
    )
    if request_id is None:
        return None
    tenant = _text(payload.get("tenant")) or _text(headers.get("ce_tenant")) or DEFAULT_TENANT
    origin = Origin(record.topic, record.partition, record.offset, record.key, record.timestamp_ms)
    try:
        cause: EventMeta | None = meta_from_headers(record.headers, origin)
    except EnvelopeError:
        cause = None
    if cause is not None and cause.subject != request_id:
        cause = None  # an envelope about another request must not put the answer in that trail
    return SalvagedRequest(
        request_id,
        tenant,
        f"{record.topic}/{record.partition}/{record.offset}",
        payload,
        cause,
        _text_headers(record),
    )


def _text_headers(record: RawRecord) -> dict[str, str]:
    """The record's headers whose values are UTF-8 (the last of a repeated one, as consumers read it)."""
    out: dict[str, str] = {}
    for key, value in record.headers:
        try:
            out[key] = (value or b"").decode("utf-8")
        except UnicodeDecodeError:
            out.pop(key, None)
    return out

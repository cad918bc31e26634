"""The CloudEvents 1.0 envelope in Kafka headers (protocol binding, binary content mode).

Attributes travel as `ce_<name>` headers, the content type as `content-type`, W3C trace context as
`traceparent`/`tracestate`; the message value is the bare event payload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

SPEC_VERSION = "1.0"
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")
_EXTENSIONS = ("correlationid", "causationid", "tenant", "replayof", "replayid")


class EnvelopeError(ValueError):
    """The headers do not carry a valid CloudEvents 1.0 binary-mode envelope."""


@dataclass(frozen=True)
class Origin:
    """Where a consumed message was read: topic, partition, offset and key."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    timestamp_ms: int | None = None


@dataclass(frozen=True)
class EventMeta:
    """The envelope of one event: CloudEvents attributes, Cairn extensions and trace context."""

    id: str
    type: str
    source: str
    time: datetime
    content_type: str = "application/json"
    subject: str | None = None
    dataschema: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    tenant: str | None = None
    replay_of: str | None = None
    replay_id: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    origin: Origin | None = None

    def to_headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers for this envelope, in a stable order."""
        pairs: list[tuple[str, str | None]] = [
            ("ce_specversion", SPEC_VERSION),
            ("ce_id", self.id),
            ("ce_source", self.source),
            ("ce_type", self.type),
            ("ce_time", self.time.astimezone(UTC).isoformat().replace("+00:00", "Z")),
            ("ce_subject", self.subject),
            ("ce_dataschema", self.dataschema),
            ("content-type", self.content_type),
            ("ce_correlationid", self.correlation_id),
            ("ce_causationid", self.causation_id),
            ("ce_tenant", self.tenant),
            ("ce_replayof", self.replay_of),
            ("ce_replayid", self.replay_id),
            ("traceparent", self.traceparent),
            ("tracestate", self.tracestate),
        ]
        pairs.extend(sorted(self.extra.items()))
        return [(k, v.encode()) for k, v in pairs if v is not None]

    def header_map(self) -> dict[str, str]:
        """The headers as a str → str mapping (for storage and display)."""
        return {k: v.decode() for k, v in self.to_headers()}

    def with_origin(self, origin: Origin) -> EventMeta:
        """A copy that remembers where it was consumed."""
        return replace(self, origin=origin)


def decode_headers(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    """Kafka headers as text; raises EnvelopeError on a value that is not UTF-8."""
    out: dict[str, str] = {}
    for key, value in headers:
        try:
            out[key] = (value or b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"header {key!r} is not UTF-8") from exc
    return out


def parse_time(value: str) -> datetime:
    """An RFC 3339 timestamp; raises EnvelopeError when it is not one."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EnvelopeError(f"ce_time {value!r} is not an RFC 3339 timestamp") from exc
    if parsed.tzinfo is None:
        raise EnvelopeError(f"ce_time {value!r} has no time zone")
    try:
        parsed.astimezone(UTC)  # e.g. year 1 at +01:00: parses, but has no UTC equivalent to write back
    except OverflowError as exc:
        raise EnvelopeError(f"ce_time {value!r} is not an RFC 3339 timestamp") from exc
    return parsed


def meta_from_headers(headers: Iterable[tuple[str, bytes | None]], origin: Origin | None = None) -> EventMeta:
    """Read the envelope from Kafka headers; raises EnvelopeError naming what is missing or wrong."""
    h = decode_headers(headers)
    missing = [f"ce_{name}" for name in REQUIRED_ATTRIBUTES if not h.get(f"ce_{name}")]
    if missing:
        raise EnvelopeError(f"missing CloudEvents header(s): {', '.join(missing)}")
    if h["ce_specversion"] != SPEC_VERSION:
        raise EnvelopeError(f"unsupported ce_specversion {h['ce_specversion']!r}, expected {SPEC_VERSION}")
    time = parse_time(h["ce_time"]) if h.get("ce_time") else datetime.now(UTC)
    known = {f"ce_{a}" for a in (*REQUIRED_ATTRIBUTES, "time", "subject", "dataschema", *_EXTENSIONS)}
    known |= {"content-type", "traceparent", "tracestate"}
    extra = {k: v for k, v in h.items() if k not in known}
    return EventMeta(
        id=h["ce_id"],
        type=h["ce_type"],
        source=h["ce_source"],
        time=time,
        content_type=h.get("content-type") or "application/json",
        subject=h.get("ce_subject"),
        dataschema=h.get("ce_dataschema"),
        correlation_id=h.get("ce_correlationid"),
        causation_id=h.get("ce_causationid"),
        tenant=h.get("ce_tenant"),
        replay_of=h.get("ce_replayof"),
        replay_id=h.get("ce_replayid"),
        traceparent=h.get("traceparent"),
        tracestate=h.get("tracestate"),
        extra=extra,
        origin=origin,
    )

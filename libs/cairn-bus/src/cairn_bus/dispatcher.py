"""Turns one consumed record into a handler call, or a dead letter; never lets bad input stop a consumer.

Order of checks: the CloudEvents envelope, the event type, whether this service handles it, the
signature of a privileged event (`cairn_bus.signing`), the payload against its schema, then the handler (retried; transient failures propagate so the
consumer rewinds and the record is delivered again, other failures dead-letter after the last
attempt). The record is committed by the caller once `dispatch` returns.
"""

from __future__ import annotations

import asyncio
import time
from enum import StrEnum
from typing import Any, Generic, TypeVar

from opentelemetry.trace import SpanKind, Status, StatusCode

from cairn_bus.deadletter import publish_dead_letter
from cairn_bus.envelope import EnvelopeError, Origin, meta_from_headers
from cairn_bus.publisher import Publisher
from cairn_bus.records import RawRecord
from cairn_bus.router import EventRouter
from cairn_bus.signing import SignatureError, SignaturePolicy
from cairn_events import EVENT_TYPES, PRIVILEGED_EVENT_TYPES, DeadLetterKind, DecodeError, decode
from cairn_observability import (
    BATCH_FAILURES,
    DEADLETTERS,
    EVENTS_CONSUMED,
    HANDLER_ERRORS,
    HANDLER_SECONDS,
    HOP_LATENCY,
    bind_event_context,
    extract_trace_context,
    get_logger,
    get_tracer,
)

D = TypeVar("D")
log = get_logger("cairn.bus")


class TransientError(Exception):
    """A handler failure worth retrying later (a database or peer unavailable); never dead-lettered."""


TRANSIENT = (TransientError, OSError, ConnectionError, asyncio.TimeoutError)


class Outcome(StrEnum):
    """What happened to one record."""

    HANDLED = "handled"
    SKIPPED = "skipped"
    DEADLETTERED = "deadlettered"


def hop_latency_s(record_timestamp_ms: int, now_s: float) -> float:
    """Seconds from a record's broker timestamp to `now_s` (0 when the clocks disagree)."""
    return max(0.0, now_s - record_timestamp_ms / 1000)


class Dispatcher(Generic[D]):
    """Dispatches records to a router's handlers with dead-letter routing, retries and tracing."""

    def __init__(
        self,
        router: EventRouter[D],
        deps: D,
        publisher: Publisher,
        *,
        group_id: str,
        max_attempts: int = 3,
        retry_backoff_s: float = 0.2,
        signatures: SignaturePolicy | None = None,
    ) -> None:
        """`signatures` defaults to `SignaturePolicy.from_env()` (raises SigningConfigError when
        signatures are required and no trusted keys are configured: the service does not start)."""
        self.router = router
        self.deps = deps
        self.publisher = publisher
        self.group_id = group_id
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self.signatures = signatures if signatures is not None else SignaturePolicy.from_env()
        self._tracer = get_tracer(f"cairn.{router.service}")
        # metric series of this service, looked up once each (`labels()` cost ~15 µs a call, three
        # calls an event: a tenth of dispatching one)
        self._consumed: dict[tuple[str, str, Outcome], Any] = {}
        self._handler_seconds: dict[str, Any] = {}
        self._hop_latency: dict[str, Any] = {}
        # series that alerts take `increase()` of exist from the start at 0, so that the first
        # dead letter or failed batch counts as an increase
        for kind in DeadLetterKind:
            DEADLETTERS.labels(router.service, kind.value)
        BATCH_FAILURES.labels(router.service)

    async def _dead_letter(
        self, record: RawRecord, kind: DeadLetterKind, reason: str, ce_type: str
    ) -> Outcome:
        log.warning(
            "event dead-lettered",
            kind=kind.value,
            reason=reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        await publish_dead_letter(self.publisher, record, kind, reason, self.group_id)
        if self.router.dead_letter_hook is not None:
            await self.router.dead_letter_hook(record, kind, reason, self.deps)
        DEADLETTERS.labels(self.router.service, kind.value).inc()
        self._count(record.topic, ce_type, Outcome.DEADLETTERED)
        return Outcome.DEADLETTERED

    def _count(self, topic: str, event_type: str, outcome: Outcome) -> None:
        key = (topic, event_type, outcome)
        child = self._consumed.get(key)
        if child is None:
            child = self._consumed[key] = EVENTS_CONSUMED.labels(self.router.service, *key)
        child.inc()

    def batch_failed(self) -> None:
        """Count a batch that failed transiently (the consumer rewinds it for redelivery)."""
        BATCH_FAILURES.labels(self.router.service).inc()

    async def end_batch(self) -> None:
        """Run the router's after-batch hook (if any); call once the records of a batch are dispatched."""
        if self.router.batch_end_hook is not None:
            await self.router.batch_end_hook(self.deps)

    def _observe_handled(self, record: RawRecord, event_type: str, seconds: float) -> None:
        timer = self._handler_seconds.get(event_type)
        if timer is None:
            timer = self._handler_seconds[event_type] = HANDLER_SECONDS.labels(
                self.router.service, event_type
            )
        timer.observe(seconds)
        if record.timestamp_ms is not None and record.timestamp_ms >= 0:
            hop = self._hop_latency.get(record.topic)
            if hop is None:
                hop = self._hop_latency[record.topic] = HOP_LATENCY.labels(self.router.service, record.topic)
            hop.observe(hop_latency_s(record.timestamp_ms, time.time()))
        self._count(record.topic, event_type, Outcome.HANDLED)

    async def dispatch(self, record: RawRecord) -> Outcome:
        """Handle one record; returns what happened. Raises only on transient failure (retry later)."""
        origin = Origin(record.topic, record.partition, record.offset, record.key, record.timestamp_ms)
        try:
            meta = meta_from_headers(record.headers, origin)
        except EnvelopeError as exc:
            return await self._dead_letter(record, DeadLetterKind.MISSING_HEADERS, str(exc), "unknown")
        if meta.type not in EVENT_TYPES:
            reason = f"unknown event type {meta.type!r}: not in the schema registry"
            return await self._dead_letter(record, DeadLetterKind.UNKNOWN_TYPE, reason, meta.type)
        handler = self.router.handler_for(meta.type)
        if handler is None:
            self._count(record.topic, meta.type, Outcome.SKIPPED)
            return Outcome.SKIPPED
        if meta.type in PRIVILEGED_EVENT_TYPES:
            try:
                self.signatures.check(meta.type, record.headers, record.value)
            except SignatureError as exc:
                return await self._dead_letter(record, exc.kind, exc.reason, meta.type)
        try:
            event = decode(meta.type, record.value or b"", meta.content_type)
        except DecodeError as exc:
            return await self._dead_letter(record, exc.kind, exc.reason, meta.type)

        parent = extract_trace_context(
            {k: v for k, v in (("traceparent", meta.traceparent), ("tracestate", meta.tracestate)) if v}
        )
        ids = {"event_id": meta.id, "request_id": meta.subject, "correlation_id": meta.correlation_id}
        last_error: Exception | None = None
        for attempt in range(1, self.max_attempts + 1):
            started = time.perf_counter()
            with (
                bind_event_context(**ids, event_type=meta.type),
                self._tracer.start_as_current_span(
                    f"{record.topic} process", context=parent, kind=SpanKind.CONSUMER
                ) as span,
            ):
                span.set_attribute("messaging.system", "kafka")
                span.set_attribute("messaging.destination.name", record.topic)
                span.set_attribute("messaging.kafka.offset", record.offset)
                span.set_attribute("messaging.message.id", meta.id)
                span.set_attribute("cloudevents.event_type", meta.type)
                try:
                    await handler(event, meta, self.deps)
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)))
                    last_error = exc
                    retryable = "true" if isinstance(exc, TRANSIENT) else "false"
                    HANDLER_ERRORS.labels(self.router.service, meta.type, retryable).inc()
                    log.warning("handler failed", attempt=attempt, error=repr(exc))
                else:
                    self._observe_handled(record, meta.type, time.perf_counter() - started)
                    return Outcome.HANDLED
            if attempt < self.max_attempts:
                await asyncio.sleep(self.retry_backoff_s * attempt)
        assert last_error is not None
        if isinstance(last_error, TRANSIENT):
            raise last_error
        reason = f"handler failed after {self.max_attempts} attempts: {last_error!r}"
        return await self._dead_letter(record, DeadLetterKind.HANDLER_FAILED, reason, meta.type)

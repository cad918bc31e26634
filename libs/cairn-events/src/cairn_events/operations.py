"""Operational events: alerts raised by monitoring, and messages no consumer could handle."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from cairn_events.base import INT64_MAX, Event, Identifier, Timestamp
from cairn_events.common import Base64, DeadLetterKind, RawHeader

__all__ = ["AlertRaisedV1", "DeadLetterRecordedV1"]


class AlertRaisedV1(Event):
    """Monitoring found a quality, drift, latency or cost metric outside its bounds."""

    event_type: ClassVar[str] = "cairn.alert.raised.v1"
    topic: ClassVar[str] = "cairn.alerts"
    key_field: ClassVar[str] = "alert_name"

    alert_id: Identifier = Field(description="Unique id of this firing of the alert.")
    alert_name: str = Field(min_length=1, description="The alert rule, e.g. `FeedbackScoreDropped`.")
    severity: Literal["info", "warning", "critical"] = Field(description="How urgent it is.")
    summary: str = Field(description="One sentence for a human.")
    labels: dict[str, str] = Field(description="Labels locating the problem, e.g. tenant, model, prompt.")
    value: float | None = Field(None, description="The observed value that crossed the threshold, if any.")
    raised_at: Timestamp = Field(description="When the alert fired (RFC 3339).")


class DeadLetterRecordedV1(Event):
    """A consumer could not decode, validate or handle a message, and set it aside.

    The original message is kept byte for byte (base64) with its origin, so it can be
    inspected and re-published once the cause is fixed.
    """

    event_type: ClassVar[str] = "cairn.deadletter.recorded.v1"
    topic: ClassVar[str] = "cairn.deadletter"
    key_field: ClassVar[str] = "origin_topic"

    reason: str = Field(description="What went wrong, for a human (e.g. the validation errors).")
    error_kind: DeadLetterKind = Field(description="The class of failure.")
    origin_topic: str = Field(min_length=1, description="Topic the message was read from.")
    origin_partition: int = Field(ge=0, le=INT64_MAX, description="Partition the message was read from.")
    origin_offset: int = Field(ge=0, le=INT64_MAX, description="Offset of the message in its partition.")
    consumer_group: str = Field(min_length=1, description="Consumer group that gave up on it.")
    original_key_b64: Base64 | None = Field(None, description="The message key, base64; none if it had none.")
    original_value_b64: Base64 = Field(description="The message value, base64 (empty for a null value).")
    original_headers: list[RawHeader] = Field(description="The message headers, in order.")
    dead_lettered_at: Timestamp = Field(description="When the message was dead-lettered (RFC 3339).")

    @classmethod
    def from_message(
        cls,
        *,
        kind: DeadLetterKind,
        reason: str,
        topic: str,
        partition: int,
        offset: int,
        consumer_group: str,
        key: bytes | None,
        value: bytes | None,
        headers: Iterable[tuple[str, bytes | None]],
        at: datetime,
    ) -> DeadLetterRecordedV1:
        """Record a raw Kafka message that could not be processed, keeping its bytes intact."""
        return cls(
            reason=reason,
            error_kind=kind,
            origin_topic=topic,
            origin_partition=partition,
            origin_offset=offset,
            consumer_group=consumer_group,
            original_key_b64=None if key is None else base64.b64encode(key).decode("ascii"),
            original_value_b64=base64.b64encode(value or b"").decode("ascii"),
            original_headers=[RawHeader.from_bytes(name, raw) for name, raw in headers],
            dead_lettered_at=at,
        )

    def original_value(self) -> bytes:
        """The original message value."""
        return base64.b64decode(self.original_value_b64)

    def original_key(self) -> bytes | None:
        """The original message key, or None if it had none."""
        return None if self.original_key_b64 is None else base64.b64decode(self.original_key_b64)

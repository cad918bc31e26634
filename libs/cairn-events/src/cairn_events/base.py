"""The base class of every Cairn event and the constrained string types events share."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

__all__ = [
    "EVENT_TYPE_PATTERN",
    "ID_PATTERN",
    "INT64_MAX",
    "PROMPT_NAME_PATTERN",
    "PROMPT_REF_PATTERN",
    "Event",
    "Identifier",
    "Int64",
    "PromptName",
    "PromptRef",
    "RequestId",
    "Timestamp",
    "frozen_config",
]

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
"""Identifiers (request, review, feedback, dataset, job, run and alert ids): 1-128 URL-safe characters."""

PROMPT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$"
"""A prompt name in the prompt store."""

PROMPT_REF_PATTERN = (
    r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}(@[A-Za-z0-9][A-Za-z0-9._-]{0,63}|:[1-9][0-9]{0,8})?$"
)
"""A prompt reference: `name` (the production label), `name@label` or `name:version`."""

EVENT_TYPE_PATTERN = r"^cairn\.[a-z][a-z_]*\.[a-z][a-z_]*\.v[1-9][0-9]*$"
"""An event type string: `cairn.<thing>.<happened>.v<N>`."""

INT64_MAX = 2**63 - 1
"""Integers are signed 64-bit (Avro `long`); counts and versions are bounded by this."""

Int64 = Annotated[int, Field(ge=-(2**63), le=INT64_MAX)]
"""A signed 64-bit integer."""

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""An identifier: 1-128 characters out of letters, digits and `._:-`."""

RequestId = Identifier
"""The id of one upstream request; every event of that request carries it and is keyed by it."""

PromptName = Annotated[str, StringConstraints(pattern=PROMPT_NAME_PATTERN)]
"""The name of a prompt in the prompt store."""

PromptRef = Annotated[str, StringConstraints(pattern=PROMPT_REF_PATTERN)]
"""A prompt reference: `name`, `name@label` or `name:version`."""


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)


def _rfc3339_text_only(value: object) -> object:
    """Parse RFC 3339 strings only (pydantic alone also takes e.g. Unix seconds); pass other values on."""
    if not isinstance(value, str):
        return value
    if not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2025-03-04T09:15:22Z")
    return datetime.fromisoformat(value.upper())


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text_only)]
"""A timezone-aware moment; in JSON and Avro an RFC 3339 string with an offset."""


def frozen_config() -> ConfigDict:
    """The model configuration every payload type uses: immutable, no unknown fields, finite floats."""
    return ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Event(BaseModel):
    """A versioned Cairn event: the bare payload carried as the value of one Kafka message.

    Every concrete subclass names its CloudEvents `type` (`event_type`), the topic it is
    published on (`topic`) and the payload field whose value is the Kafka partition key
    (`key_field`). Instances are immutable and reject unknown fields.
    """

    model_config = frozen_config()

    event_type: ClassVar[str]
    """The CloudEvents `type`, e.g. `cairn.request.submitted.v1`."""
    topic: ClassVar[str]
    """The Kafka topic this event is published on, e.g. `cairn.requests`."""
    key_field: ClassVar[str]
    """The payload field whose value is the Kafka partition key."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Check that a concrete event declares its type, topic and an existing key field."""
        super().__pydantic_init_subclass__(**kwargs)
        declared = [name for name in ("event_type", "topic", "key_field") if name in cls.__dict__]
        if not declared:
            return  # an abstract intermediate class
        missing = {"event_type", "topic", "key_field"} - set(declared)
        if missing:
            raise TypeError(f"{cls.__name__} must declare {sorted(missing)}")
        if cls.key_field not in cls.model_fields:
            raise TypeError(f"{cls.__name__}.key_field {cls.key_field!r} is not one of its fields")

    def partition_key(self) -> str:
        """The Kafka partition key: the value of `key_field`, as a string."""
        return str(getattr(self, self.key_field))

    def subject(self) -> str | None:
        """The CloudEvents `subject`: the request id when the event has a `request_id`, else None."""
        value = getattr(self, "request_id", None)
        return None if value is None else str(value)

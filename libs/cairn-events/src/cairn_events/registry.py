"""Every event type Cairn knows, by its CloudEvents `type` string."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from cairn_events.admin import AdminActionRecordedV1
from cairn_events.base import EVENT_TYPE_PATTERN, Event
from cairn_events.documents import DocumentReindexedV1
from cairn_events.experiments import ExperimentConcludedV1
from cairn_events.feedback import FeedbackSubmittedV1, ReviewRequestedV1, ReviewResolvedV1
from cairn_events.model_lifecycle import (
    DatasetPublishedV1,
    EvaluationCompletedV1,
    ModelPromotedV1,
    ModelRegisteredV1,
    TuningProgressedV1,
    TuningRequestedV1,
)
from cairn_events.operations import AlertRaisedV1, DeadLetterRecordedV1
from cairn_events.request_flow import (
    CompletionDeltaGeneratedV1,
    CompletionGeneratedV1,
    ContextAssembledV1,
    InputScreenedV1,
    PromptRenderedV1,
    RequestSubmittedV1,
    ResponseCompletedV1,
)

__all__ = [
    "EVENT_TYPES",
    "PRIVILEGED_EVENT_TYPES",
    "UnknownEventType",
    "dataschema_uri",
    "event_class",
    "schema_family",
    "schema_version",
]

_ALL: tuple[type[Event], ...] = (
    RequestSubmittedV1,
    PromptRenderedV1,
    ContextAssembledV1,
    InputScreenedV1,
    CompletionGeneratedV1,
    CompletionDeltaGeneratedV1,
    ResponseCompletedV1,
    ReviewRequestedV1,
    ReviewResolvedV1,
    FeedbackSubmittedV1,
    DatasetPublishedV1,
    TuningRequestedV1,
    TuningProgressedV1,
    ModelRegisteredV1,
    ModelPromotedV1,
    EvaluationCompletedV1,
    AlertRaisedV1,
    DeadLetterRecordedV1,
    AdminActionRecordedV1,
    ExperimentConcludedV1,
    DocumentReindexedV1,
)

EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType({cls.event_type: cls for cls in _ALL})
"""Every registered event type string → its model class (read-only)."""

PRIVILEGED_EVENT_TYPES: frozenset[str] = frozenset(
    cls.event_type
    for cls in (
        ModelRegisteredV1,
        ModelPromotedV1,
        ReviewResolvedV1,
        AdminActionRecordedV1,
        ExperimentConcludedV1,  # with an `on_winner: promote` policy it moves a prompt label
    )
)
"""Event types that change what is served or who may do what: their producer signs them (Ed25519,
`cairn_bus.signing`) and every consumer that acts on them verifies the signature first."""

_TYPE_RE = re.compile(EVENT_TYPE_PATTERN)


class UnknownEventType(KeyError):  # noqa: N818 - the public name is part of the API
    """An event type string that is not registered (or not well formed)."""

    def __init__(self, event_type: str) -> None:
        super().__init__(event_type)
        self.event_type = event_type

    def __str__(self) -> str:
        return f"unknown event type {self.event_type!r}: cairn-events knows {', '.join(sorted(EVENT_TYPES))}"


def event_class(event_type: str) -> type[Event]:
    """The model class of a registered event type; raises `UnknownEventType` for any other string."""
    try:
        return EVENT_TYPES[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def _parse(event_type: str) -> tuple[str, int]:
    if not _TYPE_RE.match(event_type):
        raise ValueError(f"malformed event type {event_type!r}: expected cairn.<thing>.<happened>.v<N>")
    family, _, version = event_type.rpartition(".v")
    return family, int(version)


def schema_family(event_type: str) -> str:
    """The event type without its version, e.g. `cairn.request.submitted` (the folder under `schemas/`)."""
    return _parse(event_type)[0]


def schema_version(event_type: str) -> int:
    """The version number of an event type, e.g. 1 for `cairn.request.submitted.v1`."""
    return _parse(event_type)[1]


def dataschema_uri(event_type: str) -> str:
    """The CloudEvents `dataschema` of an event type, e.g. `urn:cairn:schema:cairn.request.submitted:v1`.

    It is also the `$id` of the event type's JSON Schema. Raises ValueError for a malformed type.
    """
    family, version = _parse(event_type)
    return f"urn:cairn:schema:{family}:v{version}"

"""JSON Schema (draft 2020-12) of an event model, as published under `schemas/`."""

from __future__ import annotations

import json
from typing import Any

from cairn_events.base import Event
from cairn_events.registry import dataschema_uri

__all__ = ["JSON_SCHEMA_DIALECT", "json_schema", "render_json"]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(event_cls: type[Event]) -> dict[str, Any]:
    """The JSON Schema of an event's payload: `$id` is its dataschema URI, `title` its class name.

    `x-cairn-event-type`, `x-cairn-topic` and `x-cairn-key` annotate the CloudEvents type,
    the topic and the partition-key field; validators ignore them.
    """
    schema = event_cls.model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": dataschema_uri(event_cls.event_type),
        **schema,
        "title": event_cls.__name__,
        "description": schema.get("description", event_cls.__name__),
        "x-cairn-event-type": event_cls.event_type,
        "x-cairn-topic": event_cls.topic,
        "x-cairn-key": event_cls.key_field,
    }


def render_json(document: Any) -> str:
    """A document as published: keys sorted, 2-space indent, UTF-8 characters kept, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

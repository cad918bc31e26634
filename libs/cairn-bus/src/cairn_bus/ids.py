"""Event ids: random for events that start a trail, derived from the cause for every other one.

A handler that runs twice for the same cause (a redelivery after a crash) publishes events with
the same ids, so consumers and the audit store see one event, not two.
"""

from __future__ import annotations

import uuid

CAIRN_NAMESPACE = uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-1c2d3e4f5a6b")


def derive_event_id(cause_id: str, event_type: str, discriminator: str = "") -> str:
    """A UUIDv5 fixed by the cause's id, the new event's type and an optional discriminator.

    Use a discriminator when one cause yields several events of the same type.
    """
    return str(uuid.uuid5(CAIRN_NAMESPACE, f"{cause_id}|{event_type}|{discriminator}"))


def new_event_id() -> str:
    """A random UUIDv4 for an event with no cause (a new request from upstream)."""
    return str(uuid.uuid4())

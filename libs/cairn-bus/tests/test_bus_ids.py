"""Event ids: derived from the cause (UUIDv5) or random for a new trail (UUIDv4)."""

from __future__ import annotations

import uuid

from cairn_bus import derive_event_id, new_event_id
from cairn_bus.ids import CAIRN_NAMESPACE


def test_derived_id_is_the_uuid5_of_cause_type_and_discriminator() -> None:
    expected = uuid.uuid5(uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-1c2d3e4f5a6b"), "cause-1|cairn.x.y.v1|2")
    assert derive_event_id("cause-1", "cairn.x.y.v1", "2") == str(expected)
    assert uuid.UUID(derive_event_id("cause-1", "cairn.x.y.v1")).version == 5
    assert uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-1c2d3e4f5a6b") == CAIRN_NAMESPACE


def test_derived_id_is_deterministic() -> None:
    assert derive_event_id("c", "t", "d") == derive_event_id("c", "t", "d")
    assert derive_event_id("c", "t") == derive_event_id("c", "t", "")


def test_derived_id_changes_with_each_input() -> None:
    ids = {
        derive_event_id("c", "t", ""),
        derive_event_id("c2", "t", ""),
        derive_event_id("c", "t2", ""),
        derive_event_id("c", "t", "1"),
    }
    assert len(ids) == 4


def test_new_ids_are_random_uuid4() -> None:
    first, second = new_event_id(), new_event_id()
    assert first != second
    assert uuid.UUID(first).version == 4
    assert str(uuid.UUID(first)) == first

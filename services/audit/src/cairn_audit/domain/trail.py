"""A request's trail in causal order: each event after the event that caused it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cairn_audit.domain.records import AuditRecord


@dataclass
class TrailNode:
    """An event and the events it caused."""

    record: AuditRecord
    children: list[TrailNode] = field(default_factory=list)
    depth: int = 0


def _sort_key(r: AuditRecord) -> tuple[float, int]:
    return (r.event_time.timestamp(), r.seq or 0)


def build_trail(records: Sequence[AuditRecord]) -> list[TrailNode]:
    """The forest of causation: roots are events whose cause is not in `records`.

    Siblings are ordered by event time, then by storage order.
    """
    nodes = {r.event_id: TrailNode(r) for r in records}
    roots: list[TrailNode] = []
    for record in sorted(records, key=_sort_key):
        node = nodes[record.event_id]
        parent = nodes.get(record.causation_id) if record.causation_id else None
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent.children.append(node)

    def set_depth(node: TrailNode, depth: int, seen: set[str]) -> None:
        node.depth = depth
        seen.add(node.record.event_id)
        for child in node.children:
            if child.record.event_id not in seen:
                set_depth(child, depth + 1, seen)

    seen: set[str] = set()
    for root in roots:
        set_depth(root, 0, seen)
    return roots


def causal_order(records: Sequence[AuditRecord]) -> list[TrailNode]:
    """Depth-first walk of `build_trail`: every event comes after its cause."""
    out: list[TrailNode] = []
    seen: set[str] = set()

    def walk(node: TrailNode) -> None:
        if node.record.event_id in seen:
            return
        seen.add(node.record.event_id)
        out.append(node)
        for child in node.children:
            walk(child)

    for root in build_trail(records):
        walk(root)
    # events caught in a causation cycle (only possible with forged ids) still appear, last
    for record in sorted(records, key=_sort_key):
        if record.event_id not in seen:
            seen.add(record.event_id)
            out.append(TrailNode(record))
    return out

"""Rendering a request's trail as a tree with timings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from cairn_audit.domain.records import AuditRecord
from cairn_audit.domain.trail import TrailNode, build_trail, causal_order
from cairn_events import ReviewRequestedV1, ReviewResolvedV1
from cairn_observability.trail_words import cache_words, route_words

REVIEW_REQUESTED = ReviewRequestedV1.event_type
REVIEW_RESOLVED = ReviewResolvedV1.event_type


def _label(record: AuditRecord, t0: float) -> str:
    offset_ms = (record.event_time.timestamp() - t0) * 1000
    parts = [
        f"[bold]+{offset_ms:8.1f} ms[/bold]",
        f"[cyan]{record.event_type}[/cyan]",
        f"{record.topic}[{record.partition}]@{record.offset}",
        f"from {record.source}",
        f"[dim]{record.event_id[:8]}[/dim]",
    ]
    if record.replay_of:
        parts.append(f"[magenta]replay of {record.replay_of[:8]} (run {str(record.replay_id)[:8]})[/magenta]")
    review = review_line(record.event_type, record.payload)
    status = record.payload.get("status") or record.payload.get("verdict") or record.payload.get("error_kind")
    if review:
        parts.append(review)
    elif status:
        parts.append(f"[yellow]{status}[/yellow]")
    gate = grounding_line(record.payload)
    if gate:
        parts.append(gate)
    cache = cache_line(record.payload)
    if cache:
        parts.append(cache)
    route = route_line(record.payload)
    if route:
        parts.append(route)
    return "  ".join(parts)


def route_line(payload: Mapping[str, Any]) -> str | None:
    """How the routing policy chose the model of a completion or response (`route_words`), or None."""
    words = route_words(payload)
    return f"[cyan]{escape(words)}[/cyan]" if words else None


def cache_line(payload: Mapping[str, Any]) -> str | None:
    """What inference's response cache did for a completion or response (`cache_words`: a hit in green,
    the rest dim), or None when it says nothing."""
    words = cache_words(payload)
    if words is None:
        return None
    style = "green" if words.startswith("cache hit") else "dim"
    return f"[{style}]{escape(words)}[/{style}]"


def grounding_line(payload: Mapping[str, Any]) -> str | None:
    """The groundedness gate's finding on a response (score, label, action), or None without one."""
    findings = payload.get("findings") or []
    found = next((f for f in findings if isinstance(f, Mapping) and f.get("check") == "groundedness"), None)
    if found is None:
        return None
    action = str(found.get("detail") or "").split(";")[0]
    style = "red" if found.get("fired") else "green"
    return f"[{style}]groundedness {float(found.get('score', 0.0)):.2f} {found.get('label')}[/{style}] ({action})"


def review_line(event_type: str, payload: Mapping[str, Any]) -> str | None:
    """What a review event says (the hold: review id and stage; the decision: what, who, why), or None
    for other events."""
    if event_type == REVIEW_REQUESTED:
        return f"[yellow]held for review {payload.get('review_id')} ({payload.get('stage')})[/yellow]"
    if event_type != REVIEW_RESOLVED:
        return None
    by = f"{payload.get('decided_by')}{' (deadline)' if payload.get('by_deadline') else ''}"
    line = f"[bold]{payload.get('decision')}[/bold] by {by}"
    if payload.get("reason"):
        line += f": {payload['reason']}"
    if payload.get("text"):
        line += f" [dim](edited: {_clip(str(payload['text']))})[/dim]"
    return line


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render_trail(request_id: str, records: Sequence[AuditRecord]) -> Tree:
    """A rich Tree: each event under the event that caused it, with its time since the first event."""
    t0 = min(r.event_time.timestamp() for r in records)
    span_ms = (max(r.event_time.timestamp() for r in records) - t0) * 1000
    tree = Tree(f"[bold]trail of request {request_id}[/bold]: {len(records)} events, {span_ms:.1f} ms")

    def add(parent: Tree, node: TrailNode) -> None:
        branch = parent.add(_label(node.record, t0))
        for child in node.children:
            add(branch, child)

    for root in build_trail(records):
        add(tree, root)
    return tree


def trail_json(records: Sequence[AuditRecord]) -> list[dict[str, Any]]:
    """The trail in causal order as plain data (for `--json`)."""
    return [
        {
            "depth": n.depth,
            "event_id": n.record.event_id,
            "event_type": n.record.event_type,
            "source": n.record.source,
            "time": n.record.event_time.isoformat(),
            "topic": n.record.topic,
            "partition": n.record.partition,
            "offset": n.record.offset,
            "causation_id": n.record.causation_id,
            "replay_of": n.record.replay_of,
            "replay_id": n.record.replay_id,
            "seq": n.record.seq,
            "hash": n.record.hash,
            "payload": n.record.payload,
        }
        for n in causal_order(records)
    ]

"""A request's trail in causal order: every event after its cause, siblings by time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cairn_audit.domain.records import AuditRecord
from cairn_audit.domain.trail import TrailNode, build_trail, causal_order

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


def rec(event_id: str, cause: str | None, second: float, seq: int | None = None) -> AuditRecord:
    return AuditRecord(
        event_id=event_id,
        event_type="cairn.request.submitted.v1",
        source="/cairn/test",
        event_time=T0 + timedelta(seconds=second),
        topic="cairn.requests",
        partition=0,
        offset=0,
        payload={},
        headers={},
        causation_id=cause,
        seq=seq,
    )


def ids(nodes: list[TrailNode]) -> list[str]:
    return [n.record.event_id for n in nodes]


def test_each_event_follows_its_cause_even_when_clocks_disagree() -> None:
    records = [rec("c", "b", 1), rec("b", "a", 2), rec("a", None, 3)]
    order = causal_order(records)
    assert ids(order) == ["a", "b", "c"]
    assert [n.depth for n in order] == [0, 1, 2]


def test_siblings_are_ordered_by_time() -> None:
    records = [rec("a", None, 0), rec("late", "a", 3), rec("early", "a", 1), rec("middle", "a", 2)]
    [root] = build_trail(records)
    assert ids(root.children) == ["early", "middle", "late"]
    assert ids(causal_order(records)) == ["a", "early", "middle", "late"]


def test_siblings_at_the_same_time_follow_storage_order() -> None:
    records = [rec("a", None, 0, seq=1), rec("y", "a", 1, seq=3), rec("x", "a", 1, seq=2)]
    assert ids(causal_order(records)) == ["a", "x", "y"]


def test_the_walk_is_depth_first() -> None:
    records = [
        rec("a", None, 0),
        rec("b", "a", 1),
        rec("c", "a", 2),
        rec("b1", "b", 5),
        rec("c1", "c", 3),
    ]
    order = causal_order(records)
    assert ids(order) == ["a", "b", "b1", "c", "c1"]
    assert [n.depth for n in order] == [0, 1, 2, 1, 2]


def test_an_event_whose_cause_is_missing_is_a_root() -> None:
    records = [rec("orphan", "not-stored", 1), rec("a", None, 2), rec("b", "a", 0)]
    roots = build_trail(records)
    assert ids(roots) == ["orphan", "a"]
    assert [r.depth for r in roots] == [0, 0]
    assert ids(causal_order(records)) == ["orphan", "a", "b"]


def test_an_event_that_names_itself_as_cause_is_a_root() -> None:
    records = [rec("self", "self", 0), rec("child", "self", 1)]
    [root] = build_trail(records)
    assert ids([root]) == ["self"]
    assert ids(root.children) == ["child"]


def test_a_causation_cycle_loses_no_event() -> None:
    records = [rec("a", None, 0), rec("x", "y", 2), rec("y", "x", 1), rec("x1", "x", 3)]
    assert ids(build_trail(records)) == ["a"]
    order = causal_order(records)
    assert ids(order) == ["a", "y", "x", "x1"]
    assert sorted(ids(order)) == sorted(r.event_id for r in records)


def test_a_trail_that_is_all_cycle_still_lists_every_event() -> None:
    records = [rec("p", "q", 1), rec("q", "p", 0)]
    assert build_trail(records) == []
    assert ids(causal_order(records)) == ["q", "p"]


def test_empty_trail() -> None:
    assert build_trail([]) == []
    assert causal_order([]) == []


@st.composite
def forests(draw: st.DrawFn) -> list[AuditRecord]:
    """Events whose causes (when present and stored) were created before them, with arbitrary clocks."""
    count = draw(st.integers(min_value=1, max_value=25))
    out: list[AuditRecord] = []
    for i in range(count):
        cause = draw(st.one_of(st.none(), st.just("missing"), st.integers(0, max(i - 1, 0)).map(str)))
        if i == 0 and cause == "0":
            cause = None
        out.append(rec(str(i), cause, draw(st.integers(0, 10)), seq=i + 1))
    return draw(st.permutations(out))


@given(forests())
def test_causal_order_puts_every_event_after_its_cause(records: list[AuditRecord]) -> None:
    order = ids(causal_order(records))
    assert sorted(order) == sorted(r.event_id for r in records)
    position = {event_id: i for i, event_id in enumerate(order)}
    for r in records:
        if r.causation_id in position:
            assert position[r.causation_id] < position[r.event_id]


@given(
    st.lists(
        st.tuples(st.integers(0, 9), st.one_of(st.none(), st.integers(0, 12)), st.integers(0, 5)), max_size=10
    )
)
def test_any_causation_graph_keeps_every_event_once(edges: list[tuple[int, int | None, int]]) -> None:
    unique = {event: (cause, second) for event, cause, second in edges}
    records = [rec(str(e), None if c is None else str(c), s) for e, (c, s) in unique.items()]
    assert sorted(ids(causal_order(records))) == sorted(r.event_id for r in records)

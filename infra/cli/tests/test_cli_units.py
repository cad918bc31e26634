"""Pure parts of the CLI: time parsing, replay headers, trail summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cairn_audit.domain.records import AuditRecord
from cairn_bus import derive_event_id
from cairn_bus.records import RawRecord
from cairn_cli.replay import REPLAY_EVENT, ReplayMessage, from_broker, replay_headers
from cairn_cli.responses import trail_summary
from cairn_cli.timeparse import parse_when

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-30s", NOW - timedelta(seconds=30)),
        ("-15m", NOW - timedelta(minutes=15)),
        ("-2h", NOW - timedelta(hours=2)),
        ("-1d", NOW - timedelta(days=1)),
        ("2026-11-28T10:00:00Z", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T10:00:00", datetime(2026, 11, 28, 10, tzinfo=UTC)),
        ("2026-11-28T11:00:00+01:00", datetime(2026, 11, 28, 10, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


def test_parse_when_explains_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_when("yesterday", now=NOW)


def test_replay_headers_derive_the_id_and_point_at_the_original() -> None:
    headers = [
        ("ce_id", b"orig"),
        ("ce_type", b"cairn.request.submitted.v1"),
        ("ce_time", b"2020-01-01T00:00:00Z"),
    ]
    out = dict(replay_headers(headers, "orig", "run-1"))
    assert out["ce_id"] == derive_event_id("orig", REPLAY_EVENT, "run-1").encode()
    assert out["ce_replayof"] == b"orig"
    assert out["ce_replayid"] == b"run-1"
    assert out["ce_type"] == b"cairn.request.submitted.v1"
    assert out["ce_time"] != b"2020-01-01T00:00:00Z"
    assert dict(replay_headers(headers, "orig", "run-1"))["ce_id"] == out["ce_id"]
    assert dict(replay_headers(headers, "orig", "run-2"))["ce_id"] != out["ce_id"]


def test_a_replayed_message_is_replayed_as_its_first_original() -> None:
    records = [
        RawRecord("t", 0, 1, b"v", headers=[("ce_id", b"a")]),
        RawRecord("t", 0, 2, b"v", headers=[("ce_id", b"b"), ("ce_replayof", b"a")]),
        RawRecord("t", 0, 3, b"v", headers=[("content-type", b"application/json")]),
    ]
    messages, skipped = from_broker(records)
    assert [m.original_id for m in messages] == ["a", "a"]
    assert skipped == 1
    assert isinstance(messages[0], ReplayMessage)


def _record(eid: str, etype: str, ms: int, cause: str | None) -> AuditRecord:
    return AuditRecord(
        event_id=eid,
        event_type=etype,
        source="/t",
        event_time=NOW + timedelta(milliseconds=ms),
        topic="t",
        partition=0,
        offset=0,
        payload={},
        headers={},
        causation_id=cause,
    )


def test_trail_summary_follows_causes_with_hop_times() -> None:
    records = [
        _record("c", "cairn.context.assembled.v1", 95, "b"),
        _record("a", "cairn.request.submitted.v1", 0, None),
        _record("b", "cairn.prompt.rendered.v1", 12, "a"),
    ]
    assert trail_summary(records) == (
        "2 hops, 95 ms: request.submitted -12ms-> prompt.rendered -83ms-> context.assembled"
    )
    assert trail_summary([]) == "no trail stored"

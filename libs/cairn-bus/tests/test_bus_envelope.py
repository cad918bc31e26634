"""The CloudEvents binary-mode envelope: EventMeta ↔ Kafka headers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn_bus import EnvelopeError, EventMeta, Origin, meta_from_headers
from cairn_bus.envelope import parse_time

TIME = datetime(2025, 3, 4, 9, 15, 22, 123456, tzinfo=UTC)
FULL = EventMeta(
    id="evt-1",
    type="cairn.request.submitted.v1",
    source="/cairn/gateway",
    time=TIME,
    content_type="application/avro",
    subject="req-1",
    dataschema="urn:cairn:schema:cairn.request.submitted:v1",
    correlation_id="corr-1",
    causation_id="cause-1",
    tenant="acme",
    replay_of="orig-1",
    replay_id="replay-1",
    traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    tracestate="congo=t61rcWkgMzE",
    extra={"x-b": "2", "ce_zeta": "z", "x-a": "1"},
)
MINIMAL_HEADERS = [
    ("ce_specversion", b"1.0"),
    ("ce_id", b"evt-1"),
    ("ce_source", b"/cairn/gateway"),
    ("ce_type", b"cairn.request.submitted.v1"),
]
KNOWN_HEADERS = {
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "ce_dataschema",
    "ce_correlationid",
    "ce_causationid",
    "ce_tenant",
    "ce_replayof",
    "ce_replayid",
    "content-type",
    "traceparent",
    "tracestate",
}


def test_to_headers_lists_every_attribute_in_a_stable_order() -> None:
    assert FULL.to_headers() == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-1"),
        ("ce_source", b"/cairn/gateway"),
        ("ce_type", b"cairn.request.submitted.v1"),
        ("ce_time", b"2025-03-04T09:15:22.123456Z"),
        ("ce_subject", b"req-1"),
        ("ce_dataschema", b"urn:cairn:schema:cairn.request.submitted:v1"),
        ("content-type", b"application/avro"),
        ("ce_correlationid", b"corr-1"),
        ("ce_causationid", b"cause-1"),
        ("ce_tenant", b"acme"),
        ("ce_replayof", b"orig-1"),
        ("ce_replayid", b"replay-1"),
        ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("tracestate", b"congo=t61rcWkgMzE"),
        ("ce_zeta", b"z"),
        ("x-a", b"1"),
        ("x-b", b"2"),
    ]


def test_to_headers_leaves_out_absent_attributes_and_writes_time_in_utc() -> None:
    meta = EventMeta(
        id="e", type="t", source="s", time=datetime(2025, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    )
    assert meta.to_headers() == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e"),
        ("ce_source", b"s"),
        ("ce_type", b"t"),
        ("ce_time", b"2025-01-01T10:00:00Z"),
        ("content-type", b"application/json"),
    ]


def test_header_map_is_the_headers_as_text() -> None:
    meta = EventMeta(id="e", type="t", source="s", time=TIME, subject="réq")
    assert meta.header_map() == {
        "ce_specversion": "1.0",
        "ce_id": "e",
        "ce_source": "s",
        "ce_type": "t",
        "ce_time": "2025-03-04T09:15:22.123456Z",
        "ce_subject": "réq",
        "content-type": "application/json",
    }


def test_headers_read_back_to_the_same_envelope() -> None:
    origin = Origin("cairn.requests", 3, 42, b"req-1", 1_700_000_000_000)
    meta = meta_from_headers(FULL.to_headers(), origin)
    assert meta == replace(FULL, origin=origin)
    assert meta.time.utcoffset() == timedelta(0)


def test_with_origin_returns_a_copy() -> None:
    origin = Origin("cairn.requests", 0, 7)
    located = FULL.with_origin(origin)
    assert located.origin == origin
    assert FULL.origin is None
    assert located.id == FULL.id


def test_minimal_headers_take_defaults() -> None:
    before = datetime.now(UTC)
    meta = meta_from_headers(MINIMAL_HEADERS)
    after = datetime.now(UTC)
    assert (meta.id, meta.source, meta.type) == ("evt-1", "/cairn/gateway", "cairn.request.submitted.v1")
    assert meta.content_type == "application/json"
    assert before <= meta.time <= after
    assert meta.time.tzinfo is not None
    assert (meta.subject, meta.correlation_id, meta.causation_id, meta.tenant) == (None, None, None, None)
    assert (meta.traceparent, meta.tracestate, meta.origin) == (None, None, None)
    assert meta.extra == {}


def test_unknown_headers_are_kept_as_extras() -> None:
    meta = meta_from_headers([*MINIMAL_HEADERS, ("x-upstream", b"crm"), ("ce_priority", b"high")])
    assert meta.extra == {"x-upstream": "crm", "ce_priority": "high"}


def test_a_null_content_type_falls_back_to_json() -> None:
    meta = meta_from_headers([*MINIMAL_HEADERS, ("content-type", None)])
    assert meta.content_type == "application/json"


@pytest.mark.parametrize("name", ["ce_specversion", "ce_id", "ce_source", "ce_type"])
def test_a_missing_required_header_is_named(name: str) -> None:
    headers = [(k, v) for k, v in MINIMAL_HEADERS if k != name]
    with pytest.raises(EnvelopeError) as info:
        meta_from_headers(headers)
    assert str(info.value) == f"missing CloudEvents header(s): {name}"


@pytest.mark.parametrize("value", [b"", None])
def test_an_empty_required_header_counts_as_missing(value: bytes | None) -> None:
    headers = [(k, value if k == "ce_id" else v) for k, v in MINIMAL_HEADERS]
    with pytest.raises(EnvelopeError, match=r"^missing CloudEvents header\(s\): ce_id$"):
        meta_from_headers(headers)


def test_every_missing_header_is_named_at_once() -> None:
    with pytest.raises(EnvelopeError) as info:
        meta_from_headers([("content-type", b"application/json")])
    assert str(info.value) == "missing CloudEvents header(s): ce_specversion, ce_id, ce_source, ce_type"


def test_an_unsupported_specversion_is_rejected() -> None:
    headers = [("ce_specversion", b"0.3"), *MINIMAL_HEADERS[1:]]
    with pytest.raises(EnvelopeError) as info:
        meta_from_headers(headers)
    assert str(info.value) == "unsupported ce_specversion '0.3', expected 1.0"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"yesterday", "ce_time 'yesterday' is not an RFC 3339 timestamp"),
        (b"2025-13-01T00:00:00Z", "ce_time '2025-13-01T00:00:00Z' is not an RFC 3339 timestamp"),
        (b"2025-03-04T09:15:22", "ce_time '2025-03-04T09:15:22' has no time zone"),
    ],
)
def test_a_bad_time_is_rejected(value: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError) as info:
        meta_from_headers([*MINIMAL_HEADERS, ("ce_time", value)])
    assert str(info.value) == message


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_outside_the_utc_range_is_rejected(value: str) -> None:
    # it would parse, but could never be written back (to_headers) or hashed by the audit store
    with pytest.raises(EnvelopeError, match="is not an RFC 3339 timestamp"):
        parse_time(value)


def test_time_with_an_offset_is_kept_as_that_instant() -> None:
    meta = meta_from_headers([*MINIMAL_HEADERS, ("ce_time", b"2025-03-04T11:15:22+02:00")])
    assert meta.time == datetime(2025, 3, 4, 9, 15, 22, tzinfo=UTC)


def test_a_header_that_is_not_utf8_is_rejected_by_name() -> None:
    with pytest.raises(EnvelopeError) as info:
        meta_from_headers([*MINIMAL_HEADERS, ("ce_subject", b"\xff\xfe")])
    assert str(info.value) == "header 'ce_subject' is not UTF-8"


def test_envelope_error_is_a_value_error() -> None:
    assert issubclass(EnvelopeError, ValueError)


# --- properties -----------------------------------------------------------------------------------

_header_names = st.one_of(st.sampled_from(sorted(KNOWN_HEADERS)), st.text(max_size=12))
_header_values = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.sampled_from([b"1.0", b"2025-03-04T09:15:22Z", b"0001-01-01T00:00:00+01:00", b"Z", b"+00:00"]),
    st.text(max_size=40).map(str.encode),
)


@given(
    extra=st.lists(st.tuples(_header_names, _header_values), max_size=12),
    keep=st.sets(st.sampled_from([k for k, _ in MINIMAL_HEADERS])),
)
@settings(max_examples=400)
def test_arbitrary_headers_only_ever_raise_envelope_error(
    extra: list[tuple[str, bytes | None]], keep: set[str]
) -> None:
    headers = [(k, v) for k, v in MINIMAL_HEADERS if k in keep] + extra
    try:
        meta = meta_from_headers(headers)
    except EnvelopeError:
        return
    assert meta.id
    assert meta.type
    assert meta.source
    assert meta.time.tzinfo is not None
    assert meta.to_headers()[0] == ("ce_specversion", b"1.0")


_text = st.text(min_size=1, max_size=30)
_optional = st.one_of(st.none(), st.text(max_size=30))
_offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@given(
    meta=st.builds(
        EventMeta,
        id=_text,
        type=_text,
        source=_text,
        time=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=_offsets),
        content_type=_text,
        subject=_optional,
        dataschema=_optional,
        correlation_id=_optional,
        causation_id=_optional,
        tenant=_optional,
        replay_of=_optional,
        replay_id=_optional,
        traceparent=_optional,
        tracestate=_optional,
        extra=st.dictionaries(
            _text.filter(lambda k: k not in KNOWN_HEADERS), st.text(max_size=30), max_size=4
        ),
    )
)
def test_meta_to_headers_and_back_preserves_every_attribute(meta: EventMeta) -> None:
    back = meta_from_headers(meta.to_headers())
    for name in EventMeta.__dataclass_fields__:
        assert getattr(back, name) == getattr(meta, name), name
    assert back == meta


@given(
    value=st.one_of(
        st.binary(max_size=40),
        st.text(max_size=40).map(str.encode),
        st.datetimes(timezones=_offsets).map(lambda t: t.isoformat().encode()),
    )
)
@settings(max_examples=300)
def test_any_ce_time_reads_and_writes_back_or_raises_envelope_error(value: bytes) -> None:
    try:
        meta = meta_from_headers([*MINIMAL_HEADERS, ("ce_time", value)])
    except EnvelopeError:
        return
    assert meta_from_headers(meta.to_headers()).time == meta.time

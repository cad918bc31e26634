"""structlog JSON logging: service, bound ids and trace ids on every line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider

from cairn_observability import bind_event_context, configure_logging, get_logger


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo configure_logging: it points structlog and the root logger at this test's captured stderr."""
    root = logging.getLogger()
    level = root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for handler in root.handlers[:]:
        if type(handler) is logging.StreamHandler:  # what basicConfig added; pytest's own are subclasses
            root.removeHandler(handler)
    root.setLevel(level)


def lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_json_lines_carry_service_level_time_and_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("safety")
    get_logger().info("screened", verdict="allow", findings=2)
    [line] = lines(capsys.readouterr().err)
    assert line.pop("timestamp").endswith("Z")
    assert line == {
        "event": "screened",
        "verdict": "allow",
        "findings": 2,
        "service": "safety",
        "level": "info",
    }


def test_a_named_logger_puts_its_name_in_the_logger_key(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("safety")
    get_logger("cairn.bus").warning("dead-lettered")
    [line] = lines(capsys.readouterr().err)
    assert line["logger"] == "cairn.bus"
    assert line["level"] == "warning"


def test_bound_ids_appear_inside_the_block_only(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("inference")
    log = get_logger()
    with bind_event_context(request_id="req-1", event_id="evt-1", correlation_id=None):
        log.info("inside")
        with bind_event_context(event_id="evt-2"):
            log.info("nested")
        log.info("restored")
    log.info("outside")
    inside, nested, restored, outside = lines(capsys.readouterr().err)
    assert (inside["request_id"], inside["event_id"]) == ("req-1", "evt-1")
    assert "correlation_id" not in inside
    assert (nested["request_id"], nested["event_id"]) == ("req-1", "evt-2")
    assert restored["event_id"] == "evt-1"
    assert "request_id" not in outside
    assert "event_id" not in outside
    assert outside["service"] == "inference"


def test_trace_ids_appear_inside_a_span(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("retriever")
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("retrieve") as span:
        get_logger().info("in span")
    get_logger().info("no span")
    in_span, no_span = lines(capsys.readouterr().err)
    ctx = span.get_span_context()
    assert in_span["trace_id"] == f"{ctx.trace_id:032x}"
    assert in_span["span_id"] == f"{ctx.span_id:016x}"
    assert len(in_span["trace_id"]) == 32
    assert "trace_id" not in no_span
    assert "span_id" not in no_span


def test_the_level_filters_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("tuner", level="warning")
    log = get_logger()
    log.info("dropped")
    log.warning("kept")
    log.error("kept too")
    assert [line["event"] for line in lines(capsys.readouterr().err)] == ["kept", "kept too"]


def test_an_unknown_level_means_info(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("tuner", level="chatty")
    get_logger().debug("dropped")
    get_logger().info("kept")
    assert [line["event"] for line in lines(capsys.readouterr().err)] == ["kept"]


def test_configuring_again_forgets_ids_bound_before(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("first")
    structlog.contextvars.bind_contextvars(request_id="stale")
    configure_logging("second")
    get_logger().info("fresh")
    [line] = lines(capsys.readouterr().err)
    assert line["service"] == "second"
    assert "request_id" not in line


def test_exceptions_are_rendered_into_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("audit")
    try:
        raise KeyError("missing-thing")
    except KeyError:
        get_logger().exception("failed")
    [line] = lines(capsys.readouterr().err)
    assert line["level"] == "error"
    assert "Traceback" in line["exception"]
    assert "KeyError: 'missing-thing'" in line["exception"]


def test_console_format_is_readable_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("audit", fmt="console")
    get_logger().info("stored", count=3)
    err = capsys.readouterr().err.strip()
    assert "stored" in err
    assert "count=3" in err
    assert "service=audit" in err
    with pytest.raises(json.JSONDecodeError):
        json.loads(err)


def test_standard_library_warnings_reach_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("audit", level="DEBUG")
    logging.getLogger("aiokafka").info("noise")
    logging.getLogger("aiokafka").warning("rebalancing")
    err = capsys.readouterr().err
    assert "rebalancing" in err
    assert "noise" not in err


def test_a_line_inside_a_handler_has_every_id_and_never_a_secret(capsys: pytest.CaptureFixture[str]) -> None:
    from cairn_observability import register_secret
    from cairn_observability.redaction import forget_secrets

    secret = "pg-pass-8c1f2e"
    register_secret(secret)
    try:
        configure_logging("retriever")
        tracer = TracerProvider().get_tracer("test")
        with (
            bind_event_context(request_id="req-9", event_id="evt-9"),
            tracer.start_as_current_span("cairn.prompts process") as span,
        ):
            get_logger("cairn.retriever").warning(
                "store unreachable",
                dsn=f"postgresql://cairn:{secret}@db/cairn",
                error=f"auth failed for {secret}",
                password="other-value",
            )
        [line] = lines(capsys.readouterr().err)
    finally:
        forget_secrets()
    ctx = span.get_span_context()
    assert line["service"] == "retriever"
    assert line["request_id"] == "req-9"
    assert line["trace_id"] == f"{ctx.trace_id:032x}"
    assert line["span_id"] == f"{ctx.span_id:016x}"
    assert secret not in json.dumps(line)
    assert line["password"] == "[REDACTED]"
    assert line["error"] == "auth failed for [REDACTED]"


def test_standard_library_lines_are_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("audit")
    logging.getLogger("asyncpg").warning("connect to postgresql://u:hunter22@db/x failed")
    err = capsys.readouterr().err
    assert "hunter22" not in err
    assert "[REDACTED]" in err

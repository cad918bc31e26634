"""No secret reaches a log line: structlog with `redact_secrets`, and stdlib logging with `RedactingFilter`."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from cairn_auth import new_key
from cairn_auth.secrets import RedactingFilter, read_secret, redact_secrets

DSN_PASSWORD = "dsn-Pa55-w0rd"
DSN = f"postgresql://cairn:{DSN_PASSWORD}@db.internal:5432/cairn"


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """structlog configured like a service (JSON lines), with the redaction processor before the renderer."""
    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    yield out
    structlog.reset_defaults()


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_secrets_dsn_passwords_and_keys_never_reach_structlog_output(log_output: io.StringIO) -> None:
    token = read_secret("smtp_password", environ={"CAIRN_SMTP_PASSWORD": "smtp-S3cret-xyz"})
    api_key = new_key().token
    log = structlog.get_logger("test")
    log.info(
        f"connecting with {token}",
        dsn=DSN,
        config={"smtp": {"host": "mail", "password": "inline-pw-1"}, "retries": 3, "nested": [token, 1.5]},
        headers={"Authorization": f"Bearer {api_key}", "X-API-Key": api_key, "Accept": "json"},
        attempt=2,
        ok=True,
    )
    try:
        raise ConnectionError(f"could not connect to {DSN} using {token}")
    except ConnectionError:
        log.exception("database_unreachable")
    log.error("failed", error=ValueError(f"bad key {api_key}"), args=(token,))

    text = log_output.getvalue()
    for secret in (token, DSN_PASSWORD, api_key, api_key.rsplit("_", 1)[1], "inline-pw-1"):
        assert secret not in text
    first, second, third = lines(log_output)
    assert first["event"] == "connecting with [REDACTED]"
    assert first["dsn"] == "postgresql://cairn:[REDACTED]@db.internal:5432/cairn"
    assert first["config"] == {
        "smtp": {"host": "mail", "password": "[REDACTED]"},
        "retries": 3,
        "nested": ["[REDACTED]", 1.5],
    }
    assert first["headers"] == {"Authorization": "[REDACTED]", "X-API-Key": "[REDACTED]", "Accept": "json"}
    assert (first["attempt"], first["ok"]) == (2, True)
    assert "ConnectionError: could not connect to postgresql://cairn:[REDACTED]@db.internal" in str(
        second["exception"]
    )
    assert "using [REDACTED]" in str(second["exception"])
    assert str(third["error"]).startswith("ValueError: bad key cairn_")
    assert third["args"] == ["[REDACTED]"]


def test_an_unformatted_exc_info_is_formatted_and_redacted() -> None:
    read_secret("webhook_secret", environ={"CAIRN_WEBHOOK_SECRET": "hook-secret-123"})
    try:
        raise RuntimeError("webhook hook-secret-123 refused")
    except RuntimeError:
        event = redact_secrets(None, "error", {"event": "x", "exc_info": True, "password": None})
    assert "exc_info" not in event
    assert "RuntimeError: webhook [REDACTED] refused" in event["exception"]
    assert event["password"] is None


def test_stdlib_logging_is_redacted_by_the_filter() -> None:
    read_secret("s3_secret_key", environ={"CAIRN_S3_SECRET_KEY": "s3-Secret-abc"})
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("cairn.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("s3 login %s failed for %s", "s3-Secret-abc", DSN)
        try:
            raise OSError("denied s3-Secret-abc")
        except OSError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "s3-Secret-abc" not in text
    assert DSN_PASSWORD not in text
    assert "s3 login [REDACTED] failed for postgresql://cairn:[REDACTED]@db.internal:5432/cairn" in text
    assert "OSError: denied [REDACTED]" in text

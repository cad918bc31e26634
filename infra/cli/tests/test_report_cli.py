"""`cairn report` against the local stack's PostgreSQL: stored events in, an HTML file out."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.domain.records import AuditRecord
from cairn_bus.postgres import create_pool
from cairn_cli.report import report

pytestmark = pytest.mark.integration


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(report)
    return app


def _record(n: int, event_type: str, topic: str, at: datetime, payload: dict[str, object]) -> AuditRecord:
    return AuditRecord(
        event_id=f"evt-report-{n}",
        event_type=event_type,
        source="/cairn/test",
        event_time=at,
        topic=topic,
        partition=0,
        offset=n,
        payload=payload,
        headers={},
        subject=str(payload.get("request_id", "")) or None,
        tenant="acme",
    )


async def _store(dsn: str) -> None:
    now = datetime.now(UTC)
    records: list[AuditRecord] = []
    for i in range(6):
        rid = f"report-{i}"
        at = now - timedelta(minutes=50 - 8 * i)
        done = at + timedelta(seconds=2 + i)
        usage = {"input_tokens": 120, "output_tokens": 30}
        records += [
            _record(
                len(records),
                "cairn.request.submitted.v1",
                "cairn.requests",
                at,
                {"request_id": rid, "submitted_at": at.isoformat()},
            ),
            _record(
                len(records) + 1,
                "cairn.completion.generated.v1",
                "cairn.completions",
                done,
                {"request_id": rid, "tenant": "acme", "model": "cairn-qa", "usage": usage},
            ),
            _record(
                len(records) + 2,
                "cairn.response.completed.v1",
                "cairn.responses",
                done,
                {
                    "request_id": rid,
                    "status": "completed",
                    "model": "cairn-qa",
                    "usage": usage,
                    "verdict": "allow",
                    "text": "with statements manage context",
                    "citations": [{"text": "The with statement manages a context."}],
                    "completed_at": done.isoformat(),
                },
            ),
            _record(
                len(records) + 3,
                "cairn.feedback.submitted.v1",
                "cairn.feedback",
                done + timedelta(seconds=5),
                {"request_id": rid, "rating": 1 + i % 5, "thumbs": "up"},
            ),
        ]
    records.append(
        _record(
            len(records),
            "cairn.alert.raised.v1",
            "cairn.alerts",
            now - timedelta(minutes=5),
            {
                "alert_name": "DriftDetected",
                "severity": "warning",
                "summary": "drift",
                "labels": {},
                "value": 0.3,
            },
        )
    )
    pool = await create_pool(dsn)
    try:
        store = PostgresAuditStore(pool)
        await store.migrate()
        await store.append(records)
    finally:
        await pool.close()


def test_the_command_writes_a_report_of_the_stored_window(
    fresh_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_store(fresh_database))  # sync test: the command runs its own event loop
    monkeypatch.setenv("CAIRN_POSTGRES_DSN", fresh_database)
    out = tmp_path / "reports" / "report.html"
    result = CliRunner().invoke(_app(), ["--since", "24h", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 requests" in result.output
    html = out.read_text(encoding="utf-8")
    for section in ("latency", "usage", "verdicts", "groundedness", "feedback", "drift"):
        body = re.search(rf'<section id="{section}">(.*?)</section>', html, re.S)
        assert body is not None, section
        assert 'class="empty"' not in body.group(1), section
        for svg in re.findall(r"<svg.*?</svg>", body.group(1), re.S):
            ET.fromstring(svg)
    assert "DriftDetected" in html
    assert "cairn-qa" in html


def test_an_empty_window_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["--since", "1h", "--until", "-2h", "--out", str(tmp_path / "r.html")]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "r.html").exists()

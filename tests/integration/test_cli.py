"""`cairn submit`, `trail`, `replay`, `dlq list` and `audit verify`, run as a user would."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from cairn_audit import bootstrap
from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_audit.app import router
from cairn_audit.settings import Settings as AuditSettings
from cairn_testing import running_service

from .conftest import wait_for

pytestmark = pytest.mark.integration
CAIRN = [str(Path(sys.executable).with_name("cairn"))]


def cairn_sync(settings: AuditSettings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CAIRN_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "CAIRN_POSTGRES_DSN": settings.postgres_dsn,
        "COLUMNS": "200",
    }
    done = subprocess.run([*CAIRN, *args], env=env, capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(
            f"cairn {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


async def cairn(settings: AuditSettings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a thread: the audit service under test shares this event loop."""
    return await asyncio.to_thread(cairn_sync, settings, *args, check=check)


async def test_submit_trail_replay_verify(
    audit_settings: AuditSettings, audit_store: PostgresAuditStore
) -> None:
    rid = f"cli-{uuid.uuid4().hex[:8]}"
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    async with running_service(router, audit_settings, bootstrap.build):
        out = await cairn(
            audit_settings,
            "submit",
            "--prompt",
            "qa@production",
            "-v",
            "topic=generators",
            "-m",
            "What does yield do?",
            "--request-id",
            rid,
        )
        assert rid in out.stdout
        trail = await cairn(audit_settings, "trail", rid, "--json")
        rows = [json.loads(line) for line in trail.stdout.splitlines()]
        assert [r["event_type"] for r in rows] == ["cairn.request.submitted.v1"]
        original = rows[0]
        # the CLI is the upstream system: its producer span starts the request's trace
        stored = await audit_store.get(original["event_id"])
        assert stored is not None
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-9a-f]", stored.headers["traceparent"])
        assert original["payload"]["variables"] == {"topic": "generators"}
        tree = await cairn(audit_settings, "trail", rid)
        assert "cairn.request.submitted.v1" in tree.stdout
        assert rid in tree.stdout

        replay_id = str(uuid.uuid4())
        out = await cairn(
            audit_settings,
            "replay",
            "--topic",
            "cairn.requests",
            "--from",
            since,
            "--to",
            "now",
            "--replay-id",
            replay_id,
        )
        assert "replayed" in out.stdout
        assert replay_id in out.stdout
        rows = await wait_for(lambda: _trail(audit_store, rid, 2))
        replayed = [r for r in rows if r.replay_of]
        assert len(replayed) == 1
        assert replayed[0].replay_of == original["event_id"]
        assert replayed[0].replay_id == replay_id
        assert replayed[0].payload == original["payload"]
        assert replayed[0].event_id != original["event_id"]

        # the same replay run again publishes the same ids: the store does not grow
        await cairn(
            audit_settings, "replay", "--topic", "cairn.requests", "--from", since, "--replay-id", replay_id
        )
        # a replay straight from the broker's offsets, to another topic
        out = await cairn(
            audit_settings,
            "replay",
            "--topic",
            "cairn.requests",
            "--from",
            since,
            "--source",
            "broker",
            "--to-topic",
            "cairn.requests",
        )
        assert "(broker)" in out.stdout
        rows = await wait_for(lambda: _trail(audit_store, rid, 3))
        # same key, same partition: the re-run was stored (or recognised) before the broker replay
        assert len(rows) == 3, [(r.event_id, r.replay_id) for r in rows]
        sources = sorted(r.replay_id for r in rows if r.replay_of)
        assert len(sources) == 2
        assert replay_id in sources
        assert all(r.replay_of == original["event_id"] for r in rows if r.replay_of)

        text = (await cairn(audit_settings, "trail", rid)).stdout
        assert "replay of" in text
        assert "intact" in (await cairn(audit_settings, "audit", "verify")).stdout

    await audit_store.pool.execute(
        "UPDATE audit_events SET source = 'forged' WHERE event_id = $1", original["event_id"]
    )
    broken = await cairn(audit_settings, "audit", "verify", check=False)
    assert broken.returncode == 1
    assert original["event_id"] in broken.stdout


async def _trail(store: PostgresAuditStore, rid: str, n: int) -> list[object] | None:
    rows = await store.trail(rid)
    return rows if len(rows) >= n else None


async def test_dlq_list_shows_a_rejected_message(
    audit_settings: AuditSettings, producer: AIOKafkaProducer
) -> None:
    marker = f"garbage-{uuid.uuid4().hex[:8]}"
    async with running_service(router, audit_settings, bootstrap.build):
        await producer.send_and_wait("cairn.requests", marker.encode(), key=marker.encode())

        async def listed() -> str | None:
            out = (
                await cairn(audit_settings, "dlq", "list", "--since", "-5m", "--value", "--limit", "1000")
            ).stdout
            return out if marker in out else None

        out = await wait_for(listed, timeout=30, interval=1)
    assert "missing_headers" in out
    assert audit_settings.group_id in out


def test_submit_rejects_a_bad_prompt_reference(audit_settings: AuditSettings) -> None:
    done = cairn_sync(audit_settings, "submit", "--prompt", "not a valid ref!", check=False)
    assert done.returncode == 2
    assert "invalid request" in done.stdout


def test_trail_of_unknown_request_says_so(audit_settings: AuditSettings) -> None:
    done = cairn_sync(audit_settings, "trail", "no-such-request", "--wait", "0", check=False)
    assert done.returncode == 1
    assert "no events stored" in done.stdout

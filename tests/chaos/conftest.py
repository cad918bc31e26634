"""The chaos session: the request path as processes on the test stack, inference on a tiny model.

Like tests/e2e, but generation is the tiny 2-layer model (milliseconds per request), so tests can
push many requests through while killing services, and stay short in CI. Bounded: every test
here sends a fixed number of messages and waits with a deadline.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from cairn_audit.adapters.postgres import PostgresAuditStore, create_pool
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_cli.services_cmd import service_modules
from cairn_inference.tiny import TINY_MODEL_NAME, build_tiny_model
from cairn_localstack.process import ProcessManager
from tests.e2e.harness import CAIRN, REPO, Services, Upstream, prepare_groups, service_env

pytestmark = pytest.mark.integration

REQUEST_PATH = ["audit", "prompt-store", "retriever", "safety", "inference"]
TOPICS = ["assert", "global", "pass", "del"]


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([CAIRN, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"cairn {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
async def chaos_database(postgres_dsn: str) -> AsyncIterator[str]:
    name = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield urlunsplit(urlsplit(postgres_dsn)._replace(path=f"/{name}"))
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def metrics_ports() -> dict[str, int]:
    """Each service's /metrics and /healthz port (as first started; a restarted service has none)."""
    return {name: free_port() for name in REQUEST_PATH}


def healthz(port: int) -> dict[str, Any]:
    """The JSON of GET /healthz (either status code); `{"status": "unreachable"}` when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))
    except OSError:
        return {"status": "unreachable"}


@pytest.fixture(scope="module")
async def services(
    local_stack: dict[str, str],
    chaos_database: str,
    metrics_ports: dict[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Services]:
    from pydoc_data.topics import topics

    knowledge = tmp_path_factory.mktemp("chaos-knowledge")
    for name in TOPICS:
        (knowledge / f"{name}.md").write_text(f"# The {name} statement\n\n{topics[name]}")
    model_dir = build_tiny_model(tmp_path_factory.mktemp("chaos-model") / TINY_MODEL_NAME)
    env = service_env(local_stack, chaos_database)
    env.update(
        {
            "CAIRN_HTTP_PORT": "0",
            "CAIRN_MODEL_NAME": TINY_MODEL_NAME,
            "CAIRN_MODEL_DIR": str(model_dir),
            # inference remembers handled inputs in PostgreSQL, so a restart does not generate again
            "CAIRN_INBOX": "postgres",
            # the tiny model's context is 1024 of its own tokens: a 1024-token context (counted with
            # the embedding tokenizer) would not fit it, and every answer would be `failed`
            "CAIRN_CONTEXT_TOKEN_BUDGET": "200",
        }
    )
    bootstrap = local_stack["CAIRN_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap)
    _cli(env, "prompts", "push", str(REPO / "infra" / "prompts" / "qa.yaml"), "--label", "production")
    _cli(env, "docs", "ingest", str(knowledge))
    groups = await prepare_groups(bootstrap, uuid.uuid4().hex[:8])
    pm = ProcessManager(tmp_path_factory.mktemp("chaos-services"))
    svc = Services(pm, env, groups, service_modules())
    try:
        for name in REQUEST_PATH:
            svc.start(name, {"CAIRN_METRICS_PORT": str(metrics_ports[name])})
        svc.wait_ready(REQUEST_PATH)
        yield svc
    finally:
        for name in REQUEST_PATH:
            svc.stop(name)


@pytest.fixture(scope="module")
async def upstream(services: Services, kafka_bootstrap: str) -> AsyncIterator[Upstream]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    up = Upstream(kafka_bootstrap, producer, KafkaPublisher(producer, "/upstream/chaos", service="upstream"))
    await up.start()
    yield up
    await up.stop()
    await producer.stop()


@pytest.fixture(scope="module")
async def audit_store(chaos_database: str) -> AsyncIterator[PostgresAuditStore]:
    pool = await create_pool(chaos_database)
    yield PostgresAuditStore(pool)
    await pool.close()


__all__ = ["Path"]

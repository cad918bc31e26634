"""The e2e session: every request-path service and the audit service as processes, fed only through topics.

Set-up (once per module, torn down after it so no service outlives the e2e tests; on the test stack): a fresh database; the `qa` prompt pushed; a few
Python language reference topics ingested; the real SmolLM2-135M-Instruct prepared (converted
once, cached under .cairn/models); each service in a fresh consumer group that starts at the
current end of its topics.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from cairn_audit.adapters.postgres import PostgresAuditStore, create_pool
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_cli.services_cmd import service_modules
from cairn_localstack.process import ProcessManager

from .harness import CAIRN, REPO, Services, Upstream, prepare_groups, service_env

pytestmark = pytest.mark.integration

REQUEST_PATH = ["audit", "prompt-store", "retriever", "safety", "inference"]
TOPICS = ["assert", "global", "with", "yield", "del", "lambda", "pass", "try"]


def _cli(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    done = subprocess.run([CAIRN, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(
            f"cairn {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


@pytest.fixture(scope="module")
async def e2e_database(postgres_dsn: str) -> AsyncIterator[str]:
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield urlunsplit(urlsplit(postgres_dsn)._replace(path=f"/{name}"))
    admin = await asyncpg.connect(postgres_dsn)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
def knowledge_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few reference topics from pydoc_data (shipped with CPython) as Markdown files."""
    from pydoc_data.topics import topics

    folder = tmp_path_factory.mktemp("knowledge")
    for name in TOPICS:
        (folder / f"{name}.md").write_text(f"# The {name} statement\n\n{topics[name]}")
    return folder


@pytest.fixture(scope="module")
async def services(
    request: pytest.FixtureRequest,
    local_stack: dict[str, str],
    e2e_database: str,
    knowledge_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Services]:
    env = service_env(local_stack, e2e_database)
    env["CAIRN_HTTP_PORT"] = "0"  # the prompt-store API on any free port
    bootstrap = local_stack["CAIRN_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap)
    _cli(env, "prompts", "push", str(REPO / "infra" / "prompts" / "qa.yaml"), "--label", "production")
    _cli(env, "docs", "ingest", str(knowledge_dir))
    _cli(env, "inference", "prepare")
    groups = await prepare_groups(bootstrap, uuid.uuid4().hex[:8])
    pm = ProcessManager(tmp_path_factory.mktemp("e2e-services"))
    svc = Services(pm, env, groups, service_modules())
    # a module names the services it needs (`E2E_SERVICES`); the request path by default
    names = list(getattr(request.module, "E2E_SERVICES", REQUEST_PATH))
    try:
        for name in names:
            svc.start(name)
        svc.wait_ready(names)
        yield svc
    finally:
        for name in names:
            svc.stop(name)


@pytest.fixture(scope="module")
async def upstream(services: Services, kafka_bootstrap: str) -> AsyncIterator[Upstream]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    up = Upstream(kafka_bootstrap, producer, KafkaPublisher(producer, "/upstream/e2e", service="upstream"))
    await up.start()
    yield up
    await up.stop()
    await producer.stop()


@pytest.fixture(scope="module")
async def audit_store(e2e_database: str) -> AsyncIterator[PostgresAuditStore]:
    pool = await create_pool(e2e_database)
    yield PostgresAuditStore(pool)
    await pool.close()

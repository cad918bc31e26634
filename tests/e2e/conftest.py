"""The e2e session: every request-path service and the audit service as processes, fed only through topics.

Set-up (once per module, torn down after it so no service outlives the e2e tests; on the test stack): a fresh database; the `qa` prompt pushed; a few
Python language reference topics ingested; the real SmolLM2-135M-Instruct prepared (converted
once, cached under .cairn/models); each service in a fresh consumer group that starts at the
current end of its topics.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_bus.kafka import ensure_topics
from cairn_localstack.process import ProcessManager
from cairn_testing.databases import scratch_database
from cairn_testing.processes import ServiceProcesses, prepare_groups, run_cairn, service_env

from .harness import REPO, Upstream, audit_store_on, running_upstream

pytestmark = pytest.mark.integration

REQUEST_PATH = ["audit", "prompt-store", "retriever", "safety", "inference"]
TOPICS = ["assert", "global", "with", "yield", "del", "lambda", "pass", "try"]


@pytest.fixture(scope="module")
async def e2e_database(postgres_dsn: str) -> AsyncIterator[str]:
    async with scratch_database(postgres_dsn, "e2e") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def knowledge_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few reference topics from pydoc_data (shipped with CPython) as Markdown files."""
    from pydoc_data.topics import topics

    folder = tmp_path_factory.mktemp("knowledge")
    for name in TOPICS:
        (folder / f"{name}.md").write_text(f"# The {name} statement\n\n{topics[name]}")
    return folder


@pytest.fixture(scope="session")
def e2e_suites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's suites, the adversarial one cut to its four hand-written cases and the scenario
    one to its first four: each case is a request per side on CPU, and the e2e tests check the loop, not
    the coverage (the full suites are tested in services/evaluator/tests)."""
    folder = tmp_path_factory.mktemp("suites")
    for path in sorted((REPO / "infra" / "eval" / "suites").glob("*.yaml")):
        suite = yaml.safe_load(path.read_text(encoding="utf-8"))
        if suite["kind"] == "adversarial":
            suite["cases"] = [c for c in suite["cases"] if c.get("source", "").startswith("cairn")]
        elif suite["kind"] == "scenario":
            suite["cases"] = suite["cases"][:4]
        (folder / path.name).write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
async def services(
    request: pytest.FixtureRequest,
    local_stack: dict[str, str],
    e2e_database: str,
    knowledge_dir: Path,
    e2e_suites: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ServiceProcesses]:
    env = service_env(local_stack, e2e_database)
    env["CAIRN_HTTP_PORT"] = "0"  # the prompt-store API on any free port
    env["CAIRN_SUITES_DIR"] = str(e2e_suites)
    bootstrap = local_stack["CAIRN_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap)
    qa = str(REPO / "infra" / "prompts" / "qa.yaml")
    run_cairn(env, "prompts", "push", qa, "--label", "production", cwd=REPO)
    run_cairn(env, "docs", "ingest", str(knowledge_dir), cwd=REPO)
    run_cairn(env, "inference", "prepare", cwd=REPO)
    groups = await prepare_groups(bootstrap, uuid.uuid4().hex[:8])
    svc = ServiceProcesses(ProcessManager(tmp_path_factory.mktemp("e2e-services")), env, groups, cwd=REPO)
    # a module names the services it needs (`E2E_SERVICES`; the request path by default) and any settings
    # of its own per service (`E2E_SERVICE_ENV`)
    names = list(getattr(request.module, "E2E_SERVICES", REQUEST_PATH))
    with svc.running(names, extra_env=getattr(request.module, "E2E_SERVICE_ENV", None)):
        yield svc


@pytest.fixture(scope="module")
async def upstream(services: ServiceProcesses, kafka_bootstrap: str) -> AsyncIterator[Upstream]:
    async with running_upstream(kafka_bootstrap, "/upstream/e2e") as up:
        yield up


@pytest.fixture(scope="module")
async def audit_store(e2e_database: str) -> AsyncIterator[PostgresAuditStore]:
    async with audit_store_on(e2e_database) as store:
        yield store

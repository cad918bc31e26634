"""The chaos session: the request path as processes on the test stack, inference on a tiny model.

Like tests/e2e, but generation is the tiny 2-layer model (milliseconds per request), so tests can
push many requests through while killing services, and stay short in CI. Bounded: every test
here sends a fixed number of messages and waits with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cairn_audit.adapters.postgres import PostgresAuditStore
from cairn_bus.kafka import ensure_topics
from cairn_events import ResponseCompletedV1
from cairn_localstack.process import ProcessManager
from cairn_testing.databases import scratch_database
from cairn_testing.processes import ServiceProcesses, free_port, prepare_groups, run_cairn, service_env
from cairn_testing.tiny import TINY_MODEL_NAME, build_tiny_model
from tests.e2e.harness import REPO, Upstream, audit_store_on, running_upstream

pytestmark = pytest.mark.integration

REQUEST_PATH = ["audit", "prompt-store", "retriever", "safety", "inference"]
TOPICS = ["assert", "global", "pass", "del"]
# The `qa` prompt under a name of this session's own. Other pipelines on a shared broker (a developer's
# `cairn services up`, another test run) also consume `cairn.requests`; they cannot resolve this
# name, so the only thing they publish for these requests is a `rejected` response naming no prompt,
# which `ours` and `own_trail` leave out.
PROMPT = f"chaosqa{uuid.uuid4().hex[:8]}"
FULL_TRAIL = {
    "cairn.request.submitted.v1",
    "cairn.prompt.rendered.v1",
    "cairn.context.assembled.v1",
    "cairn.input.screened.v1",
    "cairn.completion.generated.v1",
    "cairn.response.completed.v1",
}


def ours(upstream: Upstream, request_id: str) -> list[tuple[Any, ResponseCompletedV1]]:
    """The responses to `request_id` published by this session's pipeline."""
    return [(m, e) for m, e in upstream.responses.get(request_id, []) if e.prompt_name == PROMPT]


async def answer(upstream: Upstream, request_id: str, timeout: float = 180.0) -> ResponseCompletedV1:
    """This pipeline's response to `request_id`, once there is one (fails after `timeout` s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ours(upstream, request_id):
        if loop.time() > deadline:
            raise AssertionError(f"no response.completed for {request_id} within {timeout}s")
        await asyncio.sleep(0.1)
    return ours(upstream, request_id)[0][1]


def distinct_responses(upstream: Upstream, request_id: str) -> int:
    return len({meta.id for meta, _ in ours(upstream, request_id)})


def own_trail(records: list[Any]) -> list[Any]:
    """Audit records of this pipeline: without another pipeline's responses (which name no prompt of ours)."""
    return [
        r
        for r in records
        if r.event_type != "cairn.response.completed.v1" or r.payload.get("prompt_name") == PROMPT
    ]


async def complete_trail(store: PostgresAuditStore, request_id: str, attempts: int = 120) -> list[Any]:
    """The request's own audit records once they hold every stage (or after `attempts` half-seconds)."""
    records: list[Any] = []
    for _ in range(attempts):
        try:  # a store whose database restarted reconnects on a later try
            records = own_trail(await store.trail(request_id))
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
            records = []
        if {r.event_type for r in records} >= FULL_TRAIL:
            break
        await asyncio.sleep(0.5)
    return records


async def assert_answered_once_with_clean_trails(
    upstream: Upstream, store: PostgresAuditStore, request_ids: list[str]
) -> None:
    """No request got a second response (one would have arrived within 2 s), and each trail holds
    every stage exactly once, no event stored twice."""
    await asyncio.sleep(2.0)
    for rid in request_ids:
        assert distinct_responses(upstream, rid) == 1, f"{rid}: a second response"
    for rid in request_ids:
        records = await complete_trail(store, rid)
        types = Counter(rec.event_type for rec in records)
        assert set(types) == FULL_TRAIL, (rid, types)
        assert all(n == 1 for n in types.values()), f"duplicate events in the trail of {rid}: {types}"
        assert len({rec.event_id for rec in records}) == len(records)


PROMPT_YAML = """\
name: {name}
description: The chaos tests' question answering prompt, short enough for the tiny model's context.
variables:
  - name: question
    description: The user's question.
    required: true
messages:
  - role: system
    content: Answer from the passages.
  - role: user
    content: "{{{{ question }}}}"
retrieval:
  top_k: 2
params:
  max_tokens: 8
  temperature: 0.0
"""


def prompt_file(folder: Path) -> Path:
    """The session's prompt. The tiny model's tokenizer, trained on a few sentences, takes about a
    token per character of other text, and its context is 1024 tokens: the `qa` prompt's system
    message alone is ~650 characters, so its requests would all fail as too long."""
    path = folder / f"{PROMPT}.yaml"
    path.write_text(PROMPT_YAML.format(name=PROMPT))
    return path


@pytest.fixture(scope="module")
async def chaos_database(postgres_dsn: str) -> AsyncIterator[str]:
    async with scratch_database(postgres_dsn, "chaos") as dsn:
        yield dsn


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
) -> AsyncIterator[ServiceProcesses]:
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
            # the tiny model's context is 1024 of its own tokens (about a character each): retrieved
            # passages of up to 80 embedding-tokens (~350 characters) fit beside the prompt
            "CAIRN_CONTEXT_TOKEN_BUDGET": "80",
            # requests naming no model go to the tiny base model, whatever other runs on a shared
            # broker registered or promoted on `cairn.models`
            "CAIRN_SERVED_MODEL": f"{PROMPT}-model",
        }
    )
    bootstrap = local_stack["CAIRN_KAFKA_BOOTSTRAP"]
    await ensure_topics(bootstrap)
    prompt = prompt_file(tmp_path_factory.mktemp("chaos-prompt"))
    run_cairn(env, "prompts", "push", str(prompt), "--label", "production", cwd=REPO, timeout=600)
    run_cairn(env, "docs", "ingest", str(knowledge), cwd=REPO, timeout=600)
    groups = await prepare_groups(bootstrap, uuid.uuid4().hex[:8])
    svc = ServiceProcesses(ProcessManager(tmp_path_factory.mktemp("chaos-services")), env, groups, cwd=REPO)
    ports = {name: {"CAIRN_METRICS_PORT": str(metrics_ports[name])} for name in REQUEST_PATH}
    with svc.running(REQUEST_PATH, ports):
        yield svc


@pytest.fixture(scope="module")
async def upstream(services: ServiceProcesses, kafka_bootstrap: str) -> AsyncIterator[Upstream]:
    async with running_upstream(kafka_bootstrap, "/upstream/chaos") as up:
        yield up


@pytest.fixture(scope="module")
async def audit_store(chaos_database: str) -> AsyncIterator[PostgresAuditStore]:
    async with audit_store_on(chaos_database) as store:
        yield store


__all__ = ["Path"]

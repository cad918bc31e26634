"""The Node.js example (`schemas/examples/node`) against the test stack, as a client in another
language would run it: it produces `cairn.request.submitted.v1` and reads the answer on
`cairn.responses`. A fake responder answers from Python, so no model is needed.

The example's npm packages are installed from its committed `package-lock.json` (`npm ci`, into its
git-ignored `node_modules/`) when they are missing or older than the lock. Node is part of the machine
image: without `node` and `npm` these tests fail, they do not skip.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from jsonschema import Draft202012Validator

from cairn_bus import Dispatcher, EventMeta, EventRouter, InMemoryPublisher, Outcome
from cairn_bus.kafka import KafkaPublisher, record_from_kafka
from cairn_bus.signing import SignaturePolicy
from cairn_events import RequestSubmittedV1, ResponseCompletedV1, ResponseStatus
from cairn_events.paths import json_schema_path

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "node"
TIMEOUT_S = 120.0
REQUEST_ID = "req-node-example"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not on PATH: the Node.js example needs Node 20 and npm (part of the machine image)"
        )
    return found


@pytest.fixture(scope="module")
def node() -> str:
    """The `node` executable, with the example's npm packages installed from its lock file."""
    node, npm = _tool("node"), _tool("npm")
    installed = EXAMPLE / "node_modules" / ".package-lock.json"
    lock = EXAMPLE / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=EXAMPLE,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env={**os.environ, "CI": "true"},
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed in {EXAMPLE}:\n{done.stdout}\n{done.stderr}"
    return node


@dataclass
class Example:
    """The example running as a process; its stdout lines as JSON objects."""

    process: asyncio.subprocess.Process
    lines: list[dict[str, Any]] = field(default_factory=list)

    async def line(self, key: str) -> Any:
        """The value of the next output line that has `key`."""
        assert self.process.stdout is not None
        async with asyncio.timeout(TIMEOUT_S):
            while raw := await self.process.stdout.readline():
                self.lines.append(json.loads(raw))
                if key in self.lines[-1]:
                    return self.lines[-1][key]
        stderr = await self.process.stderr.read() if self.process.stderr else b""
        raise AssertionError(f"the example ended without a {key!r} line: {self.lines}\n{stderr.decode()}")


async def run_example(node: str, *args: str) -> Example:
    process = await asyncio.create_subprocess_exec(
        node,
        "ask.mjs",
        *args,
        cwd=EXAMPLE,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CAIRN_KAFKA_SESSION_TIMEOUT_MS": "2000"},  # the local broker's short joins
    )
    return Example(process)


@pytest.fixture
async def requests_from_now(kafka_bootstrap: str, producer: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer of every partition of `cairn.requests`, positioned at its end before the test sends."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition("cairn.requests", p) for p in consumer.partitions_for_topic("cairn.requests") or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        yield consumer
    finally:
        await consumer.stop()


async def record_with_key(consumer: AIOKafkaConsumer, key: str) -> Any:
    async with asyncio.timeout(TIMEOUT_S):
        async for message in consumer:
            if message.key == key.encode():
                return message
    raise AssertionError("unreachable")


async def test_the_node_example_sends_a_valid_request_and_reads_its_answer(
    node: str, kafka_bootstrap: str, requests_from_now: AIOKafkaConsumer, publisher: KafkaPublisher
) -> None:
    # KafkaJS's LegacyPartitioner puts this key on partition 1, Java's murmur2 (aiokafka, KafkaJS's
    # DefaultPartitioner) on 5; the example reads only answers that come after it joined
    example = await run_example(
        node,
        "--bootstrap",
        kafka_bootstrap,
        "--request-id",
        REQUEST_ID,
        "--topic",
        "generators",
        "--timeout-s",
        "90",
    )
    try:
        joined = await example.line("joined")
        sent = await example.line("sent")
        message = await record_with_key(requests_from_now, sent["request_id"])

        # the payload is valid under the JSON Schema, on the partition Cairn's own clients would choose
        payload = json.loads(message.value)
        schema = json.loads(json_schema_path(RequestSubmittedV1.event_type).read_text())
        assert list(Draft202012Validator(schema).iter_errors(payload)) == []
        assert (
            message.partition
            == sent["partition"]
            == DefaultPartitioner()(message.key, list(range(6)), [])
            == 5
        )
        assert joined["partitions"] == list(range(6))

        # and the Python consumer path takes it: envelope, schema, handler
        handled: list[tuple[RequestSubmittedV1, EventMeta]] = []
        router: EventRouter[None] = EventRouter("prompt-store")

        @router.handler(RequestSubmittedV1)
        async def on_request_submitted(event: RequestSubmittedV1, meta: EventMeta, deps: None) -> None:
            handled.append((event, meta))

        dead_letters = InMemoryPublisher()
        dispatcher = Dispatcher(router, None, dead_letters, group_id="test", signatures=SignaturePolicy(None))
        assert await dispatcher.dispatch(record_from_kafka(message)) is Outcome.HANDLED
        [(request, meta)] = handled
        assert (request.request_id, request.prompt, request.tenant) == (sent["request_id"], "qa", "default")
        assert request.variables == {"topic": "generators"}
        assert [(m.role, m.content) for m in request.messages] == [
            ("user", "What does the yield statement do?")
        ]
        assert (meta.id, meta.type, meta.subject, meta.correlation_id, meta.tenant) == (
            sent["ce_id"],
            RequestSubmittedV1.event_type,
            sent["request_id"],
            sent["request_id"],
            "default",
        )
        assert meta.dataschema == "urn:cairn:schema:cairn.request.submitted:v1"
        assert meta.traceparent == sent["traceparent"]
        assert meta.time == request.submitted_at

        # a fake responder answers, as the services would: derived from the request's envelope
        answer = ResponseCompletedV1(
            request_id=request.request_id,
            tenant=request.tenant,
            status=ResponseStatus.COMPLETED,
            text="`yield` makes a function a generator [1].",
            prompt_name="qa",
            completed_at=datetime.now(UTC),
        )
        published = await publisher.publish(answer, cause=meta)

        got = await example.line("answer")
        assert ResponseCompletedV1.model_validate(got["response"]) == answer
        headers = got["headers"]
        assert headers["ce_id"] == published.id
        assert headers["ce_type"] == ResponseCompletedV1.event_type
        assert headers["ce_causationid"] == sent["ce_id"]
        assert headers["ce_correlationid"] == sent["request_id"]
        assert headers["traceparent"].split("-")[1] == sent["traceparent"].split("-")[1]
        async with asyncio.timeout(TIMEOUT_S):
            assert await example.process.wait() == 0
    finally:
        if example.process.returncode is None:
            example.process.kill()
            await example.process.wait()


async def test_the_node_example_refuses_a_request_its_schema_rejects(node: str) -> None:
    example = await run_example(node, "--request-id", "not an id", "--bootstrap", "127.0.0.1:1")
    async with asyncio.timeout(TIMEOUT_S):
        _, stderr = await example.process.communicate()
    assert example.process.returncode == 2
    assert "the request is not valid: /request_id must match pattern" in stderr.decode()

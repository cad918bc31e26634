"""The real stack (SeaweedFS, PostgreSQL + pgvector, Tansu) in a temporary folder, ports +300.

The tests run in file order against one stack; the last one takes it down.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from minio import Minio
from minio.error import S3Error

from cairn_localstack import LocalStack, PortInUseError, StackConfig
from cairn_localstack.process import descendants, pid_alive

pytestmark = pytest.mark.integration

OFFSET = 300


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    make_config: Callable[..., StackConfig],
    stack_runner: Callable[[StackConfig], Iterator[LocalStack]],
) -> Iterator[LocalStack]:
    config = make_config(tmp_path_factory.mktemp("stack") / "itest", "itest", OFFSET, broker_storage="memory")
    yield from stack_runner(config)


def test_up_reports_every_component_healthy(stack: LocalStack) -> None:
    status = stack.status()
    assert status.healthy, status.format()
    for component in status.components:
        assert component.running
        assert component.pid is not None
        assert pid_alive(component.pid)
        assert component.log.exists()
        assert component.start_ms is not None
    assert status["s3"].port == stack.config.s3_port
    assert status["postgres"].port == stack.config.pg_port
    assert status["broker"].port == stack.config.kafka_port
    env_file = (stack.stack_dir / "stack.env").read_text()
    assert f"export CAIRN_KAFKA_BOOTSTRAP=127.0.0.1:{stack.config.kafka_port}" in env_file


async def test_postgres_has_the_role_database_and_pgvector(stack: LocalStack) -> None:
    conn = await asyncpg.connect(stack.env()["CAIRN_POSTGRES_DSN"])
    try:
        assert await conn.fetchval("SELECT current_user") == "cairn"
        assert await conn.fetchval("SELECT current_database()") == "cairn"
        assert await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        await conn.execute("CREATE TEMP TABLE items (id int, embedding vector(3))")
        await conn.execute("INSERT INTO items VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]')")
        nearest = await conn.fetch("SELECT id FROM items ORDER BY embedding <-> '[1,0,0]' LIMIT 2")
        assert [r["id"] for r in nearest] == [1, 3]
        assert await conn.fetchval("SHOW server_version_num") >= "180000"
    finally:
        await conn.close()


def test_s3_accepts_the_keys_and_rejects_wrong_ones(stack: LocalStack) -> None:
    c = stack.config
    client = Minio(c.s3_endpoint, access_key=c.s3_access_key, secret_key=c.s3_secret_key, secure=False)
    assert c.broker_bucket in [b.name for b in client.list_buckets()]
    bucket = f"it-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    client.put_object(bucket, "hello.txt", io.BytesIO(b"hello"), 5)
    assert client.get_object(bucket, "hello.txt").read() == b"hello"
    wrong = Minio(c.s3_endpoint, access_key=c.s3_access_key, secret_key="wrong-secret", secure=False)
    with pytest.raises(S3Error) as caught:
        wrong.list_buckets()
    assert caught.value.code in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
    stranger = Minio(c.s3_endpoint, access_key="nobody", secret_key=c.s3_secret_key, secure=False)
    with pytest.raises(S3Error):
        stranger.list_buckets()


async def test_broker_creates_produces_and_consumes(stack: LocalStack) -> None:
    bootstrap = stack.config.kafka_bootstrap
    topic = f"it-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"value", key=b"key", headers=[("h", b"1")])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 20)
        assert (record.key, record.value, list(record.headers)) == (b"key", b"value", [("h", b"1")])
    finally:
        await consumer.stop()


def test_up_again_is_a_fast_no_op(stack: LocalStack) -> None:
    before = {c.name: c.pid for c in stack.status().components}
    status = stack.up()
    assert status.healthy
    assert {c.name: c.pid for c in status.components} == before
    assert {c.action for c in status.components} == {"running"}  # health checks only, nothing started


def test_another_instance_sees_the_same_stack(stack: LocalStack) -> None:
    other = LocalStack(stack.config)
    assert {c.name: c.pid for c in other.status().components} == {
        c.name: c.pid for c in stack.status().components
    }


def test_another_stack_on_the_same_ports_is_refused(stack: LocalStack, tmp_path: Path) -> None:
    intruder = LocalStack(stack.config.model_copy(update={"root_dir": tmp_path / "intruder"}))
    with pytest.raises(PortInUseError) as caught:
        intruder.up()
    assert caught.value.component == "s3"
    assert caught.value.setting == "CAIRN_STACK_S3_PORT"
    assert intruder.processes.status() == []


def test_up_with_changed_settings_restarts_only_that_component(stack: LocalStack) -> None:
    before = stack.status()
    durable = LocalStack(stack.config.model_copy(update={"broker_storage": "s3"}))
    status = durable.up()
    assert status.healthy
    assert [c.action for c in status.components] == ["running", "running", "restarted"]
    assert status["broker"].pid != before["broker"].pid
    assert "s3://" in status["broker"].data_dir
    back = stack.up()
    assert [c.action for c in back.components] == ["running", "running", "restarted"]
    assert back["s3"].pid == before["s3"].pid
    assert back["postgres"].pid == before["postgres"].pid


def test_restart_broker_keeps_the_others(stack: LocalStack) -> None:
    before = stack.status()
    broker = stack.restart_broker()
    assert broker.healthy
    assert broker.pid != before["broker"].pid
    assert not pid_alive(before["broker"].pid or 0)
    after = stack.status()
    assert after["s3"].pid == before["s3"].pid
    assert after["postgres"].pid == before["postgres"].pid


def test_down_stops_every_process(stack: LocalStack) -> None:
    status = stack.status()
    leaders = [c.pid for c in status.components if c.pid is not None]
    assert len(leaders) == 3
    everyone = set(leaders) | {pid for leader in leaders for pid in descendants(leader)}
    assert len(everyone) > 3  # PostgreSQL's workers
    down = stack.down()
    assert down.stopped
    assert [pid for pid in everyone if pid_alive(pid)] == []
    assert list(stack.stack_dir.glob("*.pid")) == []
    assert stack.down().stopped  # again: fine

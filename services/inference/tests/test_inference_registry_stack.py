"""Adapters and the registry view against the real local stack: S3 downloads, the start-up read of
`cairn.models` from the broker, and the service serving a promoted adapter end to end."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from cairn_bus import EventMeta
from cairn_bus.kafka import KafkaPublisher, ensure_topics
from cairn_bus.objects import S3ObjectStore, upload_folder
from cairn_events import CompletionGeneratedV1, Event
from cairn_events.common import ModelStage
from cairn_inference.adapters.adapter_files import S3AdapterFiles
from cairn_inference.adapters.registry_loader import read_registry
from cairn_inference.app import router
from cairn_inference.bootstrap import build
from cairn_inference.domain.completion import ModelError
from cairn_inference.domain.registry import RegistryView
from cairn_inference.settings import Settings
from cairn_testing import expect_events, running_service, start_group_at_end
from cairn_testing.tiny import TINY_MODEL_NAME

from .conftest import screened
from .test_inference_adapters import make_adapter
from .test_inference_registry import promoted, registered

pytestmark = pytest.mark.integration


def s3_settings(local_stack: dict[str, str], **changes: object) -> Settings:
    return Settings(
        s3_endpoint=local_stack["CAIRN_S3_ENDPOINT"],
        s3_access_key=local_stack["CAIRN_S3_ACCESS_KEY"],
        s3_secret_key=local_stack["CAIRN_S3_SECRET_KEY"],  # type: ignore[arg-type]
        **changes,  # type: ignore[arg-type]
    )


@pytest.fixture
def store(local_stack: dict[str, str]) -> S3ObjectStore:
    return S3ObjectStore.from_settings(s3_settings(local_stack))


@pytest.fixture
def adapter_uri(store: S3ObjectStore, tiny_model_dir: Path, tmp_path: Path) -> Iterator[str]:
    """A tiny-model adapter uploaded to the stack's S3 under a fresh job id; deleted afterwards."""
    uri = f"s3://cairn/adapters/test-{uuid.uuid4().hex[:10]}/"
    upload_folder(store, make_adapter(tiny_model_dir, tmp_path / "adapter", seed=2), uri)
    yield uri
    store.delete_prefix(uri)


@pytest.fixture
async def models_publisher(kafka_bootstrap: str) -> AsyncIterator[KafkaPublisher]:
    """Publishes as the evaluator would (`/cairn/evaluator`)."""
    await ensure_topics(kafka_bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    yield KafkaPublisher(producer, "/cairn/evaluator", service="evaluator")
    await producer.stop()


async def test_an_adapter_is_downloaded_from_s3_into_the_cache(
    store: S3ObjectStore, adapter_uri: str, tmp_path: Path
) -> None:
    files = S3AdapterFiles(store, tmp_path / "cache")
    folder = Path(await files.fetch("cairn-qa:2", adapter_uri))
    assert folder == tmp_path / "cache" / "cairn-qa_2"
    assert (folder / "adapter_config.json").is_file()
    assert (folder / "adapter_model.safetensors").is_file()
    again = await files.fetch("cairn-qa:2", adapter_uri)  # a reload replaces the folder
    assert Path(again) == folder
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["cairn-qa_2"]  # no temporary left over
    shared = S3AdapterFiles(store, tmp_path / "cache", backend_root="/adapters")
    assert await shared.fetch("cairn-qa:2", adapter_uri) == "/adapters/cairn-qa_2"


async def test_a_missing_or_tampered_adapter_is_refused(
    store: S3ObjectStore, adapter_uri: str, tmp_path: Path
) -> None:
    files = S3AdapterFiles(store, tmp_path / "cache")
    with pytest.raises(ModelError, match="no files at"):
        await files.fetch("cairn-qa:9", f"s3://cairn/adapters/absent-{uuid.uuid4().hex[:8]}/")
    manifest = b'{"files": {"adapter_model.safetensors": "' + b"0" * 64 + b'"}}'
    store.put(adapter_uri + "cairn-adapter.json", manifest)
    with pytest.raises(ModelError, match="does not match its manifest"):
        await files.fetch("cairn-qa:2", adapter_uri)
    assert not (tmp_path / "cache" / "cairn-qa_2").exists()


async def test_the_view_is_rebuilt_from_cairn_models_at_start(
    kafka_bootstrap: str, models_publisher: KafkaPublisher
) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    events = [
        registered(1, name=name, adapter=False),
        registered(2, name=name),
        registered(3, name=name),
        promoted(2, "production", name=name),
        promoted(3, "staging", name=name),
        promoted(3, "production", name=name),
    ]
    messages = [models_publisher.build(event) for event in events]
    for message in [*messages, messages[3]]:  # the old v2 promotion delivered again (same id) at the end
        await models_publisher.send(message)
    view = RegistryView()
    applied = await read_registry(kafka_bootstrap, view, timeout_s=30)
    assert applied >= len(events)
    assert [v.version for v in view.versions(name)] == [1, 2, 3]
    production = view.in_stage(name, ModelStage.PRODUCTION)
    assert production is not None
    assert production.adapter_name == f"{name}:3"
    assert view.stage_of(name, 2) is ModelStage.ARCHIVED
    assert view.in_stage(name, ModelStage.STAGING) is None
    again_view = RegistryView()
    await read_registry(kafka_bootstrap, again_view, timeout_s=30)
    assert again_view.versions(name) == view.versions(name)


async def test_the_service_serves_the_production_adapter_it_found_at_start(
    kafka_bootstrap: str,
    local_stack: dict[str, str],
    unique_group: str,
    tiny_model_dir: Path,
    models_publisher: KafkaPublisher,
    adapter_uri: str,
    tmp_path: Path,
) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    await models_publisher.publish(registered(2, name=name).model_copy(update={"adapter_uri": adapter_uri}))
    await models_publisher.publish(
        promoted(2, "production", name=name).model_copy(update={"adapter_uri": adapter_uri})
    )
    await start_group_at_end(kafka_bootstrap, unique_group, router.topics)
    settings = s3_settings(
        local_stack,
        kafka_bootstrap=kafka_bootstrap,
        kafka_group_id=unique_group,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        model_name=TINY_MODEL_NAME,
        model_dir=str(tiny_model_dir),
        served_model=name,
        adapter_cache_dir=str(tmp_path / "cache"),
        batch_window_ms=5,
    )
    request_id = f"req-{uuid.uuid4().hex[:12]}"

    def for_request(meta: EventMeta, event: Event) -> bool:
        return getattr(event, "request_id", None) == request_id

    async with (
        running_service(router, settings, build),
        expect_events(kafka_bootstrap, CompletionGeneratedV1.topic, where=for_request) as received,
    ):
        await models_publisher.publish(screened(request_id=request_id, model=None, params={"max_tokens": 6}))
    (_, completion) = next((m, e) for m, e in received.events if for_request(m, e))
    assert isinstance(completion, CompletionGeneratedV1)
    assert (completion.model, completion.model_version, completion.adapter) == (name, "2", f"{name}:2")
    assert (tmp_path / "cache" / f"{name}_2" / "adapter_config.json").is_file()

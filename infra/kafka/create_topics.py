"""Create every Cairn topic declared in `schemas/topics/*.yaml` with its partition count.

Run by the `kafka-init` job of docker-compose.yml and the `cairn-topics` Job of infra/k8s, inside
the Cairn service image (which ships schemas/ at $CAIRN_SCHEMAS_DIR):

    python infra/kafka/create_topics.py --bootstrap kafka:9092 --schemas-dir /app/schemas
    python infra/kafka/create_topics.py --schemas-dir schemas --dry-run   # print the plan only

Idempotent: topics that exist are left alone; a topic that exists with fewer partitions than
declared is reported (and grown with --grow; Kafka cannot shrink a topic, and growing one moves
keys to other partitions, so it is never done silently). Exits non-zero if the broker cannot be
reached within --wait seconds or a topic cannot be created.

Depends only on PyYAML and aiokafka (both in the service image); aiokafka is imported lazily so
the plan can be read (and tested) without it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOPIC_FILE_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class TopicPlan:
    """One topic to create: name, partition count and topic-level configs (strings, as Kafka wants)."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def _topic_documents(data: Any) -> Iterator[Mapping[str, Any]]:
    """The topic mappings in one YAML document: a single topic, or a `topics:` list of them."""
    if isinstance(data, Mapping):
        if isinstance(data.get("topics"), list):
            for item in data["topics"]:
                if isinstance(item, Mapping):
                    yield item
        else:
            yield data
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, Mapping):
                yield item


def _first(doc: Mapping[str, Any], *keys: str) -> Any:
    """The first present key of `doc`, also looking one level down under `kafka:`."""
    nested = doc.get("kafka")
    for key in keys:
        if key in doc:
            return doc[key]
        if isinstance(nested, Mapping) and key in nested:
            return nested[key]
    return None


def plan_from_document(doc: Mapping[str, Any], source: str) -> TopicPlan:
    """A TopicPlan from one topic mapping (`name`/`topic`, `partitions`, optional `config`)."""
    name = _first(doc, "name", "topic")
    partitions = _first(doc, "partitions", "partition_count", "num_partitions")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{source}: topic file has no `name`")
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"{source}: topic {name!r} needs a positive integer `partitions`")
    raw_config = _first(doc, "config", "configs")
    config: dict[str, str] = {}
    if isinstance(raw_config, Mapping):
        for key, value in raw_config.items():
            config[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return TopicPlan(name=name, partitions=partitions, config=config)


def topic_files(schemas_dir: Path) -> list[Path]:
    """The topic files under `<schemas_dir>/topics`, sorted."""
    topics_dir = Path(schemas_dir) / "topics"
    if not topics_dir.is_dir():
        return []
    return sorted(p for p in topics_dir.iterdir() if p.is_file() and p.suffix in TOPIC_FILE_SUFFIXES)


def load_topic_plan(schemas_dir: Path) -> dict[str, TopicPlan]:
    """Every topic declared under `<schemas_dir>/topics`, by name. Duplicate names are an error."""
    plan: dict[str, TopicPlan] = {}
    for path in topic_files(schemas_dir):
        with path.open(encoding="utf-8") as fh:
            for data in yaml.safe_load_all(fh):
                for doc in _topic_documents(data):
                    topic = plan_from_document(doc, str(path))
                    if topic.name in plan:
                        raise ValueError(f"{path}: topic {topic.name!r} is declared twice")
                    plan[topic.name] = topic
    return plan


async def _admin_client(bootstrap: str, wait_s: float) -> Any:
    """A started aiokafka admin client, retrying until the broker answers or `wait_s` passes."""
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + wait_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
        try:
            await admin.start()
            return admin
        except Exception as exc:
            with contextlib.suppress(Exception):
                await admin.close()
            if time.monotonic() >= deadline:
                raise RuntimeError(f"Kafka at {bootstrap} did not answer within {wait_s:.0f} s") from exc
            print(f"waiting for Kafka at {bootstrap}: {exc!r}", file=sys.stderr)
            await asyncio.sleep(2)


async def _partition_counts(admin: Any, names: list[str]) -> dict[str, int]:
    """Partition counts of existing topics (aiokafka's describe_topics answer)."""
    counts: dict[str, int] = {}
    if not names:
        return counts
    for described in await admin.describe_topics(names):
        if isinstance(described, Mapping):
            counts[str(described.get("topic"))] = len(described.get("partitions") or [])
    return counts


TOPIC_ALREADY_EXISTS = 36


def response_errors(response: Any) -> list[tuple[str, int, str]]:
    """(topic, error code, message) of every failed entry of a CreateTopics/CreatePartitions answer.

    aiokafka returns broker errors inside the response rather than raising them.
    """
    failed: list[tuple[str, int, str]] = []
    for entry in getattr(response, "topic_errors", None) or []:
        topic, code = str(entry[0]), int(entry[1])
        message = str(entry[2]) if len(entry) > 2 and entry[2] else ""
        if code not in (0, TOPIC_ALREADY_EXISTS):
            failed.append((topic, code, message))
    return failed


async def apply_plan(
    bootstrap: str,
    plan: Mapping[str, TopicPlan],
    *,
    replication_factor: int,
    wait_s: float,
    grow: bool,
) -> int:
    """Create missing topics; report (or grow) under-partitioned ones. Returns a process exit code."""
    from aiokafka.admin import NewPartitions, NewTopic

    admin = await _admin_client(bootstrap, wait_s)
    failures = 0
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in plan.values() if topic.name not in existing]
        for topic in missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        topic.name,
                        num_partitions=topic.partitions,
                        replication_factor=replication_factor,
                        topic_configs=dict(topic.config),
                    )
                ]
            )
            errors = response_errors(response)
            if errors:
                failures += 1
                for name, code, message in errors:
                    print(f"FAILED to create {name}: error {code} {message}", file=sys.stderr)
            else:
                print(f"created {topic.name} partitions={topic.partitions} rf={replication_factor}")
        # Metadata of just-created topics can lag a moment behind the CreateTopics answer.
        counts = await _partition_counts(admin, sorted(plan))
        for _ in range(10):
            if all(counts.get(name, 0) for name in plan):
                break
            await asyncio.sleep(1)
            counts = await _partition_counts(admin, sorted(plan))
        for name, topic in plan.items():
            count = counts.get(name, 0)
            if count == topic.partitions:
                print(f"ok      {name} partitions={count}")
            elif count == 0:
                failures += 1
                print(f"MISSING {name}: not in the broker's metadata", file=sys.stderr)
            elif count < topic.partitions and grow:
                errors = response_errors(
                    await admin.create_partitions({name: NewPartitions(total_count=topic.partitions)})
                )
                if errors:
                    failures += 1
                    print(f"FAILED to grow {name}: {errors}", file=sys.stderr)
                else:
                    print(f"grown   {name} partitions {count} -> {topic.partitions}")
            else:
                hint = " (rerun with --grow to add partitions)" if count < topic.partitions else ""
                print(
                    f"WARNING {name} has {count} partitions, declared {topic.partitions}{hint}",
                    file=sys.stderr,
                )
    finally:
        await admin.close()
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--bootstrap",
        default=os.environ.get("CAIRN_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        help="Kafka bootstrap servers (default: $CAIRN_KAFKA_BOOTSTRAP)",
    )
    parser.add_argument(
        "--schemas-dir",
        type=Path,
        default=Path(os.environ.get("CAIRN_SCHEMAS_DIR", "schemas")),
        help="folder holding topics/*.yaml (default: $CAIRN_SCHEMAS_DIR or ./schemas)",
    )
    parser.add_argument("--replication-factor", type=int, default=1)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the broker")
    parser.add_argument("--grow", action="store_true", help="add partitions to under-partitioned topics")
    parser.add_argument("--dry-run", action="store_true", help="print `name partitions` lines and exit")
    args = parser.parse_args(argv)

    plan = load_topic_plan(args.schemas_dir)
    if not plan:
        print(f"no topic files under {args.schemas_dir / 'topics'}", file=sys.stderr)
        return 2
    if args.dry_run:
        for topic in plan.values():
            print(f"{topic.name} {topic.partitions}")
        return 0
    return asyncio.run(
        apply_plan(
            args.bootstrap,
            plan,
            replication_factor=args.replication_factor,
            wait_s=args.wait,
            grow=args.grow,
        )
    )


if __name__ == "__main__":
    sys.exit(main())

"""Create every Cairn topic declared in `schemas/topics/*.yaml` with its partition count.

Run by the `kafka-init` job of docker-compose.yml and the `cairn-topics` Job of infra/k8s, inside
the Cairn service image (which ships schemas/ at $CAIRN_SCHEMAS_DIR):

    python infra/kafka/create_topics.py --bootstrap kafka:9092 --schemas-dir /app/schemas
    python infra/kafka/create_topics.py --schemas-dir schemas --dry-run   # print the plan only

Idempotent: topics that exist are left alone; a topic that exists with fewer partitions than
declared is reported (and grown with --grow; Kafka cannot shrink a topic, and growing one moves
keys to other partitions, so it is never done silently). Exits non-zero if the broker cannot be
reached within --wait seconds or a topic cannot be created.

Connects with the Kafka security of the `CAIRN_KAFKA_SECURITY_PROTOCOL` / `CAIRN_KAFKA_SASL_*` /
`CAIRN_KAFKA_SSL_*` variables, like every service (`cairn_bus.kafka.client_options`). Depends on
PyYAML, aiokafka and cairn-bus (all in the service image); the last two are imported lazily so the
plan can be read (and tested) without them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class TopicPlan:
    """One topic to create: name, partition count and topic-level configs (strings, as Kafka wants)."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def _config_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def plan_from_document(doc: Any, source: str) -> TopicPlan:
    """A TopicPlan from one topic file (format: schemas/README.md).

    Uses `name`, `partitions` and `retention_ms` (null: kept forever, `retention.ms=-1`; absent:
    the broker's default); an optional `config` mapping adds further topic configs verbatim.
    """
    if not isinstance(doc, Mapping):
        raise ValueError(f"{source}: a topic file must be a YAML mapping")
    name, partitions = doc.get("name"), doc.get("partitions")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{source}: topic file has no `name`")
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"{source}: topic {name!r} needs a positive integer `partitions`")
    config: dict[str, str] = {}
    if "retention_ms" in doc:
        retention = doc["retention_ms"]
        config["retention.ms"] = "-1" if retention is None else str(int(retention))
    extra = doc.get("config")
    if isinstance(extra, Mapping):
        config.update({str(key): _config_value(value) for key, value in extra.items()})
    return TopicPlan(name=name, partitions=partitions, config=config)


def topic_files(schemas_dir: Path) -> list[Path]:
    """The topic files `<schemas_dir>/topics/*.yaml`, sorted."""
    return sorted((Path(schemas_dir) / "topics").glob("*.yaml"))


def load_topic_plan(schemas_dir: Path) -> dict[str, TopicPlan]:
    """Every topic declared under `<schemas_dir>/topics`, by name. Duplicate names are an error."""
    plan: dict[str, TopicPlan] = {}
    for path in topic_files(schemas_dir):
        topic = plan_from_document(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))
        if topic.name in plan:
            raise ValueError(f"{path}: topic {topic.name!r} is declared twice")
        plan[topic.name] = topic
    return plan


async def _admin_client(bootstrap: str, wait_s: float) -> Any:
    """A started aiokafka admin client, retrying until the broker answers or `wait_s` passes."""
    from aiokafka.admin import AIOKafkaAdminClient

    from cairn_bus.kafka import KafkaSecurityError, client_options, start_client

    security = client_options()
    deadline = time.monotonic() + wait_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000, **security)
        try:
            await start_client(admin.start, bootstrap)
            return admin
        except KafkaSecurityError as exc:
            with contextlib.suppress(Exception):
                await admin.close()
            raise RuntimeError(str(exc)) from exc
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
    try:
        return asyncio.run(
            apply_plan(
                args.bootstrap,
                plan,
                replication_factor=args.replication_factor,
                wait_s=args.wait,
                grow=args.grow,
            )
        )
    except RuntimeError as exc:
        print(f"create_topics: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

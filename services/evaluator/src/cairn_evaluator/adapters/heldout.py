"""The held-out split of a dataset version in S3: `datasets/<id>/v<N>/heldout.jsonl`."""

from __future__ import annotations

import asyncio

from cairn_bus.objects import ObjectNotFoundError, ObjectStore
from cairn_events.artifacts import HELDOUT_FILE, DatasetRow


def heldout_uri(bucket: str, dataset_id: str, version: int) -> str:
    """Where a dataset version's held-out rows are."""
    return f"s3://{bucket}/datasets/{dataset_id}/v{version}/{HELDOUT_FILE}"


def parse_rows(data: bytes) -> list[DatasetRow]:
    """`DatasetRow`s of a JSON-lines file (blank lines skipped)."""
    return [
        DatasetRow.model_validate_json(line) for line in data.decode("utf-8").splitlines() if line.strip()
    ]


async def read_heldout(store: ObjectStore, bucket: str, dataset_id: str, version: int) -> list[DatasetRow]:
    """The held-out rows, by row id; empty when the file does not exist. An unreachable store raises
    OSError (transient)."""
    try:
        data = await asyncio.to_thread(store.get, heldout_uri(bucket, dataset_id, version))
    except ObjectNotFoundError:
        return []
    return sorted(parse_rows(data), key=lambda r: r.row_id)

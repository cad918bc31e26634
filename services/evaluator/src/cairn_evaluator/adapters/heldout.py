"""The held-out split of a dataset version in S3: `datasets/<id>/v<N>/heldout.jsonl`.

Rows the feedback service sealed per tenant (`cairn_auth.sealed_rows`) are opened with the keyring
of the dataset bucket (`cairn_auth.object_keys`); a row whose tenant was erased is left out (never
evaluated) and logged; rows stored as they are read as they are.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from cairn_auth.sealed_rows import open_rows
from cairn_bus.objects import ObjectNotFoundError, ObjectStore
from cairn_events.artifacts import HELDOUT_FILE, DatasetRow
from cairn_observability import get_logger

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring

log = get_logger("cairn.evaluator")


def heldout_uri(bucket: str, dataset_id: str, version: int) -> str:
    """Where a dataset version's held-out rows are."""
    return f"s3://{bucket}/datasets/{dataset_id}/v{version}/{HELDOUT_FILE}"


async def read_heldout(
    store: ObjectStore, bucket: str, dataset_id: str, version: int, keyring: Keyring | None = None
) -> list[DatasetRow]:
    """The held-out rows, by row id, sealed rows opened with `keyring` and erased tenants' rows left
    out; empty when the file does not exist. An unreachable store raises OSError (transient); sealed
    rows that cannot be opened (no keyring, unknown key, tampered) raise `EncryptionError`."""
    uri = heldout_uri(bucket, dataset_id, version)
    try:
        data = await asyncio.to_thread(store.get, uri)
    except ObjectNotFoundError:
        return []
    documents = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    opened = await open_rows(keyring, documents)
    if opened.erased:
        log.warning(
            "held-out rows left out: their tenant was erased",
            uri=uri,
            rows=opened.erased,
            tenants=opened.erased_tenants,
        )
    return sorted((DatasetRow.model_validate(d) for d in opened.rows), key=lambda r: r.row_id)

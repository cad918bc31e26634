"""Reads a dataset version's splits (`train.jsonl`, `heldout.jsonl`) from the object store.

Rows the feedback service sealed per tenant (`cairn_auth.sealed_rows`) are opened with the keyring
of the dataset bucket (`cairn_auth.object_keys`); a row whose tenant was erased is left out (never
trained on) and logged; rows stored as they are read as they are.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from cairn_bus.objects import ObjectNotFoundError, ObjectStore, join_uri
from cairn_events.artifacts import HELDOUT_FILE, TRAIN_FILE, DatasetRow
from cairn_observability import get_logger
from cairn_tuner.domain.jobs import TrainingError
from cairn_tuner.domain.naming import dataset_folder_uri

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring
    from cairn_auth.sealed_rows import OpenedRows

log = get_logger("cairn.tuner")
T = TypeVar("T")


def _documents(data: bytes, uri: str) -> tuple[list[Any], list[int]]:
    """The JSON document of every non-blank line, and the line numbers."""
    documents, numbers = [], []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            documents.append(json.loads(line))
        except ValueError:
            raise TrainingError(f"line {number} of {uri} is not a dataset row: not JSON") from None
        numbers.append(number)
    return documents, numbers


def _blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to the end from synchronous code (the trainer runs in a worker thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:  # called on an event loop's thread: run it beside
        return pool.submit(asyncio.run, coro).result()


def _open(keyring: Keyring | None, documents: list[Any], uri: str) -> OpenedRows:
    from cairn_auth.encryption import EncryptionError
    from cairn_auth.sealed_rows import open_rows

    try:
        return _blocking(open_rows(keyring, documents))
    except EncryptionError as exc:
        raise TrainingError(f"cannot read the rows of {uri}: {exc}") from None


def parse_rows(data: bytes, uri: str, keyring: Keyring | None = None) -> list[DatasetRow]:
    """Every `DatasetRow` of a JSON-lines file (blank lines skipped), sealed rows opened, erased
    tenants' rows left out; TrainingError names a bad line, or sealed rows it cannot open."""
    documents, numbers = _documents(data, uri)
    from cairn_auth.sealed_rows import is_sealed_row

    if any(is_sealed_row(d) for d in documents):
        opened = _open(keyring, documents, uri)
        documents, numbers = opened.rows, [numbers[i] for i in opened.positions]
        if opened.erased:
            log.warning(
                "dataset rows left out: their tenant was erased",
                uri=uri,
                rows=opened.erased,
                tenants=opened.erased_tenants,
            )
    rows = []
    for number, document in zip(numbers, documents, strict=True):
        try:
            rows.append(DatasetRow.model_validate(document))
        except ValidationError as exc:
            raise TrainingError(
                f"line {number} of {uri} is not a dataset row: {exc.errors()[0]['msg']}"
            ) from None
    return rows


def load_splits(
    store: ObjectStore, bucket: str, dataset_id: str, version: int, keyring: Keyring | None = None
) -> tuple[list[DatasetRow], list[DatasetRow]]:
    """The train and held-out rows of a dataset version, sealed rows opened with `keyring`. A missing
    train split, or one left without rows (e.g. every tenant erased), raises TrainingError; a missing
    held-out split reads as empty. Blocking: call it off the event loop."""
    folder = dataset_folder_uri(bucket, dataset_id, version)
    train_uri, heldout_uri = join_uri(folder, TRAIN_FILE), join_uri(folder, HELDOUT_FILE)
    try:
        train = parse_rows(store.get(train_uri), train_uri, keyring)
    except ObjectNotFoundError:
        raise TrainingError(
            f"dataset {dataset_id} version {version} not found: no {train_uri} in the object store"
        ) from None
    try:
        heldout = parse_rows(store.get(heldout_uri), heldout_uri, keyring)
    except ObjectNotFoundError:
        heldout = []
    if not train:
        raise TrainingError(
            f"dataset {dataset_id} version {version} has no training rows ({train_uri}; rows of erased "
            "tenants are left out)"
        )
    return train, heldout

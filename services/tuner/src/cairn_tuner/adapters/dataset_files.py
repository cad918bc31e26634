"""Reads a dataset version's splits (`train.jsonl`, `heldout.jsonl`) from the object store."""

from __future__ import annotations

from pydantic import ValidationError

from cairn_bus.objects import ObjectNotFoundError, ObjectStore, join_uri
from cairn_events.artifacts import HELDOUT_FILE, TRAIN_FILE, DatasetRow
from cairn_tuner.domain.jobs import TrainingError
from cairn_tuner.domain.naming import dataset_folder_uri


def parse_rows(data: bytes, uri: str) -> list[DatasetRow]:
    """Every `DatasetRow` of a JSON-lines file (blank lines skipped); TrainingError names a bad line."""
    rows = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(DatasetRow.model_validate_json(line))
        except ValidationError as exc:
            raise TrainingError(
                f"line {number} of {uri} is not a dataset row: {exc.errors()[0]['msg']}"
            ) from None
    return rows


def load_splits(
    store: ObjectStore, bucket: str, dataset_id: str, version: int
) -> tuple[list[DatasetRow], list[DatasetRow]]:
    """The train and held-out rows of a dataset version. A missing train split raises TrainingError;
    a missing held-out split reads as empty."""
    folder = dataset_folder_uri(bucket, dataset_id, version)
    train_uri, heldout_uri = join_uri(folder, TRAIN_FILE), join_uri(folder, HELDOUT_FILE)
    try:
        train = parse_rows(store.get(train_uri), train_uri)
    except ObjectNotFoundError:
        raise TrainingError(
            f"dataset {dataset_id} version {version} not found: no {train_uri} in the object store"
        ) from None
    try:
        heldout = parse_rows(store.get(heldout_uri), heldout_uri)
    except ObjectNotFoundError:
        heldout = []
    if not train:
        raise TrainingError(f"dataset {dataset_id} version {version} has no training rows ({train_uri})")
    return train, heldout

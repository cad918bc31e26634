"""Dataset version files: the JSONL splits, the manifest with every file's hash, and where they live."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from cairn_events import DatasetPublishedV1
from cairn_events.artifacts import (
    DATASET_MANIFEST,
    HELDOUT_FILE,
    TRAIN_FILE,
    DatasetFile,
    DatasetManifest,
    DatasetRow,
)
from cairn_feedback.domain.curation import Curation
from cairn_feedback.domain.records import DatasetVersion, RowProvenance

__all__ = [
    "build_manifest",
    "manifest_bytes",
    "provenance",
    "published_event",
    "sealed_split_files",
    "split_files",
    "version_uri",
]


def version_uri(bucket: str, dataset_id: str, version: int) -> str:
    """The folder of a version, with its trailing slash: `s3://<bucket>/datasets/<id>/v<N>/`."""
    return f"s3://{bucket}/datasets/{dataset_id}/v{version}/"


def jsonl(rows: list[DatasetRow]) -> bytes:
    """One `DatasetRow` JSON object per line."""
    return "".join(row.model_dump_json() + "\n" for row in rows).encode()


def split_files(curation: Curation) -> dict[str, bytes]:
    """`train.jsonl` and `heldout.jsonl` of a curation, rows as they are."""
    return {TRAIN_FILE: jsonl(curation.train), HELDOUT_FILE: jsonl(curation.heldout)}


def sealed_jsonl(lines: Sequence[Mapping[str, str]]) -> bytes:
    """One sealed row (`{"row_id", "tenant", "sealed"}`, see `cairn_auth.sealed_rows`) per line."""
    return "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()


def sealed_split_files(
    train: Sequence[Mapping[str, str]], heldout: Sequence[Mapping[str, str]]
) -> dict[str, bytes]:
    """`train.jsonl` and `heldout.jsonl` of a curation whose rows were sealed per tenant."""
    return {TRAIN_FILE: sealed_jsonl(train), HELDOUT_FILE: sealed_jsonl(heldout)}


def build_manifest(
    *,
    dataset_id: str,
    version: int,
    created_at: str,
    rules: list[str],
    curation: Curation,
    files: dict[str, bytes],
    code_version: str,
) -> DatasetManifest:
    """The manifest of a version: its files with their sha256, rules, provenance ids and drop counts."""
    counts = {TRAIN_FILE: len(curation.train), HELDOUT_FILE: len(curation.heldout)}
    rows = curation.rows
    return DatasetManifest(
        dataset_id=dataset_id,
        version=version,
        created_at=created_at,
        rules=rules,
        files=[
            DatasetFile(
                name=name, rows=counts.get(name, 0), sha256=hashlib.sha256(data).hexdigest(), bytes=len(data)
            )
            for name, data in files.items()
        ],
        row_count=len(rows),
        train_rows=len(curation.train),
        heldout_rows=len(curation.heldout),
        request_ids=sorted({r.request_id for r in rows}),
        feedback_ids=sorted({r.feedback_id for r in rows if r.feedback_id is not None}),
        dropped=curation.dropped,
        code_version=code_version,
    )


def manifest_bytes(manifest: DatasetManifest) -> bytes:
    """The manifest as written to `manifest.json`."""
    return (manifest.model_dump_json(indent=2) + "\n").encode()


def provenance(curation: Curation) -> list[RowProvenance]:
    """Where each row of a curation came from, train rows first."""
    out = []
    for split, rows in (("train", curation.train), ("heldout", curation.heldout)):
        for r in rows:
            out.append(
                RowProvenance(
                    row_id=r.row_id,
                    request_id=r.request_id,
                    feedback_id=r.feedback_id,
                    prompt_name=r.prompt_name,
                    prompt_version=r.prompt_version,
                    source=r.source,
                    split="train" if split == "train" else "heldout",
                )
            )
    return out


def published_event(made: DatasetVersion) -> DatasetPublishedV1:
    """The `dataset.published` of a recorded version; the same version always gives the same event."""
    manifest = made.manifest
    hashes = {f.name: f.sha256 for f in manifest.files}
    hashes[DATASET_MANIFEST] = hashlib.sha256(manifest_bytes(manifest)).hexdigest()
    return DatasetPublishedV1(
        dataset_id=made.dataset_id,
        version=made.version,
        uri=made.uri,
        manifest_uri=made.manifest_uri,
        row_count=manifest.row_count,
        train_rows=manifest.train_rows,
        heldout_rows=manifest.heldout_rows,
        files_sha256=hashes,
        rules=manifest.rules,
        source_request_count=len(manifest.request_ids),
        published_at=datetime.fromisoformat(manifest.created_at),
    )

"""Building and publishing dataset versions: curate, write the files to S3, record, announce.

Used by `cairn datasets` (and tests) with any Repository, ObjectStore and Publisher. With a keyring
(`cairn_auth.object_keys.object_store_keyring`: keys in the object store, shared with the tuner and
the evaluator), every row of the splits is sealed under its tenant's key (`cairn_auth.sealed_rows`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cairn_bus import EventMeta, Publisher, derive_event_id
from cairn_bus.objects import ObjectStore, join_uri
from cairn_events import DatasetPublishedV1
from cairn_events.artifacts import DATASET_MANIFEST
from cairn_events.base import ID_PATTERN
from cairn_feedback.domain.curation import DEFAULT_HELDOUT, Curation, curate
from cairn_feedback.domain.dataset_policy import new_row_count
from cairn_feedback.domain.errors import DatasetNotFoundError, EmptySelectionError, InvalidRuleError
from cairn_feedback.domain.manifest import (
    build_manifest,
    manifest_bytes,
    provenance,
    published_event,
    sealed_split_files,
    split_files,
    version_uri,
)
from cairn_feedback.domain.records import DatasetVersion, RequestTrail
from cairn_feedback.domain.rules import Rules
from cairn_feedback.ports import Repository

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring

__all__ = ["Built", "build_dataset", "find_version", "republish"]


@dataclass(frozen=True)
class Built:
    """A published dataset version, the curation it came from and the event that announced it."""

    version: DatasetVersion
    curation: Curation
    event: DatasetPublishedV1
    meta: EventMeta


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _announce(publisher: Publisher, made: DatasetVersion) -> tuple[DatasetPublishedV1, EventMeta]:
    event = published_event(made)
    origin = f"dataset:{made.dataset_id}/v{made.version}"
    meta = await publisher.publish(event, event_id=derive_event_id(origin, event.event_type, ""))
    return event, meta


async def _split_files(curation: Curation, keyring: Keyring | None) -> dict[str, bytes]:
    if keyring is None:
        return split_files(curation)
    from cairn_auth.sealed_rows import seal_rows

    train = await seal_rows(keyring, [row.model_dump(mode="json") for row in curation.train])
    heldout = await seal_rows(keyring, [row.model_dump(mode="json") for row in curation.heldout])
    return sealed_split_files(train, heldout)


async def _trails(repository: Repository, rules: Rules) -> list[RequestTrail]:
    """The trails the rules may select: those with feedback, and those the teacher answered."""
    trails = {t.request_id: t for t in await repository.trails_with_feedback()}
    if rules.teacher is not None:
        for t in await repository.trails_answered_by(rules.teacher):
            trails.setdefault(t.request_id, t)
    return [trails[rid] for rid in sorted(trails)]


async def build_dataset(
    repository: Repository,
    objects: ObjectStore,
    publisher: Publisher,
    *,
    dataset_id: str,
    rules: Rules,
    bucket: str,
    code_version: str,
    heldout: float = DEFAULT_HELDOUT,
    seed: int = 0,
    min_rows: int = 1,
    min_new_rows: int = 0,
    clock: Callable[[], datetime] = _utc_now,
    keyring: Keyring | None = None,
) -> Built:
    """Curate the stored feedback (and, under `teacher:MODEL`, the teacher's answers) into the dataset's next version, write its files, record it, then
    publish `dataset.published`.

    Raises InvalidRuleError for a bad dataset id, fraction or rule set, and EmptySelectionError when
    fewer than `min_rows` rows are selected, or fewer than `min_new_rows` rows the latest version does
    not have (checked under the repository's per-dataset lock, so two builders racing make one version;
    no version is made). The event's id derives from the dataset and version,
    so `republish` of the same version sends the same event. With `keyring`, each row is stored sealed
    under its tenant's key; the manifest's hashes are those of the stored (sealed) files.
    """
    if not re.fullmatch(ID_PATTERN, dataset_id):
        raise InvalidRuleError(f"dataset id {dataset_id!r} must be 1-128 of A-Za-z0-9._:-")
    if not rules.names():
        raise InvalidRuleError("give at least one rule: corrected, min_rating:N, thumbs_up or teacher:MODEL")
    if not 0 <= heldout < 1:
        raise InvalidRuleError(f"the held-out fraction must be in [0, 1), got {heldout}")
    curation = curate(await _trails(repository, rules), rules, heldout=heldout, seed=seed)
    if not curation.rows:
        dropped = ", ".join(f"{k}={v}" for k, v in curation.dropped.items()) or "none"
        raise EmptySelectionError(
            f"rules {', '.join(rules.names())} select no rows for {dataset_id} (dropped: {dropped}); "
            "no version was made"
        )
    if len(curation.rows) < min_rows:
        raise EmptySelectionError(
            f"rules {', '.join(rules.names())} select {len(curation.rows)} rows for {dataset_id}, "
            f"fewer than the {min_rows} asked for; no version was made"
        )

    files = await _split_files(curation, keyring)

    async def make(version: int) -> DatasetVersion:
        if min_new_rows > 0 and version > 1:
            previous = await repository.version(dataset_id, version - 1)
            new = new_row_count(provenance(curation), previous.rows if previous else ())
            if new < min_new_rows:
                raise EmptySelectionError(
                    f"rules {', '.join(rules.names())} select {new} rows for {dataset_id} that v{version - 1} "
                    f"does not have, fewer than the {min_new_rows} asked for; no version was made"
                )
        uri = version_uri(bucket, dataset_id, version)
        manifest = build_manifest(
            dataset_id=dataset_id,
            version=version,
            created_at=clock().isoformat(),
            rules=rules.names(),
            curation=curation,
            files=files,
            code_version=code_version,
        )
        manifest_uri = join_uri(uri, DATASET_MANIFEST)
        for name, data in files.items():
            await asyncio.to_thread(objects.put, join_uri(uri, name), data, "application/jsonl")
        await asyncio.to_thread(objects.put, manifest_uri, manifest_bytes(manifest), "application/json")
        return DatasetVersion(dataset_id, version, uri, manifest_uri, manifest, tuple(provenance(curation)))

    made = await repository.add_version(dataset_id, make)
    event, meta = await _announce(publisher, made)
    return Built(made, curation, event, meta)


async def republish(
    repository: Repository, publisher: Publisher, dataset_id: str, version: int | None
) -> EventMeta:
    """Send a recorded version's `dataset.published` again (the same event id): for a build whose
    announcement failed after the version was recorded. Raises DatasetNotFoundError."""
    made = await find_version(repository, dataset_id, version)
    _, meta = await _announce(publisher, made)
    return meta


async def find_version(repository: Repository, dataset_id: str, version: int | None) -> DatasetVersion:
    """A recorded version (the latest without `version`); raises DatasetNotFoundError."""
    made = await repository.version(dataset_id, version)
    if made is None:
        if version is not None and await repository.version(dataset_id) is not None:
            raise DatasetNotFoundError(f"dataset {dataset_id!r} has no version {version}")
        raise DatasetNotFoundError(f"no dataset {dataset_id!r}")
    return made

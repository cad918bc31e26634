"""Rows of a JSON-lines file sealed one by one under their tenant's key.

A row is a JSON object with a `row_id` and a `tenant`. Sealed, it is stored as

    {"row_id": "...", "tenant": "...", "sealed": "cairn-enc:v1:<key id>:..."}

the id and tenant in clear (counting, provenance and erasure need no key), the whole row, id and
tenant included, sealed under the tenant's key (`Keyring.seal_json`). A reader opens the rows it can:
a row whose tenant was erased is left out and counted, a row stored as it is comes back unchanged,
so files written without a master key, or before encryption, read as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn_auth.encryption import SEALED_FIELD, EncryptionError, Keyring, is_sealed

__all__ = ["OpenedRows", "is_sealed_row", "open_rows", "seal_rows"]

_CLEAR = ("row_id", "tenant")


def is_sealed_row(document: object) -> bool:
    """Whether `document` is a row stored sealed (see the module)."""
    return (
        isinstance(document, Mapping)
        and set(document) == {*_CLEAR, SEALED_FIELD}
        and is_sealed(document[SEALED_FIELD])
    )


async def seal_rows(keyring: Keyring, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Each row (a JSON object with string `row_id` and `tenant`) sealed under its tenant's key;
    one key look-up per tenant."""
    for row in rows:
        if not all(isinstance(row.get(name), str) for name in _CLEAR):
            raise ValueError("a row to seal needs string `row_id` and `tenant` fields")
    sealed = await keyring.seal_json_many((row["tenant"], row) for row in rows)
    return [
        {"row_id": row["row_id"], "tenant": row["tenant"], SEALED_FIELD: s[SEALED_FIELD]}
        for row, s in zip(rows, sealed, strict=True)
    ]


@dataclass(frozen=True)
class OpenedRows:
    """What a reader gets: the readable rows in file order, and what it had to leave out."""

    rows: list[Any]
    """The rows as JSON documents (opened, or as they were stored)."""
    positions: list[int]
    """For each row, its index among the documents read (to name a bad line)."""
    erased: int = 0
    """Rows left out: their tenant was erased, their content is gone."""
    erased_tenants: list[str] = field(default_factory=list)
    """The erased tenants those rows belonged to, sorted."""


async def open_rows(keyring: Keyring | None, documents: Sequence[Any]) -> OpenedRows:
    """The documents with every sealed row opened and the erased tenants' rows left out.

    Raises EncryptionError when a row is sealed and there is no keyring (no master key), when its
    key is unknown or it fails authentication, or when the clear `row_id`/`tenant` differ from the
    sealed ones (a row moved or edited)."""
    todo = [i for i, d in enumerate(documents) if is_sealed_row(d)]
    if not todo:
        return OpenedRows(list(documents), list(range(len(documents))))
    if keyring is None:
        raise EncryptionError(
            f"{len(todo)} rows are encrypted and no master key is configured (CAIRN_MASTER_KEY)"
        )
    opened = await keyring.open_json_many([{SEALED_FIELD: documents[i][SEALED_FIELD]} for i in todo])
    out: dict[int, Any] = dict(enumerate(documents))
    erased: list[str] = []
    for i, row in zip(todo, opened, strict=True):
        clear = documents[i]
        if row is None:
            erased.append(clear["tenant"])
            del out[i]
            continue
        if not isinstance(row, Mapping) or any(row.get(name) != clear[name] for name in _CLEAR):
            raise EncryptionError(f"sealed row {i + 1} does not match its clear row_id and tenant")
        out[i] = row
    return OpenedRows(list(out.values()), list(out), len(erased), sorted(set(erased)))

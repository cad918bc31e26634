"""Held-out rows sealed per tenant: opened for evaluation, erased tenants' rows never re-asked, and a
clear error when there is no key to open them."""

from __future__ import annotations

import json

import pytest

from cairn_auth.encryption import EncryptionError, Keyring, MasterKey, new_master_key
from cairn_auth.object_keys import ObjectStoreTenantKeyStore
from cairn_auth.sealed_rows import seal_rows
from cairn_bus.objects import InMemoryObjectStore, ObjectStore
from cairn_evaluator.adapters.heldout import heldout_uri, read_heldout
from cairn_evaluator.domain.registry import ModelVersion
from cairn_evaluator.evaluation import suites_for
from cairn_events import ModelStage
from cairn_events.artifacts import DatasetRow

from .conftest import T0, heldout_rows, make_deps, put_heldout

URI = heldout_uri("cairn", "support-qa", 1)


def keyring(objects: ObjectStore, master: str) -> Keyring:
    return Keyring(
        MasterKey.from_text(master), ObjectStoreTenantKeyStore(objects, "cairn-keys"), cache_ttl_s=0
    )


async def put_sealed(objects: ObjectStore, master: str, rows: list[DatasetRow]) -> None:
    """Write the held-out split as the feedback service does with a master key."""
    sealed = await seal_rows(keyring(objects, master), [r.model_dump(mode="json") for r in rows])
    objects.put(URI, "".join(json.dumps(s) + "\n" for s in sealed).encode())


def two_tenants(n: int) -> list[DatasetRow]:
    return [r.model_copy(update={"tenant": ("acme", "globex")[i % 2]}) for i, r in enumerate(heldout_rows(n))]


async def test_sealed_rows_are_opened_and_an_erased_tenants_rows_left_out() -> None:
    objects, master = InMemoryObjectStore(), new_master_key()
    rows = two_tenants(4)
    await put_sealed(objects, master, rows)
    assert "the answer is number" not in objects.get(URI).decode()
    reader = keyring(objects, master)
    assert await read_heldout(objects, "cairn", "support-qa", 1, reader) == rows
    await keyring(objects, master).erase("acme")
    assert await read_heldout(objects, "cairn", "support-qa", 1, reader) == [
        r for r in rows if r.tenant == "globex"
    ]


async def test_sealed_rows_without_a_key_are_an_error_and_clear_rows_need_none() -> None:
    objects, master = InMemoryObjectStore(), new_master_key()
    await put_sealed(objects, master, two_tenants(2))
    with pytest.raises(EncryptionError, match="no master key is configured"):
        await read_heldout(objects, "cairn", "support-qa", 1, None)
    put_heldout(objects, heldout_rows(2))
    assert await read_heldout(objects, "cairn", "support-qa", 1, None) == heldout_rows(2)
    assert await read_heldout(objects, "cairn", "support-qa", 1, keyring(objects, master)) == heldout_rows(2)


async def test_the_heldout_suite_re_asks_only_what_can_be_opened() -> None:
    deps = make_deps(suites=[])
    master = new_master_key()
    await put_sealed(deps.objects, master, two_tenants(4))
    await keyring(deps.objects, master).erase("acme")
    deps.dataset_keyring = keyring(deps.objects, master)
    candidate = ModelVersion(
        name="cairn-qa",
        version=2,
        base_model="cairn-tiny-chat",
        stage=ModelStage.DEV,
        registered_at=T0,
        dataset_id="support-qa",
        dataset_version=1,
    )
    [suite] = await suites_for(deps, candidate)
    assert [c.id for c in suite.cases] == [r.row_id for r in two_tenants(4) if r.tenant == "globex"]

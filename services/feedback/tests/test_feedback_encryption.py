"""Feedback payloads encrypted per tenant in PostgreSQL, and a tenant's erasure through the handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cairn_auth.encryption import (
    SEALED_FIELD,
    SEALED_PREFIX,
    TENANT_ERASE,
    Keyring,
    MasterKey,
    PostgresTenantKeyStore,
    new_master_key,
)
from cairn_auth.management import admin_action
from cairn_bus import InMemoryPublisher
from cairn_bus.postgres import create_pool
from cairn_feedback.adapters.postgres import PostgresRepository
from cairn_feedback.bootstrap import Deps
from cairn_feedback.handlers import on_admin_action
from cairn_testing.suites import load_suite

pytestmark = pytest.mark.integration
f: Any = load_suite(Path(__file__).with_name("feedback_factories.py"))
TABLES = ("feedback_requests", "feedback_screenings", "feedback_responses", "feedback_records")


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[Any]:
    p = await create_pool(fresh_database, 1, 4)
    yield p
    await p.close()


@pytest.fixture
def master() -> str:
    return new_master_key()


def repository(pool: Any, master: str) -> PostgresRepository:
    return PostgresRepository(pool, Keyring(MasterKey.from_text(master), PostgresTenantKeyStore(pool)))


async def store_trails(repo: PostgresRepository) -> None:
    for tenant, rid in (("acme", "req-acme"), ("globex", "req-globex")):
        req, screening, response = f.request_events(rid, tenant=tenant)
        await repo.save_request(req, f"e-{rid}-1")
        await repo.save_screening(screening.model_copy(update={"tenant": tenant}), f"e-{rid}-2")
        await repo.save_response(response.model_copy(update={"tenant": tenant}), f"e-{rid}-3")
        await repo.save_feedback(
            f.feedback(f"fb-{rid}", rid, tenant=tenant, corrected_answer="Use the Security page."),
            f"e-{rid}-4",
        )


async def test_tables_hold_ciphertext_and_reads_open_it(pool: Any, master: str) -> None:
    repo = repository(pool, master)
    await repo.migrate()
    await store_trails(repo)
    for table in TABLES:
        rows = await pool.fetch(f"SELECT payload, payload::text AS text FROM {table}")
        assert len(rows) == 2
        for row in rows:
            assert list(row["payload"]) == [SEALED_FIELD]
            assert row["payload"][SEALED_FIELD].startswith(SEALED_PREFIX)
            for clear in (f.QUESTION, f.ANSWER, "Security page", "acme", "globex"):
                assert clear not in row["text"], (table, clear)
    trail = await repo.trail("req-acme")
    assert trail.request is not None
    assert trail.request.messages[0].content == f.QUESTION
    assert trail.response is not None
    assert trail.response.text == f.ANSWER
    assert [fb.corrected_answer for fb in trail.feedback] == ["Use the Security page."]
    # another process with the same master key reads it too
    assert (await repository(pool, master).trail("req-globex")).request is not None


async def test_an_erased_tenants_content_reads_as_never_stored(pool: Any, master: str) -> None:
    repo = repository(pool, master)
    await repo.migrate()
    await store_trails(repo)
    deps = Deps(repo, objects=None, publisher=InMemoryPublisher("/cairn/feedback"), keyring=repo.keyring)  # type: ignore[arg-type]
    erase = admin_action("ops", TENANT_ERASE, "acme", tenant="acme")
    meta = InMemoryPublisher("/cairn/cli").build(erase).meta
    await on_admin_action(erase, meta, deps)
    await on_admin_action(erase, meta, deps)  # redelivered: idempotent
    for reader in (repo, repository(pool, master)):
        gone = await reader.trail("req-acme")
        assert (gone.request, gone.screening, gone.response, gone.feedback) == (None, None, None, ())
        kept = await reader.trail("req-globex")
        assert kept.request is not None
        assert len(kept.feedback) == 1
        # curation sees only what can still be read
        with_feedback = [t for t in await reader.trails_with_feedback() if t.feedback]
        assert [t.request_id for t in with_feedback] == ["req-globex"]
    # the rows are still there, as ciphertext nobody can open
    assert await pool.fetchval("SELECT count(*) FROM feedback_records") == 2
    key = await pool.fetchrow("SELECT wrapped_key, erased_at FROM tenant_keys WHERE tenant = 'acme'")
    assert key["wrapped_key"] is None
    assert key["erased_at"] is not None


async def test_other_admin_actions_change_nothing(pool: Any, master: str) -> None:
    repo = repository(pool, master)
    await repo.migrate()
    await store_trails(repo)
    deps = Deps(repo, objects=None, publisher=InMemoryPublisher(), keyring=repo.keyring)  # type: ignore[arg-type]
    moved = admin_action("ops", "label.moved", "acme", tenant="acme")
    await on_admin_action(moved, InMemoryPublisher().build(moved).meta, deps)
    assert (await repo.trail("req-acme")).request is not None

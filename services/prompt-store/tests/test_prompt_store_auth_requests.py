"""Tenant isolation on the request path: a request resolves prompts in its tenant, then the shared one.

Through the service's real router and dispatcher, on the in-memory store and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from cairn_bus import Dispatcher, InMemoryInbox, InMemoryPublisher, Outcome
from cairn_bus.postgres import create_pool
from cairn_events import PromptRenderedV1, ResponseCompletedV1, ResponseStatus
from cairn_prompt_store import management
from cairn_prompt_store.adapters.memory import InMemoryPromptStore
from cairn_prompt_store.adapters.postgres import PostgresPromptStore
from cairn_prompt_store.app import router
from cairn_prompt_store.bootstrap import build
from cairn_prompt_store.domain.experiments import Experiment, Variant
from cairn_prompt_store.ports import PromptStore
from cairn_prompt_store.settings import Settings

from .conftest import NOW, as_record, request, spec

upstream = InMemoryPublisher("/cairn/upstream")


@pytest.fixture
async def pg_store(fresh_database: str) -> AsyncIterator[PromptStore]:
    pool = await create_pool(fresh_database)
    pg = PostgresPromptStore(pool)
    await pg.migrate()
    yield pg
    await pool.close()


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest) -> PromptStore:
    if request.param == "memory":
        return InMemoryPromptStore()
    pg: PromptStore = request.getfixturevalue("pg_store")
    return pg


async def answer_to(store: PromptStore, **fields: Any) -> PromptRenderedV1 | ResponseCompletedV1:
    publisher = InMemoryPublisher("/cairn/prompt-store", allowed_types=router.published_types)
    async with build(Settings(), publisher, store=store, inbox=InMemoryInbox(), clock=lambda: NOW) as deps:
        dispatcher = Dispatcher(router, deps, publisher, group_id="cairn-prompt-store", retry_backoff_s=0)
        message = upstream.build(request(variables={"who": "Ada"}, **fields))
        assert await dispatcher.dispatch(as_record(message)) is Outcome.HANDLED
    [out] = publisher.messages
    assert isinstance(out.event, PromptRenderedV1 | ResponseCompletedV1)
    return out.event


async def test_prompt_store_auth_another_tenants_prompt_is_unknown_to_a_request(store: PromptStore) -> None:
    await management.push(store, spec("secret", description="acme only"), ["production"], "t", tenant="acme")
    for ref in ("secret", "secret@production", "secret:1"):
        refused = await answer_to(store, prompt=ref, tenant="globex", request_id="req-g")
        assert isinstance(refused, ResponseCompletedV1)
        assert (refused.status, refused.reason, refused.tenant) == (
            ResponseStatus.REJECTED,
            "unknown prompt 'secret'",
            "globex",
        )
    shared = await answer_to(store, prompt="secret", request_id="req-d")  # the shared tenant neither
    assert isinstance(shared, ResponseCompletedV1)
    assert shared.reason == "unknown prompt 'secret'"
    own = await answer_to(store, prompt="secret", tenant="acme", request_id="req-a")
    assert isinstance(own, PromptRenderedV1)
    assert (own.prompt_name, own.prompt_version, own.tenant) == ("secret", 1, "acme")


async def test_prompt_store_auth_requests_use_their_own_prompt_before_the_shared_one(
    store: PromptStore,
) -> None:
    await management.push(store, spec(model="shared-model"), ["production"], "t")
    await management.push(store, spec(model="acme-model"), ["production"], "t", tenant="acme")
    await management.push(store, spec(model="acme-model-2"), [], "t", tenant="acme")
    acme = await answer_to(store, prompt="greet", tenant="acme")
    globex = await answer_to(store, prompt="greet", tenant="globex")
    assert isinstance(acme, PromptRenderedV1)
    assert isinstance(globex, PromptRenderedV1)
    assert (acme.model, globex.model) == ("acme-model", "shared-model")
    pinned = await answer_to(store, prompt="greet:2", tenant="globex")  # version 2 exists in acme only
    assert isinstance(pinned, ResponseCompletedV1)
    assert pinned.reason == "prompt 'greet' has no version 2 (latest is 1)"


async def test_prompt_store_auth_experiments_apply_in_the_prompts_own_tenant(store: PromptStore) -> None:
    await management.push(store, spec(model="v1"), ["production"], "t", tenant="acme")
    await management.push(store, spec(model="v2"), [], "t", tenant="acme")
    await management.push(store, spec(model="shared"), ["production"], "t")
    only_v2 = Experiment(name="all-v2", prompt="greet", variants=[Variant(name="b", version=2)])
    await management.set_experiment(store, only_v2, "t", tenant="acme")
    acme = await answer_to(store, prompt="greet", tenant="acme", user_id="u1")
    globex = await answer_to(store, prompt="greet", tenant="globex", user_id="u1")
    assert isinstance(acme, PromptRenderedV1)
    assert isinstance(globex, PromptRenderedV1)
    assert (acme.model, acme.experiment) == ("v2", "all-v2")
    assert (globex.model, globex.experiment) == ("shared", None)

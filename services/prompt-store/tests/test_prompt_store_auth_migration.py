"""Upgrading a database made before prompts had tenants: every prompt stays, under tenant `default`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cairn_prompt_store.adapters.postgres import PostgresPromptStore
from cairn_prompt_store.domain.experiments import Experiment, Variant
from cairn_prompt_store.domain.refs import parse_ref
from cairn_prompt_store.resolution import resolve

from .conftest import spec

pytestmark = pytest.mark.integration

PRE_TENANT_DDL = """
CREATE TABLE prompt_store_prompts (
    name        text        PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE prompt_store_versions (
    name          text        NOT NULL REFERENCES prompt_store_prompts (name),
    version       integer     NOT NULL CHECK (version >= 1),
    content_hash  text        NOT NULL,
    spec          jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL,
    PRIMARY KEY (name, version),
    UNIQUE (name, content_hash)
);
CREATE TABLE prompt_store_labels (
    name      text        NOT NULL,
    label     text        NOT NULL,
    version   integer     NOT NULL,
    moved_by  text        NOT NULL,
    moved_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, label),
    FOREIGN KEY (name, version) REFERENCES prompt_store_versions (name, version)
);
CREATE TABLE prompt_store_label_history (
    id        bigserial   PRIMARY KEY,
    name      text        NOT NULL,
    label     text        NOT NULL,
    version   integer     NOT NULL,
    previous  integer,
    moved_by  text        NOT NULL,
    moved_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX prompt_store_label_history_name ON prompt_store_label_history (name, id);
CREATE TABLE prompt_store_experiments (
    prompt      text        PRIMARY KEY REFERENCES prompt_store_prompts (name),
    experiment  text        NOT NULL,
    definition  jsonb       NOT NULL,
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION prompt_store_versions_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'prompt versions are immutable (% version %)', OLD.name, OLD.version;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER prompt_store_versions_immutable
    BEFORE UPDATE OR DELETE ON prompt_store_versions
    FOR EACH ROW EXECUTE FUNCTION prompt_store_versions_immutable();
"""
"""The prompt store's schema as the code before tenants created it."""


async def seed_pre_tenant(pool: Any) -> Experiment:
    """The old schema with greet:1 and greet:2, production moved 1 -> 2, and an experiment."""
    await pool.execute(PRE_TENANT_DDL)
    experiment = Experiment(name="ab", prompt="greet", variants=[Variant(name="a", version=1)])
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO prompt_store_prompts (name) VALUES ('greet')")
        for n, s in ((1, spec()), (2, spec(description="v2"))):
            await conn.execute(
                "INSERT INTO prompt_store_versions (name, version, content_hash, spec, created_by) "
                "VALUES ('greet', $1, $2, $3, 'ana')",
                n,
                s.content_hash(),
                s.canonical(),
            )
        await conn.execute(
            "INSERT INTO prompt_store_labels (name, label, version, moved_by) VALUES ('greet', 'production', 2, 'ana')"
        )
        await conn.execute(
            "INSERT INTO prompt_store_label_history (name, label, version, previous, moved_by) VALUES "
            "('greet', 'production', 1, NULL, 'ana'), ('greet', 'production', 2, 1, 'ben')"
        )
        await conn.execute(
            "INSERT INTO prompt_store_experiments (prompt, experiment, definition, updated_by) "
            "VALUES ('greet', 'ab', $1, 'ana')",
            json.loads(experiment.model_dump_json()),
        )
    return experiment


async def test_prompt_store_auth_migration_keeps_old_prompts_under_default(pool: Any) -> None:
    experiment = await seed_pre_tenant(pool)
    store = PostgresPromptStore(pool)
    await store.migrate()
    await store.migrate()  # idempotent once upgraded

    assert [
        (s.tenant, s.name, s.latest_version, s.labels, s.experiment) for s in await store.prompts(tenant=None)
    ] == [("default", "greet", 2, {"production": 2}, "ab")]
    assert [v.version for v in await store.versions("greet")] == [1, 2]
    assert [(m.previous, m.version, m.moved_by) for m in await store.label_history("greet")] == [
        (None, 1, "ana"),
        (1, 2, "ben"),
    ]
    assert await store.experiment("greet") == experiment
    resolved = await resolve(store, parse_ref("greet"), tenant="acme")  # shared with every tenant
    assert (resolved.tenant, resolved.version.version) == ("default", 2)

    # the same name (and content) can now live in another tenant, numbered and labelled apart
    pushed = await store.push(spec(), "cleo", tenant="acme")
    assert (pushed.version.version, pushed.created) == (1, True)
    await store.move_label("greet", "production", 1, "cleo", tenant="acme")
    assert await store.labels("greet") == {"production": 2}
    assert (await store.push(spec(), "dan")).created is False  # still unique per tenant

    keys = await pool.fetch(
        "SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS def FROM pg_constraint "
        "WHERE contype IN ('p', 'u', 'f') AND conrelid::regclass::text LIKE 'prompt_store_%' ORDER BY 1, 2"
    )
    assert all("tenant" in k["def"] for k in keys if k["t"] != "prompt_store_label_history"), keys
    indexes = {
        r["indexname"]
        for r in await pool.fetch("SELECT indexname FROM pg_indexes WHERE tablename LIKE 'prompt_store_%'")
    }
    assert "prompt_store_label_history_tenant_name" in indexes
    assert "prompt_store_label_history_name" not in indexes


async def test_prompt_store_auth_migration_creates_the_same_schema_as_an_upgrade(
    pool: Any, fresh_database: str
) -> None:
    async def constraints(p: Any) -> list[tuple[str, str, str]]:
        rows = await p.fetch(
            "SELECT conrelid::regclass::text AS t, conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
            "WHERE conrelid::regclass::text LIKE 'prompt_store_%' ORDER BY 1, 2"
        )
        return [(r["t"], r["conname"], r["def"]) for r in rows]

    await seed_pre_tenant(pool)
    await PostgresPromptStore(pool).migrate()
    upgraded = await constraints(pool)
    await pool.execute(
        "DROP TABLE prompt_store_experiments, prompt_store_labels, prompt_store_label_history, "
        "prompt_store_versions, prompt_store_prompts"
    )
    await PostgresPromptStore(pool).migrate()
    assert await constraints(pool) == upgraded

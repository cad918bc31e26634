"""The prompt store in PostgreSQL: versions (immutable), labels, label history, experiments, proposals
to promote experiment winners."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from cairn_bus.postgres import guarded, migrate, transaction
from cairn_prompt_store.domain.errors import VersionNotFoundError
from cairn_prompt_store.domain.experiments import Experiment
from cairn_prompt_store.domain.proposals import ProposalStatus, WinnerProposal
from cairn_prompt_store.domain.records import LabelMove, PromptSummary, PromptVersion, PushResult
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.domain.tenants import SHARED_TENANT

MIGRATION_LOCK = 0x0CA1_9507  # pg_advisory_xact_lock key: replicas starting together migrate one by one

DDL = """
CREATE TABLE IF NOT EXISTS prompt_store_prompts (
    tenant      text        NOT NULL DEFAULT 'default',
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS prompt_store_versions (
    tenant        text        NOT NULL DEFAULT 'default',
    name          text        NOT NULL,
    version       integer     NOT NULL CHECK (version >= 1),
    content_hash  text        NOT NULL,
    spec          jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL,
    PRIMARY KEY (tenant, name, version),
    CONSTRAINT prompt_store_versions_tenant_name_content_hash_key UNIQUE (tenant, name, content_hash),
    CONSTRAINT prompt_store_versions_tenant_name_fkey
        FOREIGN KEY (tenant, name) REFERENCES prompt_store_prompts (tenant, name)
);
CREATE TABLE IF NOT EXISTS prompt_store_labels (
    tenant    text        NOT NULL DEFAULT 'default',
    name      text        NOT NULL,
    label     text        NOT NULL,
    version   integer     NOT NULL,
    moved_by  text        NOT NULL,
    moved_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name, label),
    CONSTRAINT prompt_store_labels_tenant_name_version_fkey
        FOREIGN KEY (tenant, name, version) REFERENCES prompt_store_versions (tenant, name, version)
);
CREATE TABLE IF NOT EXISTS prompt_store_label_history (
    id        bigserial   PRIMARY KEY,
    tenant    text        NOT NULL DEFAULT 'default',
    name      text        NOT NULL,
    label     text        NOT NULL,
    version   integer     NOT NULL,
    previous  integer,
    moved_by  text        NOT NULL,
    moved_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS prompt_store_label_history_tenant_name
    ON prompt_store_label_history (tenant, name, id);
CREATE TABLE IF NOT EXISTS prompt_store_experiments (
    tenant      text        NOT NULL DEFAULT 'default',
    prompt      text        NOT NULL,
    experiment  text        NOT NULL,
    definition  jsonb       NOT NULL,
    updated_by  text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, prompt),
    CONSTRAINT prompt_store_experiments_tenant_prompt_fkey
        FOREIGN KEY (tenant, prompt) REFERENCES prompt_store_prompts (tenant, name)
);
CREATE TABLE IF NOT EXISTS prompt_store_winner_proposals (
    tenant         text              NOT NULL,
    conclusion_id  text              NOT NULL,
    prompt         text              NOT NULL,
    experiment     text              NOT NULL,
    label          text              NOT NULL,
    variant        text              NOT NULL,
    version        integer           NOT NULL,
    evidence       double precision  NOT NULL,
    summary        text              NOT NULL,
    proposed_at    timestamptz       NOT NULL,
    status         text              NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'dismissed')),
    closed_by      text,
    closed_at      timestamptz,
    PRIMARY KEY (tenant, conclusion_id)
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

TENANT_UPGRADE = """
DO $upgrade$
BEGIN
    IF to_regclass('prompt_store_prompts') IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'prompt_store_prompts'
            AND column_name = 'tenant'
    ) THEN
        ALTER TABLE prompt_store_prompts ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
        ALTER TABLE prompt_store_versions ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
        ALTER TABLE prompt_store_labels ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
        ALTER TABLE prompt_store_label_history ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
        ALTER TABLE prompt_store_experiments ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT 'default';
        ALTER TABLE prompt_store_experiments DROP CONSTRAINT IF EXISTS prompt_store_experiments_prompt_fkey;
        ALTER TABLE prompt_store_labels DROP CONSTRAINT IF EXISTS prompt_store_labels_name_version_fkey;
        ALTER TABLE prompt_store_versions DROP CONSTRAINT IF EXISTS prompt_store_versions_name_fkey;
        ALTER TABLE prompt_store_versions DROP CONSTRAINT IF EXISTS prompt_store_versions_name_content_hash_key;
        ALTER TABLE prompt_store_experiments DROP CONSTRAINT IF EXISTS prompt_store_experiments_pkey,
            ADD PRIMARY KEY (tenant, prompt);
        ALTER TABLE prompt_store_labels DROP CONSTRAINT IF EXISTS prompt_store_labels_pkey,
            ADD PRIMARY KEY (tenant, name, label);
        ALTER TABLE prompt_store_versions DROP CONSTRAINT IF EXISTS prompt_store_versions_pkey,
            ADD PRIMARY KEY (tenant, name, version),
            ADD CONSTRAINT prompt_store_versions_tenant_name_content_hash_key UNIQUE (tenant, name, content_hash);
        ALTER TABLE prompt_store_prompts DROP CONSTRAINT IF EXISTS prompt_store_prompts_pkey,
            ADD PRIMARY KEY (tenant, name);
        ALTER TABLE prompt_store_versions ADD CONSTRAINT prompt_store_versions_tenant_name_fkey
            FOREIGN KEY (tenant, name) REFERENCES prompt_store_prompts (tenant, name);
        ALTER TABLE prompt_store_labels ADD CONSTRAINT prompt_store_labels_tenant_name_version_fkey
            FOREIGN KEY (tenant, name, version) REFERENCES prompt_store_versions (tenant, name, version);
        ALTER TABLE prompt_store_experiments ADD CONSTRAINT prompt_store_experiments_tenant_prompt_fkey
            FOREIGN KEY (tenant, prompt) REFERENCES prompt_store_prompts (tenant, name);
        DROP INDEX IF EXISTS prompt_store_label_history_name;
    END IF;
END
$upgrade$
"""
"""Upgrades a database created before prompts had tenants: every existing row joins tenant `default`
and the keys and unique constraints gain the tenant. Does something only once (when
`prompt_store_prompts` exists without a `tenant` column), in the migration's transaction."""


def _version(row: Any) -> PromptVersion:
    return PromptVersion(
        name=row["name"],
        version=row["version"],
        spec=PromptSpec.model_validate(row["spec"]),
        content_hash=row["content_hash"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


def _move(row: Any) -> LabelMove:
    return LabelMove(
        row["name"], row["label"], row["version"], row["previous"], row["moved_by"], row["moved_at"]
    )


_VERSION_COLUMNS = "name, version, content_hash, spec, created_at, created_by"
_PROPOSAL_COLUMNS = (
    "conclusion_id, prompt, experiment, label, variant, version, evidence, summary, proposed_at, status, "
    "closed_by, closed_at"
)


def _proposal(row: Any) -> WinnerProposal:
    return WinnerProposal(**dict(row))


class PostgresPromptStore:
    """PromptStore on an asyncpg pool (`cairn_bus.postgres.create_pool`). Tables are prefixed `prompt_store_`."""

    def __init__(self, pool: Any, cache_size: int = 256) -> None:
        self.pool = pool
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str, int], PromptVersion] = OrderedDict()
        """Versions read before: they never change, so each is read from the database once."""
        self._known: set[tuple[str, str]] = set()
        """(tenant, name) of prompts seen to exist: prompts are never deleted."""

    def _remember(self, tenant: str, version: PromptVersion) -> PromptVersion:
        key = (tenant, version.name, version.version)
        self._cache[key] = version
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return version

    async def migrate(self) -> None:
        """Create the tables, indexes and the trigger that keeps versions immutable; upgrade tables made
        before tenants (their rows become tenant `default`)."""
        await migrate(self.pool, MIGRATION_LOCK, TENANT_UPGRADE, DDL)

    @guarded
    async def push(self, spec: PromptSpec, by: str, *, tenant: str = SHARED_TENANT) -> PushResult:
        digest = spec.content_hash()
        async with transaction(self.pool, "push a prompt version") as conn:
            await conn.execute(
                "INSERT INTO prompt_store_prompts (tenant, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                tenant,
                spec.name,
            )
            # one push per prompt at a time: version numbers stay dense and content unique
            await conn.execute(
                "SELECT 1 FROM prompt_store_prompts WHERE tenant = $1 AND name = $2 FOR UPDATE",
                tenant,
                spec.name,
            )
            row = await conn.fetchrow(
                f"SELECT {_VERSION_COLUMNS} FROM prompt_store_versions "
                "WHERE tenant = $1 AND name = $2 AND content_hash = $3",
                tenant,
                spec.name,
                digest,
            )
            if row is not None:
                return PushResult(_version(row), created=False)
            row = await conn.fetchrow(
                "INSERT INTO prompt_store_versions (tenant, name, version, content_hash, spec, created_by) "
                "SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4, $5 FROM prompt_store_versions "
                f"WHERE tenant = $1 AND name = $2 RETURNING {_VERSION_COLUMNS}",
                tenant,
                spec.name,
                digest,
                spec.canonical(),
                by,
            )
            return PushResult(_version(row), created=True)

    @guarded
    async def get(self, name: str, version: int, *, tenant: str = SHARED_TENANT) -> PromptVersion | None:
        cached = self._cache.get((tenant, name, version))
        if cached is not None:
            return cached
        row = await self.pool.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM prompt_store_versions "
            "WHERE tenant = $1 AND name = $2 AND version = $3",
            tenant,
            name,
            version,
        )
        return self._remember(tenant, _version(row)) if row else None

    @guarded
    async def versions(self, name: str, *, tenant: str = SHARED_TENANT) -> list[PromptVersion]:
        rows = await self.pool.fetch(
            f"SELECT {_VERSION_COLUMNS} FROM prompt_store_versions WHERE tenant = $1 AND name = $2 "
            "ORDER BY version",
            tenant,
            name,
        )
        return [_version(r) for r in rows]

    @guarded
    async def labels(self, name: str, *, tenant: str = SHARED_TENANT) -> dict[str, int]:
        rows = await self.pool.fetch(
            "SELECT label, version FROM prompt_store_labels WHERE tenant = $1 AND name = $2 ORDER BY label",
            tenant,
            name,
        )
        return {r["label"]: r["version"] for r in rows}

    @guarded
    async def move_label(
        self, name: str, label: str, version: int, by: str, *, tenant: str = SHARED_TENANT
    ) -> LabelMove:
        async with transaction(self.pool, "move a label") as conn:
            exists = await conn.fetchval(
                "SELECT 1 FROM prompt_store_versions WHERE tenant = $1 AND name = $2 AND version = $3",
                tenant,
                name,
                version,
            )
            if not exists:
                raise VersionNotFoundError(f"prompt {name!r} has no version {version}")
            await conn.execute(
                "SELECT 1 FROM prompt_store_prompts WHERE tenant = $1 AND name = $2 FOR UPDATE", tenant, name
            )
            previous = await conn.fetchval(
                "SELECT version FROM prompt_store_labels WHERE tenant = $1 AND name = $2 AND label = $3",
                tenant,
                name,
                label,
            )
            if previous == version:
                row = await conn.fetchrow(
                    "SELECT name, label, version, $4::integer AS previous, moved_by, moved_at "
                    "FROM prompt_store_labels WHERE tenant = $1 AND name = $2 AND label = $3",
                    tenant,
                    name,
                    label,
                    version,
                )
                return _move(row)
            await conn.execute(
                "INSERT INTO prompt_store_labels (tenant, name, label, version, moved_by) "
                "VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (tenant, name, label) DO UPDATE SET version = EXCLUDED.version, "
                "moved_by = EXCLUDED.moved_by, moved_at = now()",
                tenant,
                name,
                label,
                version,
                by,
            )
            row = await conn.fetchrow(
                "INSERT INTO prompt_store_label_history (tenant, name, label, version, previous, moved_by) "
                "VALUES ($1, $2, $3, $4, $5, $6) RETURNING name, label, version, previous, moved_by, moved_at",
                tenant,
                name,
                label,
                version,
                previous,
                by,
            )
            return _move(row)

    @guarded
    async def label_history(self, name: str, *, tenant: str = SHARED_TENANT) -> list[LabelMove]:
        rows = await self.pool.fetch(
            "SELECT name, label, version, previous, moved_by, moved_at FROM prompt_store_label_history "
            "WHERE tenant = $1 AND name = $2 ORDER BY id",
            tenant,
            name,
        )
        return [_move(r) for r in rows]

    @guarded
    async def has_prompt(self, name: str, *, tenant: str = SHARED_TENANT) -> bool:
        if (tenant, name) in self._known:
            return True
        found = await self.pool.fetchval(
            "SELECT 1 FROM prompt_store_versions WHERE tenant = $1 AND name = $2 LIMIT 1", tenant, name
        )
        if found:
            self._known.add((tenant, name))
        return bool(found)

    @guarded
    async def prompts(self, *, tenant: str | None = SHARED_TENANT) -> list[PromptSummary]:
        rows = await self.pool.fetch(
            """
            SELECT p.tenant, p.name, v.version, v.spec->>'description' AS description, v.created_at,
                   e.experiment,
                   coalesce((SELECT jsonb_object_agg(l.label, l.version ORDER BY l.label)
                             FROM prompt_store_labels l
                             WHERE l.tenant = p.tenant AND l.name = p.name), '{}'::jsonb) AS labels
            FROM prompt_store_prompts p
            JOIN LATERAL (SELECT version, spec, created_at FROM prompt_store_versions
                          WHERE tenant = p.tenant AND name = p.name ORDER BY version DESC LIMIT 1) v ON true
            LEFT JOIN prompt_store_experiments e ON e.tenant = p.tenant AND e.prompt = p.name
            WHERE $1::text IS NULL OR p.tenant = $1
            ORDER BY p.name, p.tenant
            """,
            tenant,
        )
        return [
            PromptSummary(
                r["name"],
                r["version"],
                r["description"] or "",
                dict(sorted(r["labels"].items())),
                r["experiment"],
                r["created_at"],
                r["tenant"],
            )
            for r in rows
        ]

    @guarded
    async def set_experiment(self, experiment: Experiment, by: str, *, tenant: str = SHARED_TENANT) -> None:
        await self.pool.execute(
            "INSERT INTO prompt_store_experiments (tenant, prompt, experiment, definition, updated_by) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, prompt) DO UPDATE SET "
            "experiment = EXCLUDED.experiment, definition = EXCLUDED.definition, "
            "updated_by = EXCLUDED.updated_by, updated_at = now()",
            tenant,
            experiment.prompt,
            experiment.name,
            experiment.model_dump(mode="json"),
            by,
        )

    @guarded
    async def experiment(self, prompt: str, *, tenant: str = SHARED_TENANT) -> Experiment | None:
        data = await self.pool.fetchval(
            "SELECT definition FROM prompt_store_experiments WHERE tenant = $1 AND prompt = $2",
            tenant,
            prompt,
        )
        return Experiment.model_validate(data) if data is not None else None

    @guarded
    async def clear_experiment(self, prompt: str, *, tenant: str = SHARED_TENANT) -> bool:
        deleted = await self.pool.fetchval(
            "DELETE FROM prompt_store_experiments WHERE tenant = $1 AND prompt = $2 RETURNING 1",
            tenant,
            prompt,
        )
        return deleted is not None

    @guarded
    async def experiments(self, *, tenant: str = SHARED_TENANT) -> list[Experiment]:
        rows = await self.pool.fetch(
            "SELECT definition FROM prompt_store_experiments WHERE tenant = $1 ORDER BY prompt", tenant
        )
        return [Experiment.model_validate(r["definition"]) for r in rows]

    @guarded
    async def propose_winner(self, proposal: WinnerProposal, *, tenant: str = SHARED_TENANT) -> bool:
        p = proposal
        done = await self.pool.fetchval(
            "INSERT INTO prompt_store_winner_proposals (tenant, conclusion_id, prompt, experiment, label, "
            "variant, version, evidence, summary, proposed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (tenant, conclusion_id) DO NOTHING RETURNING 1",
            tenant,
            p.conclusion_id,
            p.prompt,
            p.experiment,
            p.label,
            p.variant,
            p.version,
            p.evidence,
            p.summary,
            p.proposed_at,
        )
        return done is not None

    @guarded
    async def proposals(
        self, *, tenant: str = SHARED_TENANT, status: ProposalStatus | None = None
    ) -> list[WinnerProposal]:
        rows = await self.pool.fetch(
            f"SELECT {_PROPOSAL_COLUMNS} FROM prompt_store_winner_proposals WHERE tenant = $1 "
            "AND ($2::text IS NULL OR status = $2) ORDER BY proposed_at, conclusion_id",
            tenant,
            status,
        )
        return [_proposal(r) for r in rows]

    @guarded
    async def close_proposal(
        self, conclusion_id: str, status: ProposalStatus, by: str, *, tenant: str = SHARED_TENANT
    ) -> WinnerProposal | None:
        row = await self.pool.fetchrow(
            "UPDATE prompt_store_winner_proposals SET status = $3, closed_by = $4, closed_at = now() "
            f"WHERE tenant = $1 AND conclusion_id = $2 AND status = 'open' RETURNING {_PROPOSAL_COLUMNS}",
            tenant,
            conclusion_id,
            status,
            by,
        )
        return _proposal(row) if row is not None else None

"""The evaluator's PostgreSQL tables (`registry_*`, `eval_*`, `online_*`, `shadow_*`) and their migration."""

from __future__ import annotations

from typing import Any

from cairn_bus import postgres

MIGRATION_LOCK = 0x0CA1_E7A1  # pg_advisory_xact_lock key: replicas starting together migrate one by one

DDL = """
CREATE TABLE IF NOT EXISTS registry_versions (
    name             text        NOT NULL,
    version          integer     NOT NULL CHECK (version >= 1),
    base_model       text        NOT NULL,
    adapter_uri      text,
    dataset_id       text,
    dataset_version  integer,
    job_id           text,
    config           jsonb       NOT NULL,
    metrics          jsonb       NOT NULL,
    code_version     text        NOT NULL,
    registered_at    timestamptz NOT NULL,
    stage            text        NOT NULL CHECK (stage IN ('dev', 'staging', 'production', 'archived')),
    PRIMARY KEY (name, version)
);
ALTER TABLE registry_versions ADD COLUMN IF NOT EXISTS quantization text;
CREATE UNIQUE INDEX IF NOT EXISTS registry_one_production
    ON registry_versions (name) WHERE stage = 'production';
CREATE TABLE IF NOT EXISTS registry_promotions (
    id               bigserial   PRIMARY KEY,
    event_id         text        NOT NULL UNIQUE,
    cause_event_id   text        NOT NULL,
    name             text        NOT NULL,
    version          integer     NOT NULL,
    from_stage       text,
    to_stage         text        NOT NULL,
    promoted_by      text        NOT NULL,
    reason           text        NOT NULL,
    evidence_run_id  text,
    promoted_at      timestamptz NOT NULL,
    FOREIGN KEY (name, version) REFERENCES registry_versions (name, version)
);
CREATE INDEX IF NOT EXISTS registry_promotions_cause ON registry_promotions (cause_event_id);
CREATE INDEX IF NOT EXISTS registry_promotions_name ON registry_promotions (name, id);
CREATE TABLE IF NOT EXISTS registry_aliases (
    name     text        NOT NULL,
    alias    text        NOT NULL,
    version  integer     NOT NULL,
    set_by   text        NOT NULL,
    set_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES registry_versions (name, version)
);
CREATE TABLE IF NOT EXISTS eval_runs (
    run_id             text        PRIMARY KEY,
    model_name         text        NOT NULL,
    candidate_version  integer     NOT NULL,
    baseline_version   integer,
    status             text        NOT NULL CHECK (status IN ('running', 'passed', 'failed')),
    started_at         timestamptz NOT NULL,
    deadline           timestamptz NOT NULL,
    cause_event_id     text        NOT NULL,
    suites             jsonb       NOT NULL,
    sent               boolean     NOT NULL DEFAULT false,
    scores             jsonb       NOT NULL DEFAULT '[]'::jsonb,
    passed             boolean,
    verdict            text,
    report_uri         text,
    completed_at       timestamptz
);
ALTER TABLE eval_runs ADD COLUMN IF NOT EXISTS purpose text NOT NULL DEFAULT 'gate'
    CHECK (purpose IN ('gate', 'compare'));
CREATE INDEX IF NOT EXISTS eval_runs_running ON eval_runs (deadline) WHERE status = 'running';
CREATE TABLE IF NOT EXISTS eval_requests (
    request_id   text        PRIMARY KEY,
    run_id       text        NOT NULL REFERENCES eval_runs (run_id),
    case_index   integer     NOT NULL,
    side         text        NOT NULL CHECK (side IN ('c', 'b')),
    suite        text        NOT NULL,
    case_data    jsonb       NOT NULL,
    status       text,
    text         text,
    reason       text,
    answered_at  timestamptz,
    UNIQUE (run_id, case_index, side)
);
ALTER TABLE eval_requests ADD COLUMN IF NOT EXISTS prompt_ref text;
"""


ONLINE_DDL = """
CREATE TABLE IF NOT EXISTS online_responses (
    event_id        text             PRIMARY KEY,
    request_id      text             NOT NULL,
    tenant          text             NOT NULL,
    prompt_name     text,
    prompt_version  integer,
    model           text,
    model_version   text,
    status          text             NOT NULL,
    refused         boolean          NOT NULL,
    input_tokens    integer,
    output_tokens   integer,
    groundedness    double precision,
    completed_at    timestamptz      NOT NULL
);
CREATE INDEX IF NOT EXISTS online_responses_time ON online_responses (completed_at);
CREATE INDEX IF NOT EXISTS online_responses_request ON online_responses (request_id);
CREATE TABLE IF NOT EXISTS online_requests (
    event_id       text         PRIMARY KEY,
    request_id     text         NOT NULL,
    tenant         text         NOT NULL,
    prompt_name    text         NOT NULL,
    prompt_length  integer      NOT NULL,
    embedding      real[],
    submitted_at   timestamptz  NOT NULL
);
CREATE INDEX IF NOT EXISTS online_requests_time ON online_requests (submitted_at);
CREATE TABLE IF NOT EXISTS online_feedback (
    event_id      text         PRIMARY KEY,
    feedback_id   text         NOT NULL,
    request_id    text         NOT NULL,
    tenant        text         NOT NULL,
    rating        smallint,
    thumbs        text CHECK (thumbs IN ('up', 'down')),
    submitted_at  timestamptz  NOT NULL
);
CREATE INDEX IF NOT EXISTS online_feedback_time ON online_feedback (submitted_at);
CREATE TABLE IF NOT EXISTS online_attributions (
    event_id        text         PRIMARY KEY,
    request_id      text         NOT NULL,
    tenant          text         NOT NULL,
    prompt_name     text         NOT NULL,
    prompt_version  integer      NOT NULL,
    experiment      text,
    variant         text,
    rendered_at     timestamptz  NOT NULL
);
CREATE INDEX IF NOT EXISTS online_attributions_request ON online_attributions (request_id);
CREATE INDEX IF NOT EXISTS online_attributions_experiment
    ON online_attributions (tenant, prompt_name, experiment, rendered_at);
CREATE TABLE IF NOT EXISTS online_experiment_conclusions (
    conclusion_id  text         PRIMARY KEY,
    tenant         text         NOT NULL,
    prompt_name    text         NOT NULL,
    experiment     text         NOT NULL,
    winner         text         NOT NULL,
    event          jsonb        NOT NULL,
    concluded_at   timestamptz  NOT NULL,
    published      boolean      NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS online_alert_state (
    key            text         PRIMARY KEY,
    last_fired_at  timestamptz  NOT NULL
);
CREATE TABLE IF NOT EXISTS online_alerts (
    alert_id    text              PRIMARY KEY,
    key         text              NOT NULL,
    alert_name  text              NOT NULL,
    severity    text              NOT NULL,
    summary     text              NOT NULL,
    labels      jsonb             NOT NULL,
    value       double precision,
    raised_at   timestamptz       NOT NULL,
    published   boolean           NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS online_alerts_time ON online_alerts (raised_at);
CREATE INDEX IF NOT EXISTS online_alerts_unpublished ON online_alerts (raised_at) WHERE NOT published;
"""
"""The online part's tables (`online_*`): live responses, requests, feedback, attributions, alerts,
experiment conclusions."""

SHADOW_DDL = """
CREATE TABLE IF NOT EXISTS shadow_configs (
    shadow_id    text              PRIMARY KEY,
    model        text,
    prompt       text,
    share        double precision  NOT NULL CHECK (share >= 0 AND share <= 1),
    tenant       text,
    prompt_name  text,
    enabled      boolean           NOT NULL,
    created_by   text              NOT NULL,
    created_at   timestamptz       NOT NULL,
    updated_by   text              NOT NULL,
    updated_at   timestamptz       NOT NULL,
    CHECK (model IS NOT NULL OR prompt IS NOT NULL)
);
CREATE TABLE IF NOT EXISTS shadow_mirrors (
    shadow_id          text         NOT NULL,
    request_id         text         NOT NULL,
    shadow_request_id  text         NOT NULL UNIQUE,
    tenant             text         NOT NULL,
    live_event_id      text         NOT NULL,
    submitted_at       timestamptz  NOT NULL,
    mirrored_at        timestamptz  NOT NULL,
    PRIMARY KEY (shadow_id, request_id)
);
CREATE INDEX IF NOT EXISTS shadow_mirrors_time ON shadow_mirrors (shadow_id, mirrored_at);
CREATE TABLE IF NOT EXISTS shadow_answers (
    shadow_id       text              NOT NULL,
    request_id      text              NOT NULL,
    side            text              NOT NULL CHECK (side IN ('live', 'shadow')),
    event_id        text              NOT NULL,
    status          text              NOT NULL,
    refused         boolean           NOT NULL,
    groundedness    double precision,
    input_tokens    integer,
    output_tokens   integer,
    model           text,
    model_version   text,
    prompt_name     text,
    prompt_version  integer,
    completed_at    timestamptz       NOT NULL,
    PRIMARY KEY (shadow_id, request_id, side)
);
CREATE INDEX IF NOT EXISTS shadow_answers_time ON shadow_answers (shadow_id, completed_at);
"""
"""Shadow traffic (`shadow_*`): shadows, the live requests they mirrored, both sides' answers."""


async def migrate(pool: Any) -> None:
    """Create the evaluator's tables and indexes (idempotent; one replica at a time)."""
    await postgres.migrate(pool, MIGRATION_LOCK, DDL, ONLINE_DDL, SHADOW_DDL)

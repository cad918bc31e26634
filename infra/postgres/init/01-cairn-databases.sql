-- Cairn: one database per service that owns state (no service reads another service's tables).
-- Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d), as
-- POSTGRES_USER, which owns every database. The names match CAIRN_POSTGRES_DSN in
-- docker-compose.yml and the Secrets described in infra/README.md.
-- Production hardening (optional): one login role per service, each owning only its database.

CREATE DATABASE cairn_prompt_store;
CREATE DATABASE cairn_retriever;
CREATE DATABASE cairn_safety;
CREATE DATABASE cairn_tuner;
CREATE DATABASE cairn_evaluator;
CREATE DATABASE cairn_feedback;
CREATE DATABASE cairn_audit;
CREATE DATABASE cairn_gateway;

-- pgvector: the retriever keeps embeddings here when CAIRN_VECTOR_STORE=pgvector (the local
-- stack's default) and its ingestion provenance in any case; the extension costs nothing unused.
\connect cairn_retriever
CREATE EXTENSION IF NOT EXISTS vector;

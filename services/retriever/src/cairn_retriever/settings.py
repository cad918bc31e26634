"""Settings of the retriever service (env prefix CAIRN_)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from cairn_bus.settings import PostgresSettings, S3Settings, ServiceSettings, http_api_settings


class Settings(
    ServiceSettings,
    PostgresSettings,
    S3Settings,
    http_api_settings(8082, "ingestion and search"),  # type: ignore[misc]
):
    """Document ingestion, embeddings and hybrid search."""

    service_name: str = Field("retriever", description="Service name.")
    consumer_concurrency: int = Field(
        8,
        ge=1,
        description="Requests of a consumed batch handled at once (order kept per request), so their "
        "query embeddings share one model call.",
    )
    query_batch_window_ms: float = Field(
        5.0, ge=0, le=1000, description="How long a query waits for others to share its embedding call."
    )
    query_batch_max: int = Field(32, ge=1, description="Most queries embedded in one model call.")
    postgres_pool_max: int = Field(
        20,
        ge=1,
        description="Maximum pooled connections: each request in flight holds one for its inbox claim "
        "and takes another to search, so at least 2 x consumer_concurrency + 1.",
    )

    @model_validator(mode="after")
    def _pool_fits_the_concurrency(self) -> "Settings":
        needed = 2 * self.consumer_concurrency + 1
        if self.postgres_pool_max < needed:
            raise ValueError(
                f"CAIRN_POSTGRES_POOL_MAX={self.postgres_pool_max} is too small for "
                f"CAIRN_CONSUMER_CONCURRENCY={self.consumer_concurrency}: each request in flight holds one "
                f"connection for its inbox claim and needs another to search; give at least {needed}"
            )
        return self

    vector_store: Literal["pgvector", "weaviate"] = Field("pgvector", description="Vector store adapter.")
    weaviate_url: str | None = Field(None, description="Weaviate HTTP URL when vector_store=weaviate.")
    weaviate_grpc_port: int = Field(50051, description="Weaviate gRPC port.")
    embedding_model_path: str | None = Field(None, description="Local path of the embedding model.")

    # --- embeddings ---
    embedding_dimension: int = Field(
        384, ge=1, description="Dimension of the embedding vectors (all-MiniLM-L6-v2: 384)."
    )
    embedding_batch_size: int = Field(32, ge=1, description="Texts embedded per model call at ingestion.")
    embedding_threads: int | None = Field(
        1,
        ge=1,
        description="torch intra-op threads for embedding (process-wide); unset keeps torch's default "
        "(every core). 1 by default: the service embeds a few queries at a time beside other busy "
        "processes, where torch's default collapsed (a query took 184 ms p50 against 58 ms with one "
        "thread on a busy 2-core machine); raise it for bulk ingestion on a machine of its own.",
    )

    # --- chunking (ingestion) ---
    chunk_unit: Literal["tokens", "chars"] = Field(
        "tokens",
        description="What chunk_size and chunk_overlap count: the embedding model's tokens or characters.",
    )
    chunk_size: int = Field(
        200, ge=8, description="Largest chunk, in chunk_unit (MiniLM reads at most 256 tokens)."
    )
    chunk_overlap: int = Field(
        40, ge=0, description="Most text a chunk repeats from the end of the previous one, in chunk_unit."
    )
    default_collection: str = Field(
        "default", min_length=1, description="Collection used when a request or command names none."
    )

    # --- search ---
    retrieval_mode: Literal["hybrid", "vector"] = Field(
        "hybrid",
        description="How requests search: vector + full-text fused by reciprocal rank, or vector only.",
    )
    rrf_k: int = Field(
        60, ge=1, description="Reciprocal rank fusion constant: score = sum 1 / (rrf_k + rank)."
    )
    candidate_depth: int = Field(
        40, ge=1, description="Candidates taken from each ranked list (vector, full text) before fusion."
    )
    hnsw_ef_search: int = Field(
        100,
        ge=1,
        description="pgvector hnsw.ef_search (raised to candidate_depth when smaller); on the index's "
        "ef_construction 128, 100 gave recall@10 1.0 (vector) and 0.998 (hybrid) at 100k chunks where "
        "40 gave 0.94 and 0.96 (benchmarks/retrieval_bench.py).",
    )
    fulltext_rank_limit: int = Field(
        2000,
        ge=1,
        description="pgvector: most full-text matches ranked per query (bounds the cost of very common words).",
    )
    fulltext_language: str = Field(
        "english",
        pattern=r"^[a-z_]+$",
        description="PostgreSQL text search configuration of the full-text column (fixed at table creation).",
    )
    weaviate_alpha: float = Field(
        0.5, ge=0.0, le=1.0, description="Weaviate hybrid weight: 1 is pure vector, 0 pure BM25."
    )

    # --- context assembly ---
    context_token_budget: int = Field(
        1024,
        ge=0,
        description="Most tokens the retrieved-context system message may take, counted with the "
        "embedding model's tokenizer.",
    )
    give_up_after_s: float = Field(
        300.0,
        gt=0,
        description="A request whose retrieval keeps failing transiently (vector store down) for this long "
        "after it was rendered is answered `failed` instead of retried again.",
    )
    retrieval_hit_threshold: float = Field(
        0.3,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity a context chunk must reach for the request to count as a retrieval "
        "hit in `cairn_retrieval_hits_total` (monitoring only: what goes into the context is unchanged).",
    )

    # --- ingestion HTTP API (host, port, enabled: `http_api_settings`) ---
    ingest_roots: list[Path] = Field(
        [],
        description="Folders whose files `POST /v1/ingest` may read (a path outside every root is refused; "
        "none: no local files over HTTP). s3:// and pydoc: sources need no root.",
    )
    max_upload_chars: int = Field(
        2_000_000, ge=1, description="Largest document text `POST /v1/documents` accepts, in characters."
    )

    # --- the retrieval loop: feedback moves ranking (domain/priors.py) ---
    prior_weight: float = Field(
        0.05,
        ge=0.0,
        le=10.0,
        description="Weight w of the learned per-chunk prior in ranking: a candidate scores "
        "f/f_top + w * prior, f its store score relative to the best candidate's, prior in (-1, 1). "
        "0 turns the loop off (nothing is recorded, feedback is ignored). Chosen on "
        "benchmarks/retrieval_loop_bench.py (docs/retrieval-loop.md).",
    )
    prior_smoothing: float = Field(
        1.0, gt=0.0, description="Smoothing s of a chunk's prior (up - down) / (up + down + s)."
    )
    prior_candidates: int = Field(
        20,
        ge=1,
        le=200,
        description="Candidates retrieved per request for the prior to reorder (at least the request's "
        "top_k); a source feedback names as right can only be raised when it is among them.",
    )
    served_retention_days: float = Field(
        30.0,
        gt=0.0,
        description="How long the chunks served to a request are kept for feedback to refer to "
        "(cairn.feedback keeps 30 days); older records are purged hourly.",
    )

    # --- watched sources: re-ingested when their content changes (reindex.py) ---
    watched_sources: list[str] = Field(
        [],
        description="Sources scanned for changes, each `<collection>=<source>`: the stored collection "
        "(`<tenant>/<name>`, or `<name>` for the shared tenant) and a folder, file or s3://bucket/prefix. "
        "Changed documents are re-ingested, removed ones deleted, one cairn.document.reindexed.v1 each.",
    )
    source_scan_interval_s: float = Field(
        300.0,
        ge=0.0,
        description="Seconds between scans of the watched sources (0: only `cairn docs rescan`).",
    )

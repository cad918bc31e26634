"""Settings of the gateway service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings, http_api_settings


class Settings(ServiceSettings, PostgresSettings, http_api_settings(8090, "OpenAI-compatible")):  # type: ignore[misc]
    """The OpenAI-compatible front door: submits requests on `cairn.requests`, answers from `cairn.responses`
    (and streams from `cairn.completions.deltas`)."""

    service_name: str = Field("gateway", description="Service name.")
    gateway_default_prompt: str = Field(
        "qa", description="The prompt of a request whose `model` names only a model (`model:cairn-qa:2`)."
    )
    gateway_answer_timeout_s: float = Field(
        120.0, gt=0, description="Longest an HTTP request waits for its answer before a 504."
    )
    gateway_idempotency_retention_s: float = Field(
        86_400.0,
        gt=0,
        description="How long requests sent with an Idempotency-Key and their answers are kept; until "
        "then an answer that comes after a 504, or after a `held` answer (the reviewer's decision), is "
        "stored for the retry.",
    )
    gateway_stream_holdback_chars: int = Field(
        64,
        ge=0,
        description="A streamed answer's last characters that are kept unsent until output screening "
        "has judged the answer; everything before them is streamed as it is generated.",
    )
    gateway_stream_verdict_first_tenants: list[str] = Field(
        [],
        description="Tenants whose streamed answers are sent only once output screening has judged "
        'them (nothing before the verdict); a JSON list, e.g. `["acme"]`.',
    )
    gateway_prompt_store_url: str | None = Field(
        "http://127.0.0.1:8081",
        description="Prompt store API, read by `GET /v1/models`; unset: no prompts listed.",
    )
    gateway_registry_url: str | None = Field(
        "http://127.0.0.1:8084",
        description="Model registry (evaluator) API, read by `GET /v1/models`; unset: no models listed.",
    )
    gateway_audit_url: str | None = Field(
        "http://127.0.0.1:8085",
        description="Audit query API, read by the console (requests, trails, datasets, tuning, alerts, charts); unset: those pages say so.",
    )
    gateway_safety_url: str | None = Field(
        "http://127.0.0.1:8083",
        description="Safety API, used by the console's review queue; unset: that page says so.",
    )
    console_enabled: bool = Field(True, description="Serve the operator console at `/console`.")
    price_table: str | None = Field(
        None,
        description="YAML price table (`infra/prices.yaml`: USD per 1M input/output tokens by model) the "
        "console's cost chart prices answers with, as inference and `cairn report` do; unset: "
        "`<repo>/infra/prices.yaml` when present, else the console charts tokens only.",
    )
    console_session_s: float = Field(
        28_800.0, gt=0, description="How long a console login lasts (seconds; a revoked key ends it at once)."
    )
    console_secure_cookie: bool = Field(
        False, description="Mark the console's session cookie `Secure` (set it when TLS is in front)."
    )

"""Settings every Cairn service process shares, read from `CAIRN_*` environment variables.

A service's own `Settings` class inherits from `ServiceSettings` (and the mixins it needs), so
one environment file configures the bus, logging and tracing the same way in every service.
"""

from __future__ import annotations

import os
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cairn_bus.secrets import optional_secret, register_secret

ENV_PREFIX = "CAIRN_"
S = TypeVar("S", bound=BaseSettings)

SECRET: dict[str, Any] = {"cairn_secret": True}
"""`Field(..., json_schema_extra=SECRET)` marks a credential: it is read with `read_secret(<field name>)`
(`CAIRN_<FIELD>`, `CAIRN_<FIELD>_FILE` or Vault) and registered for log redaction."""
PUBLIC_CREDENTIAL: dict[str, Any] = {"cairn_secret": "public"}
"""The public half of a credential (an S3 access key): read like a SECRET, not redacted from logs."""


def _credential_kind(field: FieldInfo) -> object:
    extra = field.json_schema_extra
    return extra.get("cairn_secret") if isinstance(extra, dict) else None


def credential_fields(settings_cls: type[BaseSettings]) -> list[str]:
    """The fields of `settings_cls` read through `read_secret` (SECRET or PUBLIC_CREDENTIAL), sorted."""
    return sorted(name for name, field in settings_cls.model_fields.items() if _credential_kind(field))


class ReadSecretSource(PydanticBaseSettingsSource):
    """Every credential field of the settings, read through `read_secret`: after the values given to the
    constructor, before the plain environment (which `read_secret` covers for these fields)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every credential at once

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            kind = _credential_kind(field)
            if kind:
                value = optional_secret(name, redacted=kind is True)
                if value is not None:
                    values[name] = value
        return values


class CairnSettings(BaseSettings):
    """Base of every `CAIRN_*` settings class: credential fields (marked SECRET) come through `read_secret`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            ReadSecretSource(settings_cls),
            env_settings,
            dotenv_settings,
            file_secret_settings,
        )


class ServiceSettings(CairnSettings):
    """Bus, logging and telemetry settings of one service process."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    service_name: str = Field("cairn", description="Name used for ce_source, logs, traces and the group id.")
    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma separated.")
    kafka_group_id: str | None = Field(
        None, description="Consumer group id; defaults to `cairn-<service_name>`."
    )
    kafka_session_timeout_ms: int = Field(
        10_000, description="Consumer session timeout. Apache Kafka rejects values below 6000."
    )
    kafka_heartbeat_interval_ms: int = Field(3_000, description="Consumer heartbeat interval.")
    kafka_fetch_max_wait_ms: int = Field(
        500,
        ge=0,
        description="Longest the broker may hold a fetch with no data. Tansu answers a held fetch only "
        "when this expires, even if records arrive, so the local runner sets it low.",
    )
    kafka_fetch_max_wait_idle_ms: int | None = Field(
        None,
        ge=0,
        description="Fetch wait once the consumer has had no records for `kafka_fetch_idle_after_ms` "
        "(unset: the same as `kafka_fetch_max_wait_ms`). The local runner lengthens it so an idle stack "
        "does not poll Tansu 40 times a second per consumer; the first records after a quiet spell then "
        "wait up to about half of it per hop. Leave unset on Apache Kafka.",
    )
    kafka_fetch_idle_after_ms: int = Field(
        10_000, ge=0, description="Quiet time after which a consumer uses `kafka_fetch_max_wait_idle_ms`."
    )
    kafka_auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a new consumer group starts reading."
    )
    kafka_request_timeout_ms: int = Field(30_000, description="Producer and admin request timeout.")
    consumer_max_attempts: int = Field(
        3, ge=1, description="Handler attempts for one event before it is dead-lettered."
    )
    consumer_batch_max_records: int = Field(
        200, ge=1, description="Most records taken (and committed) in one batch by a consumer."
    )
    consumer_batch_timeout_ms: int = Field(
        1000,
        ge=1,
        description="Longest one poll of a consumer waits for records; it returns as soon as some are "
        "there, so this only sets how often an idle consumer wakes up.",
    )
    consumer_linger_ms: int = Field(
        0,
        ge=0,
        description="After a batch, wait this long before the next poll so the next batch carries "
        "what arrived meanwhile (fewer transactions and commits per record). For consumers off the "
        "request path, such as the audit: it adds up to this much to their lag.",
    )
    consumer_concurrency: int = Field(
        1,
        ge=1,
        description="Records of different keys handled at once within a batch (order kept per key); "
        "the inference service raises it so concurrent requests share a forward pass.",
    )
    consumer_retry_backoff_ms: int = Field(200, ge=0, description="Backoff between handler attempts.")
    consumer_lag_interval_ms: int = Field(
        1000,
        ge=0,
        description="Shortest time between two updates of the consumer-lag gauge (each walks every "
        "assigned partition); a burst's last batch is still followed by one update.",
    )
    deadletter_topic: str = Field("cairn.deadletter", description="Topic receiving undeliverable events.")
    log_level: str = Field("INFO", description="Log level (DEBUG, INFO, WARNING, ERROR).")
    log_format: Literal["json", "console"] = Field("json", description="structlog renderer.")
    otel_traces_exporter: Literal["none", "console", "otlp"] = Field(
        "none", description="Where OpenTelemetry spans go; `otlp` needs the OTLP exporter package."
    )
    otel_exporter_otlp_endpoint: str | None = Field(None, description="OTLP endpoint for traces/metrics.")
    metrics_port: int | None = Field(
        None, description="Port of the Prometheus /metrics endpoint; off if unset."
    )
    metrics_host: str = Field(
        "127.0.0.1", description="Bind address of /metrics; 0.0.0.0 in containers so Prometheus can scrape."
    )
    kafka_replication_factor: int = Field(
        1, ge=1, description="Replication factor of topics a service creates (3 on a production cluster)."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How every Kafka client of the process connects: PLAINTEXT (the local stack), SSL "
        "(TLS), SASL_PLAINTEXT or SASL_SSL (TLS and SASL authentication; production).",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism when the protocol is SASL_*."
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user of this service (required when the protocol is SASL_*)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None,
        description="SASL password (`CAIRN_KAFKA_SASL_PASSWORD`, `CAIRN_KAFKA_SASL_PASSWORD_FILE` or Vault).",
        json_schema_extra=SECRET,
    )
    kafka_ssl_cafile: str | None = Field(
        None,
        description="PEM file of the CA(s) that signed the broker certificates (SSL, SASL_SSL); unset: "
        "the system's trusted CAs.",
    )
    kafka_ssl_certfile: str | None = Field(
        None, description="PEM client certificate for mutual TLS (optional; with `kafka_ssl_keyfile`)."
    )
    kafka_ssl_keyfile: str | None = Field(
        None, description="PEM private key of `kafka_ssl_certfile` (mutual TLS)."
    )
    kafka_ssl_check_hostname: bool = Field(
        True,
        description="Refuse a broker whose certificate does not name the host connected to. Turn off "
        "only for a broker reached through an address its certificate cannot name.",
    )

    @property
    def group_id(self) -> str:
        """The consumer group of this service."""
        return self.kafka_group_id or f"cairn-{self.service_name}"


class PostgresSettings(CairnSettings):
    """PostgreSQL connection of a service that owns tables."""

    postgres_dsn: str = Field(
        "postgresql://cairn@127.0.0.1:15432/cairn",
        description="asyncpg DSN of the service's database, without the password: that comes from "
        "`postgres_password` and is put into the DSN here.",
    )
    postgres_password: SecretStr | None = Field(
        None,
        description="Database password, through `read_secret` (`CAIRN_POSTGRES_PASSWORD`, "
        "`CAIRN_POSTGRES_PASSWORD_FILE` or Vault); none for a server that trusts the connection.",
        json_schema_extra=SECRET,
    )
    postgres_pool_min: int = Field(1, ge=0, description="Minimum pooled connections.")
    postgres_pool_max: int = Field(5, ge=1, description="Maximum pooled connections.")

    @model_validator(mode="before")
    @classmethod
    def _password_into_dsn(cls, data: Any) -> Any:
        if isinstance(data, dict) and "postgres_dsn" in cls.model_fields:
            default = cls.model_fields["postgres_dsn"].default
            data = {
                **data,
                "postgres_dsn": dsn_with_password(
                    data.get("postgres_dsn", default), data.get("postgres_password")
                ),
            }
        return data


class S3Settings(CairnSettings):
    """S3-compatible object store (SeaweedFS locally, MinIO or AWS S3 in production)."""

    s3_endpoint: str = Field("127.0.0.1:18333", description="host:port of the S3 API.")
    s3_access_key: str = Field(
        "cairn",
        description="S3 access key, through `read_secret` (`CAIRN_S3_ACCESS_KEY[_FILE]` or Vault); it "
        "names the account, so it is not redacted from logs.",
        json_schema_extra=PUBLIC_CREDENTIAL,
    )
    s3_secret_key: SecretStr = Field(
        SecretStr("cairn-local-secret"),
        description="S3 secret key, through `read_secret` (`CAIRN_S3_SECRET_KEY[_FILE]` or Vault).",
        json_schema_extra=SECRET,
    )
    s3_secure: bool = Field(False, description="Use HTTPS for S3.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_bucket: str = Field("cairn", description="Bucket holding this service's objects.")


def dsn_with_password(dsn: str, password: object) -> str:
    """`dsn` (a `postgresql://` URL) with `password` put in as the user's; a password already in the
    DSN is registered for redaction, and refused when a password is also given."""
    parts = urlsplit(dsn)
    if parts.password:
        register_secret(parts.password)
    if password is None:
        return dsn
    secret = password.get_secret_value() if isinstance(password, SecretStr) else str(password)
    if parts.scheme not in ("postgresql", "postgres") or not parts.username:
        raise ValueError("CAIRN_POSTGRES_PASSWORD needs CAIRN_POSTGRES_DSN as a postgresql://USER@... URL")
    if parts.password:
        if unquote(parts.password) == secret:
            return dsn  # already put in (settings rebuilt from their own values)
        raise ValueError("CAIRN_POSTGRES_DSN holds a password and CAIRN_POSTGRES_PASSWORD is set: keep one")
    quoted = quote(secret, safe="")
    register_secret(secret)
    register_secret(quoted)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user}:{quoted}@{host}"))


def http_api_settings(default_port: int, api: str) -> type[BaseSettings]:
    """A settings mixin for a service that serves an HTTP API beside its consumer: `http_host`,
    `http_port` (default `default_port`) and `http_enabled`; `api` names it in the descriptions.

    `class Settings(ServiceSettings, PostgresSettings, http_api_settings(8085, "audit query")): ...`
    """

    class HttpApiSettings(CairnSettings):
        http_host: str = Field("127.0.0.1", description=f"Bind address of the {api} HTTP API.")
        http_port: int = Field(
            default_port, ge=0, le=65535, description=f"Port of the {api} HTTP API (0: any free port)."
        )
        http_enabled: bool = Field(
            True, description=f"Serve the {api} HTTP API in the service process, beside the consumer."
        )

    HttpApiSettings.__doc__ = f"Where the {api} HTTP API listens, and whether it is served."
    return HttpApiSettings


def local_stack_env(profile: str | None = None) -> dict[str, str]:
    """The `CAIRN_*` variables the embedded local stack gives the services (broker, database, S3), or
    nothing where the local stack package is not installed (a production image). Starts nothing."""
    try:
        from cairn_localstack.config import StackConfig
    except ImportError:
        return {}
    config = StackConfig.for_profile(profile) if profile else StackConfig()
    return config.service_env()


def settings_or_local_stack(cls: type[S], profile: str | None = None, **overrides: object) -> S:
    """`cls()` where the `CAIRN_*` variables that are set win and any the local stack knows (broker,
    database, S3) fill in the rest: what a command run beside the local stack needs. `overrides`
    win over both."""
    env = local_stack_env(profile)
    values: dict[str, object] = {}
    for field in cls.model_fields:
        name = f"{ENV_PREFIX}{field.upper()}"
        if name in env and name not in os.environ and f"{name}_FILE" not in os.environ:
            values[field] = env[name]
    values.update(overrides)
    build: Any = cls  # init keywords are the fields; BaseSettings' own init parameters confuse mypy
    return build(**values)  # type: ignore[no-any-return]

"""Where the CLI finds the broker and the audit database: CAIRN_* variables, else the local stack."""

from __future__ import annotations

import os

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings


class CliSettings(ServiceSettings, PostgresSettings):
    """The CLI's view of the platform (same variables as the services)."""

    service_name: str = Field("cli", description="Name in ce_source and client ids.")


def stack_env(profile: str | None = None) -> dict[str, str]:
    """The variables the local stack would give the services (no process is started)."""
    from cairn_localstack.config import StackConfig

    config = StackConfig.for_profile(profile) if profile else StackConfig()
    return config.service_env()


def load_settings(profile: str | None = None) -> CliSettings:
    """CAIRN_* variables win; anything unset comes from the local stack's configuration."""
    env = stack_env(profile)
    overrides: dict[str, str] = {}
    if "CAIRN_KAFKA_BOOTSTRAP" not in os.environ and "CAIRN_KAFKA_BOOTSTRAP" in env:
        overrides["kafka_bootstrap"] = env["CAIRN_KAFKA_BOOTSTRAP"]
    if "CAIRN_POSTGRES_DSN" not in os.environ and "CAIRN_POSTGRES_DSN" in env:
        overrides["postgres_dsn"] = env["CAIRN_POSTGRES_DSN"]
    return CliSettings(**overrides)  # type: ignore[arg-type]

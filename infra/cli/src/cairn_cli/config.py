"""Where the CLI finds the broker and the audit database: CAIRN_* variables, else the local stack."""

from __future__ import annotations

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings, settings_or_local_stack


class CliSettings(ServiceSettings, PostgresSettings):
    """The CLI's view of the platform (same variables as the services)."""

    service_name: str = Field("cli", description="Name in ce_source and client ids.")


def load_settings(profile: str | None = None) -> CliSettings:
    """CAIRN_* variables win; the broker and database left unset come from the local stack (of
    `profile`, default $CAIRN_STACK_PROFILE or 'local')."""
    return settings_or_local_stack(CliSettings, profile)

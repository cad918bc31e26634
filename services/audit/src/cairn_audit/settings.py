"""Settings of the audit service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings):
    """The audit service records every event of every `cairn.*` topic in PostgreSQL."""

    service_name: str = Field("audit", description="Service name.")

"""Settings of the audit service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings):
    """The audit service records every event of every `cairn.*` topic in PostgreSQL."""

    service_name: str = Field("audit", description="Service name.")
    http_host: str = Field("127.0.0.1", description="Bind address of the audit query HTTP API.")
    http_port: int = Field(
        8085, ge=0, le=65535, description="Port of the audit query HTTP API (0: any free port)."
    )
    http_enabled: bool = Field(
        True, description="Serve the audit query HTTP API in the service process, beside the consumer."
    )

"""Settings of the prompt-store service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings):
    """Prompt templates, versions and labels in PostgreSQL; renders the prompt of each request."""

    service_name: str = Field("prompt-store", description="Service name.")
    http_host: str = Field("127.0.0.1", description="Bind address of the management HTTP API.")
    http_port: int = Field(
        8081, ge=0, le=65535, description="Port of the management HTTP API (0: any free port)."
    )
    http_enabled: bool = Field(
        True, description="Serve the management HTTP API in the service process, beside the consumer."
    )

"""Settings of the prompt-store service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings, http_api_settings


class Settings(ServiceSettings, PostgresSettings, http_api_settings(8081, "management")):  # type: ignore[misc]
    """Prompt templates, versions and labels in PostgreSQL; renders the prompt of each request."""

    service_name: str = Field("prompt-store", description="Service name.")

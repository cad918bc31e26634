"""Settings of the audit service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings, http_api_settings


class Settings(ServiceSettings, PostgresSettings, http_api_settings(8085, "audit query")):  # type: ignore[misc]
    """The audit service records every event of every `cairn.*` topic in PostgreSQL."""

    service_name: str = Field("audit", description="Service name.")
    consumer_batch_max_records: int = Field(
        1000,
        ge=1,
        description="Most records taken (and stored with one COPY, then committed) in one batch; "
        "larger than the bus default: the audit is off the request path and a larger batch costs "
        "less per event.",
    )
    consumer_linger_ms: int = Field(
        200,
        ge=0,
        description="Wait after a batch before the next poll, so that at a steady trickle of events a "
        "batch holds what arrived meanwhile (one transaction and one commit for many events); the "
        "audit is off the request path, so this only adds to how soon a trail is complete.",
    )

"""Settings of the feedback service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, S3Settings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings, S3Settings):
    """User feedback joined to requests; curated, versioned datasets."""

    service_name: str = Field("feedback", description="Service name.")
    dataset_policy_dir: str = Field(
        "",
        description="Folder of dataset policies (`<dataset>.yaml`): those datasets are rebuilt from new "
        "feedback without an operator (docs/closed-loop.md); empty: off.",
    )

"""Settings of the safety service (env prefix CAIRN_)."""

from typing import Literal

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings):
    """Input and output screening with per-tenant policies."""

    service_name: str = Field("safety", description="Service name.")
    policy_dir: str = Field("infra/policies", description="Folder of per-tenant policy YAML files.")
    toxicity_classifier: Literal["profanity-check", "detoxify"] = Field(
        "profanity-check", description="Toxicity classifier adapter."
    )
    detoxify_checkpoint: str | None = Field(None, description="Local path of a detoxify checkpoint.")

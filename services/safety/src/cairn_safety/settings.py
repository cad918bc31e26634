"""Settings of the safety service (env prefix CAIRN_)."""

from typing import Literal

from pydantic import Field

from cairn_bus.settings import PostgresSettings, ServiceSettings, http_api_settings


class Settings(ServiceSettings, PostgresSettings, http_api_settings(8083, "review and policy")):  # type: ignore[misc]
    """Input and output screening with per-tenant policies."""

    service_name: str = Field("safety", description="Service name.")
    policy_dir: str = Field(
        "infra/policies",
        description="Folder of per-tenant policy YAML files (`<tenant>.yaml`, falling back to `default.yaml`). "
        "A relative path is looked up from the working directory, then from the repository root.",
    )
    toxicity_classifier: Literal["profanity-check", "detoxify"] = Field(
        "profanity-check", description="Toxicity classifier adapter."
    )
    detoxify_checkpoint: str | None = Field(None, description="Local path of a detoxify checkpoint.")
    detoxify_model_type: str = Field(
        "original",
        description="detoxify model type of the checkpoint (`original`, `unbiased`, `multilingual`).",
    )
    detoxify_device: str = Field("cpu", description="Torch device detoxify runs on (`cpu`, `cuda`).")
    detoxify_hf_config_path: str | None = Field(
        None,
        description="Local folder with the Hugging Face config and tokenizer of the checkpoint's base model, "
        "so detoxify loads without network access.",
    )

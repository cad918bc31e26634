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
    review_sweep_interval_s: float = Field(
        5.0,
        gt=0,
        description="Seconds between sweeps that decide overdue reviews with their policy's default "
        "(`review.deadline_s`, `review.on_deadline`).",
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
    groundedness_embedder: Literal["none", "minilm"] = Field(
        "none",
        description="Embedder of the groundedness gate for policies with `semantic: true` (`minilm`: "
        "all-MiniLM-L6-v2 from its package, loaded once at start); `none`: the gate scores lexically.",
    )
    groundedness_embedder_threads: int = Field(
        1, ge=1, description="torch threads of the groundedness embedder (1 beside other busy processes)."
    )

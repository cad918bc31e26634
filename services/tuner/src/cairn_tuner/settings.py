"""Settings of the tuner service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, S3Settings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings, S3Settings):
    """LoRA fine-tuning jobs from curated datasets."""

    service_name: str = Field("tuner", description="Service name.")
    base_model_dir: str | None = Field(None, description="Local folder of the base model weights.")
    torch_threads: int = Field(1, ge=1, description="torch.set_num_threads for training.")

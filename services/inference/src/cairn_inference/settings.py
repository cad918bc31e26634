"""Settings of the inference service (env prefix CAIRN_)."""

from typing import Literal

from pydantic import Field

from cairn_bus.settings import S3Settings, ServiceSettings


class Settings(ServiceSettings, S3Settings):
    """Generation through SGLang (production) or in-process transformers (local)."""

    service_name: str = Field("inference", description="Service name.")
    inference_backend: Literal["transformers", "sglang"] = Field(
        "transformers", description="Model backend adapter."
    )
    sglang_url: str | None = Field(
        None, description="Base URL of the SGLang server, e.g. http://sglang:30000."
    )
    model_name: str = Field("SmolLM2-135M-Instruct", description="Model served by default.")
    model_dir: str | None = Field(None, description="Local folder of the converted model weights.")
    torch_threads: int = Field(1, ge=1, description="torch.set_num_threads for the CPU backend.")
    max_batch_size: int = Field(8, ge=1, description="Dynamic batching: most requests per forward pass.")

"""Settings of the evaluator service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, S3Settings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings, S3Settings):
    """Evaluation suites, the model registry and promotion gates."""

    service_name: str = Field("evaluator", description="Service name.")
    suites_dir: str = Field("infra/eval-suites", description="Folder of evaluation suites.")

"""Settings of the evaluator service (env prefix CAIRN_)."""

from pydantic import Field

from cairn_bus.settings import PostgresSettings, S3Settings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings, S3Settings):
    """The model registry, evaluation runs over the bus, and the promotion gate."""

    service_name: str = Field("evaluator", description="Service name.")
    suites_dir: str = Field("infra/eval/suites", description="Folder of evaluation suites (`*.yaml`).")
    registry_model: str = Field("cairn-qa", description="The registry model the CLI acts on by default.")
    run_timeout_s: float = Field(
        900.0, gt=0, description="A run with unanswered cases after this many seconds ends failed."
    )
    auto_promote_production: bool = Field(
        False, description="Also promote a candidate that passes the gate to production (not only staging)."
    )
    heldout_min_improvement: float = Field(
        0.0,
        ge=0.0,
        description="How much the candidate's held-out token F1 must exceed the baseline's (0: strictly more).",
    )
    heldout_min_f1: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Held-out token F1 floor (the only held-out gate without a baseline).",
    )
    heldout_max_cases: int = Field(8, ge=0, description="Most held-out rows re-asked per run.")
    heldout_max_tokens: int = Field(48, ge=1, le=8192, description="max_tokens of held-out requests.")
    eval_tenant: str = Field("default", description="Tenant of the evaluation requests.")

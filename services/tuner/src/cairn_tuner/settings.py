"""Settings of the tuner service (env prefix CAIRN_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field

from cairn_bus.settings import PostgresSettings, S3Settings, ServiceSettings
from cairn_events import LoraConfig

DEFAULT_BASE_MODEL = "SmolLM2-135M-Instruct"


class Settings(ServiceSettings, PostgresSettings, S3Settings):
    """LoRA fine-tuning jobs from curated datasets, and the model version numbers they get."""

    service_name: str = Field("tuner", description="Service name.")
    model_name: str = Field(
        "cairn-qa",
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        validation_alias=AliasChoices("CAIRN_TUNER_MODEL_NAME", "model_name"),
        description="Registry model that tuned adapters become versions of (`CAIRN_TUNER_MODEL_NAME`).",
    )
    models_dir: str | None = Field(
        None,
        description="Folder of base model folders (`<models_dir>/<base_model>`); `<repo>/.cairn/models`.",
    )
    torch_threads: int = Field(
        2, ge=1, description="torch.set_num_threads for training (results repeat for the same thread count)."
    )
    max_seq_len: int = Field(320, ge=8, description="Tokens per training example; the prompt's start is cut.")
    job_lease_s: float = Field(
        60.0, gt=0, description="A running job whose heartbeat is older than this lost its worker."
    )
    heartbeat_s: float = Field(5.0, gt=0, description="How often a running job's heartbeat is renewed.")
    max_attempts: int = Field(2, ge=1, description="Runs of a job (lost workers included) before it fails.")
    poll_interval_s: float = Field(2.0, gt=0, description="How often the runner looks for queued jobs.")
    progress_interval_s: float = Field(
        0.5, ge=0, description="Least time between two running-progress events (the last is always sent)."
    )
    tune_min_rows: int = Field(
        0, ge=0, description="A published dataset with at least this many train rows is tuned; 0 = off."
    )
    tune_start_from: Literal["base", "production"] = Field(
        "base",
        description="Where policy-requested jobs start: `production` continues the production adapter "
        "(`CAIRN_TUNE_START_FROM`).",
    )
    tune_replay_fraction: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Share of the production adapter's training rows policy-requested jobs replay; "
        "none: 0.3 when starting from production.",
    )
    tune_policy_dir: str = Field(
        "",
        description="Folder of per-dataset tuning policies (`<dataset>.yaml`, docs/closed-loop.md); a dataset "
        "with a file there is tuned by it instead of `tune_min_rows`; empty: none.",
    )
    code_version: str | None = Field(
        None, description="Version of the training code in manifests; the git commit when unset."
    )
    base_model: str = Field(DEFAULT_BASE_MODEL, description="Base model of policy-requested jobs.")
    lora_rank: int = Field(8, ge=1, description="Default LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="Default LoRA alpha.")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Default LoRA dropout.")
    lora_target_modules: str = Field("q_proj,v_proj", description="Default adapted modules, comma separated.")
    learning_rate: float = Field(2e-4, gt=0, description="Default learning rate.")
    epochs: int = Field(1, ge=1, description="Default passes over the training split.")
    batch_size: int = Field(4, ge=1, description="Default examples per optimizer step.")
    max_steps: int | None = Field(None, ge=1, description="Default step limit; none to run all epochs.")
    seed: int = Field(0, description="Default random seed.")

    def default_lora_config(self) -> LoraConfig:
        """The LoRA configuration of jobs requested without one (the dataset policy)."""
        return LoraConfig(
            rank=self.lora_rank,
            alpha=self.lora_alpha,
            dropout=self.lora_dropout,
            target_modules=[m.strip() for m in self.lora_target_modules.split(",") if m.strip()],
            learning_rate=self.learning_rate,
            epochs=self.epochs,
            batch_size=self.batch_size,
            max_steps=self.max_steps,
            seed=self.seed,
            start_from=self.tune_start_from,
            replay_fraction=self.tune_replay_fraction,
        )

    def resolved_models_dir(self) -> Path:
        """`models_dir`, or `<repo>/.cairn/models` when unset."""
        if self.models_dir:
            return Path(self.models_dir).expanduser()
        return find_repo_root() / ".cairn" / "models"


def find_repo_root(start: Path | None = None) -> Path:
    """The nearest folder above `start` (this file) holding `libs/` and a `pyproject.toml`; else the
    current directory (an installed service outside the repository)."""
    here = (start or Path(__file__)).resolve()
    for folder in [here, *here.parents]:
        if (folder / "libs").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return Path.cwd()

"""LoRA training with PEFT on a local base model folder, on CPU, reproducible for a given seed.

The base model is `<models_dir>/<base_model>` (what `cairn inference prepare` writes); the dataset
comes from the object store; the adapter and its `cairn-adapter.json` go to
`s3://<bucket>/adapters/<job_id>/`, the manifest last, so a folder with a manifest is complete.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn_bus.objects import ObjectStore, join_uri, sha256_hex, upload_folder
from cairn_events import JsonScalar
from cairn_events.artifacts import ADAPTER_MANIFEST, AdapterManifest
from cairn_observability import get_logger
from cairn_tuner.adapters.dataset_files import load_splits
from cairn_tuner.adapters.tokenise import Example, collate, encode_row
from cairn_tuner.domain.jobs import Job, StepReport, TrainedAdapter, TrainingError, TrainingInterrupted
from cairn_tuner.domain.naming import adapter_folder_uri, flatten_config
from cairn_tuner.domain.schedule import batch_plan
from cairn_tuner.ports import StepCallback, StopCheck

if TYPE_CHECKING:
    from cairn_auth.encryption import Keyring

log = get_logger("cairn.tuner")
TRAIN_LOSS_WINDOW = 5
"""`train_loss` is the mean loss of this many last steps."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class PeftTrainer:
    """The Trainer port on `transformers` + `peft` (float32, `torch_threads` CPU threads)."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        bucket: str,
        models_dir: Path,
        code_version: str,
        max_seq_len: int = 512,
        torch_threads: int = 1,
        clock: Callable[[], datetime] = _utc_now,
        keyring: Keyring | None = None,
    ) -> None:
        """`keyring`: opens dataset rows sealed per tenant (`cairn_auth.object_keys`); None: rows
        must be stored as they are."""
        self.store = store
        self.bucket = bucket
        self.models_dir = models_dir
        self.code_version = code_version
        self.max_seq_len = max_seq_len
        self.torch_threads = torch_threads
        self.clock = clock
        self.keyring = keyring

    def base_model_dir(self, base_model: str) -> Path:
        """The folder of a base model; TrainingError (naming `cairn inference prepare`) when missing."""
        parts = Path(base_model).parts
        if not parts or ".." in parts or Path(base_model).is_absolute():
            raise TrainingError(f"invalid base model name {base_model!r}")
        folder = self.models_dir / base_model
        if not (folder / "config.json").is_file():
            raise TrainingError(
                f"base model {base_model} not found in {folder}: run `cairn inference prepare` to convert it "
                "(or point CAIRN_MODELS_DIR at the folder holding it)"
            )
        return folder

    def train(self, job: Job, on_step: StepCallback, should_stop: StopCheck) -> TrainedAdapter:
        """See `Trainer.train`."""
        import torch

        started = time.perf_counter()
        folder = self.base_model_dir(job.base_model)
        train_rows, heldout_rows = load_splits(
            self.store, self.bucket, job.dataset_id, job.dataset_version, self.keyring
        )
        torch.set_num_threads(self.torch_threads)
        random.seed(job.config.seed)
        torch.manual_seed(job.config.seed)
        tokenizer, model = self._load(folder, job)
        train = [encode_row(tokenizer, row, self.max_seq_len) for row in train_rows]
        heldout = [encode_row(tokenizer, row, self.max_seq_len) for row in heldout_rows]
        pad_id = _pad_id(tokenizer)
        plan = batch_plan(len(train), job.config)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=job.config.learning_rate)
        model.train()
        losses: list[float] = []
        for step, indexes in enumerate(plan, start=1):
            if should_stop():
                raise TrainingInterrupted(f"stopped before step {step} of {len(plan)}")
            out = model(**collate([train[i] for i in indexes], pad_id))
            loss = float(out.loss.item())
            if not math.isfinite(loss):
                raise TrainingError(f"training diverged: loss {loss} at step {step}; lower the learning rate")
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss)
            on_step(StepReport(step=step, total_steps=len(plan), loss=loss))
        metrics: dict[str, float] = {
            "train_loss": sum(losses[-TRAIN_LOSS_WINDOW:]) / len(losses[-TRAIN_LOSS_WINDOW:]),
            "final_loss": losses[-1],
            "steps": float(len(losses)),
            "train_rows": float(len(train)),
            "heldout_rows": float(len(heldout)),
        }
        heldout_loss = _mean_loss(model, heldout, job.config.batch_size, pad_id)
        if heldout_loss is not None:
            metrics["heldout_loss"] = heldout_loss
        config = flatten_config(job.config, max_seq_len=self.max_seq_len, base_model=job.base_model)
        adapter = self._upload(model, job, config, metrics)
        log.info(
            "adapter trained", job_id=job.job_id, seconds=round(time.perf_counter() - started, 2), **metrics
        )
        return adapter

    def _load(self, folder: Path, job: Job) -> tuple[Any, Any]:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            base: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise TrainingError(f"cannot load the base model from {folder}: {exc}") from None
        if not getattr(tokenizer, "chat_template", None):
            raise TrainingError(f"the tokenizer in {folder} has no chat template")
        lora = LoraConfig(
            r=job.config.rank,
            lora_alpha=job.config.alpha,
            lora_dropout=job.config.dropout,
            target_modules=list(job.config.target_modules),
            task_type="CAUSAL_LM",
        )
        try:
            with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
                warnings.filterwarnings(
                    "ignore", category=FutureWarning, message=".*gradient_checkpointing.*"
                )
                model = get_peft_model(base, lora)
        except (ValueError, TypeError) as exc:
            raise TrainingError(f"bad LoRA configuration: {exc}") from None
        return tokenizer, model

    def _upload(
        self, model: Any, job: Job, config: dict[str, JsonScalar], metrics: dict[str, float]
    ) -> TrainedAdapter:
        uri = adapter_folder_uri(self.bucket, job.job_id)
        with tempfile.TemporaryDirectory(prefix="cairn-adapter-") as tmp:
            folder = Path(tmp)
            model.save_pretrained(str(folder))
            (folder / "README.md").unlink(missing_ok=True)  # a model card naming local paths
            _portable_adapter_config(folder / "adapter_config.json", job.base_model)
            files = upload_folder(self.store, folder, uri)
        manifest = AdapterManifest(
            job_id=job.job_id,
            base_model=job.base_model,
            dataset_id=job.dataset_id,
            dataset_version=job.dataset_version,
            config=config,
            metrics=metrics,
            files=files,
            code_version=self.code_version,
            created_at=self.clock().isoformat(),
        )
        data = manifest.model_dump_json(indent=2).encode()
        self.store.put(join_uri(uri, ADAPTER_MANIFEST), data, "application/json")
        return TrainedAdapter(
            adapter_uri=uri,
            config=config,
            metrics=metrics,
            files={**files, ADAPTER_MANIFEST: sha256_hex(data)},
            code_version=self.code_version,
        )


def _pad_id(tokenizer: Any) -> int:
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    return 0


def _portable_adapter_config(path: Path, base_model: str) -> None:
    """Name the base model instead of this machine's folder in `adapter_config.json`."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data["base_model_name_or_path"] = base_model
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _mean_loss(model: Any, examples: list[Example], batch_size: int, pad_id: int) -> float | None:
    """Token-weighted mean loss over `examples` without dropout or gradients; None when there are none."""
    import torch

    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size], pad_id)
            count = int((batch["labels"][:, 1:] != -100).sum())
            if count:
                total += float(model(**batch).loss.item()) * count
                tokens += count
    return total / tokens if tokens else None

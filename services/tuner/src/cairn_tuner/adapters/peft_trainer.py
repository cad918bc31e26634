"""LoRA training with PEFT on a local base model folder, on CPU, reproducible for a given seed.

The base model is `<models_dir>/<base_model>` (what `cairn inference prepare` writes); the dataset
comes from the object store; the adapter and its `cairn-adapter.json` go to
`s3://<bucket>/adapters/<job_id>/`, the manifest last, so a folder with a manifest is complete.
A continual job (`StartPlan` with a parent) trains the production adapter further instead of a fresh
one, with a seeded sample of the parent's training rows mixed in, and measures the loss on the parent's
held-out split before and after (`parent_older_heldout_loss`, `older_heldout_loss`).
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn_bus.objects import (
    ObjectNotFoundError,
    ObjectStore,
    download_prefix,
    join_uri,
    sha256_hex,
    upload_folder,
)
from cairn_events import JsonScalar
from cairn_events.artifacts import ADAPTER_MANIFEST, AdapterManifest, DatasetRow
from cairn_observability import get_logger
from cairn_tuner.adapters.dataset_files import load_splits
from cairn_tuner.adapters.tokenise import Example, collate, encode_row
from cairn_tuner.domain.continual import ProductionVersion, StartPlan, replay_sample
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

    def train(
        self, job: Job, on_step: StepCallback, should_stop: StopCheck, start: StartPlan | None = None
    ) -> TrainedAdapter:
        """See `Trainer.train`."""
        with tempfile.TemporaryDirectory(prefix="cairn-parent-") as tmp:
            return self._train(job, on_step, should_stop, start, Path(tmp))

    def _train(
        self, job: Job, on_step: StepCallback, should_stop: StopCheck, start: StartPlan | None, tmp: Path
    ) -> TrainedAdapter:
        import torch

        started = time.perf_counter()
        folder = self.base_model_dir(job.base_model)
        train_rows, heldout_rows = load_splits(
            self.store, self.bucket, job.dataset_id, job.dataset_version, self.keyring
        )
        parent = None
        if start is not None and start.parent is not None:
            parent = self._parent(job, start, start.parent, tmp, train_rows, heldout_rows)
        torch.set_num_threads(self.torch_threads)
        random.seed(job.config.seed)
        torch.manual_seed(job.config.seed)
        tokenizer, model = self._load(folder, job, parent.folder if parent else None)
        replay = parent.replay if parent else []
        train = [encode_row(tokenizer, row, self.max_seq_len) for row in [*train_rows, *replay]]
        heldout = [encode_row(tokenizer, row, self.max_seq_len) for row in heldout_rows]
        older = (
            [encode_row(tokenizer, row, self.max_seq_len) for row in parent.older_heldout] if parent else []
        )
        pad_id = _pad_id(tokenizer)
        parent_older_loss = _mean_loss(model, older, job.config.batch_size, pad_id)
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
        extra: dict[str, JsonScalar] = {"start_from": "base"}
        if parent is not None:
            metrics["replay_rows"] = float(len(replay))
            metrics["older_heldout_rows"] = float(len(older))
            older_loss = _mean_loss(model, older, job.config.batch_size, pad_id)
            if older_loss is not None and parent_older_loss is not None:
                metrics["older_heldout_loss"] = older_loss
                metrics["parent_older_heldout_loss"] = parent_older_loss
            extra.update(parent.config())
        config = flatten_config(job.config, max_seq_len=self.max_seq_len, base_model=job.base_model, **extra)
        adapter = self._upload(model, job, config, metrics)
        log.info(
            "adapter trained", job_id=job.job_id, seconds=round(time.perf_counter() - started, 2), **metrics
        )
        return adapter

    def _parent(
        self,
        job: Job,
        start: StartPlan,
        version: ProductionVersion,
        tmp: Path,
        train_rows: list[DatasetRow],
        heldout_rows: list[DatasetRow],
    ) -> _Parent:
        """Download the production adapter a job continues, and read the dataset version it was trained on:
        a seeded sample of its train rows to replay, its held-out rows (those not trained on now) to measure
        how much of the earlier behaviour is kept."""
        name = f"{version.model_name}:{version.version}"
        uri = version.adapter_uri or ""
        folder = tmp / "adapter"
        try:
            download_prefix(self.store, uri, folder)
            manifest = AdapterManifest.model_validate_json((folder / ADAPTER_MANIFEST).read_bytes())
        except (ObjectNotFoundError, FileNotFoundError):
            raise TrainingError(
                f"production adapter {name} not found: no {ADAPTER_MANIFEST} under {uri}"
            ) from None
        except ValueError as exc:
            raise TrainingError(
                f"production adapter {name} has an unreadable {ADAPTER_MANIFEST}: {exc}"
            ) from None
        if manifest.base_model != job.base_model:
            raise TrainingError(
                f"production adapter {name} was trained on {manifest.base_model}, the job asks for "
                f"{job.base_model}: start from the base (start_from base) or ask for {manifest.base_model}"
            )
        older_train, older_heldout = load_splits(
            self.store, self.bucket, manifest.dataset_id, manifest.dataset_version, self.keyring
        )
        trained_now = {r.row_id for r in train_rows}
        seen_now = trained_now | {r.row_id for r in heldout_rows}
        replay = replay_sample(older_train, start.replay_fraction, job.config.seed, exclude=seen_now)
        lora = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
        return _Parent(
            version=version,
            folder=folder,
            manifest=manifest,
            replay=replay,
            older_heldout=[r for r in older_heldout if r.row_id not in trained_now],
            replay_fraction=start.replay_fraction,
            lora=lora,
        )

    def _load(self, folder: Path, job: Job, parent: Path | None = None) -> tuple[Any, Any]:
        """The tokenizer and the base model with a fresh LoRA adapter, or with the adapter in `parent`
        (trainable, its own rank and modules)."""
        import torch
        from peft import LoraConfig, PeftModel, get_peft_model
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
        if parent is not None:
            try:
                with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5
                    warnings.filterwarnings("ignore", category=FutureWarning, message=".*checkpointing.*")
                    model = PeftModel.from_pretrained(base, str(parent), is_trainable=True)
            except (OSError, ValueError, KeyError) as exc:
                raise TrainingError(f"cannot load the production adapter: {exc}") from None
            for adapter_config in model.peft_config.values():  # the local folder, as a fresh adapter has:
                adapter_config.base_model_name_or_path = str(folder)  # saving never looks the name up online
            return tokenizer, model
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


@dataclass(frozen=True)
class _Parent:
    """The production adapter a continual job trains further, and the older data it keeps in view."""

    version: ProductionVersion
    folder: Path
    manifest: AdapterManifest
    replay: list[DatasetRow]
    older_heldout: list[DatasetRow]
    replay_fraction: float
    lora: dict[str, Any]
    """Its `adapter_config.json`: the continued adapter keeps its rank, alpha, dropout and modules."""

    def config(self) -> dict[str, JsonScalar]:
        """What the new version's config records about where it started (overriding the job's LoRA shape)."""
        modules = self.lora.get("target_modules")
        found: dict[str, JsonScalar] = {
            "start_from": "production",
            "parent_model": self.version.model_name,
            "parent_version": self.version.version,
            "parent_job_id": self.manifest.job_id,
            "replay_fraction": self.replay_fraction,
            "replay_dataset_id": self.manifest.dataset_id,
            "replay_dataset_version": self.manifest.dataset_version,
        }
        for key, name in (("rank", "r"), ("alpha", "lora_alpha"), ("dropout", "lora_dropout")):
            if isinstance(self.lora.get(name), int | float):
                found[key] = self.lora[name]
        if isinstance(modules, list):
            found["target_modules"] = ",".join(sorted(str(m) for m in modules))
        elif isinstance(modules, str):
            found["target_modules"] = modules
        return found


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

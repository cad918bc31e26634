"""In-process generation with `transformers` (CPU, or a GPU when present), with dynamic batching.

Concurrent `generate` calls are collected by a `DynamicBatcher` and run as one left-padded,
batched `model.generate` in a worker thread. Each row of a batch stops on its own (its own
`max_tokens`, stop strings, end of turn, or its caller giving up) through one stopping
criterion that also clocks each row's first token and finish time, and tells a streaming request
(`domain.deltas.current_progress()` when `generate` was called) its text so far after each step.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn_events import ChatMessage, GenerationParams, TokenUsage
from cairn_inference.adapters.batcher import BatchItem, DynamicBatcher
from cairn_inference.domain.batching import batch_key
from cairn_inference.domain.chat import chat_dicts, render_chatml
from cairn_inference.domain.completion import (
    AdapterNotFoundError,
    Completion,
    FinishReason,
    ModelError,
    ModelNotServedError,
)
from cairn_inference.domain.deltas import Progress, current_progress
from cairn_inference.domain.stops import find_stop, truncate_at_stop

__all__ = ["QUANTIZATIONS", "TransformersBackend", "quantize_int8"]

QUANTIZATIONS = ("int8",)
"""The quantizations this backend can serve besides full precision (`cairn_events.Quantization`)."""


def quantize_int8(model: Any) -> Any:
    """`model` with every `Linear` layer dynamically quantized to int8, in place: weights stored as 8-bit
    integers with one scale per output channel, activations quantized per call. CPU only; the embeddings
    stay float32. Per-channel scales keep the small model's answers much closer to float32's than one
    scale per layer (docs/quantization.md)."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )


@dataclass(frozen=True)
class _Request:
    prompt_ids: list[int]
    params: GenerationParams
    adapter: str | None
    progress: Progress | None = None
    """Told the text and tokens so far after every step, when the request streams."""


@dataclass
class _Row:
    """One request's outcome inside a batched run."""

    token_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish_reason: str = FinishReason.LENGTH
    input_tokens: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None


class _RowStopper:
    """A transformers StoppingCriteria that ends each row of a batch on its own terms.

    Called after every decoding step with the sequences so far; returns one bool per row.
    Records per row the generated length, the finish reason, and when it finished; and the
    time of the first call, which is when every row of the batch got its first token.
    """

    def __init__(
        self,
        items: Sequence[BatchItem],
        requests: Sequence[_Request],
        prompt_len: int,
        eos_ids: set[int],
        tokenizer: Any,
    ) -> None:
        self.items = items
        self.requests = requests
        self.prompt_len = prompt_len
        self.eos_ids = eos_ids
        self.tokenizer = tokenizer
        self.first_token_at: float | None = None
        self.lengths: list[int | None] = [None] * len(requests)
        self.reasons: list[str] = [FinishReason.LENGTH] * len(requests)
        self.done_at: list[float | None] = [None] * len(requests)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
        step = int(input_ids.shape[1]) - self.prompt_len
        last = input_ids[:, -1].tolist()
        for row, request in enumerate(self.requests):
            if self.lengths[row] is not None:
                continue
            reason: str | None = None
            if last[row] in self.eos_ids or self._has_stop(input_ids[row, self.prompt_len :], request):
                reason = FinishReason.STOP
            elif step >= request.params.max_tokens:
                reason = FinishReason.LENGTH
            elif self.items[row].cancelled.is_set():
                reason = FinishReason.CANCELLED
            if reason is not None:
                self.lengths[row] = step
                self.reasons[row] = reason
                self.done_at[row] = now
            elif request.progress is not None:
                generated = input_ids[row, self.prompt_len :].tolist()
                request.progress(self.tokenizer.decode(generated, skip_special_tokens=True), step)
        done = [length is not None for length in self.lengths]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def _has_stop(self, generated: Any, request: _Request) -> bool:
        if not request.params.stop:
            return False
        text = self.tokenizer.decode(generated.tolist(), skip_special_tokens=True)
        return find_stop(text, request.params.stop) is not None


class TransformersBackend:
    """A `ModelBackend` (and `AdapterManager`) running a causal LM in this process.

    Build it with `TransformersBackend.load(...)` (blocking: call it off the event loop).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_name: str,
        max_batch_size: int = 8,
        batch_window_s: float = 0.015,
        batching: bool = True,
        model_version: str | None = None,
        repetition_penalty: float = 1.0,
        quantization: str | None = None,
    ) -> None:
        self.model = model
        self.quantization = quantization
        self.repetition_penalty = repetition_penalty
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.model_version = model_version
        self.device = str(getattr(model, "device", "cpu"))
        self.name = "transformers-cpu" if self.device == "cpu" else "transformers-gpu"
        if quantization is not None:
            self.name += f"-{quantization}"
        self.context_length = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        self.pad_id, self.eos_ids = _special_ids(model, tokenizer)
        self._adapters: dict[str, str] = {}
        self._peft: Any = None
        self.finished: deque[tuple[str, int]] = deque(maxlen=256)
        """(finish reason, generated tokens) of the most recent rows, including abandoned ones."""
        self.batcher: DynamicBatcher[_Row] = DynamicBatcher(
            self._run_batch,
            max_batch_size=max_batch_size if batching else 1,
            window_s=batch_window_s if batching else 0.0,
        )

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        model_name: str,
        torch_threads: int = 1,
        device: str = "auto",
        max_batch_size: int = 8,
        batch_window_s: float = 0.015,
        batching: bool = True,
        model_version: str | None = None,
        repetition_penalty: float = 1.0,
        quantization: str | None = None,
    ) -> TransformersBackend:
        """Load a saved model folder (safetensors + tokenizer), quantized when `quantization` names one of
        `QUANTIZATIONS` (CPU only). Blocking; seconds for SmolLM2."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        torch.set_num_threads(torch_threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float32 if device == "cpu" else torch.bfloat16
        _check_quantization(quantization, device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
            loaded: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
            model = loaded.to(device)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the model from {model_dir}: {exc}") from exc
        model.eval()
        if quantization is not None:
            model = quantize_int8(model)
        return cls(
            model,
            tokenizer,
            model_name=model_name,
            max_batch_size=max_batch_size,
            batch_window_s=batch_window_s,
            batching=batching,
            model_version=model_version,
            repetition_penalty=repetition_penalty,
            quantization=quantization,
        )

    def quantized(self, quantization: str) -> TransformersBackend:
        """A second backend serving a quantized copy of this one's base model (no adapters), with its own
        batcher; this one is unchanged. Blocking: a second or two for SmolLM2."""
        import copy

        _check_quantization(quantization, self.device)
        model = quantize_int8(copy.deepcopy(self.model))
        return TransformersBackend(
            model,
            self.tokenizer,
            model_name=self.model_name,
            max_batch_size=self.batcher.max_batch_size,
            batch_window_s=self.batcher.window_s,
            model_version=self.model_version,
            repetition_penalty=self.repetition_penalty,
            quantization=quantization,
        )

    @property
    def waiting(self) -> int:
        """Requests queued or generating on this backend now (routing skips a backend over its limit)."""
        return self.batcher.waiting

    def encode(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt token ids of a chat, through the tokenizer's chat template (ChatML without one)."""
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                chat_dicts(messages), add_generation_prompt=True, tokenize=False
            )
        else:
            text = render_chatml(messages)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [int(i) for i in ids]

    async def generate(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        *,
        model: str,
        adapter: str | None = None,
    ) -> Completion:
        if model != self.model_name:
            raise ModelNotServedError(
                f"model {model!r} is not served here (this backend serves {self.model_name!r})"
            )
        if adapter is not None and adapter not in self._adapters:
            raise AdapterNotFoundError(f"adapter {adapter!r} is not loaded")
        prompt_ids = self.encode(messages)
        if self.context_length and len(prompt_ids) + params.max_tokens > self.context_length:
            raise ModelError(
                f"prompt of {len(prompt_ids)} tokens plus max_tokens {params.max_tokens} exceeds the "
                f"model's context of {self.context_length} tokens"
            )
        request = _Request(prompt_ids, params, adapter, current_progress())
        row = await self.batcher.submit(request, batch_key(params, adapter))
        return Completion(
            text=row.text,
            finish_reason=row.finish_reason,
            usage=TokenUsage(input_tokens=row.input_tokens, output_tokens=len(row.token_ids)),
            latency_ms=row.latency_ms,
            ttft_ms=row.ttft_ms,
            backend=self.name,
            model=self.model_name,
            model_version=self.model_version,
            adapter=adapter,
        )

    # --- the worker thread ---------------------------------------------------------------------

    def _run_batch(self, items: Sequence[BatchItem]) -> list[_Row]:
        try:
            return self._generate_rows(items)
        except ModelError:
            raise
        except Exception as exc:  # torch raises RuntimeError, IndexError, ... on bad input or OOM
            raise ModelError(f"generation failed: {type(exc).__name__}: {exc}") from exc

    def _generate_rows(self, items: Sequence[BatchItem]) -> list[_Row]:
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        requests = [item.payload for item in items]
        assert all(isinstance(r, _Request) for r in requests)
        reqs: list[_Request] = requests  # type: ignore[assignment]
        generator, scope = self._generator(reqs[0].adapter)
        width = max(len(r.prompt_ids) for r in reqs)
        input_ids = torch.full((len(reqs), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(reqs), width), dtype=torch.long)
        for row, request in enumerate(reqs):  # left padding: every prompt ends at the same column
            n = len(request.prompt_ids)
            input_ids[row, width - n :] = torch.tensor(request.prompt_ids, dtype=torch.long)
            attention[row, width - n :] = 1
        params = reqs[0].params
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max(r.params.max_tokens for r in reqs),
            pad_token_id=self.pad_id,
            eos_token_id=sorted(self.eos_ids),
            do_sample=params.temperature > 0,
            **({"repetition_penalty": self.repetition_penalty} if self.repetition_penalty != 1.0 else {}),
            **({"temperature": params.temperature, "top_p": params.top_p} if params.temperature > 0 else {}),
        )
        if params.temperature > 0 and params.seed is not None:
            torch.manual_seed(params.seed)
        stopper = _RowStopper(items, reqs, width, self.eos_ids, self.tokenizer)
        with torch.inference_mode(), scope:
            output = generator.generate(
                input_ids=input_ids.to(self.model.device),
                attention_mask=attention.to(self.model.device),
                generation_config=config,
                stopping_criteria=StoppingCriteriaList([stopper]),
            )
        finished = time.perf_counter()
        rows = []
        for row, (item, request) in enumerate(zip(items, reqs, strict=True)):
            length = stopper.lengths[row]
            generated = output[row, width:].tolist()
            ids = generated[: length if length is not None else len(generated)]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            text, _ = truncate_at_stop(text, request.params.stop)
            done_at = stopper.done_at[row] or finished
            first = stopper.first_token_at
            self.finished.append((stopper.reasons[row], len(ids)))
            rows.append(
                _Row(
                    token_ids=ids,
                    text=text,
                    finish_reason=stopper.reasons[row],
                    input_tokens=len(request.prompt_ids),
                    latency_ms=(done_at - item.enqueued_at) * 1000,
                    ttft_ms=(first - item.enqueued_at) * 1000 if first is not None and ids else None,
                )
            )
        return rows

    def _generator(self, adapter: str | None) -> tuple[Any, AbstractContextManager[Any]]:
        """The model to call for `adapter` and the context to call it in (base: adapters disabled)."""
        if self._peft is None:
            if adapter is not None:
                raise AdapterNotFoundError(f"adapter {adapter!r} is not loaded")
            return self.model, nullcontext()
        if adapter is None:
            return self._peft, self._peft.disable_adapter()
        if adapter not in self._adapters:
            raise AdapterNotFoundError(f"adapter {adapter!r} is not loaded")
        self._peft.set_adapter(adapter)
        return self._peft, nullcontext()

    # --- LoRA adapters ---------------------------------------------------------------------------

    async def load_adapter(self, name: str, path: str) -> None:
        """Load a PEFT LoRA adapter from a local folder as `name`; requests name it to use it."""

        if self.quantization is not None:
            raise ModelError(
                f"adapter {name!r}: LoRA adapters are served at full precision only, "
                f"not on the {self.quantization} backend"
            )

        def load() -> None:
            if not Path(path).is_dir():
                raise ModelError(f"adapter folder not found: {path}")
            from peft import PeftModel

            try:
                if self._peft is None:
                    self._peft = PeftModel.from_pretrained(
                        self.model, path, adapter_name=name, is_trainable=False
                    )
                else:
                    if name in self._adapters:
                        self._peft.delete_adapter(name)
                    self._peft.load_adapter(path, adapter_name=name, is_trainable=False)
            except Exception as exc:  # peft raises ValueError, KeyError, OSError, ...
                raise ModelError(f"cannot load adapter {name!r} from {path}: {exc}") from exc
            self._peft.eval()
            self._adapters[name] = path

        await asyncio.get_running_loop().run_in_executor(self.batcher.executor, load)

    async def unload_adapter(self, name: str) -> None:
        """Remove a loaded adapter; later requests naming it fail with AdapterNotFoundError."""

        def unload() -> None:
            if name not in self._adapters or self._peft is None:
                raise AdapterNotFoundError(f"adapter {name!r} is not loaded")
            if len(self._adapters) == 1:
                self.model = self._peft.unload()  # the base model, LoRA layers removed
                self._peft = None
            else:
                others = [other for other in self._adapters if other != name]
                self._peft.set_adapter(others[0])
                self._peft.delete_adapter(name)
            del self._adapters[name]

        await asyncio.get_running_loop().run_in_executor(self.batcher.executor, unload)

    @property
    def adapters(self) -> dict[str, str]:
        """Loaded adapters: name → folder."""
        return dict(self._adapters)

    async def aclose(self) -> None:
        await self.batcher.aclose()


def _check_quantization(quantization: str | None, device: str) -> None:
    if quantization is None:
        return
    if quantization not in QUANTIZATIONS:
        raise ModelError(
            f"quantization {quantization!r} is not served here; known: {', '.join(QUANTIZATIONS)}"
        )
    if not device.startswith("cpu"):
        raise ModelError(f"{quantization} (dynamic quantization) runs on the CPU only, not on {device}")


def _special_ids(model: Any, tokenizer: Any) -> tuple[int, set[int]]:
    """The padding id and the ids that end a turn (generation config, tokenizer and ChatML's end)."""
    eos: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        eos.add(configured)
    elif isinstance(configured, list):
        eos.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        eos.add(int(tokenizer.eos_token_id))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        eos.add(im_end)
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = min(eos) if eos else 0
    return int(pad), eos

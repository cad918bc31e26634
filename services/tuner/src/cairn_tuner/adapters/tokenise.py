"""Training examples from dataset rows: the chat template's prompt, the completion as the assistant turn,
loss on the completion tokens only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cairn_events.artifacts import DatasetRow

IGNORE = -100
"""Label of tokens the loss skips (the prompt, the padding)."""


@dataclass(frozen=True)
class Example:
    """Token ids of one row and their labels (IGNORE on the prompt)."""

    input_ids: list[int]
    labels: list[int]


def _chat(tokenizer: Any, messages: list[dict[str, str]], *, generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=False)
    return str(text)


def encode_row(tokenizer: Any, row: DatasetRow, max_seq_len: int) -> Example:
    """Tokenise `row.messages` (with the generation prompt) followed by `row.completion` as the assistant's
    turn (its end-of-turn included). At most `max_seq_len` tokens: the prompt loses its start first, the
    completion keeps at least the last quarter of the window for the prompt when both are long."""
    messages = [{"role": m.role, "content": m.content} for m in row.messages]
    prompt = _chat(tokenizer, messages, generation_prompt=True)
    full = _chat(
        tokenizer, [*messages, {"role": "assistant", "content": row.completion}], generation_prompt=False
    )
    target = (
        full[len(prompt) :] if full.startswith(prompt) else row.completion + str(tokenizer.eos_token or "")
    )
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    target_ids = list(tokenizer(target, add_special_tokens=False)["input_ids"])
    keep_prompt = min(len(prompt_ids), max(max_seq_len - len(target_ids), max_seq_len // 4))
    prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt :]
    target_ids = target_ids[: max_seq_len - len(prompt_ids)]
    return Example(prompt_ids + target_ids, [IGNORE] * len(prompt_ids) + target_ids)


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, Any]:
    """A right-padded batch: `input_ids`, `attention_mask` and `labels` tensors."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids, mask, labels = [], [], []
    for e in examples:
        pad = width - len(e.input_ids)
        ids.append(e.input_ids + [pad_id] * pad)
        mask.append([1] * len(e.input_ids) + [0] * pad)
        labels.append(e.labels + [IGNORE] * pad)
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
    }

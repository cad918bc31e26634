"""Chat formatting rules: what a model sees for a list of chat turns."""

from __future__ import annotations

from collections.abc import Sequence

from cairn_events import ChatMessage


def chat_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """The OpenAI/transformers shape of the turns: system turns first (in order), then the rest.

    Chat templates (and SGLang) expect instructions before the conversation; a system turn
    that arrives later (e.g. retrieved context appended by a pipeline stage) is moved up
    rather than dropped. Empty turns are kept: an empty user turn is still a turn.
    """
    if not messages:
        raise ValueError("a chat needs at least one message")
    system = [m for m in messages if m.role == "system"]
    rest = [m for m in messages if m.role != "system"]
    return [{"role": m.role, "content": m.content} for m in [*system, *rest]]


def render_chatml(messages: Sequence[ChatMessage], *, add_generation_prompt: bool = True) -> str:
    """The ChatML text of the turns, for tokenizers without a chat template of their own."""
    parts = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in chat_dicts(messages)]
    if add_generation_prompt:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)

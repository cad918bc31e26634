"""Putting retrieved chunks into the prompt: numbered passages in one system message, within a budget.

The context is a system message

    Answer using the numbered passages below ... cite ... as [n] ...

    [1] (source_uri) chunk text

    [2] (source_uri) chunk text

placed right after the prompt's first system message (first of all when it has none), so the
prompt's own instructions keep precedence and the model can cite a passage as [n]. Passages are
taken best first; one that would push the message over the token budget is left out and the next
is tried, so a long chunk does not crowd out several short ones. Numbers follow the passages that
made it in, and the chunks reported for provenance are exactly those, in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cairn_events import ChatMessage
from cairn_retriever.domain.models import SearchHit

CountTokens = Callable[[str], int]

CONTEXT_INSTRUCTIONS = (
    "Answer using the numbered passages below when they are relevant, and cite each passage you "
    "use as [n]. If the passages do not contain the answer, say so."
)


@dataclass(frozen=True)
class AssembledContext:
    """The conversation with its context message, the chunks in it (numbered 1..n in this order),
    and the tokens the context message takes."""

    messages: list[ChatMessage]
    hits: list[SearchHit]
    context_tokens: int


def format_passage(number: int, source_uri: str, text: str) -> str:
    """One passage as the model sees it: `[n] (source_uri) text`."""
    return f"[{number}] ({source_uri}) {text}"


def context_text(hits: Sequence[SearchHit]) -> str:
    """The content of the context system message for these hits, numbered from 1."""
    passages = (format_passage(n, h.source_uri, h.text) for n, h in enumerate(hits, start=1))
    return "\n\n".join((CONTEXT_INSTRUCTIONS, *passages))


def insert_context(messages: Sequence[ChatMessage], content: str) -> list[ChatMessage]:
    """The messages with a system message holding `content` after the first system message, or first."""
    out = list(messages)
    at = next((i + 1 for i, m in enumerate(out) if m.role == "system"), 0)
    out.insert(at, ChatMessage(role="system", content=content))
    return out


def assemble_context(
    messages: Sequence[ChatMessage], hits: Sequence[SearchHit], budget: int, count_tokens: CountTokens
) -> AssembledContext:
    """Add as many of `hits` (best first) as fit in `budget` tokens; no context message if none fits.

    Each passage is counted once, not the whole growing message for every candidate: with a
    tokenizer that splits on white space first (the embedder's WordPiece), the message's tokens are
    the instructions' plus each passage's. The message chosen is counted once more in full; should a
    tokenizer not add up that way and the total pass the budget, the choice is made again by counting
    the whole message for every candidate.
    """
    chosen: list[SearchHit] = []
    tokens = count_tokens(CONTEXT_INSTRUCTIONS)
    for hit in hits:
        passage = count_tokens(format_passage(len(chosen) + 1, hit.source_uri, hit.text))
        if tokens + passage <= budget:
            chosen.append(hit)
            tokens += passage
    if not chosen:
        return AssembledContext(list(messages), [], 0)
    content = context_text(chosen)
    exact = count_tokens(content)
    if exact > budget:
        return _assemble_counting_whole(messages, hits, budget, count_tokens)
    return AssembledContext(insert_context(messages, content), chosen, exact)


def _assemble_counting_whole(
    messages: Sequence[ChatMessage], hits: Sequence[SearchHit], budget: int, count_tokens: CountTokens
) -> AssembledContext:
    """`assemble_context` for any tokenizer: the whole message counted for every candidate."""
    chosen: list[SearchHit] = []
    tokens = 0
    for hit in hits:
        trial = count_tokens(context_text([*chosen, hit]))
        if trial <= budget:
            chosen.append(hit)
            tokens = trial
    if not chosen:
        return AssembledContext(list(messages), [], 0)
    return AssembledContext(insert_context(messages, context_text(chosen)), chosen, tokens)


def query_of(messages: Sequence[ChatMessage], explicit: str | None) -> str | None:
    """The search query: the explicit one, else the last user message; None when neither has text."""
    if explicit and explicit.strip():
        return explicit.strip()
    for message in reversed(messages):
        if message.role == "user" and message.content.strip():
            return message.content.strip()
    return None

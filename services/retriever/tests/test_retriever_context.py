"""Context assembly: numbered passages after the first system message, within the token budget."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn_events import ChatMessage
from cairn_retriever.adapters.memory import HashingEmbedder
from cairn_retriever.domain.context import (
    CONTEXT_INSTRUCTIONS,
    assemble_context,
    context_text,
    format_passage,
    insert_context,
    query_of,
)
from cairn_retriever.domain.models import SearchHit

count = HashingEmbedder().count_tokens


def hit(n: int, text: str, similarity: float = 0.9) -> SearchHit:
    return SearchHit(
        chunk_id=f"c{n}",
        document_id=f"d{n}",
        collection="default",
        source_uri=f"file:///docs/{n}.md",
        text=text,
        content_hash=f"sha256:{n:064x}",
        ordinal=0,
        similarity=similarity,
        fused=1.0 / n,
    )


SYSTEM = ChatMessage(role="system", content="You are helpful.")
USER = ChatMessage(role="user", content="What does yield do?")


def test_passages_are_numbered_in_order_after_the_first_system_message() -> None:
    hits = [hit(1, "yield suspends a generator"), hit(2, "return ends a function")]
    ctx = assemble_context([SYSTEM, USER], hits, 10_000, count)
    assert [m.role for m in ctx.messages] == ["system", "system", "user"]
    assert ctx.messages[0] == SYSTEM
    body = ctx.messages[1].content
    assert body.startswith(CONTEXT_INSTRUCTIONS)
    assert "[1] (file:///docs/1.md) yield suspends a generator" in body
    assert "[2] (file:///docs/2.md) return ends a function" in body
    assert body.index("[1]") < body.index("[2]")
    assert ctx.hits == hits
    assert ctx.context_tokens == count(body)


def test_without_a_system_message_the_context_comes_first() -> None:
    ctx = assemble_context([USER], [hit(1, "text")], 10_000, count)
    assert [m.role for m in ctx.messages] == ["system", "user"]


def test_only_the_first_system_message_precedes_the_context() -> None:
    second = ChatMessage(role="system", content="Be brief.")
    out = insert_context([SYSTEM, second, USER], "CTX")
    assert [m.content for m in out] == ["You are helpful.", "CTX", "Be brief.", "What does yield do?"]


def test_nothing_fits_means_no_context_message() -> None:
    ctx = assemble_context([SYSTEM, USER], [hit(1, "a long passage " * 50)], 20, count)
    assert ctx.messages == [SYSTEM, USER]
    assert ctx.hits == []
    assert ctx.context_tokens == 0


def test_no_hits_means_no_context_message() -> None:
    ctx = assemble_context([SYSTEM, USER], [], 1000, count)
    assert ctx.messages == [SYSTEM, USER]
    assert ctx.hits == []


def test_a_passage_too_long_for_the_budget_is_skipped_and_shorter_ones_still_go_in() -> None:
    short1, long, short2 = hit(1, "short one"), hit(2, "very long " * 200), hit(3, "short two")
    budget = count(context_text([short1, short2]))
    ctx = assemble_context([USER], [short1, long, short2], budget, count)
    assert ctx.hits == [short1, short2]
    body = ctx.messages[0].content
    assert "[2] (file:///docs/3.md) short two" in body  # renumbered: numbers follow what went in
    assert "very long" not in body
    assert ctx.context_tokens == budget


@given(
    texts=st.lists(st.text(alphabet="abc de.\n", min_size=1, max_size=120), max_size=8),
    budget=st.integers(0, 400),
)
def test_the_context_never_exceeds_the_budget_and_is_greedy(texts: list[str], budget: int) -> None:
    hits = [hit(i + 1, t) for i, t in enumerate(texts)]
    ctx = assemble_context([USER], hits, budget, count)
    assert ctx.context_tokens <= budget
    if ctx.hits:
        assert ctx.context_tokens == count(ctx.messages[0].content)
        assert ctx.messages[0].content == context_text(ctx.hits)
    # every hit left out would have broken the budget when it was considered
    taken: list[SearchHit] = []
    for h in hits:
        if h in ctx.hits:
            taken.append(h)
        else:
            assert count(context_text([*taken, h])) > budget
    assert taken == ctx.hits


def test_format_passage() -> None:
    assert format_passage(3, "pydoc:topics/yield", "text") == "[3] (pydoc:topics/yield) text"


@pytest.mark.parametrize(
    ("messages", "explicit", "expected"),
    [
        ([SYSTEM, USER], None, "What does yield do?"),
        ([SYSTEM, USER], "  generators ", "generators"),
        ([SYSTEM, USER, ChatMessage(role="assistant", content="It pauses.")], None, "What does yield do?"),
        ([SYSTEM], None, None),
        ([SYSTEM, ChatMessage(role="user", content="   ")], "", None),
    ],
)
def test_query_of(messages: list[ChatMessage], explicit: str | None, expected: str | None) -> None:
    assert query_of(messages, explicit) == expected


def _minilm_count() -> object:
    from cairn_embedding import MiniLMEmbedder

    return MiniLMEmbedder().count_tokens  # the tokenizer only; the model is not loaded


@given(
    texts=st.lists(st.text(alphabet="abcXYZ de.,!?'\n-[]()é", min_size=1, max_size=160), max_size=8),
    budget=st.integers(0, 300),
)
def test_counting_each_passage_once_chooses_what_counting_the_whole_message_did(
    texts: list[str], budget: int
) -> None:
    from cairn_retriever.domain.context import _assemble_counting_whole

    minilm = _minilm_count()
    hits = [hit(i + 1, t) for i, t in enumerate(texts)]
    fast = assemble_context([SYSTEM, USER], hits, budget, minilm)  # type: ignore[arg-type]
    whole = _assemble_counting_whole([SYSTEM, USER], hits, budget, minilm)  # type: ignore[arg-type]
    assert fast == whole


def test_a_tokenizer_that_does_not_add_up_falls_back_to_counting_the_whole_message() -> None:
    calls: list[str] = []

    def joined_costs_more(text: str) -> int:  # every passage break costs 5 tokens of its own
        calls.append(text)
        return len(text.split()) + 5 * text.count("\n\n")

    hits = [hit(1, "one two three"), hit(2, "four five six")]
    budget = joined_costs_more(context_text(hits[:1]))
    ctx = assemble_context([USER], hits, budget, joined_costs_more)
    assert ctx.hits == hits[:1]
    assert ctx.context_tokens == budget
    assert any(text == context_text(hits) for text in calls)  # the whole-message path ran

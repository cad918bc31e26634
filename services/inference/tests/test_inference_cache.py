"""The response cache: its exact key, its semantic scope and when it is bypassed (domain), and the
handler answering an identical request, or a close question when the prompt opted in, from the stored
answer without generating (memory store; the stores themselves are held to their contract in
cache_behaviour.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cairn_bus import InMemoryPublisher
from cairn_events import CacheOutcome, CompletionDeltaGeneratedV1, ContextChunk, InputScreenedV1, Verdict
from cairn_inference.adapters.cache_memory import InMemoryResponseCache
from cairn_inference.domain.cache import (
    bypass_reason,
    cache_key,
    question_of,
    semantic_scope,
    semantic_threshold,
)
from cairn_observability.metrics import CACHE_TOKENS_SAVED

from .conftest import FakeBackend, screened
from .test_inference_handlers import Harness, harnessed, settings

MODEL = {"model": "cairn-qa", "model_version": "2", "adapter": "cairn-qa-v2", "base_model": "SmolLM2"}


def key(event: InputScreenedV1, **changes: str | None) -> str:
    return cache_key(event, **{**MODEL, **changes})  # type: ignore[arg-type]


def test_the_same_request_has_the_same_key_and_streaming_does_not_change_it() -> None:
    event = screened()
    assert key(event) == key(screened())
    assert key(event).startswith("exact:")
    assert key(event) == key(screened(params={**event.params.model_dump(), "stream": True}))


@pytest.mark.parametrize(
    "change",
    [
        {"tenant": "other-tenant"},  # never across tenants
        {"prompt_version": 99},  # the label moved to another version
        {"messages": [{"role": "user", "content": "another question"}]},
        {"params": {"max_tokens": 7}},
    ],
)
def test_anything_that_decides_the_answer_changes_the_key(change: dict[str, object]) -> None:
    assert key(screened(**change)) != key(screened())


def test_another_model_version_adapter_or_base_model_changes_the_key() -> None:
    event = screened()
    assert key(event, model_version="3") != key(event)  # a promotion or a rollback
    assert key(event, adapter=None) != key(event)
    assert key(event, base_model="Other") != key(event)


def test_a_reingested_chunk_with_new_content_changes_the_key() -> None:
    chunk = ContextChunk(
        document_id="d1", chunk_id="d1#0", source_uri="file:///kb/a.md", content_hash="sha256:aa", score=0.9,
        text="old",
    )  # fmt: skip
    old = screened(chunks=[chunk.model_dump()])
    new = screened(chunks=[{**chunk.model_dump(), "content_hash": "sha256:bb", "text": "new"}])
    assert key(old) != key(new)


def test_only_deterministic_unredacted_live_requests_use_the_cache() -> None:
    assert bypass_reason(screened(params={"temperature": 0.0}), replay=False) is None
    assert bypass_reason(screened(params={"temperature": 0.8, "seed": 7}), replay=False) is None
    assert bypass_reason(screened(params={"temperature": 0.8}), replay=False) == "not deterministic"
    assert bypass_reason(screened(verdict=Verdict.REDACT.value), replay=False) == "redacted input"
    assert bypass_reason(screened(), replay=True) == "replay or shadow request"


def test_a_prompt_that_opts_in_lets_sampled_answers_be_reused_but_never_redacted_or_replayed_ones() -> None:
    sampled = {"temperature": 0.8, "cache_sampled": True}
    assert bypass_reason(screened(params=sampled), replay=False) is None
    assert (
        bypass_reason(screened(params=sampled, verdict=Verdict.REDACT.value), replay=False)
        == "redacted input"
    )
    assert bypass_reason(screened(params=sampled), replay=True) == "replay or shadow request"


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def cached(backend: FakeBackend) -> AsyncIterator[Harness]:
    async with harnessed(settings(response_cache="exact"), backend, cache=InMemoryResponseCache()) as harness:
        yield harness


def ask(**changes: object) -> InputScreenedV1:
    return screened(**{"model": None, "params": {"temperature": 0.0, "max_tokens": 64}, **changes})


async def test_an_identical_request_is_answered_from_the_cache_without_generating(
    cached: Harness, backend: FakeBackend
) -> None:
    first, second = ask(request_id="req-first"), ask(request_id="req-second")
    saved_before = CACHE_TOKENS_SAVED.labels(first.tenant)._value.get()
    await cached.deliver(cached.message(first))
    await cached.deliver(cached.message(second))
    assert len(backend.calls) == 1
    generated, reused = cached.completions()
    assert generated.cache is not None
    assert (generated.cache.result, generated.cache.kind) == ("miss", "exact")
    assert reused.request_id == "req-second"
    assert reused.cache is not None
    assert (reused.cache.result, reused.cache.source_request_id) == ("hit", "req-first")
    assert (reused.text, reused.finish_reason, reused.usage) == (generated.text, "stop", generated.usage)
    assert reused.backend == "cache"
    assert reused.chunks == second.chunks  # its citations are kept
    assert (reused.model, reused.model_version) == (generated.model, generated.model_version)
    assert CACHE_TOKENS_SAVED.labels(first.tenant)._value.get() - saved_before == 42 + 7


async def test_another_tenant_never_gets_the_stored_answer(cached: Harness, backend: FakeBackend) -> None:
    await cached.deliver(cached.message(ask(request_id="req-a", tenant="acme")))
    await cached.deliver(cached.message(ask(request_id="req-b", tenant="globex")))
    assert len(backend.calls) == 2
    assert [c.cache.result for c in cached.completions() if c.cache] == ["miss", "miss"]


async def test_a_sampled_or_redacted_request_bypasses_the_cache(
    cached: Harness, backend: FakeBackend
) -> None:
    sampled = {"params": {"temperature": 0.9, "max_tokens": 64}}
    await cached.deliver(cached.message(ask(request_id="req-1", **sampled)))
    await cached.deliver(cached.message(ask(request_id="req-2", **sampled)))
    await cached.deliver(cached.message(ask(request_id="req-3", verdict=Verdict.REDACT.value)))
    await cached.deliver(cached.message(ask(request_id="req-4", verdict=Verdict.REDACT.value)))
    assert len(backend.calls) == 4
    reasons = [(c.cache.result, c.cache.reason) for c in cached.completions() if c.cache]
    assert reasons == [("bypass", "not deterministic")] * 2 + [("bypass", "redacted input")] * 2


async def test_a_replayed_request_is_generated_again(cached: Harness, backend: FakeBackend) -> None:
    event = ask(request_id="req-live")
    await cached.deliver(cached.message(event))
    replayed = cached.upstream.build(ask(request_id="req-replayed"), replay_id="replay-1", replay_of="evt-1")
    await cached.deliver(replayed)
    assert len(backend.calls) == 2


async def test_a_streamed_hit_sends_the_stored_answer_as_its_last_delta(
    cached: Harness, backend: FakeBackend
) -> None:
    await cached.deliver(cached.message(ask(request_id="req-first")))
    streamed = ask(request_id="req-streamed", params={"temperature": 0.0, "max_tokens": 64, "stream": True})
    await cached.deliver(cached.message(streamed))
    assert len(backend.calls) == 1
    [delta] = cached.published.events(CompletionDeltaGeneratedV1.event_type)
    assert isinstance(delta, CompletionDeltaGeneratedV1)
    assert (delta.request_id, delta.text, delta.last) == ("req-streamed", backend.text, True)


async def test_a_failed_generation_is_not_stored(cached: Harness, backend: FakeBackend) -> None:
    backend.error = RuntimeError("boom")
    await cached.deliver(cached.message(ask(request_id="req-1")))
    backend.error = None
    await cached.deliver(cached.message(ask(request_id="req-2")))
    assert len(backend.calls) == 2
    [completion] = cached.completions()
    assert completion.cache is not None
    assert completion.cache.result == "miss"


async def test_without_the_cache_no_outcome_is_recorded(backend: FakeBackend) -> None:
    async with harnessed(settings(), backend) as harness:
        await harness.deliver(harness.message(ask(request_id="req-1")))
        await harness.deliver(harness.message(ask(request_id="req-2")))
    assert len(backend.calls) == 2
    assert [c.cache for c in harness.completions()] == [None, None]


async def test_a_tenants_erasure_forgets_its_stored_answers(cached: Harness, backend: FakeBackend) -> None:
    from cairn_auth.encryption import TENANT_ERASE
    from cairn_auth.management import admin_action

    await cached.deliver(cached.message(ask(request_id="req-1", tenant="acme")))
    erase = admin_action("ops", TENANT_ERASE, "acme", tenant="acme")
    await cached.deliver(InMemoryPublisher("/cairn/cli").build(erase))
    await cached.deliver(cached.message(ask(request_id="req-2", tenant="acme")))
    assert len(backend.calls) == 2  # generated again: the stored answer is gone


# --- the semantic cache

REFUND = "How long do refunds take?"
REFUND_AGAIN = "How many days until my refund arrives?"
PARIS = "What is the capital of France?"
NO_REFUND = "How long don't refunds take?"  # as close to REFUND as an embedder may place it


class FakeEmbedder:
    """A QuestionEmbedder with fixed, L2-normalised vectors: the two refund questions are 0.97 alike."""

    name = "fake-embedder"
    vectors = {
        REFUND: [1.0, 0.0, 0.0],
        REFUND_AGAIN: [0.97, 0.2431, 0.0],
        PARIS: [0.0, 0.0, 1.0],
        NO_REFUND: [0.99, 0.1411, 0.0],
    }

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.error: Exception | None = None

    async def embed(self, text: str) -> list[float]:
        self.calls.append(text)
        if self.error is not None:
            raise self.error
        return self.vectors[text]


def question(text: str, **changes: object) -> InputScreenedV1:
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": text}]
    params = {"temperature": 0.0, "max_tokens": 64, "cache_semantic": True}
    return ask(**{"messages": messages, "params": params, **changes})


def scope(event: InputScreenedV1, **changes: str | None) -> str:
    return semantic_scope(event, **{**MODEL, **changes})  # type: ignore[arg-type]


def test_the_semantic_scope_is_the_exact_key_without_the_question() -> None:
    assert scope(question(REFUND)) == scope(question(PARIS))
    assert scope(question(REFUND)) != key(question(REFUND))
    assert question_of(question(REFUND)) == REFUND
    assert scope(question(REFUND, tenant="globex")) != scope(question(REFUND))
    assert scope(question(REFUND, prompt_version=99)) != scope(question(REFUND))
    assert scope(question(REFUND), model_version="3") != scope(question(REFUND))  # promotion, rollback
    other_system = [{"role": "system", "content": "Answer at length."}, {"role": "user", "content": REFUND}]
    assert scope(question(REFUND, messages=other_system)) != scope(question(REFUND))


def test_a_reingested_chunk_or_another_context_is_another_semantic_scope() -> None:
    chunk = ContextChunk(
        document_id="d1", chunk_id="d1#0", source_uri="file:///kb/a.md", content_hash="sha256:aa", score=0.9,
        text="old",
    )  # fmt: skip
    old = question(REFUND, chunks=[chunk.model_dump()])
    new = question(REFUND, chunks=[{**chunk.model_dump(), "content_hash": "sha256:bb"}])
    assert scope(old) != scope(new) != scope(question(REFUND))


def test_a_request_without_a_user_question_last_has_no_question() -> None:
    assert question_of(question(REFUND, messages=[{"role": "system", "content": "Say hi."}])) is None


def test_only_a_prompt_that_opts_in_has_a_threshold_its_own_or_the_default() -> None:
    assert semantic_threshold(ask(), 0.95) is None
    assert semantic_threshold(question(REFUND), 0.95) == 0.95
    tight = {"temperature": 0.0, "cache_semantic": True, "cache_similarity": 0.99}
    assert semantic_threshold(question(REFUND, params=tight), 0.95) == 0.99


@pytest.fixture
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
async def semantic(backend: FakeBackend, embedder: FakeEmbedder) -> AsyncIterator[Harness]:
    semantic = settings(response_cache="semantic", semantic_cache_similarity=0.95)
    async with harnessed(semantic, backend, cache=InMemoryResponseCache(), embedder=embedder) as harness:
        yield harness


async def test_a_close_question_is_answered_with_the_stored_answer(
    semantic: Harness, backend: FakeBackend
) -> None:
    saved_before = CACHE_TOKENS_SAVED.labels("acme")._value.get()
    await semantic.deliver(semantic.message(question(REFUND, request_id="req-first", tenant="acme")))
    await semantic.deliver(semantic.message(question(REFUND_AGAIN, request_id="req-close", tenant="acme")))
    assert len(backend.calls) == 1
    generated, reused = semantic.completions()
    assert generated.cache is not None
    assert reused.cache is not None
    assert (generated.cache.result, generated.cache.kind) == ("miss", "semantic")
    assert (reused.cache.result, reused.cache.kind, reused.cache.source_request_id) == (
        "hit",
        "semantic",
        "req-first",
    )
    assert reused.cache.similarity == pytest.approx(0.97)
    assert (reused.text, reused.backend) == (generated.text, "cache")
    assert CACHE_TOKENS_SAVED.labels("acme")._value.get() - saved_before == 42 + 7


async def test_a_question_not_close_enough_is_generated(semantic: Harness, backend: FakeBackend) -> None:
    await semantic.deliver(semantic.message(question(REFUND, request_id="req-1")))
    await semantic.deliver(semantic.message(question(PARIS, request_id="req-2")))
    strict = {"temperature": 0.0, "cache_semantic": True, "cache_similarity": 0.99}  # the prompt's own
    await semantic.deliver(semantic.message(question(REFUND_AGAIN, request_id="req-3", params=strict)))
    assert len(backend.calls) == 3
    assert [(c.cache.result, c.cache.kind) for c in semantic.completions() if c.cache] == [
        ("miss", "semantic")
    ] * 2 + [("miss", "semantic")]


async def test_the_semantic_cache_never_crosses_tenants_and_serves_only_prompts_that_opt_in(
    semantic: Harness, backend: FakeBackend, embedder: FakeEmbedder
) -> None:
    await semantic.deliver(semantic.message(question(REFUND, request_id="req-1", tenant="acme")))
    await semantic.deliver(semantic.message(question(REFUND_AGAIN, request_id="req-2", tenant="globex")))
    plain = {"temperature": 0.0, "max_tokens": 64}  # its prompt did not opt in: exact reuse only
    await semantic.deliver(semantic.message(question(REFUND_AGAIN, request_id="req-3", params=plain)))
    assert len(backend.calls) == 3
    assert embedder.calls == [REFUND, REFUND_AGAIN]  # the request that did not opt in is not embedded


async def test_a_redacted_close_question_never_gets_the_stored_answer(
    semantic: Harness, backend: FakeBackend
) -> None:
    await semantic.deliver(semantic.message(question(REFUND, request_id="req-1")))
    redacted = question(REFUND_AGAIN, request_id="req-2", verdict=Verdict.REDACT.value)
    await semantic.deliver(semantic.message(redacted))
    assert len(backend.calls) == 2
    assert semantic.completions()[-1].cache == CacheOutcome(result="bypass", reason="redacted input")


async def test_an_embedder_that_fails_leaves_the_request_generated_and_the_exact_cache_working(
    semantic: Harness, backend: FakeBackend, embedder: FakeEmbedder
) -> None:
    embedder.error = RuntimeError("model gone")
    await semantic.deliver(semantic.message(question(REFUND, request_id="req-1")))
    await semantic.deliver(semantic.message(question(REFUND, request_id="req-2")))
    assert len(backend.calls) == 1  # the identical request still hits the exact key
    assert [(c.cache.result, c.cache.kind) for c in semantic.completions() if c.cache] == [
        ("miss", "exact"),
        ("hit", "exact"),
    ]


async def test_with_the_exact_cache_only_a_close_question_is_generated(
    cached: Harness, backend: FakeBackend
) -> None:
    await cached.deliver(cached.message(question(REFUND, request_id="req-1")))
    await cached.deliver(cached.message(question(REFUND_AGAIN, request_id="req-2")))
    assert len(backend.calls) == 2
    assert [(c.cache.result, c.cache.kind) for c in cached.completions() if c.cache] == [
        ("miss", "exact")
    ] * 2


async def test_a_close_question_that_negates_the_stored_one_is_generated(
    semantic: Harness, backend: FakeBackend
) -> None:
    await semantic.deliver(semantic.message(question(REFUND, request_id="req-1")))
    await semantic.deliver(semantic.message(question(NO_REFUND, request_id="req-2")))
    await semantic.deliver(semantic.message(question(REFUND_AGAIN, request_id="req-3")))
    assert len(backend.calls) == 2  # the negated one, though closer than the paraphrase, is generated
    sources = [(c.request_id, c.cache.result) for c in semantic.completions() if c.cache]
    assert sources == [("req-1", "miss"), ("req-2", "miss"), ("req-3", "hit")]

"""The retriever's handlers: ground each rendered prompt in retrieved chunks, once per event."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import ValidationError

from cairn_bus import EventMeta
from cairn_bus.dispatcher import TRANSIENT
from cairn_bus.salvage import SalvagedRequest
from cairn_events import (
    ChatMessage,
    ContextAssembledV1,
    ContextChunk,
    DeadLetterKind,
    FeedbackSubmittedV1,
    PromptRenderedV1,
    ResponseCompletedV1,
    ResponseStatus,
)
from cairn_events.feedback import named_sources
from cairn_observability import RETRIEVAL_HITS, get_logger, record_request_outcome
from cairn_retriever.bootstrap import Deps
from cairn_retriever.domain.context import assemble_context, query_of
from cairn_retriever.domain.models import SearchHit
from cairn_retriever.domain.priors import (
    ChunkKey,
    Sentiment,
    ServedChunk,
    ServedContext,
    feedback_votes,
    rerank,
    sentiment_of,
)
from cairn_retriever.domain.tenancy import readable_collections
from cairn_retriever.metrics import (
    CONTEXT_CHUNKS,
    CONTEXT_TOKENS,
    LOOP_FEEDBACK,
    PRIOR_VOTES,
    RETRIEVALS,
)

CONSUMER = "retriever"
"""The inbox consumer name of `on_prompt_rendered`."""
FEEDBACK_CONSUMER = "retriever-feedback"
"""The inbox consumer name of `on_feedback_submitted`, claimed per `<tenant>/<feedback_id>`."""
log = get_logger("cairn.retriever")


def context_chunk(hit: SearchHit) -> ContextChunk:
    """A hit's provenance as carried by events; `score` is the cosine similarity to the query."""
    return ContextChunk(
        document_id=hit.document_id,
        chunk_id=hit.chunk_id,
        source_uri=hit.source_uri,
        content_hash=hit.content_hash,
        score=hit.similarity,
        text=hit.text,
    )


def retrieval_outcome(hits: Sequence[SearchHit], threshold: float) -> str:
    """`hit` when a chunk placed in the context reaches `threshold` cosine similarity, else `miss`."""
    return "hit" if any(h.similarity >= threshold for h in hits) else "miss"


def _assembled(
    event: PromptRenderedV1,
    messages: Sequence[ChatMessage],
    hits: Sequence[SearchHit],
    tokens: int,
    deps: Deps,
) -> ContextAssembledV1:
    return ContextAssembledV1(
        request_id=event.request_id,
        tenant=event.tenant,
        prompt_name=event.prompt_name,
        prompt_version=event.prompt_version,
        messages=list(messages),
        chunks=[context_chunk(h) for h in hits],
        context_tokens=tokens,
        params=event.params,
        model=event.model,
        assembled_at=deps.clock(),
    )


async def _give_up(
    event: PromptRenderedV1, meta: EventMeta, deps: Deps, status: ResponseStatus, reason: str
) -> None:
    RETRIEVALS.labels("failed").inc()
    log.warning("request answered without retrieval", status=status.value, reason=reason)
    response = ResponseCompletedV1(
        request_id=event.request_id,
        tenant=event.tenant,
        status=status,
        reason=reason,
        prompt_name=event.prompt_name,
        prompt_version=event.prompt_version,
        completed_at=deps.clock(),
    )
    await deps.publisher.publish(response, cause=meta)
    record_request_outcome(
        status.value,
        event.tenant,
        event.prompt_name,
        response.completed_at,
        replay=meta.replay_id is not None,
    )


async def on_prompt_rendered(event: PromptRenderedV1, meta: EventMeta, deps: Deps) -> None:
    """Publish the prompt with its retrieved context (`cairn.context.assembled.v1`).

    Without `retrieval`, the messages pass through unchanged with no chunks. Otherwise the query
    (explicit, else the last user message) is embedded, the top_k chunks of the collection (the
    request's tenant's and the shared tenant's of that name, never another tenant's) are retrieved (hybrid by default) keeping those whose cosine similarity reaches `min_score`, and as
    many as fit `context_token_budget` go into a numbered-passage system message. A redelivered
    event is recognised by the inbox and publishes nothing. A vector store outage is retried (the
    error propagates) until `give_up_after_s` after the prompt was rendered, then the request is
    answered `failed`; a retrieval with no query to search with is answered `rejected`.
    """
    published = False
    try:
        async with deps.inbox.once(CONSUMER, meta.id) as claim:
            if not claim:
                log.info("prompt already handled; redelivery ignored", event_id=meta.id)
                return
            published = await _ground(event, meta, deps, claim.conn)
    except TRANSIENT as exc:
        # the retriever's own database is unreachable (no inbox): answer anyway once the request is
        # old enough (the answer's id is derived from the prompt's, so a later repeat is recognised),
        # unless a context was already published and only the commit failed
        if published or _waited(event, deps) < deps.settings.give_up_after_s:
            raise
        reason = f"retriever database unavailable for {_waited(event, deps):.0f} s: {exc}"
        await _give_up(event, meta, deps, ResponseStatus.FAILED, reason[:1000])


def _waited(event: PromptRenderedV1, deps: Deps) -> float:
    return (deps.clock() - event.rendered_at).total_seconds()


def _loop_on(deps: Deps) -> bool:
    return deps.priors is not None and deps.settings.prior_weight > 0


async def _search(
    event: PromptRenderedV1, query: str, collections: tuple[str, ...], deps: Deps
) -> tuple[list[SearchHit], list[SearchHit]]:
    """(the top_k hits, the candidate pool they came from). With the loop on, `prior_candidates`
    are retrieved and reordered by the tenant's chunk priors (`domain.priors.rerank`)."""
    options = event.retrieval
    assert options is not None
    if not _loop_on(deps):
        hits = await deps.retriever.search(
            query, k=options.top_k, collection=collections, min_similarity=options.min_score
        )
        return hits, hits
    assert deps.priors is not None
    candidates = await deps.retriever.search(
        query,
        k=max(options.top_k, deps.settings.prior_candidates),
        collection=collections,
        min_similarity=options.min_score,
    )
    keys = list(dict.fromkeys(ChunkKey(h.document_id, h.content_hash) for h in candidates))
    votes = await deps.priors.votes(event.tenant, keys)
    priors = {key: v.prior(deps.settings.prior_smoothing) for key, v in votes.items()}
    hits = rerank(
        candidates,
        priors,
        weight=deps.settings.prior_weight,
        k=options.top_k,
    )
    return hits, candidates


async def _ground(event: PromptRenderedV1, meta: EventMeta, deps: Deps, conn: object = None) -> bool:
    """Publish the request's context or give it up; True once a context was published."""
    options = event.retrieval
    if options is None:
        RETRIEVALS.labels("skipped").inc()
        await deps.publisher.publish(_assembled(event, event.messages, [], 0, deps), cause=meta)
        return True
    query = query_of(event.messages, options.query)
    if query is None:
        reason = "retrieval was requested but there is nothing to search with: no query and no user message"
        await _give_up(event, meta, deps, ResponseStatus.REJECTED, reason)
        return False
    try:  # the request's tenant's collection and the shared one; never another tenant's
        collections = readable_collections(
            event.tenant, options.collection or deps.settings.default_collection
        )
    except ValueError as exc:
        await _give_up(event, meta, deps, ResponseStatus.REJECTED, f"retrieval refused: {exc}"[:1000])
        return False
    try:
        hits, candidates = await _search(event, query, collections, deps)
    except TRANSIENT as exc:
        waited = _waited(event, deps)
        if waited < deps.settings.give_up_after_s:
            raise
        reason = f"retrieval unavailable for {waited:.0f} s (vector store outage): {exc}"
        await _give_up(event, meta, deps, ResponseStatus.FAILED, reason[:1000])
        return False
    embedder = deps.retriever.embedder
    context = await asyncio.to_thread(
        assemble_context, event.messages, hits, deps.settings.context_token_budget, embedder.count_tokens
    )
    RETRIEVALS.labels("hit" if context.hits else "miss").inc()
    RETRIEVAL_HITS.labels(
        event.tenant, retrieval_outcome(context.hits, deps.settings.retrieval_hit_threshold)
    ).inc()
    CONTEXT_CHUNKS.observe(len(context.hits))
    CONTEXT_TOKENS.observe(context.context_tokens)
    if _loop_on(deps) and meta.replay_id is None:  # feedback never comes for a replay
        assert deps.priors is not None
        served = ServedContext(
            event.tenant,
            event.request_id,
            tuple(ServedChunk.of(h) for h in context.hits),
            tuple(ServedChunk.of(h) for h in candidates),
            deps.clock(),
        )
        await deps.priors.record_served(served, conn=conn)
    await deps.publisher.publish(
        _assembled(event, context.messages, context.hits, context.context_tokens, deps), cause=meta
    )
    return True


async def on_feedback_submitted(event: FeedbackSubmittedV1, meta: EventMeta, deps: Deps) -> None:
    """Let feedback move the ranking of the tenant's chunks (`domain.priors`): negative feedback votes
    down the chunks the request was served, a `source:<uri>` tag votes up that source's best chunk
    among the request's candidates; positive feedback naming no source casts nothing. Feedback
    on a request the retriever has no record of (not retrieved, or past `served_retention_days`) and
    neutral feedback naming no source change nothing. Idempotent per (tenant, feedback id): the votes
    and the inbox claim commit together."""
    if not _loop_on(deps):
        return
    assert deps.priors is not None
    sentiment = sentiment_of(event.thumbs, event.rating)
    right = named_sources(event.tags)
    if sentiment is not Sentiment.NEGATIVE and not right:
        LOOP_FEEDBACK.labels("ignored").inc()
        return
    served = await deps.priors.served(event.tenant, event.request_id)
    if served is None:
        LOOP_FEEDBACK.labels("unserved").inc()
        log.info("feedback on a request with no served record", request_id=event.request_id)
        return
    cast = feedback_votes(sentiment, right, served)
    async with deps.inbox.once(FEEDBACK_CONSUMER, f"{event.tenant}/{event.feedback_id}") as claim:
        if not claim:
            LOOP_FEEDBACK.labels("duplicate").inc()
            return
        await deps.priors.add_votes(event.tenant, cast.votes, conn=claim.conn)
    LOOP_FEEDBACK.labels("applied").inc()
    PRIOR_VOTES.labels("up").inc(cast.ups)
    PRIOR_VOTES.labels("down").inc(cast.downs)
    PRIOR_VOTES.labels("unreachable").inc(len(cast.unreachable))
    log.info(
        "feedback moved chunk priors",
        request_id=event.request_id,
        feedback_id=event.feedback_id,
        up=cast.ups,
        down=cast.downs,
        unreachable=list(cast.unreachable),
    )


def answer_dead_lettered_prompt(
    found: SalvagedRequest, kind: DeadLetterKind, reason: str, deps: Deps
) -> ResponseCompletedV1 | None:
    """A rendered prompt that was dead-lettered (unreadable, or the handler kept failing) is answered
    `failed`, so upstream never waits forever (the router publishes the answer; register with
    `EventRouter.answer_dead_lettered(PromptRenderedV1, ResponseCompletedV1)`). None when no valid answer can be made."""
    base = {
        "request_id": found.request_id,
        "tenant": found.tenant,
        "status": ResponseStatus.FAILED,
        "reason": f"the retriever could not handle the rendered prompt ({kind.value}): {reason}"[:1000],
        "completed_at": deps.clock(),
    }
    try:
        answer = ResponseCompletedV1.model_validate(
            {
                **base,
                "prompt_name": found.payload.get("prompt_name"),
                "prompt_version": found.payload.get("prompt_version"),
            }
        )
    except ValidationError:
        try:
            answer = ResponseCompletedV1.model_validate({**base, "tenant": "default"})
        except ValidationError:
            log.warning("cannot answer a dead-lettered prompt", request_id=found.request_id)
            return None
    RETRIEVALS.labels("failed").inc()
    record_request_outcome(answer.status.value, answer.tenant, answer.prompt_name, answer.completed_at)
    return answer

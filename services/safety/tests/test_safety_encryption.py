"""The review queue's content encrypted per tenant in PostgreSQL, and a tenant's erasure (`tenant.erase`
on `cairn.admin`) through the service's real router and dispatcher: the held content becomes unreadable,
and no decision releases anything for the tenant afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cairn_auth.encryption import (
    ERASED,
    SEALED_FIELD,
    SEALED_PREFIX,
    TENANT_ERASE,
    InMemoryTenantKeyStore,
    Keyring,
    MasterKey,
    PostgresTenantKeyStore,
    TenantErasedError,
    new_master_key,
)
from cairn_auth.management import admin_action
from cairn_bus import Dispatcher, InMemoryPublisher, Outcome, RawRecord
from cairn_bus.postgres import create_pool
from cairn_bus.publisher import OutgoingMessage
from cairn_bus.signing import (
    CLI_OWNER,
    KeyRing,
    SignaturePolicy,
    Signer,
    TrustedKey,
    generate_private_key_pem,
)
from cairn_events import (
    ChatMessage,
    CompletionGeneratedV1,
    ContextAssembledV1,
    DeadLetterRecordedV1,
    Event,
    ResponseCompletedV1,
    ResponseStatus,
    ReviewDecision,
    ReviewRequestedV1,
    ReviewResolvedV1,
)
from cairn_safety.adapters.policy_files import PolicyFiles
from cairn_safety.adapters.postgres import PostgresReviewQueue
from cairn_safety.app import router
from cairn_safety.bootstrap import Deps, build
from cairn_safety.decisions import announcer
from cairn_safety.domain.reviews import ERASED_REASON, ReviewItem, ReviewStatus
from cairn_safety.settings import Settings
from cairn_testing import schema_examples

ANSWER = "What the heck, refunds take 5 days."
QUESTION = "What the heck, mail me at bob@example.com"
REVIEWED = "What the heck, mail me at [EMAIL]"  # what a reviewer sees of QUESTION
EDIT = "Refunds take five working days."
NOTE = "reworded for Bob"
CLI = Signer.from_pem(generate_private_key_pem())
SAFETY = Signer.from_pem(generate_private_key_pem())  # signs the review decisions the API publishes


def example(cls: type[Any]) -> Any:
    [found] = schema_examples(cls.event_type)
    return found.event()


class Service:
    """The safety service's router and dispatcher on `deps`, trusting the CLI's key (admin actions) and
    its own (review decisions); builds the records other services and the CLI would produce."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        trusted = KeyRing(
            TrustedKey(owner, s.key_id, s.private_key.public_key())
            for owner, s in ((CLI_OWNER, CLI), ("safety", SAFETY))
        )
        self.dispatcher = Dispatcher(
            router,
            deps,
            deps.publisher,
            group_id="cairn-safety",
            retry_backoff_s=0,
            max_attempts=1,
            signatures=SignaturePolicy(trusted),
        )
        self.upstream = InMemoryPublisher("/cairn/test")
        self.offset = 0

    @property
    def published(self) -> list[OutgoingMessage]:
        return self.deps.publisher.messages  # type: ignore[attr-defined, no-any-return]

    def of(self, cls: type[Any]) -> list[OutgoingMessage]:
        return [m for m in self.published if isinstance(m.event, cls)]

    async def deliver(self, message: OutgoingMessage) -> Outcome:
        self.offset += 1
        record = RawRecord(
            message.topic, 0, self.offset, message.value, message.key, list(message.headers), 0
        )
        return await self.dispatcher.dispatch(record)

    async def hold(self, event: Event) -> ReviewItem:
        before = len(self.of(ReviewRequestedV1))
        assert await self.deliver(self.upstream.build(event)) is Outcome.HANDLED
        requested = self.of(ReviewRequestedV1)[before:]
        assert len(requested) == 1
        item = await self.deps.reviews.get(requested[0].event.review_id)  # type: ignore[union-attr]
        assert item is not None
        return item

    async def hold_output(self, tenant: str) -> ReviewItem:
        base: CompletionGeneratedV1 = example(CompletionGeneratedV1)
        return await self.hold(base.model_copy(update={"text": ANSWER, "tenant": tenant}))

    async def hold_input(self, tenant: str) -> ReviewItem:
        base: ContextAssembledV1 = example(ContextAssembledV1)
        turns = [base.messages[0], ChatMessage(role="user", content=QUESTION)]
        return await self.hold(base.model_copy(update={"messages": turns, "tenant": tenant}))

    async def erase(self, tenant: str, signer: Signer | None = CLI) -> Outcome:
        action = admin_action("ops", TENANT_ERASE, tenant, tenant=tenant)
        return await self.deliver(InMemoryPublisher("/cairn/cli", signer=signer).build(action))

    async def decide(self, item: ReviewItem, decision: ReviewDecision, **kwargs: Any) -> OutgoingMessage:
        """Decide as the API does, deliver the decision; the answer the service published for it."""
        await self.deps.reviews.resolve(
            item.review_id, decision, resolved_by="key-ann", then=announcer(self.deps.publisher), **kwargs
        )
        [resolved] = [m for m in self.of(ReviewResolvedV1) if m.event.review_id == item.review_id]  # type: ignore[union-attr]
        before = len(self.published)
        assert await self.deliver(resolved) is Outcome.HANDLED
        [answer] = self.published[before:]
        return answer


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[Any]:
    p = await create_pool(fresh_database, 1, 6)
    yield p
    await p.close()


@pytest.fixture
def master() -> str:
    return new_master_key()


def queue_on(pool: Any, master: str) -> PostgresReviewQueue:
    return PostgresReviewQueue(pool, Keyring(MasterKey.from_text(master), PostgresTenantKeyStore(pool)))


@pytest.fixture
async def service(pool: Any, master: str, policy_dir: Path, classifier: Any) -> AsyncIterator[Service]:
    queue = queue_on(pool, master)
    await queue.migrate()
    publisher = InMemoryPublisher("/cairn/safety", allowed_types=router.published_types, signer=SAFETY)
    async with build(
        Settings(),
        publisher,
        classifier=classifier,
        reviews=queue,
        policies=PolicyFiles(policy_dir),
        keyring=queue.keyring,
    ) as deps:
        yield Service(deps)


@pytest.mark.integration
async def test_the_queue_holds_ciphertext_and_reads_open_it(service: Service, pool: Any, master: str) -> None:
    output = await service.hold_output("acme")
    held_input = await service.hold_input("globex")
    await service.deps.reviews.resolve(
        held_input.review_id, ReviewDecision.EDIT, resolved_by="key-ann", note=NOTE, text=EDIT
    )
    rows = await pool.fetch(
        "SELECT text, note, edited_text, release, row_to_json(safety_reviews)::text AS everything "
        "FROM safety_reviews"
    )
    assert len(rows) == 2
    for row in rows:
        assert row["text"].startswith(SEALED_PREFIX)
        assert set(row["release"]) == {"envelope", SEALED_FIELD}  # the envelope: ids and trace headers
        assert row["release"][SEALED_FIELD].startswith(SEALED_PREFIX)
        for clear in (ANSWER, "refunds take", "mail me at", "bob@example.com", EDIT, NOTE):
            assert clear not in row["everything"], clear
    [decided] = [r for r in rows if r["note"] is not None]
    assert decided["note"].startswith(SEALED_PREFIX)
    assert decided["edited_text"].startswith(SEALED_PREFIX)
    # reads open it, in this process and in another replica with the same master key
    for reader in (service.deps.reviews, queue_on(pool, master)):
        got = await reader.get(output.review_id)
        assert got == output
        assert got.text == ANSWER
        assert got.release["response"]["text"] == ANSWER
        edited = await reader.get(held_input.review_id)
        assert edited is not None
        assert (edited.text, edited.note, edited.edited_text, edited.erased) == (REVIEWED, NOTE, EDIT, False)
        assert edited.release["screened"]["messages"][-1]["content"] == REVIEWED
    # an approval releases the held answer as it was
    answer = await service.decide(output, ReviewDecision.APPROVE)
    assert (answer.event.status, answer.event.text) == (ResponseStatus.COMPLETED, ANSWER)  # type: ignore[union-attr]


@pytest.mark.integration
async def test_an_erasure_makes_the_held_content_unreadable_and_releases_nothing(
    service: Service, pool: Any, master: str
) -> None:
    output = await service.hold_output("acme")
    held_input = await service.hold_input("acme")
    kept = await service.hold_output("globex")
    assert await service.erase("acme") is Outcome.HANDLED
    assert await service.erase("acme") is Outcome.HANDLED  # redelivered: idempotent
    key = await pool.fetchrow("SELECT wrapped_key, erased_at FROM tenant_keys WHERE tenant = 'acme'")
    assert (key["wrapped_key"], key["erased_at"] is not None) == (None, True)
    for reader in (service.deps.reviews, queue_on(pool, master)):  # this replica, and one that did not erase
        listed = {i.review_id: i for i in await reader.items()}
        assert [(i.text, i.erased) for i in (listed[output.review_id], listed[held_input.review_id])] == [
            (ERASED, True),
            (ERASED, True),
        ]
        assert set(listed[output.review_id].release) == {"envelope"}
        assert listed[kept.review_id] == kept
    # the rows are still there, as ciphertext nobody can open
    assert await pool.fetchval("SELECT count(*) FROM safety_reviews WHERE tenant = 'acme'") == 2
    # neither an approval nor an edit releases anything for the erased tenant
    for item, decision, extra in (
        (output, ReviewDecision.APPROVE, {}),
        (held_input, ReviewDecision.EDIT, {"text": EDIT, "note": NOTE}),
    ):
        answer = await service.decide(item, decision, **extra)
        assert isinstance(answer.event, ResponseCompletedV1)  # a held input does not go on to the model
        assert (answer.event.status, answer.event.reason, answer.event.text) == (
            ResponseStatus.BLOCKED,
            ERASED_REASON,
            None,
        )
        assert ERASED not in answer.value.decode()
    edited = await service.deps.reviews.get(held_input.review_id)
    assert edited is not None
    # the decision made after the erasure is kept, under the tenant's new key
    assert (edited.status, edited.note, edited.edited_text, edited.text) == (
        ReviewStatus.EDITED,
        NOTE,
        EDIT,
        ERASED,
    )
    # another tenant's held answer is released as before
    answer = await service.decide(kept, ReviewDecision.APPROVE)
    assert (answer.event.status, answer.event.text) == (ResponseStatus.COMPLETED, ANSWER)  # type: ignore[union-attr]
    # content the tenant sends afterwards is readable, under a new key
    later = await service.hold_output("acme")
    assert ((await service.deps.reviews.get(later.review_id)).text, later.erased) == (ANSWER, False)  # type: ignore[union-attr]


@pytest.mark.integration
async def test_an_unsigned_erasure_is_dead_lettered_and_erases_nothing(service: Service, pool: Any) -> None:
    item = await service.hold_output("acme")
    assert await service.erase("acme", signer=None) is Outcome.DEADLETTERED
    assert (
        await service.erase("acme", signer=Signer.from_pem(generate_private_key_pem()))
        is Outcome.DEADLETTERED
    )
    letters = [m.event for m in service.of(DeadLetterRecordedV1)]
    assert len(letters) == 2
    assert await pool.fetchval("SELECT count(*) FROM tenant_keys WHERE erased_at IS NOT NULL") == 0
    assert (await service.deps.reviews.get(item.review_id)).text == ANSWER  # type: ignore[union-attr]


@pytest.mark.integration
async def test_other_admin_actions_change_nothing(service: Service) -> None:
    item = await service.hold_output("acme")
    moved = admin_action("ops", "label.moved", "acme", tenant="acme")
    assert await service.deliver(InMemoryPublisher("/cairn/cli", signer=CLI).build(moved)) is Outcome.HANDLED
    assert (await service.deps.reviews.get(item.review_id)).text == ANSWER  # type: ignore[union-attr]


@pytest.mark.integration
async def test_the_default_keyring_uses_the_configured_master_key(
    pool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_master_key()
    monkeypatch.setenv("CAIRN_MASTER_KEY", key)
    queue = PostgresReviewQueue(pool)
    await queue.migrate()
    assert queue.keyring is not None
    await queue.keyring.seal("acme", b"x")  # creates the tenant's key, wrapped by the configured key
    mine = Keyring(MasterKey.from_text(key), PostgresTenantKeyStore(pool))
    sealed = await mine.seal("acme", b"held")
    assert await queue.keyring.open(sealed) == b"held"
    assert PostgresReviewQueue(pool, None).keyring is None  # stored as it is


# --- the handler without PostgreSQL ----------------------------------------------------------------


async def test_the_erasure_handler_destroys_the_services_key(
    policy_dir: Path, classifier: Any, reviews: Any
) -> None:
    keyring = Keyring(MasterKey.from_text(new_master_key()), InMemoryTenantKeyStore())
    sealed = await keyring.seal("acme", b"held text")
    other = await keyring.seal("globex", b"kept")
    publisher = InMemoryPublisher("/cairn/safety", allowed_types=router.published_types, signer=SAFETY)
    async with build(
        Settings(),
        publisher,
        classifier=classifier,
        reviews=reviews,
        policies=PolicyFiles(policy_dir),
        keyring=keyring,
    ) as deps:
        service = Service(deps)
        assert await service.erase("acme") is Outcome.HANDLED
    with pytest.raises(TenantErasedError):
        await keyring.open(sealed)
    assert await keyring.open(other) == b"kept"
    assert publisher.messages == []  # an erasure publishes nothing


async def test_without_a_master_key_an_erasure_is_logged_and_changes_nothing(
    policy_dir: Path, classifier: Any, reviews: Any
) -> None:
    publisher = InMemoryPublisher("/cairn/safety", allowed_types=router.published_types, signer=SAFETY)
    async with build(
        Settings(), publisher, classifier=classifier, reviews=reviews, policies=PolicyFiles(policy_dir)
    ) as deps:
        assert deps.keyring is None
        service = Service(deps)
        item = await service.hold_output("acme")
        assert await service.erase("acme") is Outcome.HANDLED
        assert (await deps.reviews.get(item.review_id)) == item

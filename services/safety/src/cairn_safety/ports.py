"""Ports of the safety service: the toxicity classifier, the review queue and the policy source."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from cairn_events import ReviewDecision
from cairn_safety.domain.policy import Policy
from cairn_safety.domain.reviews import ReviewItem, ReviewStatus

Announce = Callable[[ReviewItem], Awaitable[None]]
"""Publishes a decided item's decision, inside the transaction that decided it."""


class ToxicityClassifier(Protocol):
    """Scores texts for toxicity."""

    @property
    def name(self) -> str:
        """The classifier's name, recorded in findings (e.g. `profanity-check`)."""
        ...

    def scores(self, texts: Sequence[str]) -> list[float]:
        """One probability in [0, 1] per text, in order (an empty list for no texts).

        May block for a while (a model runs): callers run it in a worker thread, unless the
        classifier says it is `inline` (see `runs_inline`).
        """
        ...


def runs_inline(classifier: ToxicityClassifier) -> bool:
    """Whether the classifier is quick enough (well under a millisecond a text) to run on the event
    loop: a hand-off to a worker thread then costs more than the scoring. Classifiers say so with a
    true `inline` attribute; by default they run in a worker thread."""
    return bool(getattr(classifier, "inline", False))


class QueueTransaction(Protocol):
    """The writes of one handled event; they commit together with the event's inbox claim."""

    async def add(self, item: ReviewItem) -> None:
        """Queue a review item (an item with the same id already queued is left as it is)."""
        ...


class ReviewQueue(Protocol):
    """The human review queue, and the inbox that makes the screening handlers idempotent.

    An implementation may store the items' content encrypted per tenant: once the tenant is erased,
    its items read `erased` (content `[erased]`) and can still be listed and decided."""

    def once(self, consumer: str, event_id: str) -> AbstractAsyncContextManager[QueueTransaction | None]:
        """A transaction that first claims `event_id` for `consumer`.

        Yields None when the event was claimed before (it was handled: do nothing). Otherwise
        yields a transaction whose writes commit, with the claim, when the block exits normally;
        when the block raises, nothing is kept and the event can be handled again.
        """
        ...

    async def get(self, review_id: str) -> ReviewItem | None:
        """One review item, or None."""
        ...

    async def items(
        self, status: ReviewStatus | None = ReviewStatus.PENDING, tenant: str | None = None, limit: int = 100
    ) -> list[ReviewItem]:
        """Review items, oldest first, optionally of one status and one tenant."""
        ...

    async def resolve(
        self,
        review_id: str,
        decision: ReviewDecision,
        *,
        resolved_by: str,
        note: str | None = None,
        text: str | None = None,
        now: datetime | None = None,
        then: Announce | None = None,
    ) -> ReviewItem:
        """Decide a pending item (`text`: the reviewer's corrected text, for an edit); returns it decided.

        `then(item)` runs inside the same transaction once the item is decided (it publishes the
        decision): when it raises, the item stays pending. Raises ReviewNotFoundError for an unknown
        id, ReviewAlreadyResolvedError when it was decided before.
        """
        ...

    async def resolve_overdue(self, now: datetime, then: Announce, limit: int = 100) -> list[ReviewItem]:
        """Decide pending items whose deadline is at or before `now` with their policy's default
        (`resolved_by` = `deadline`), oldest deadline first, at most `limit`; `then(item)` runs for each
        in the same transaction (when it raises, every item of the batch stays pending). Items another
        replica is deciding at the same moment are skipped, not waited for. Returns the items decided.
        """
        ...


class PolicySource(Protocol):
    """Where each tenant's policy comes from."""

    def policy_for(self, tenant: str) -> Policy:
        """The tenant's policy, or the default policy when the tenant has none."""
        ...


class PolicyStore(PolicySource, Protocol):
    """A policy source that lists its policies and takes changed ones (the admin API's)."""

    @property
    def default(self) -> str:
        """The name of the policy of tenants without their own (`default`)."""
        ...

    def policies(self) -> list[Policy]:
        """Every policy, by name; raises PolicyError when one cannot be loaded."""
        ...

    def put(self, policy: Policy) -> Policy | None:
        """Store `policy` under its name (it applies from the next screening on); the policy it
        replaced, if any. Raises OSError when the policies cannot be written."""
        ...

    def remove(self, name: str) -> None:
        """Delete the policy `name` (its tenant falls back to the default); nothing when absent."""
        ...

"""The PromptStore behaviour suite: one set of tests every PromptStore implementation must pass.

Not collected by itself. A backend runs it by subclassing `PromptStoreBehaviour` as a `Test...`
class with a `store` fixture giving a new, empty store. `test_prompt_store_memory_store.py` runs it
against the in-memory store, `test_prompt_store_postgres.py` against PostgreSQL.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from cairn_prompt_store.domain.errors import VersionNotFoundError
from cairn_prompt_store.domain.experiments import Experiment, Variant
from cairn_prompt_store.domain.proposals import WinnerProposal
from cairn_prompt_store.ports import PromptStore

from .conftest import spec

PROPOSED = datetime(2025, 3, 5, 10, 42, tzinfo=UTC)


class PromptStoreBehaviour:
    """What every PromptStore promises."""

    async def test_pushes_number_versions_from_one(self, store: PromptStore) -> None:
        first = await store.push(spec(), "ana")
        second = await store.push(spec(description="v2"), "ben")
        assert (first.version.version, first.created) == (1, True)
        assert (second.version.version, second.created) == (2, True)
        assert second.version.created_by == "ben"
        assert second.version.content_hash == spec(description="v2").content_hash()
        assert [v.version for v in await store.versions("greet")] == [1, 2]
        assert await store.versions("nothing") == []

    async def test_identical_content_returns_the_existing_version(self, store: PromptStore) -> None:
        await store.push(spec(), "ana")
        await store.push(spec(description="v2"), "ana")
        again = await store.push(spec(), "ben")
        assert (again.version.version, again.created) == (1, False)
        assert again.version.created_by == "ana"
        assert [v.version for v in await store.versions("greet")] == [1, 2]

    async def test_versions_are_immutable(self, store: PromptStore) -> None:
        await store.push(spec(), "ana")
        await store.push(spec(description="changed", model="m"), "ana")
        v1 = await store.get("greet", 1)
        assert v1 is not None
        assert v1.spec == spec()
        assert v1.content_hash == spec().content_hash()
        assert await store.get("greet", 3) is None
        assert await store.get("nothing", 1) is None

    async def test_prompts_are_separate(self, store: PromptStore) -> None:
        await store.push(spec("a"), "ana")
        other = await store.push(spec("b"), "ana")
        assert other.version.version == 1
        await store.move_label("a", "production", 1, "ana")
        assert await store.labels("b") == {}

    async def test_labels_move_and_their_history_is_kept(self, store: PromptStore) -> None:
        await store.push(spec(), "ana")
        await store.push(spec(description="v2"), "ana")
        first = await store.move_label("greet", "production", 1, "ana")
        assert (first.version, first.previous, first.moved_by) == (1, None, "ana")
        await store.move_label("greet", "staging", 2, "ben")
        moved = await store.move_label("greet", "production", 2, "cleo")
        assert (moved.version, moved.previous, moved.moved_by) == (2, 1, "cleo")
        assert await store.labels("greet") == {"production": 2, "staging": 2}
        history = await store.label_history("greet")
        assert [(m.label, m.previous, m.version, m.moved_by) for m in history] == [
            ("production", None, 1, "ana"),
            ("staging", None, 2, "ben"),
            ("production", 1, 2, "cleo"),
        ]
        assert all(m.moved_at.tzinfo is not None for m in history)
        assert history[0].moved_at <= history[1].moved_at <= history[2].moved_at

    async def test_moving_a_label_where_it_points_records_nothing(self, store: PromptStore) -> None:
        await store.push(spec(), "ana")
        await store.move_label("greet", "dev", 1, "ana")
        same = await store.move_label("greet", "dev", 1, "ben")
        assert (same.version, same.previous) == (1, 1)
        assert len(await store.label_history("greet")) == 1

    async def test_a_label_only_points_at_an_existing_version(self, store: PromptStore) -> None:
        await store.push(spec(), "ana")
        with pytest.raises(VersionNotFoundError, match="prompt 'greet' has no version 5"):
            await store.move_label("greet", "production", 5, "ana")
        with pytest.raises(VersionNotFoundError):
            await store.move_label("nothing", "production", 1, "ana")
        assert await store.labels("greet") == {}
        assert await store.label_history("greet") == []

    async def test_listing_summarises_each_prompt(self, store: PromptStore) -> None:
        await store.push(spec("b"), "ana")
        await store.push(spec("a"), "ana")
        await store.push(spec("a", description="second"), "ana")
        await store.move_label("a", "production", 1, "ana")
        await store.move_label("a", "dev", 2, "ana")
        await store.set_experiment(
            Experiment(name="exp", prompt="a", variants=[Variant(name="x", version=1)]), "ana"
        )
        listing = await store.prompts()
        assert [(s.name, s.latest_version, s.description, s.labels, s.experiment) for s in listing] == [
            ("a", 2, "second", {"dev": 2, "production": 1}, "exp"),
            ("b", 1, "", {}, None),
        ]

    async def test_experiments_are_set_replaced_and_cleared(self, store: PromptStore) -> None:
        await store.push(spec("a"), "ana")
        await store.push(spec("b"), "ana")
        one = Experiment(name="e1", prompt="a", variants=[Variant(name="x", version=1, weight=3)])
        two = Experiment(
            name="e2", prompt="a", label="staging", variants=[Variant(name="y", label="production")]
        )
        other = Experiment(name="e3", prompt="b", variants=[Variant(name="z", version=1)])
        assert await store.experiment("a") is None
        await store.set_experiment(one, "ana")
        await store.set_experiment(other, "ana")
        assert await store.experiment("a") == one
        await store.set_experiment(two, "ana")
        assert await store.experiment("a") == two
        assert await store.experiments() == [two, other]
        assert await store.clear_experiment("a") is True
        assert await store.clear_experiment("a") is False
        assert await store.experiments() == [other]

    async def test_an_experiments_winner_policy_is_kept(self, store: PromptStore) -> None:
        await store.push(spec("a"), "ana")
        promote = Experiment(
            name="e1", prompt="a", variants=[Variant(name="x", version=1)], on_winner="promote"
        )
        await store.set_experiment(promote, "ana")
        found = await store.experiment("a")
        assert found is not None
        assert found.on_winner == "promote"
        default = Experiment(name="e2", prompt="a", variants=[Variant(name="x", version=1)])
        assert default.on_winner == "propose"

    async def test_winner_proposals_are_kept_once_and_closed_once(self, store: PromptStore) -> None:
        first = WinnerProposal("c-1", "a", "e1", "production", "x", 2, 41.5, "x: 0.9", PROPOSED)
        later = WinnerProposal(
            "c-2", "a", "e2", "production", "y", 3, 22.0, "y: 0.8", PROPOSED + timedelta(hours=1)
        )
        assert await store.propose_winner(later) is True
        assert await store.propose_winner(first) is True
        assert await store.propose_winner(replace(first, version=9)) is False  # the first stays
        assert await store.propose_winner(first, tenant="acme") is True  # tenants apart
        assert [p.conclusion_id for p in await store.proposals()] == ["c-1", "c-2"]
        assert (await store.proposals())[0] == first
        closed = await store.close_proposal("c-1", "accepted", "ana")
        assert closed is not None
        assert (closed.status, closed.closed_by, closed.version) == ("accepted", "ana", 2)
        assert closed.closed_at is not None
        assert await store.close_proposal("c-1", "dismissed", "bob") is None  # closed once
        assert await store.close_proposal("c-9", "accepted", "ana") is None
        assert [p.conclusion_id for p in await store.proposals(status="open")] == ["c-2"]
        assert [p.status for p in await store.proposals(tenant="acme")] == ["open"]

    async def test_concurrent_pushes_keep_versions_dense_and_content_unique(self, store: PromptStore) -> None:
        specs = [spec(description=f"v{i}") for i in range(6)]
        results = await asyncio.gather(*(store.push(s, "ana") for s in [*specs, *specs]))
        assert sorted({r.version.version for r in results}) == [1, 2, 3, 4, 5, 6]
        assert sum(r.created for r in results) == 6
        by_hash = {r.version.content_hash: r.version.version for r in results}
        assert len(by_hash) == 6

    async def test_tenants_are_kept_apart(self, store: PromptStore) -> None:
        await store.push(spec(description="shared"), "ana")
        mine = await store.push(spec(description="acme's"), "ben", tenant="acme")
        await store.push(spec(description="acme's v2"), "ben", tenant="acme")
        assert (mine.version.version, mine.created) == (1, True)  # numbered per tenant
        assert [v.spec.description for v in await store.versions("greet", tenant="acme")] == [
            "acme's",
            "acme's v2",
        ]
        assert [v.spec.description for v in await store.versions("greet")] == ["shared"]
        assert await store.versions("greet", tenant="globex") == []
        assert await store.get("greet", 2, tenant="acme") is not None
        assert await store.get("greet", 2) is None
        assert await store.has_prompt("greet", tenant="acme") is True
        assert await store.has_prompt("greet", tenant="globex") is False

        await store.move_label("greet", "production", 2, "ben", tenant="acme")
        with pytest.raises(VersionNotFoundError):  # version 2 exists in acme only
            await store.move_label("greet", "production", 2, "ana")
        assert await store.labels("greet", tenant="acme") == {"production": 2}
        assert await store.labels("greet") == {}
        assert len(await store.label_history("greet", tenant="acme")) == 1
        assert await store.label_history("greet") == []

        exp = Experiment(name="e", prompt="greet", variants=[Variant(name="x", version=1)])
        await store.set_experiment(exp, "ben", tenant="acme")
        assert await store.experiment("greet") is None
        assert await store.experiments(tenant="acme") == [exp]
        assert await store.experiments() == []
        assert await store.clear_experiment("greet") is False
        assert await store.experiment("greet", tenant="acme") == exp

        assert [(s.tenant, s.latest_version, s.experiment) for s in await store.prompts()] == [
            ("default", 1, None)
        ]
        assert [(s.tenant, s.latest_version) for s in await store.prompts(tenant="acme")] == [("acme", 2)]
        assert [s.tenant for s in await store.prompts(tenant=None)] == ["acme", "default"]

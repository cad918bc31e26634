"""The behaviour every ShadowStore must pass; subclassed per backend with a `shadow_store` fixture
giving a new, empty store (not collected alone)."""

from __future__ import annotations

from datetime import timedelta

from cairn_evaluator.domain.shadow import Mirror, Shadow, ShadowAnswer, Side
from cairn_evaluator.ports import ShadowStore
from cairn_events import ResponseStatus

from .conftest import T0


def a_shadow(shadow_id: str = "qa-v3", **kw: object) -> Shadow:
    return Shadow.model_validate(
        {
            "shadow_id": shadow_id,
            "prompt": "qa:3",
            "share": 0.5,
            "created_by": "cli:ann",
            "created_at": T0,
            "updated_by": "cli:ann",
            "updated_at": T0,
            **kw,
        }
    )


def a_mirror(n: int, shadow_id: str = "qa-v3", minutes: int = 0) -> Mirror:
    return Mirror(
        shadow_id=shadow_id,
        request_id=f"req-{n}",
        shadow_request_id=f"shadow:{shadow_id}:req-{n}",
        tenant="default",
        live_event_id=f"ev-{n}",
        submitted_at=T0 + timedelta(minutes=minutes),
        mirrored_at=T0 + timedelta(minutes=minutes, seconds=1),
    )


def an_answer(n: int, side: Side, shadow_id: str = "qa-v3", minutes: int = 0, **kw: object) -> ShadowAnswer:
    return ShadowAnswer.model_validate(
        {
            "shadow_id": shadow_id,
            "request_id": f"req-{n}",
            "side": side,
            "event_id": f"ev-{n}-{side}",
            "status": ResponseStatus.COMPLETED,
            "refused": False,
            "groundedness": 0.5,
            "input_tokens": 100,
            "output_tokens": 20,
            "model": "cairn-qa",
            "model_version": "2",
            "prompt_name": "qa",
            "prompt_version": 3,
            "completed_at": T0 + timedelta(minutes=minutes, seconds=5),
            **kw,
        }
    )


class ShadowStoreBehaviour:
    async def test_a_shadow_is_saved_replaced_and_listed_by_id(self, shadow_store: ShadowStore) -> None:
        await shadow_store.save_shadow(a_shadow("zz", model="cairn-qa:2", prompt=None, tenant="acme"))
        await shadow_store.save_shadow(a_shadow("aa"))
        assert await shadow_store.get_shadow("zz") == a_shadow(
            "zz", model="cairn-qa:2", prompt=None, tenant="acme"
        )
        stopped = a_shadow("aa", enabled=False, updated_by="key-1", updated_at=T0 + timedelta(hours=1))
        await shadow_store.save_shadow(stopped)
        assert [s.shadow_id for s in await shadow_store.shadows()] == ["aa", "zz"]
        assert await shadow_store.get_shadow("aa") == stopped
        assert await shadow_store.get_shadow("missing") is None

    async def test_a_mirror_is_kept_once_and_found_by_its_shadow_request(
        self, shadow_store: ShadowStore
    ) -> None:
        assert await shadow_store.record_mirror(a_mirror(1))
        assert not await shadow_store.record_mirror(a_mirror(1))
        assert await shadow_store.record_mirror(a_mirror(1, shadow_id="other"))
        assert await shadow_store.mirror_for("shadow:qa-v3:req-1") == a_mirror(1)
        assert await shadow_store.mirror_for("shadow:qa-v3:req-9") is None
        assert await shadow_store.mirrors("qa-v3", 10) == [a_mirror(1)]

    async def test_an_answer_is_kept_once_per_side(self, shadow_store: ShadowStore) -> None:
        assert await shadow_store.record_answer(an_answer(1, "live"))
        assert not await shadow_store.record_answer(an_answer(1, "live", event_id="another"))
        assert await shadow_store.record_answer(an_answer(1, "shadow", groundedness=None))
        both = await shadow_store.answers_for("qa-v3", "req-1")
        assert sorted(a.side for a in both) == ["live", "shadow"]
        assert next(a for a in both if a.side == "shadow").groundedness is None
        assert await shadow_store.answers_for("qa-v3", "req-2") == []

    async def test_reads_return_the_newest_oldest_first(self, shadow_store: ShadowStore) -> None:
        for n in (3, 1, 2):
            await shadow_store.record_mirror(a_mirror(n, minutes=n))
            await shadow_store.record_answer(an_answer(n, "live", minutes=n))
        await shadow_store.record_answer(an_answer(9, "live", shadow_id="other"))
        assert [m.request_id for m in await shadow_store.mirrors("qa-v3", 2)] == ["req-2", "req-3"]
        assert [a.request_id for a in await shadow_store.answers("qa-v3", 2)] == ["req-2", "req-3"]
        assert [a.request_id for a in await shadow_store.answers("qa-v3", 10)] == ["req-1", "req-2", "req-3"]

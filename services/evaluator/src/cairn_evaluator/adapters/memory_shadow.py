"""The shadow store in dicts, for unit tests; it passes the same behaviour suite as PostgreSQL."""

from __future__ import annotations

from cairn_evaluator.domain.shadow import Mirror, Shadow, ShadowAnswer


class InMemoryShadowStore:
    """`ShadowStore` in dicts."""

    def __init__(self) -> None:
        self._shadows: dict[str, Shadow] = {}
        self._mirrors: dict[tuple[str, str], Mirror] = {}
        self._by_shadow_request: dict[str, Mirror] = {}
        self._answers: dict[tuple[str, str, str], ShadowAnswer] = {}

    async def save_shadow(self, shadow: Shadow) -> None:
        self._shadows[shadow.shadow_id] = shadow

    async def get_shadow(self, shadow_id: str) -> Shadow | None:
        return self._shadows.get(shadow_id)

    async def shadows(self) -> list[Shadow]:
        return [self._shadows[k] for k in sorted(self._shadows)]

    async def record_mirror(self, mirror: Mirror) -> bool:
        key = (mirror.shadow_id, mirror.request_id)
        if key in self._mirrors:
            return False
        self._mirrors[key] = mirror
        self._by_shadow_request[mirror.shadow_request_id] = mirror
        return True

    async def mirror_for(self, shadow_request_id: str) -> Mirror | None:
        return self._by_shadow_request.get(shadow_request_id)

    async def record_answer(self, answer: ShadowAnswer) -> bool:
        key = (answer.shadow_id, answer.request_id, answer.side)
        if key in self._answers:
            return False
        self._answers[key] = answer
        return True

    async def answers_for(self, shadow_id: str, request_id: str) -> list[ShadowAnswer]:
        found = [self._answers.get((shadow_id, request_id, side)) for side in ("live", "shadow")]
        return [a for a in found if a is not None]

    async def mirrors(self, shadow_id: str, limit: int) -> list[Mirror]:
        found = sorted(
            (m for m in self._mirrors.values() if m.shadow_id == shadow_id),
            key=lambda m: (m.mirrored_at, m.request_id),
        )
        return found[-limit:] if limit > 0 else []

    async def answers(self, shadow_id: str, limit: int) -> list[ShadowAnswer]:
        found = sorted(
            (a for a in self._answers.values() if a.shadow_id == shadow_id),
            key=lambda a: (a.completed_at, a.event_id),
        )
        return found[-limit:] if limit > 0 else []

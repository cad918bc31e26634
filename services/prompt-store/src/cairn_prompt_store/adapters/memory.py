"""In-memory adapters for unit tests; the same behaviour suite runs against PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from cairn_prompt_store.domain.errors import VersionNotFoundError
from cairn_prompt_store.domain.experiments import Experiment
from cairn_prompt_store.domain.proposals import ProposalStatus, WinnerProposal
from cairn_prompt_store.domain.records import LabelMove, PromptSummary, PromptVersion, PushResult
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.domain.tenants import SHARED_TENANT


def _now() -> datetime:
    return datetime.now(UTC)


class InMemoryPromptStore:
    """PromptStore in dictionaries keyed by (tenant, prompt name)."""

    def __init__(self, clock: Callable[[], datetime] = _now) -> None:
        self.clock = clock
        self._versions: dict[tuple[str, str], list[PromptVersion]] = {}
        self._labels: dict[tuple[str, str], dict[str, int]] = {}
        self._history: dict[tuple[str, str], list[LabelMove]] = {}
        self._experiments: dict[tuple[str, str], Experiment] = {}
        self._proposals: dict[tuple[str, str], WinnerProposal] = {}
        self.fail_with: Exception | None = None
        """Raised by every call while set (to simulate an outage)."""

    def _check(self) -> None:
        if self.fail_with is not None:
            raise self.fail_with

    async def push(self, spec: PromptSpec, by: str, *, tenant: str = SHARED_TENANT) -> PushResult:
        self._check()
        versions = self._versions.setdefault((tenant, spec.name), [])
        digest = spec.content_hash()
        for existing in versions:
            if existing.content_hash == digest:
                return PushResult(existing, created=False)
        created = PromptVersion(spec.name, len(versions) + 1, spec, digest, self.clock(), by)
        versions.append(created)
        return PushResult(created, created=True)

    async def get(self, name: str, version: int, *, tenant: str = SHARED_TENANT) -> PromptVersion | None:
        self._check()
        versions = self._versions.get((tenant, name), [])
        return versions[version - 1] if 1 <= version <= len(versions) else None

    async def versions(self, name: str, *, tenant: str = SHARED_TENANT) -> list[PromptVersion]:
        self._check()
        return list(self._versions.get((tenant, name), []))

    async def labels(self, name: str, *, tenant: str = SHARED_TENANT) -> dict[str, int]:
        self._check()
        return dict(sorted(self._labels.get((tenant, name), {}).items()))

    async def move_label(
        self, name: str, label: str, version: int, by: str, *, tenant: str = SHARED_TENANT
    ) -> LabelMove:
        self._check()
        if await self.get(name, version, tenant=tenant) is None:
            raise VersionNotFoundError(f"prompt {name!r} has no version {version}")
        labels = self._labels.setdefault((tenant, name), {})
        previous = labels.get(label)
        move = LabelMove(name, label, version, previous, by, self.clock())
        if previous != version:
            labels[label] = version
            self._history.setdefault((tenant, name), []).append(move)
        return move

    async def label_history(self, name: str, *, tenant: str = SHARED_TENANT) -> list[LabelMove]:
        self._check()
        return list(self._history.get((tenant, name), []))

    async def has_prompt(self, name: str, *, tenant: str = SHARED_TENANT) -> bool:
        self._check()
        return bool(self._versions.get((tenant, name)))

    async def prompts(self, *, tenant: str | None = SHARED_TENANT) -> list[PromptSummary]:
        self._check()
        out = []
        for key in sorted(self._versions, key=lambda k: (k[1], k[0])):
            owner, name = key
            if tenant is not None and owner != tenant:
                continue
            latest = self._versions[key][-1]
            exp = self._experiments.get(key)
            out.append(
                PromptSummary(
                    name,
                    latest.version,
                    latest.spec.description,
                    dict(sorted(self._labels.get(key, {}).items())),
                    exp.name if exp else None,
                    latest.created_at,
                    owner,
                )
            )
        return out

    async def set_experiment(self, experiment: Experiment, by: str, *, tenant: str = SHARED_TENANT) -> None:
        self._check()
        self._experiments[(tenant, experiment.prompt)] = experiment

    async def experiment(self, prompt: str, *, tenant: str = SHARED_TENANT) -> Experiment | None:
        self._check()
        return self._experiments.get((tenant, prompt))

    async def clear_experiment(self, prompt: str, *, tenant: str = SHARED_TENANT) -> bool:
        self._check()
        return self._experiments.pop((tenant, prompt), None) is not None

    async def experiments(self, *, tenant: str = SHARED_TENANT) -> list[Experiment]:
        self._check()
        return [self._experiments[k] for k in sorted(self._experiments) if k[0] == tenant]

    async def propose_winner(self, proposal: WinnerProposal, *, tenant: str = SHARED_TENANT) -> bool:
        self._check()
        key = (tenant, proposal.conclusion_id)
        if key in self._proposals:
            return False
        self._proposals[key] = replace(proposal, status="open", closed_by=None, closed_at=None)
        return True

    async def proposals(
        self, *, tenant: str = SHARED_TENANT, status: ProposalStatus | None = None
    ) -> list[WinnerProposal]:
        self._check()
        mine = [p for (t, _), p in self._proposals.items() if t == tenant and status in (None, p.status)]
        return sorted(mine, key=lambda p: (p.proposed_at, p.conclusion_id))

    async def close_proposal(
        self, conclusion_id: str, status: ProposalStatus, by: str, *, tenant: str = SHARED_TENANT
    ) -> WinnerProposal | None:
        self._check()
        found = self._proposals.get((tenant, conclusion_id))
        if found is None or found.status != "open":
            return None
        closed = replace(found, status=status, closed_by=by, closed_at=self.clock())
        self._proposals[(tenant, conclusion_id)] = closed
        return closed

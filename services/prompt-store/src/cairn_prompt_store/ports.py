"""The prompt store's port: where prompts live (the inbox is cairn-bus's `Inbox`)."""

from __future__ import annotations

from typing import Protocol

from cairn_prompt_store.domain.experiments import Experiment
from cairn_prompt_store.domain.proposals import ProposalStatus, WinnerProposal
from cairn_prompt_store.domain.records import LabelMove, PromptSummary, PromptVersion, PushResult
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.domain.tenants import SHARED_TENANT


class PromptStore(Protocol):
    """Prompts with immutable, numbered versions, movable labels (with history) and experiments.

    Every prompt belongs to a tenant (keyword `tenant`, default the shared tenant `default`): the same
    name in two tenants is two unrelated prompts, and no method ever reads or changes another
    tenant's rows.

    Storage failures that may pass (database unreachable) raise `cairn_bus.TransientError` or an
    `OSError`; everything else is the caller's mistake or a bug.
    """

    async def push(self, spec: PromptSpec, by: str, *, tenant: str = SHARED_TENANT) -> PushResult:
        """Store `spec` as the prompt's next version, unless a version with identical content exists:
        then that version is returned with `created=False`. Versions number 1, 2, 3 per prompt."""
        ...

    async def get(self, name: str, version: int, *, tenant: str = SHARED_TENANT) -> PromptVersion | None:
        """One version, or None."""
        ...

    async def versions(self, name: str, *, tenant: str = SHARED_TENANT) -> list[PromptVersion]:
        """Every version of the prompt, oldest first (empty for an unknown prompt)."""
        ...

    async def labels(self, name: str, *, tenant: str = SHARED_TENANT) -> dict[str, int]:
        """The prompt's labels and the version each points at."""
        ...

    async def move_label(
        self, name: str, label: str, version: int, by: str, *, tenant: str = SHARED_TENANT
    ) -> LabelMove:
        """Point `label` at an existing `version` (creating the label) and record the move.

        Raises VersionNotFoundError when the version does not exist. Moving a label where it already
        points records nothing new and returns the move with `previous == version`.
        """
        ...

    async def label_history(self, name: str, *, tenant: str = SHARED_TENANT) -> list[LabelMove]:
        """Every label move of the prompt, oldest first."""
        ...

    async def has_prompt(self, name: str, *, tenant: str = SHARED_TENANT) -> bool:
        """Whether the tenant has a prompt of that name (at least one version)."""
        ...

    async def prompts(self, *, tenant: str | None = SHARED_TENANT) -> list[PromptSummary]:
        """Every prompt of the tenant (of every tenant when None), by name then tenant."""
        ...

    async def set_experiment(self, experiment: Experiment, by: str, *, tenant: str = SHARED_TENANT) -> None:
        """Start or replace the experiment on `experiment.prompt` (one per prompt)."""
        ...

    async def experiment(self, prompt: str, *, tenant: str = SHARED_TENANT) -> Experiment | None:
        """The experiment running on a prompt, if any."""
        ...

    async def clear_experiment(self, prompt: str, *, tenant: str = SHARED_TENANT) -> bool:
        """Stop the prompt's experiment; False when none ran."""
        ...

    async def experiments(self, *, tenant: str = SHARED_TENANT) -> list[Experiment]:
        """Every running experiment, by prompt name."""
        ...

    async def propose_winner(self, proposal: WinnerProposal, *, tenant: str = SHARED_TENANT) -> bool:
        """Keep an open proposal for an experiment's winner; False when its `conclusion_id` is known
        (the first stays)."""
        ...

    async def proposals(
        self, *, tenant: str = SHARED_TENANT, status: ProposalStatus | None = None
    ) -> list[WinnerProposal]:
        """The tenant's proposals (with `status`, only those), oldest first."""
        ...

    async def close_proposal(
        self, conclusion_id: str, status: ProposalStatus, by: str, *, tenant: str = SHARED_TENANT
    ) -> WinnerProposal | None:
        """Mark an open proposal accepted or dismissed; the proposal as it now is, or None when the
        tenant has no open proposal of that id."""
        ...

"""Managing prompts (what the CLI and the HTTP API both do): push, label, show, diff, preview, experiments."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cairn_auth import Principal, admin_action
from cairn_auth.management import action_event_id
from cairn_bus import Publisher
from cairn_events import AdminActionRecordedV1, ChatMessage, GenerationParams, JsonScalar, RetrievalOptions
from cairn_prompt_store.domain.errors import ExperimentNotFoundError, PromptNotFoundError
from cairn_prompt_store.domain.experiments import Experiment
from cairn_prompt_store.domain.prompt_file import dump_prompt
from cairn_prompt_store.domain.records import LabelMove, PromptVersion, PushResult
from cairn_prompt_store.domain.refs import check_label, check_name, parse_ref
from cairn_prompt_store.domain.render import RenderedPrompt, check_spec, render
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.domain.tenants import SHARED_TENANT
from cairn_prompt_store.ports import PromptStore
from cairn_prompt_store.resolution import Resolution, resolve


@dataclass(frozen=True)
class Pushed:
    """The outcome of a push: the version and the labels moved to it."""

    result: PushResult
    moves: list[LabelMove]


async def push(
    store: PromptStore,
    spec: PromptSpec,
    labels: Sequence[str] = (),
    by: str = "unknown",
    *,
    tenant: str = SHARED_TENANT,
) -> Pushed:
    """Check the spec's templates, store it in `tenant` (identical content reuses its version), move
    `labels` to it.

    Raises InvalidPromptError (bad template) or InvalidReferenceError (bad label name).
    """
    check_spec(spec)
    for label in labels:
        check_label(label)
    result = await store.push(spec, by, tenant=tenant)
    moves = [
        await store.move_label(spec.name, label, result.version.version, by, tenant=tenant)
        for label in labels
    ]
    return Pushed(result, moves)


async def move_label(
    store: PromptStore, name: str, version: int, label: str, by: str, *, tenant: str = SHARED_TENANT
) -> LabelMove:
    """Point `label` of `tenant`'s prompt `name` at `version`.

    Raises PromptNotFoundError / VersionNotFoundError / InvalidReferenceError.
    """
    check_name(name)
    check_label(label)
    if not await store.has_prompt(name, tenant=tenant):
        raise PromptNotFoundError(f"unknown prompt {name!r}")
    return await store.move_label(name, label, version, by, tenant=tenant)


async def show(store: PromptStore, ref_text: str, *, tenant: str = SHARED_TENANT) -> Resolution:
    """The version a reference names for a caller of `tenant` (its own prompts, then the shared ones).

    Experiments are not applied: this is what the reference says.
    """
    return await resolve(store, parse_ref(ref_text), tenant=tenant)


async def diff(store: PromptStore, name: str, old: int, new: int, *, tenant: str = SHARED_TENANT) -> str:
    """Unified diff of two versions' canonical sources (empty when they are equal)."""
    ref = await resolve(store, parse_ref(f"{check_name(name)}:{old}"), tenant=tenant)
    other = await resolve(store, parse_ref(f"{name}:{new}"), tenant=ref.tenant)
    return "".join(
        difflib.unified_diff(
            dump_prompt(ref.version.spec).splitlines(keepends=True),
            dump_prompt(other.version.spec).splitlines(keepends=True),
            fromfile=f"{name}:{old}",
            tofile=f"{name}:{new}",
        )
    )


@dataclass(frozen=True)
class Preview:
    """A rendering as a request would get it, with how its version was chosen."""

    resolution: Resolution
    rendered: RenderedPrompt

    @property
    def version(self) -> PromptVersion:
        """The version rendered."""
        return self.resolution.version


async def preview(
    store: PromptStore,
    ref_text: str,
    variables: Mapping[str, JsonScalar],
    messages: Sequence[ChatMessage] = (),
    *,
    subject: str | None = None,
    params: GenerationParams | None = None,
    retrieval: RetrievalOptions | None = None,
    model: str | None = None,
    tenant: str = SHARED_TENANT,
) -> Preview:
    """Render a reference as the service would for a request of `tenant`; with `subject`, experiments
    apply as for that user.

    Raises ResolutionError or RenderError (with the message a request would get).
    """
    resolution = await resolve(store, parse_ref(ref_text), subject, tenant=tenant)
    rendered = render(
        resolution.version.spec, variables, messages, params=params, retrieval=retrieval, model=model
    )
    return Preview(resolution, rendered)


async def set_experiment(
    store: PromptStore, experiment: Experiment, by: str, *, tenant: str = SHARED_TENANT
) -> Experiment:
    """Start (or replace) an experiment on `tenant`'s prompt after checking every arm resolves today.

    Raises PromptNotFoundError, VersionNotFoundError or LabelNotFoundError naming the arm that does not.
    """
    if not await store.has_prompt(experiment.prompt, tenant=tenant):
        raise PromptNotFoundError(f"unknown prompt {experiment.prompt!r}")
    for variant in experiment.variants:
        target = f"{experiment.prompt}{variant.target}"
        try:
            await resolve(store, parse_ref(target), tenant=tenant)
        except LookupError as exc:
            raise type(exc)(f"variant {variant.name!r}: {exc}") from None
    await store.set_experiment(experiment, by, tenant=tenant)
    return experiment


async def clear_experiment(store: PromptStore, prompt: str, *, tenant: str = SHARED_TENANT) -> None:
    """Stop the experiment on `tenant`'s prompt; raises ExperimentNotFoundError when none runs."""
    if not await store.clear_experiment(check_name(prompt), tenant=tenant):
        raise ExperimentNotFoundError(f"no experiment runs on prompt {prompt!r}")


LABEL_MOVED = "prompt.label.moved"
"""The audit action of a label move (`details`: label, from_version unless new, to_version)."""
EXPERIMENT_SET = "prompt.experiment.set"
"""The audit action of starting or replacing an experiment (`details`: experiment, label, variants)."""
EXPERIMENT_CLEARED = "prompt.experiment.cleared"
"""The audit action of stopping an experiment."""


def label_moved(actor: Principal | str, move: LabelMove, *, tenant: str) -> AdminActionRecordedV1 | None:
    """The audit event of a label move; None when the label already pointed there (nothing changed).

    `actor` is the API caller's principal, or the OS user of the CLI (recorded as an admin).
    """
    if move.previous == move.version:
        return None
    details: dict[str, JsonScalar] = {"label": move.label, "to_version": move.version}
    if move.previous is not None:  # a new label has no `from_version`
        details["from_version"] = move.previous
    return admin_action(
        actor,
        LABEL_MOVED,
        f"prompt:{move.name}@{move.label}",
        tenant=tenant,
        details=details,
        at=move.moved_at,
    )


def experiment_changed(
    actor: Principal | str, action: str, prompt: str, *, tenant: str, experiment: Experiment | None = None
) -> AdminActionRecordedV1:
    """The audit event of an experiment started, replaced (`EXPERIMENT_SET`) or stopped (`EXPERIMENT_CLEARED`)."""
    details: dict[str, JsonScalar] = {}
    if experiment is not None:
        details = {
            "experiment": experiment.name,
            "label": experiment.label,
            "variants": ", ".join(f"{v.name}={prompt}{v.target} ({v.weight:g})" for v in experiment.variants),
            "on_winner": experiment.on_winner,
        }
    return admin_action(actor, action, f"prompt:{prompt}", tenant=tenant, details=details)


async def record(publisher: Publisher, event: AdminActionRecordedV1 | None) -> None:
    """Publish an administrative action on `cairn.admin` (nothing for None).

    Its event id derives from the action, target and time, so a retried publication is one event.
    """
    if event is not None:
        await publisher.publish(
            event, event_id=action_event_id(event.action, event.target, event.recorded_at)
        )

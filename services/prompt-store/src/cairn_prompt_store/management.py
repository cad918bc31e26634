"""Managing prompts (what the CLI and the HTTP API both do): push, label, show, diff, preview, experiments."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cairn_events import ChatMessage, GenerationParams, JsonScalar, RetrievalOptions
from cairn_prompt_store.domain.errors import ExperimentNotFoundError, PromptNotFoundError
from cairn_prompt_store.domain.experiments import Experiment
from cairn_prompt_store.domain.prompt_file import dump_prompt
from cairn_prompt_store.domain.records import LabelMove, PromptVersion, PushResult
from cairn_prompt_store.domain.refs import check_label, check_name, parse_ref
from cairn_prompt_store.domain.render import RenderedPrompt, check_spec, render
from cairn_prompt_store.domain.spec import PromptSpec
from cairn_prompt_store.ports import PromptStore
from cairn_prompt_store.resolution import Resolution, resolve


@dataclass(frozen=True)
class Pushed:
    """The outcome of a push: the version and the labels moved to it."""

    result: PushResult
    moves: list[LabelMove]


async def push(
    store: PromptStore, spec: PromptSpec, labels: Sequence[str] = (), by: str = "unknown"
) -> Pushed:
    """Check the spec's templates, store it (identical content reuses its version), move `labels` to it.

    Raises InvalidPromptError (bad template) or InvalidReferenceError (bad label name).
    """
    check_spec(spec)
    for label in labels:
        check_label(label)
    result = await store.push(spec, by)
    moves = [await store.move_label(spec.name, label, result.version.version, by) for label in labels]
    return Pushed(result, moves)


async def move_label(store: PromptStore, name: str, version: int, label: str, by: str) -> LabelMove:
    """Point `label` of `name` at `version`; raises PromptNotFoundError / VersionNotFoundError / InvalidReferenceError."""
    check_name(name)
    check_label(label)
    if not await store.versions(name):
        raise PromptNotFoundError(f"unknown prompt {name!r}")
    return await store.move_label(name, label, version, by)


async def show(store: PromptStore, ref_text: str) -> Resolution:
    """The version a reference names (experiments are not applied: this is what the reference says)."""
    return await resolve(store, parse_ref(ref_text))


async def diff(store: PromptStore, name: str, old: int, new: int) -> str:
    """Unified diff of two versions' canonical sources (empty when they are equal)."""
    ref = await resolve(store, parse_ref(f"{check_name(name)}:{old}"))
    other = await resolve(store, parse_ref(f"{name}:{new}"))
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
) -> Preview:
    """Render a reference as the service would; with `subject`, experiments apply as for that user.

    Raises ResolutionError or RenderError (with the message a request would get).
    """
    resolution = await resolve(store, parse_ref(ref_text), subject)
    rendered = render(
        resolution.version.spec, variables, messages, params=params, retrieval=retrieval, model=model
    )
    return Preview(resolution, rendered)


async def set_experiment(store: PromptStore, experiment: Experiment, by: str) -> Experiment:
    """Start (or replace) an experiment after checking every arm resolves today.

    Raises PromptNotFoundError, VersionNotFoundError or LabelNotFoundError naming the arm that does not.
    """
    if not await store.versions(experiment.prompt):
        raise PromptNotFoundError(f"unknown prompt {experiment.prompt!r}")
    for variant in experiment.variants:
        target = f"{experiment.prompt}{variant.target}"
        try:
            await resolve(store, parse_ref(target))
        except LookupError as exc:
            raise type(exc)(f"variant {variant.name!r}: {exc}") from None
    await store.set_experiment(experiment, by)
    return experiment


async def clear_experiment(store: PromptStore, prompt: str) -> None:
    """Stop the experiment on `prompt`; raises ExperimentNotFoundError when none runs."""
    if not await store.clear_experiment(check_name(prompt)):
        raise ExperimentNotFoundError(f"no experiment runs on prompt {prompt!r}")

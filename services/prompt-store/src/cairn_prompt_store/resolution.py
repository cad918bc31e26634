"""Resolving a reference to the version a request gets: label or version, then any running experiment."""

from __future__ import annotations

from dataclasses import dataclass

from cairn_prompt_store.domain.errors import LabelNotFoundError, PromptNotFoundError, VersionNotFoundError
from cairn_prompt_store.domain.records import PromptVersion
from cairn_prompt_store.domain.refs import PromptRef
from cairn_prompt_store.ports import PromptStore


@dataclass(frozen=True)
class Resolution:
    """The version chosen for a request and how: through which label, by which experiment arm."""

    version: PromptVersion
    label: str | None = None
    experiment: str | None = None
    variant: str | None = None


async def _version(store: PromptStore, name: str, version: int) -> PromptVersion:
    found = await store.get(name, version)
    if found is not None:
        return found
    versions = await store.versions(name)
    if not versions:
        raise PromptNotFoundError(f"unknown prompt {name!r}")
    raise VersionNotFoundError(f"prompt {name!r} has no version {version} (latest is {versions[-1].version})")


async def _labelled(store: PromptStore, name: str, label: str) -> PromptVersion:
    labels = await store.labels(name)
    if label not in labels:
        if not await store.versions(name):
            raise PromptNotFoundError(f"unknown prompt {name!r}")
        known = ", ".join(labels) or "none"
        raise LabelNotFoundError(f"prompt {name!r} has no label {label!r} (labels: {known})")
    return await _version(store, name, labels[label])


async def resolve(store: PromptStore, ref: PromptRef, subject: str | None = None) -> Resolution:
    """The version `ref` names for `subject` (a user id, else the request id).

    A pinned version is taken as it is. A label is followed, unless an experiment runs on the
    prompt for that label and a subject is given: then the subject's sticky variant decides.
    Raises PromptNotFoundError, LabelNotFoundError or VersionNotFoundError with a message for the caller.
    """
    if ref.version is not None:
        return Resolution(await _version(store, ref.name, ref.version))
    assert ref.label is not None
    experiment = await store.experiment(ref.name) if subject is not None else None
    if experiment is not None and subject is not None and experiment.label == ref.label:
        variant = experiment.assign(subject)
        where = f"experiment {experiment.name!r} variant {variant.name!r}: "
        try:
            if variant.version is not None:
                version = await _version(store, ref.name, variant.version)
            else:
                assert variant.label is not None
                version = await _labelled(store, ref.name, variant.label)
        except (VersionNotFoundError, LabelNotFoundError) as exc:
            raise type(exc)(where + str(exc)) from None
        return Resolution(version, variant.label or ref.label, experiment.name, variant.name)
    return Resolution(await _labelled(store, ref.name, ref.label), ref.label)

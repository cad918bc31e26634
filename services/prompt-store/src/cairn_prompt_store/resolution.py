"""Resolving a reference to the version a request gets: label or version, then any running experiment."""

from __future__ import annotations

from dataclasses import dataclass

from cairn_prompt_store.domain.errors import LabelNotFoundError, PromptNotFoundError, VersionNotFoundError
from cairn_prompt_store.domain.records import PromptVersion
from cairn_prompt_store.domain.refs import PromptRef
from cairn_prompt_store.domain.tenants import SHARED_TENANT, lookup_order
from cairn_prompt_store.ports import PromptStore


@dataclass(frozen=True)
class Resolution:
    """The version chosen for a request and how: through which label, by which experiment arm."""

    version: PromptVersion
    label: str | None = None
    experiment: str | None = None
    variant: str | None = None
    tenant: str = SHARED_TENANT
    """The tenant the prompt was found in: the request's own, or the shared `default`."""


async def home_tenant(store: PromptStore, name: str, tenant: str) -> str:
    """The tenant whose prompt `name` a caller of `tenant` gets: its own, else the shared one.

    Raises PromptNotFoundError when neither has it (another tenant's prompt is never found).
    """
    for candidate in lookup_order(tenant):
        if await store.has_prompt(name, tenant=candidate):
            return candidate
    raise PromptNotFoundError(f"unknown prompt {name!r}")


async def _version(store: PromptStore, name: str, version: int, tenant: str) -> PromptVersion:
    found = await store.get(name, version, tenant=tenant)
    if found is not None:
        return found
    versions = await store.versions(name, tenant=tenant)
    if not versions:
        raise PromptNotFoundError(f"unknown prompt {name!r}")
    raise VersionNotFoundError(f"prompt {name!r} has no version {version} (latest is {versions[-1].version})")


async def _labelled(store: PromptStore, name: str, label: str, tenant: str) -> PromptVersion:
    labels = await store.labels(name, tenant=tenant)
    if label not in labels:
        if not await store.versions(name, tenant=tenant):
            raise PromptNotFoundError(f"unknown prompt {name!r}")
        known = ", ".join(labels) or "none"
        raise LabelNotFoundError(f"prompt {name!r} has no label {label!r} (labels: {known})")
    return await _version(store, name, labels[label], tenant)


async def resolve(
    store: PromptStore, ref: PromptRef, subject: str | None = None, *, tenant: str = SHARED_TENANT
) -> Resolution:
    """The version `ref` names for `subject` (a user id, else the request id), for a caller of `tenant`.

    The name is looked up in `tenant`, then in the shared tenant `default`; never in another tenant
    (such a prompt is unknown to the caller).

    A pinned version is taken as it is. A label is followed, unless an experiment runs on the
    prompt for that label and a subject is given: then the subject's sticky variant decides.
    Raises PromptNotFoundError, LabelNotFoundError or VersionNotFoundError with a message for the caller.
    """
    home = await home_tenant(store, ref.name, tenant)
    if ref.version is not None:
        return Resolution(await _version(store, ref.name, ref.version, home), tenant=home)
    assert ref.label is not None
    experiment = await store.experiment(ref.name, tenant=home) if subject is not None else None
    if experiment is not None and subject is not None and experiment.label == ref.label:
        variant = experiment.assign(subject)
        where = f"experiment {experiment.name!r} variant {variant.name!r}: "
        try:
            if variant.version is not None:
                version = await _version(store, ref.name, variant.version, home)
            else:
                assert variant.label is not None
                version = await _labelled(store, ref.name, variant.label, home)
        except (VersionNotFoundError, LabelNotFoundError) as exc:
            raise type(exc)(where + str(exc)) from None
        return Resolution(version, variant.label or ref.label, experiment.name, variant.name, home)
    return Resolution(await _labelled(store, ref.name, ref.label, home), ref.label, tenant=home)

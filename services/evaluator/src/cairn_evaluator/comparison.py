"""Comparing versions on the same suites: one `compare` run per version, through the run machinery
(`start_run`: the requests go out on `cairn.requests`; the evaluator service records the answers and
ends the runs), then the scores side by side (`domain.comparison.compare_runs`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from cairn_evaluator.deps import Deps
from cairn_evaluator.domain.errors import VersionNotFoundError
from cairn_evaluator.domain.registry import ModelVersion
from cairn_evaluator.domain.runs import Run, RunCase
from cairn_evaluator.domain.suites import Suite
from cairn_evaluator.evaluation import start_run, suites_with_heldout

__all__ = ["COMPARE_PREFIX", "finished", "parse_ref", "resolve", "start_comparison", "wait_for"]

COMPARE_PREFIX = "compare:"
_REF = re.compile(r"([a-z0-9][a-z0-9._-]*):([1-9][0-9]*)")


def parse_ref(text: str) -> tuple[str, int]:
    """`cairn-qa:3` → ("cairn-qa", 3); raises VersionNotFoundError for anything else."""
    found = _REF.fullmatch(text.strip())
    if found is None:
        raise VersionNotFoundError(f"{text!r} is not a registry version (name:N, e.g. cairn-qa:2)")
    return found.group(1), int(found.group(2))


async def resolve(deps: Deps, refs: list[str]) -> list[ModelVersion]:
    """The registered versions the refs name, in order, without repeats."""
    out: list[ModelVersion] = []
    for ref in dict.fromkeys(refs):
        name, number = parse_ref(ref)
        found = await deps.registry.get(name, number)
        if found is None:
            raise VersionNotFoundError(f"model {name!r} has no version {number}")
        out.append(found)
    return out


async def start_comparison(
    deps: Deps,
    versions: list[ModelVersion],
    *,
    compare_id: str,
    dataset: tuple[str, int] | None = None,
    only: list[str] | None = None,
) -> list[Run]:
    """Start (or find again, for the same `compare_id`) one `compare` run per version, all on the
    same suites: the configured ones (only those named in `only`, when given) plus the held-out rows
    of `dataset`, by default the dataset of the first version that has one (the student's)."""
    for v in versions if dataset is None else []:
        if v.dataset_id and v.dataset_version:
            dataset = (v.dataset_id, v.dataset_version)
            break
    suites: list[Suite] = await suites_with_heldout(deps, *(dataset or (None, None)))
    if only:
        unknown = sorted(set(only) - {s.name for s in suites})
        if unknown:
            raise VersionNotFoundError(
                f"no suite {', '.join(unknown)} (suites: {', '.join(s.name for s in suites)})"
            )
        suites = [s for s in suites if s.name in only]
    return [
        await start_run(
            deps,
            v,
            cause_event_id=f"{COMPARE_PREFIX}{compare_id}:{v.ref}",
            cause=None,
            suites=suites,
            purpose="compare",
        )
        for v in versions
    ]


def finished(runs: list[Run]) -> bool:
    """Whether every run ended."""
    return all(r.status != "running" for r in runs)


async def wait_for(
    deps: Deps,
    run_ids: list[str],
    *,
    timeout_s: float,
    poll_s: float = 1.0,
    on_poll: Callable[[list[Run]], None] | None = None,
) -> list[tuple[Run, list[RunCase]]]:
    """The runs with their cases once all ended (the evaluator service ends them), or as they are
    after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        runs = [r for r in [await deps.runs.get(i) for i in run_ids] if r is not None]
        if on_poll is not None:
            on_poll(runs)
        if finished(runs) or loop.time() >= deadline:
            return [(r, await deps.runs.cases(r.run_id)) for r in runs]
        await asyncio.sleep(poll_s)

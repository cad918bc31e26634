"""Prompts: every prompt the key can read, one prompt's versions, labels, label history and
experiment, and a diff between two of its versions (all through the prompt store's API); a running
experiment's per-variant statistics and sequential test (the evaluator's API) and the proposals to
promote experiment winners (the prompt store's)."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from cairn_events.base import PROMPT_NAME_PATTERN
from cairn_gateway.console.core import Caller, Console, ConsoleError

__all__ = ["add_routes", "diff_lines", "traffic_shares"]

_NAME = re.compile(PROMPT_NAME_PATTERN)


def _prompt_path(name: str) -> str:
    """`name` as a path in the prompt store's API; a name it could not hold is not found."""
    if not _NAME.match(name) or ".." in name.split("/"):
        raise ConsoleError(404, "Not found", f"there is no prompt named {name!r}")
    return quote(name, safe="/")


def traffic_shares(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    """The experiment's variants, each with the share of the experiment's traffic its weight gives."""
    variants: list[dict[str, Any]] = experiment.get("variants") or []
    total = sum(float(v.get("weight", 0.0)) for v in variants)
    return [{**v, "share": float(v.get("weight", 0.0)) / total if total > 0 else 0.0} for v in variants]


def diff_lines(diff: str) -> list[tuple[str, str]]:
    """A unified diff as (kind, line): `add`, `del`, `hunk`, `file` or `same`."""
    out = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "same"
        out.append((kind, line))
    return out


async def _experiment_statistics(
    console: Console, caller: Caller, name: str, experiment: dict[str, Any] | None, tenant: str
) -> dict[str, Any] | None:
    """The evaluator's per-variant statistics and test state of the running experiment; None when
    none runs or the evaluator cannot be reached (the page says so)."""
    if not experiment:
        return None
    path = f"/v1/experiments/{quote(experiment['name'], safe='')}"
    try:
        found: dict[str, Any] = await console.get(
            caller, "registry", path, prompt=name, tenant=tenant or "default"
        )
    except ConsoleError:
        return None
    return found


async def _proposals(console: Console, caller: Caller, name: str, tenant: str | None) -> list[dict[str, Any]]:
    """The prompt store's proposals to promote this prompt's experiment winners (none when it
    cannot say: the page is still useful without them)."""
    try:
        found: list[dict[str, Any]] = await console.get(caller, "prompts", "/proposals", tenant=tenant)
    except ConsoleError:
        return []
    return [p for p in found if p.get("prompt") == name]


def add_routes(console: Console) -> None:
    """Add the prompt pages to the console."""
    router = console.router

    @router.get("/prompts", response_class=HTMLResponse)
    async def prompts(
        request: Request, caller: Caller = Depends(console.caller), tenant: str = ""
    ) -> Response:
        found = await console.get(caller, "prompts", "/prompts", tenant=tenant or None)
        experiments = await console.get(caller, "prompts", "/experiments", tenant=tenant or None)
        return console.page(
            "prompts.html", caller, request, prompts=found, tenant=tenant,
            experiments=[{**e, "shares": traffic_shares(e)} for e in experiments],
        )  # fmt: skip

    @router.get("/prompts/{name:path}/diff", response_class=HTMLResponse)
    async def diff(
        request: Request,
        name: str,
        caller: Caller = Depends(console.caller),
        tenant: str = "",
        old: Annotated[int, Query(alias="from")] = 0,
        new: Annotated[int, Query(alias="to")] = 0,
    ) -> Response:
        if old < 1 or new < 1:
            raise ConsoleError(
                400, "Choose two versions", "a diff needs two version numbers, `from` and `to`"
            )
        path = _prompt_path(name)
        params = {"from": old, "to": new, "tenant": tenant or None}
        text = await console.call(caller, "prompts", "GET", f"/prompts/{path}/diff", params=params, text=True)
        versions = await console.get(caller, "prompts", f"/prompts/{path}/versions", tenant=tenant or None)
        return console.page(
            "prompt_diff.html", caller, request, name=name, old=old, new=new,
            tenant=tenant or (versions[0]["tenant"] if versions else ""),
            lines=diff_lines(text), numbers=[v["version"] for v in reversed(versions)],
        )  # fmt: skip

    @router.get("/prompts/{name:path}", response_class=HTMLResponse)
    async def prompt(
        request: Request, name: str, caller: Caller = Depends(console.caller), tenant: str = ""
    ) -> Response:
        path = _prompt_path(name)
        scope = tenant or None
        versions = await console.get(caller, "prompts", f"/prompts/{path}/versions", tenant=scope)
        labels: dict[str, int] = await console.get(caller, "prompts", f"/prompts/{path}/labels", tenant=scope)
        history = await console.get(caller, "prompts", f"/prompts/{path}/history", tenant=scope)
        try:
            experiment = await console.get(caller, "prompts", f"/experiments/{path}", tenant=scope)
        except ConsoleError as exc:
            if exc.status != 404:
                raise
            experiment = None
        page_tenant = tenant or (versions[0]["tenant"] if versions else "")
        statistics = await _experiment_statistics(console, caller, name, experiment, page_tenant)
        proposals = await _proposals(console, caller, name, scope)
        labels_of: dict[int, list[str]] = {}
        for label, version in sorted(labels.items()):
            labels_of.setdefault(version, []).append(label)
        newest = list(reversed(versions))
        return console.page(
            "prompt.html", caller, request, name=name,
            tenant=page_tenant,
            versions=newest, labels=labels, labels_of=labels_of, history=list(reversed(history)),
            experiment=experiment, shares=traffic_shares(experiment) if experiment else [],
            statistics=statistics, proposals=list(reversed(proposals)),
            numbers=[v["version"] for v in newest],
        )  # fmt: skip

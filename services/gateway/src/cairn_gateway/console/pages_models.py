"""Models: the registry's models, one model's versions, stage history and evaluation runs, and
promotions and rollbacks behind a confirmation page (all through the registry API)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response

from cairn_auth import Role
from cairn_events.base import ID_PATTERN
from cairn_gateway.console.core import Caller, Console, ConsoleError

__all__ = ["add_routes", "effects_of_promotion", "gate_text", "may_move", "rollback_target"]

STAGES = ("staging", "production", "archived")
EVALUATION_TYPE = "cairn.evaluation.completed.v1"
MAX_RUNS = 10
"""Evaluation runs shown on a model's page (the newest)."""
_NAME = re.compile(ID_PATTERN)


def _model_path(name: str) -> str:
    """`/v1/models/<name>` for the registry API; a name it could not hold is not found."""
    if not _NAME.match(name):
        raise ConsoleError(404, "Not found", f"there is no model named {name!r}")
    return f"/v1/models/{quote(name, safe='')}"


def may_move(caller: Caller, stage: str) -> bool:
    """Whether the registry lets the caller move a version to `stage` (or roll back: `production`):
    staging serves no traffic (operators); production and archived change what every tenant is
    served (platform-wide admins)."""
    if stage == "staging":
        return caller.can(Role.OPERATOR)
    return caller.can(Role.ADMIN) and caller.principal.platform_wide


def _require_move(caller: Caller, stage: str, what: str) -> None:
    if stage == "staging":
        caller.require(Role.OPERATOR, what)
    elif not may_move(caller, stage):
        raise ConsoleError(
            403, "Not allowed", f"{what} changes what every tenant is served: it needs a platform-wide admin"
        )


def rollback_target(history: list[dict[str, Any]], current: int | None) -> int | None:
    """The version a rollback brings back: the latest one promoted to production other than
    `current` (history oldest first), as the registry picks it; None when there is none."""
    for promotion in reversed(history):
        if promotion["to_stage"] == "production" and promotion["version"] != current:
            return int(promotion["version"])
    return None


def effects_of_promotion(model: dict[str, Any], version: dict[str, Any], to: str) -> list[str]:
    """What moving `version` of `model` to stage `to` does, in the registry's words."""
    number, stage = version["version"], version["stage"]
    if stage == to:
        return [f"Version {number} is in {to} already: nothing changes."]
    out = [f"Version {number} moves from {stage} to {to}."]
    if to == "production":
        out.append(f"Every tenant's requests for {model['name']} are then answered by version {number}.")
        leaving = [
            v["version"] for v in model["versions"] if v["stage"] == "production" and v["version"] != number
        ]
        out += [f"Version {v} leaves production: it is archived." for v in leaving]
    elif to == "staging":
        out.append("Staging serves no live traffic.")
    if stage == "production":
        out.append(f"{model['name']} then has no production version until one is promoted or rolled back.")
    return out


def gate_text(gate: dict[str, Any]) -> str:
    """A suite's gate in a few words: its metric and the rules it holds the candidate to."""
    rules = [
        f"{label} {gate[key]}"
        for key, label in (
            ("min", "at least"),
            ("max_regression", "drop below baseline at most"),
            ("min_improvement", "improvement over baseline above"),
            ("slice_min", "every slice at least"),
            ("max_slice_regression", "drop on any slice at most"),
        )
        if gate.get(key) is not None
    ]
    return f"{gate.get('metric', '')}: " + (", ".join(rules) if rules else "no rule")


def _report(found: dict[str, Any]) -> dict[str, Any]:
    """A run as its card shows it: scores with the change against the baseline and the suite's gate."""
    run = found["run"]
    gates = {s["name"]: s.get("gate") or {} for s in run.get("suites") or []}
    scores = [
        {
            **s,
            "delta": None if s.get("baseline") is None else s["candidate"] - s["baseline"],
            "gate": gate_text(gates[s["suite"]]) if s["suite"] in gates else "",
        }
        for s in run.get("scores") or []
    ]
    return {**run, "scores": scores, "cases": found["cases"], "answered": found["answered"]}


async def _runs(
    console: Console, caller: Caller, name: str, history: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The model's newest evaluation runs and the notes on what could not be read: the runs the stage
    history names as evidence and, for platform-wide keys, every completed run the audit trail holds
    (failed gates included; evaluations are platform events, hidden from tenant keys)."""
    ids = [p["evidence_run_id"] for p in reversed(history) if p.get("evidence_run_id")]
    notes = []
    if caller.principal.platform_wide and console.backends.configured("audit"):
        try:
            events = await console.get(
                caller, "audit", "/v1/events", type=EVALUATION_TYPE, limit=500, order="newest"
            )
        except ConsoleError as exc:
            notes.append(f"Runs not named in the history could not be listed: {exc.detail}")
        else:
            ids += [e["payload"]["run_id"] for e in events if e["payload"].get("model_name") == name]
    runs = []
    for run_id in list(dict.fromkeys(ids))[:MAX_RUNS]:
        try:
            runs.append(_report(await console.get(caller, "registry", f"/v1/runs/{quote(run_id, safe='')}")))
        except ConsoleError as exc:
            if exc.status != 404:
                raise
            notes.append(f"Run {run_id} is not in the registry any more.")
    runs.sort(key=lambda r: str(r.get("started_at", "")), reverse=True)
    return runs, notes


def add_routes(console: Console) -> None:
    """Add the model pages and the promotion and rollback actions to the console."""
    router = console.router

    @router.get("/models", response_class=HTMLResponse)
    async def models(request: Request, caller: Caller = Depends(console.caller)) -> Response:
        found = await console.get(caller, "registry", "/v1/models")
        return console.page("models.html", caller, request, models=found)

    @router.get("/models/{name}", response_class=HTMLResponse)
    async def model(request: Request, name: str, caller: Caller = Depends(console.caller)) -> Response:
        path = _model_path(name)
        found = await console.get(caller, "registry", path)
        history = await console.get(caller, "registry", f"{path}/history")
        runs, notes = await _runs(console, caller, name, history)
        runs_of: dict[int, list[dict[str, Any]]] = {}
        for run in runs:
            runs_of.setdefault(run["candidate_version"], []).append(run)
        aliases_of: dict[int, list[str]] = {}
        for alias, number in sorted(found["aliases"].items()):
            aliases_of.setdefault(number, []).append(alias)
        return console.page(
            "model.html", caller, request, model=found, versions=list(reversed(found["versions"])),
            history=list(reversed(history)), runs=runs, runs_of=runs_of, notes=notes, aliases_of=aliases_of,
            movable={stage: may_move(caller, stage) for stage in STAGES},
            rollback_to=rollback_target(history, found["production"]) if found["production"] else None,
        )  # fmt: skip

    async def _version(
        caller: Caller, name: str, version: int, to: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if to not in STAGES:
            raise ConsoleError(400, "Invalid stage", f"a version moves to one of {', '.join(STAGES)}")
        _require_move(caller, to, f"moving a version to {to}")
        found = await console.get(caller, "registry", _model_path(name))
        version_of = {v["version"]: v for v in found["versions"]}
        if version not in version_of:
            raise ConsoleError(404, "Not found", f"model {name!r} has no version {version}")
        return found, version_of[version]

    @router.get("/models/{name}/versions/{version}/promote", response_class=HTMLResponse)
    async def confirm_promotion(
        request: Request, name: str, version: int, caller: Caller = Depends(console.caller), to: str = ""
    ) -> Response:
        found, chosen = await _version(caller, name, version, to)
        return console.page(
            "confirm.html", caller, request, model=found, title=f"Move {name} version {version} to {to}",
            effects=effects_of_promotion(found, chosen, to), version=chosen, fields={"to": to},
            action=f"/models/{quote(name, safe='')}/versions/{version}/promote", acts=chosen["stage"] != to,
        )  # fmt: skip

    @router.post("/models/{name}/versions/{version}/promote")
    async def promote(
        request: Request, name: str, version: int, caller: Caller = Depends(console.caller)
    ) -> Response:
        fields = await console.form(request, caller)
        to = fields.get("to", "")
        if to not in STAGES:
            raise ConsoleError(400, "Invalid stage", f"a version moves to one of {', '.join(STAGES)}")
        _require_move(caller, to, f"moving a version to {to}")
        reason = _reason(fields)
        done = await console.post(
            caller,
            "registry",
            f"{_model_path(name)}/versions/{version}/promote",
            {"to": to, "reason": reason},
        )
        return console.redirect(
            f"/models/{quote(name, safe='')}", "promoted" if done.get("changed") else "unchanged"
        )

    @router.get("/models/{name}/rollback", response_class=HTMLResponse)
    async def confirm_rollback(
        request: Request, name: str, caller: Caller = Depends(console.caller)
    ) -> Response:
        _require_move(caller, "production", "a rollback")
        path = _model_path(name)
        found = await console.get(caller, "registry", path)
        history = await console.get(caller, "registry", f"{path}/history")
        current = found["production"]
        target = rollback_target(history, current)
        if target is None:
            raise ConsoleError(409, "Nothing to roll back to", f"{name} has no earlier production version")
        effects = [
            f"Version {target} returns to production: every tenant's requests for {name} are answered by it."
        ]
        if current is not None:
            effects.append(f"Version {current} leaves production: it is archived.")
        return console.page(
            "confirm.html", caller, request, model=found, title=f"Roll {name} back to version {target}",
            effects=effects, version=None, fields={}, action=f"/models/{quote(name, safe='')}/rollback", acts=True,
        )  # fmt: skip

    @router.post("/models/{name}/rollback")
    async def rollback(request: Request, name: str, caller: Caller = Depends(console.caller)) -> Response:
        fields = await console.form(request, caller)
        _require_move(caller, "production", "a rollback")
        reason = _reason(fields)
        done = await console.post(caller, "registry", f"{_model_path(name)}/rollback", {"reason": reason})
        return console.redirect(
            f"/models/{quote(name, safe='')}", "rolled-back" if done.get("changed") else "unchanged"
        )


def _reason(fields: dict[str, str]) -> str:
    reason = fields.get("reason", "").strip()
    if not reason:
        raise ConsoleError(
            400, "A reason is needed", "say why: it is kept in the model's history and the audit trail"
        )
    if len(reason) > 1000:
        raise ConsoleError(400, "Reason too long", "the reason may be at most 1000 characters")
    return reason

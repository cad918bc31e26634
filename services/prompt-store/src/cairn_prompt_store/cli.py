"""`cairn prompts`: push, list, show, label, diff and preview prompts; run A/B experiments."""

from __future__ import annotations

import asyncio
import getpass
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cairn_auth.domain.principals import check_tenant_id
from cairn_bus import Publisher, TransientError
from cairn_bus.direct_access import direct_access
from cairn_bus.settings import settings_or_local_stack
from cairn_events import AdminActionRecordedV1, ChatMessage, JsonScalar
from cairn_prompt_store import management
from cairn_prompt_store.domain.errors import ExperimentNotFoundError, PromptStoreError
from cairn_prompt_store.domain.experiments import Experiment, Variant
from cairn_prompt_store.domain.prompt_file import dump_prompt, load_prompt
from cairn_prompt_store.domain.refs import PRODUCTION
from cairn_prompt_store.domain.tenants import SHARED_TENANT
from cairn_prompt_store.ports import PromptStore
from cairn_prompt_store.settings import Settings
from cairn_prompt_store.winners import accept_proposal

T = TypeVar("T")

app = typer.Typer(
    help="Prompts: immutable versions, movable labels, previews and sticky A/B experiments.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
experiments_app = typer.Typer(help="Sticky A/B experiments on a prompt's traffic.", no_args_is_help=True)
app.add_typer(experiments_app, name="experiments")
console = Console()


def load_settings() -> Settings:
    """CAIRN_* variables; the database and broker not set there are the local stack's."""
    return settings_or_local_stack(Settings)


def _check_tenant(tenant: str) -> str:
    try:
        return check_tenant_id(tenant, allow_platform=False)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


TENANT_HELP = "The prompts' tenant (`default`: the platform's shared prompts, readable by every tenant)."


def _tenant_option() -> Any:
    return typer.Option(SHARED_TENANT, "--tenant", "-t", help=TENANT_HELP, callback=_check_tenant)


@asynccontextmanager
async def open_audit_publisher(settings: Settings) -> AsyncIterator[Publisher]:
    """Where the CLI records administrative actions: `cairn.admin` on the configured broker."""
    from cairn_auth.serving import kafka_publisher
    from cairn_bus.kafka import ensure_topics
    from cairn_events import load_topics

    await ensure_topics(
        settings.kafka_bootstrap,
        [load_topics()[AdminActionRecordedV1.topic]],
        replication_factor=settings.kafka_replication_factor,
    )
    async with kafka_publisher(settings.model_copy(update={"service_name": "cli"})) as publisher:
        yield publisher


def _record(*events: AdminActionRecordedV1 | None) -> None:
    """Publish the CLI's administrative actions on `cairn.admin`; exit 1 when they cannot be."""
    pending = [e for e in events if e is not None]
    if not pending:
        return

    async def main() -> None:
        async with open_audit_publisher(load_settings()) as publisher:
            for event in pending:
                await management.record(publisher, event)

    try:
        asyncio.run(main())
    except Exception as exc:  # the change is made: say loudly that its record is missing
        console.print(
            f"[red]error:[/red] done, but not recorded in the audit trail (cairn.admin): {exc}",
            highlight=False,
        )
        raise typer.Exit(1) from None


def _direct(action: str, target: str, actor: str, tenant: str) -> None:
    """Before a write: say on stderr that the CLI writes prompt-store's database directly (no RBAC),
    and record that on `cairn.admin`; nothing is written when the record cannot be published."""
    settings = load_settings()
    direct_access(
        settings,
        action,
        target,
        tenant=tenant,
        by=actor,
        open_publisher=lambda: open_audit_publisher(settings),
    )


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _with_store(action: Callable[[PromptStore], Awaitable[T]]) -> T:
    """Run `action` on the PostgreSQL store; errors become a message and exit status 1."""
    from cairn_bus.postgres import create_pool
    from cairn_prompt_store.adapters.postgres import PostgresPromptStore

    async def main() -> T:
        settings = load_settings()
        pool = await create_pool(settings.postgres_dsn, 1, 2)
        try:
            store = PostgresPromptStore(pool)
            await store.migrate()
            return await action(store)
        finally:
            await pool.close()

    try:
        return asyncio.run(main())
    except PromptStoreError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except (TransientError, OSError) as exc:
        console.print(f"[red]error:[/red] database unavailable: {exc}", highlight=False)
        raise typer.Exit(1) from None


def parse_vars(pairs: list[str]) -> dict[str, JsonScalar]:
    """KEY=VALUE pairs; values stay text (declared variable types convert them)."""
    out: dict[str, JsonScalar] = {}
    for pair in pairs:
        if "=" not in pair:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key] = value
    return out


def parse_variant(text: str) -> Variant:
    """`NAME=TARGET[:WEIGHT]`: TARGET is a version number or a label (`@label` also works)."""
    if "=" not in text:
        raise typer.BadParameter(f"expected NAME=TARGET[:WEIGHT], got {text!r}")
    name, rest = text.split("=", 1)
    target, weight = rest, "1"
    if ":" in rest:
        target, weight = rest.rsplit(":", 1)
    target = target.removeprefix("@")
    try:
        if target.isdigit():
            return Variant(name=name, version=int(target), weight=float(weight))
        return Variant(name=name, label=target, weight=float(weight))
    except ValueError as exc:
        raise typer.BadParameter(f"variant {text!r}: {exc}") from None


def _print(text: str) -> None:
    console.print(text, highlight=False, markup=False, soft_wrap=True)


@app.command()
def push(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A YAML prompt file."),
    label: list[str] = typer.Option(
        [], "--label", "-l", help="Point this label at the version (repeatable)."
    ),
    by: str | None = typer.Option(None, help="Who pushes (default: the OS user)."),
    tenant: str = _tenant_option(),
) -> None:
    """Push a prompt file as a new version; identical content returns the existing version.

    Label moves are recorded on `cairn.admin` (actor: the OS user).
    """
    spec_text = file.read_text(encoding="utf-8")
    _direct("prompts.push", f"prompt-file:{file.name}", by or _actor(), tenant)

    async def action(store: PromptStore) -> management.Pushed:
        spec = load_prompt(spec_text, str(file))
        return await management.push(store, spec, label, by or _actor(), tenant=tenant)

    pushed = _with_store(action)
    v = pushed.result.version
    state = "new version" if pushed.result.created else "unchanged: identical content"
    _print(f"{v.name}:{v.version} ({state}) {v.content_hash}")
    for move in pushed.moves:
        was = f" (was {move.previous})" if move.previous not in (None, move.version) else ""
        _print(f"  @{move.label} -> {move.version}{was}")
    _record(*(management.label_moved(by or _actor(), m, tenant=tenant) for m in pushed.moves))


@app.command("list")
def list_prompts(
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", help="Only this tenant's prompts (default: every tenant's)."
    ),
) -> None:
    """Every prompt with its latest version, labels and experiment."""
    if tenant is not None:
        _check_tenant(tenant)
    rows = _with_store(lambda store: store.prompts(tenant=tenant))
    table = Table("prompt", "tenant", "latest", "labels", "experiment", "description")
    for s in rows:
        labels = ", ".join(f"{k}={v}" for k, v in s.labels.items())
        table.add_row(s.name, s.tenant, str(s.latest_version), labels, s.experiment or "", s.description)
    console.print(table)


@app.command()
def show(
    ref: str = typer.Argument(..., help="NAME (its production label), NAME@LABEL or NAME:VERSION."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    tenant: str = _tenant_option(),
) -> None:
    """The version a reference names (in the tenant, else among the shared prompts), with its source."""

    async def action(store: PromptStore) -> tuple[Any, dict[str, int]]:
        found = await management.show(store, ref, tenant=tenant)
        return found, await store.labels(found.version.name, tenant=found.tenant)

    found, labels = _with_store(action)
    v = found.version
    here = sorted(k for k, n in labels.items() if n == v.version)
    if as_json:
        data = {
            "name": v.name,
            "tenant": found.tenant,
            "version": v.version,
            "label": found.label,
            "labels": here,
            "content_hash": v.content_hash,
            "created_at": v.created_at.isoformat(),
            "created_by": v.created_by,
            "spec": v.spec.canonical(),
        }
        _print(json.dumps(data, indent=2))
        return
    _print(f"# {v.name}:{v.version}  labels: {', '.join(here) or '-'}  {v.content_hash}")
    _print(f"# pushed {v.created_at.isoformat()} by {v.created_by}")
    _print(dump_prompt(v.spec))


@app.command()
def label(
    name: str = typer.Argument(..., help="Prompt name."),
    version: int = typer.Argument(..., min=1, help="The version the label should point at."),
    label_name: str = typer.Argument(..., metavar="LABEL", help="The label (dev, staging, production, ...)."),
    by: str | None = typer.Option(None, help="Who moves it (default: the OS user)."),
    tenant: str = _tenant_option(),
) -> None:
    """Point a label at a version (recorded with who and when, and on `cairn.admin`)."""
    actor = by or _actor()
    _direct("prompts.label", f"prompt:{name}@{label_name}", actor, tenant)
    move = _with_store(
        lambda store: management.move_label(store, name, version, label_name, actor, tenant=tenant)
    )
    was = "new label" if move.previous is None else f"was {move.previous}"
    _print(f"{name}@{move.label} -> {move.version} ({was})")
    _record(management.label_moved(actor, move, tenant=tenant))


@app.command()
def history(name: str = typer.Argument(..., help="Prompt name."), tenant: str = _tenant_option()) -> None:
    """Every label move of a prompt: when, who, from and to."""
    moves = _with_store(lambda store: store.label_history(name, tenant=tenant))
    table = Table("when", "label", "from", "to", "by")
    for m in moves:
        table.add_row(m.moved_at.isoformat(), m.label, str(m.previous or "-"), str(m.version), m.moved_by)
    console.print(table)


@app.command()
def diff(
    name: str = typer.Argument(..., help="Prompt name."),
    old: int = typer.Argument(..., min=1, help="The older version."),
    new: int = typer.Argument(..., min=1, help="The newer version."),
    tenant: str = _tenant_option(),
) -> None:
    """Unified diff of two versions' canonical sources."""
    text = _with_store(lambda store: management.diff(store, name, old, new, tenant=tenant))
    _print(text.rstrip("\n") if text else f"{name}:{old} and {name}:{new} are identical")


@app.command()
def render(
    ref: str = typer.Argument(..., help="NAME, NAME@LABEL or NAME:VERSION."),
    var: list[str] = typer.Option([], "--var", "-v", help="Template variable KEY=VALUE (repeatable)."),
    message: list[str] = typer.Option([], "--message", "-m", help="A user turn appended (repeatable)."),
    user: str | None = typer.Option(None, "--user", help="Apply experiments as for this user id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    tenant: str = _tenant_option(),
) -> None:
    """Preview what a request of the tenant would get (nothing is published)."""
    turns = [ChatMessage(role="user", content=m) for m in message]
    variables = parse_vars(var)
    p = _with_store(
        lambda store: management.preview(store, ref, variables, turns, subject=user, tenant=tenant)
    )
    r = p.rendered
    if as_json:
        data = {
            "prompt_name": p.version.name,
            "prompt_version": p.version.version,
            "prompt_label": p.resolution.label,
            "experiment": p.resolution.experiment,
            "variant": p.resolution.variant,
            "messages": [m.model_dump() for m in r.messages],
            "retrieval": r.retrieval.model_dump() if r.retrieval else None,
            "params": r.params.model_dump(),
            "model": r.model,
        }
        _print(json.dumps(data, indent=2))
        return
    chosen = (
        f" (experiment {p.resolution.experiment}, variant {p.resolution.variant})"
        if p.resolution.experiment
        else ""
    )
    _print(f"# {p.version.name}:{p.version.version}{chosen}")
    for m in r.messages:
        _print(f"--- {m.role}\n{m.content}")
    if r.retrieval is not None:
        _print(f"--- retrieval: {r.retrieval.model_dump_json()}")
    _print(f"--- params: {r.params.model_dump_json()}  model: {r.model or '-'}")


@experiments_app.command("set")
def experiments_set(
    prompt: str = typer.Argument(..., help="The prompt whose traffic is split."),
    name: str = typer.Option(..., "--name", "-n", help="Experiment id (recorded on each request)."),
    variant: list[str] = typer.Option(
        ..., "--variant", help="NAME=TARGET[:WEIGHT]; TARGET is a version or a label (repeatable)."
    ),
    label_name: str = typer.Option(
        PRODUCTION, "--label", help="Requests resolving through this label join the experiment."
    ),
    on_winner: str = typer.Option(
        "propose",
        "--on-winner",
        help="When the evaluator finds a significant winner: `promote` it to the label (and end the "
        "experiment) or `propose` it to an operator.",
    ),
    by: str | None = typer.Option(None, help="Who sets it (default: the OS user)."),
    tenant: str = _tenant_option(),
) -> None:
    """Start or replace the experiment on a prompt (sticky per user id, else request id)."""
    try:
        experiment = Experiment.model_validate(
            {
                "name": name,
                "prompt": prompt,
                "label": label_name,
                "variants": [parse_variant(v) for v in variant],
                "on_winner": on_winner,
            }
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    actor = by or _actor()
    _direct("prompts.experiments.set", f"prompt:{prompt}", actor, tenant)
    _with_store(lambda store: management.set_experiment(store, experiment, actor, tenant=tenant))
    _print(_describe(experiment))
    _record(
        management.experiment_changed(
            actor, management.EXPERIMENT_SET, prompt, tenant=tenant, experiment=experiment
        )
    )


def _describe(e: Experiment) -> str:
    total = sum(v.weight for v in e.variants)
    arms = ", ".join(f"{v.name}={e.prompt}{v.target} ({v.weight / total:.0%})" for v in e.variants)
    return f"{e.prompt}@{e.label}: experiment {e.name}: {arms}; winner: {e.on_winner}"


@experiments_app.command("show")
def experiments_show(
    prompt: str | None = typer.Argument(None, help="One prompt (default: all)."),
    tenant: str = _tenant_option(),
) -> None:
    """Running experiments of the tenant."""

    async def action(store: PromptStore) -> list[Experiment]:
        if prompt is None:
            return await store.experiments(tenant=tenant)
        found = await store.experiment(prompt, tenant=tenant)
        if found is None:
            raise ExperimentNotFoundError(f"no experiment runs on prompt {prompt!r}")
        return [found]

    for e in _with_store(action):
        _print(_describe(e))


@experiments_app.command("clear")
def experiments_clear(
    prompt: str = typer.Argument(..., help="The prompt."),
    by: str | None = typer.Option(None, help="Who stops it (default: the OS user)."),
    tenant: str = _tenant_option(),
) -> None:
    """Stop the experiment on a prompt (recorded on `cairn.admin`)."""
    _direct("prompts.experiments.clear", f"prompt:{prompt}", by or _actor(), tenant)
    _with_store(lambda store: management.clear_experiment(store, prompt, tenant=tenant))
    _print(f"{prompt}: experiment stopped")
    _record(
        management.experiment_changed(by or _actor(), management.EXPERIMENT_CLEARED, prompt, tenant=tenant)
    )


@experiments_app.command("proposals")
def experiments_proposals(
    all_: bool = typer.Option(False, "--all", help="Accepted and dismissed ones too."),
    tenant: str = _tenant_option(),
) -> None:
    """Significant experiment winners proposed for promotion (experiments with `--on-winner propose`)."""
    found = _with_store(lambda store: store.proposals(tenant=tenant, status=None if all_ else "open"))
    if not found:
        _print("no proposal")
    for p in found:
        _print(
            f"{p.conclusion_id[:12]} {p.status}: {p.prompt}@{p.label} -> {p.prompt}:{p.version} "
            f"(experiment {p.experiment}, winner {p.variant}, evidence {p.evidence:.3g}) {p.summary}"
        )


@experiments_app.command("accept")
def experiments_accept(
    proposal: str = typer.Argument(..., help="The proposal's id (or a unique prefix of it)."),
    by: str | None = typer.Option(None, help="Who accepts it (default: the OS user)."),
    tenant: str = _tenant_option(),
) -> None:
    """Accept a proposal: move its label to the winner's version and end the experiment (recorded on
    `cairn.admin`)."""
    actor = by or _actor()
    _direct("prompts.experiments.accept", f"proposal:{proposal}", actor, tenant)
    done = _with_store(lambda store: accept_proposal(store, proposal, actor, tenant=tenant))
    p = done.proposal
    _print(f"{p.prompt}@{p.label} -> {p.prompt}:{p.version} (winner {p.variant} of {p.experiment})")
    ended = (
        management.experiment_changed(actor, management.EXPERIMENT_CLEARED, p.prompt, tenant=tenant)
        if done.experiment_ended
        else None
    )
    _record(management.label_moved(actor, done.move, tenant=tenant), ended)

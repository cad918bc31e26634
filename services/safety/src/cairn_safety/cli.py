"""`cairn safety`: screen a text (or a file of texts) under a tenant's policy, validate policies, work the
review queue.

The lead's `cairn` command mounts `app` as `cairn safety`. Settings come from CAIRN_* variables
(the service's own Settings); the database and broker the local stack would give when unset.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cairn_bus.settings import settings_or_local_stack
from cairn_events import ReviewDecision, Verdict
from cairn_safety.domain.policy import PolicyError
from cairn_safety.domain.reviews import (
    ReviewAlreadyResolvedError,
    ReviewItem,
    ReviewNotFoundError,
    ReviewStatus,
)
from cairn_safety.screening import Screening
from cairn_safety.settings import Settings
from cairn_safety.texts_file import FORMATS, FileText, TextsFileError, read_texts
from cairn_safety.train_cli import train_app

if TYPE_CHECKING:
    from cairn_safety.adapters.policy_files import PolicyFiles
    from cairn_safety.batch_screening import TextScreening
    from cairn_safety.domain.policy import Policy, Stage

__all__ = ["app", "load_settings"]

app = typer.Typer(
    help="Safety: screen texts under a tenant's policy, validate policies, work the human review queue.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
reviews_app = typer.Typer(help="The human review queue.", no_args_is_help=True)
policies_app = typer.Typer(help="Per-tenant policy files.", no_args_is_help=True)
app.add_typer(reviews_app, name="reviews")
app.add_typer(policies_app, name="policies")
app.add_typer(train_app, name="train")
console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")

_VERDICT_STYLE = {
    Verdict.ALLOW: "green",
    Verdict.REDACT: "cyan",
    Verdict.REVIEW: "yellow",
    Verdict.BLOCK: "red",
}


def load_settings() -> Settings:
    """The safety service's Settings: CAIRN_* variables win; the database and broker come from the local
    stack's configuration when unset."""
    return settings_or_local_stack(Settings)


def _run(make: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except (PolicyError, ReviewNotFoundError, ReviewAlreadyResolvedError, LookupError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


def _policy_files(settings: Settings) -> PolicyFiles:
    from cairn_safety.adapters.policy_files import PolicyFiles, resolve_policy_dir

    return PolicyFiles(resolve_policy_dir(settings.policy_dir))


def _verdict(v: Verdict) -> str:
    return f"[{_VERDICT_STYLE[v]}]{v.value}[/]"


def _findings_table(screening: Screening) -> Table:
    table = Table("check", "label", "score", "fired", "detail")
    for f in screening.decision.findings:
        table.add_row(f.check, f.label, f"{f.score:.3f}", "[bold]yes[/]" if f.fired else "no", f.detail or "")
    return table


_EXIT_CODES = {Verdict.REVIEW: 2, Verdict.BLOCK: 3}
"""`check`'s exit code by verdict (allow and redact: 0); for a file, the most severe verdict's."""
_PROGRESS_FROM = 100
"""Files of more texts than this report progress on stderr, every 10 % (at least every 100 texts)."""


@app.command()
def check(
    text: str | None = typer.Argument(None, help="The text to screen (or --file)."),
    file: str | None = typer.Option(
        None,
        "--file",
        "-f",
        help="Screen every text of this file (`-`: stdin) in one process: one text a line, or JSON lines "
        'with a "text" (and an optional "id"); blank lines are skipped.',
    ),
    format_in: str = typer.Option(
        "auto",
        "--format-in",
        help="Format of --file: `text`, `jsonl`, or `auto` (JSON lines when the first line starts with `{`).",
    ),
    tenant: str = typer.Option("default", "--tenant", "-t", help="Tenant whose policy applies."),
    stage: str = typer.Option(
        "input", "--stage", "-s", help="`input` (a user turn) or `output` (a model answer)."
    ),
    context: list[str] = typer.Option(
        [], "--context", "-c", help="A retrieved chunk to check for injection (input only; repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (JSON lines for --file)."),
) -> None:
    """Screen TEXT as the service would and print the findings, the verdict and the text passed on.

    With --file, screen each text of the file on its own (as `POST /v1/screen` does): a table with
    one row per text (--json: a JSON line per text), then the number of texts per verdict (on stderr
    with --json). On output, a policy's groundedness gate is not judged (no retrieved context).

    Exits 0 for allow/redact, 2 for review, 3 for block; with --file, by the most severe verdict of
    any text. Exits 1 when the file cannot be read or a line is not what its format needs (the
    error names the line), or when the policy cannot be loaded.
    """
    if stage not in ("input", "output"):
        raise typer.BadParameter("must be `input` or `output`", param_hint="--stage")
    if format_in not in FORMATS:
        raise typer.BadParameter("must be `auto`, `text` or `jsonl`", param_hint="--format-in")
    if (text is None) == (file is None):
        raise typer.BadParameter("give either a TEXT or --file FILE", param_hint="TEXT")
    if file is not None:
        if context:
            raise typer.BadParameter(
                "--context applies to a single TEXT, not to --file", param_hint="--context"
            )
        _check_file(file, format_in, tenant, "input" if stage == "input" else "output", as_json)
        return
    if format_in != "auto":
        raise typer.BadParameter("--format-in applies to --file only", param_hint="--format-in")
    assert text is not None
    from cairn_events import ContextChunk
    from cairn_safety.bootstrap import make_classifier
    from cairn_safety.screening import Screener

    settings = load_settings()

    async def go() -> tuple[str, Screening]:
        policy = _policy_files(settings).policy_for(tenant)
        chunks = [
            ContextChunk(
                document_id="cli", chunk_id=f"cli#{i}", source_uri="cli:", content_hash="", score=1.0, text=c
            )
            for i, c in enumerate(context, 1)
        ]
        screener = Screener(make_classifier(settings))
        return policy.ref, await screener.screen(
            "input" if stage == "input" else "output", policy, [text], chunks
        )

    policy_ref, screening = _run(go)
    decision = screening.decision
    if as_json:
        out = {
            "policy": policy_ref,
            "stage": stage,
            "verdict": decision.verdict.value,
            "reason": decision.reason(),
            "findings": [f.model_dump(mode="json") for f in decision.findings],
            "text": screening.passed_on()[0],
        }
        typer.echo(json.dumps(out, indent=2))
    else:
        console.print(_findings_table(screening))
        console.print(f"verdict: {_verdict(decision.verdict)}  (policy {policy_ref}, {stage})")
        if decision.reasons:
            console.print(f"reason: {decision.reason()}")
        if decision.verdict is Verdict.REDACT:
            console.print(f"redacted: {screening.passed_on()[0]}")
    raise typer.Exit(_EXIT_CODES.get(decision.verdict, 0))


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _check_file(path: str, format_in: str, tenant: str, stage: Stage, as_json: bool) -> None:
    """`check --file`: screen each text of the file, print a row (or JSON line) each and a summary."""
    from cairn_safety.batch_screening import VERDICT_ORDER, screen_each
    from cairn_safety.bootstrap import make_classifier
    from cairn_safety.screening import Screener

    try:
        texts, read_as = read_texts(path, format_in)  # type: ignore[arg-type]
    except TextsFileError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if not texts:
        console.print(f"[red]error:[/red] {path}: no texts (blank lines are skipped)", highlight=False)
        raise typer.Exit(1)
    settings = load_settings()

    async def go() -> tuple[Policy, list[TextScreening]]:
        policy = _policy_files(settings).policy_for(tenant)
        screener = Screener(make_classifier(settings))
        done: list[TextScreening] = []
        every = max(_PROGRESS_FROM, -(-len(texts) // 10))
        async for one in screen_each(screener, stage, policy, [t.text for t in texts]):
            done.append(one)
            if len(texts) > _PROGRESS_FROM and len(done) % every == 0 and len(done) < len(texts):
                err_console.print(f"screened {len(done)}/{len(texts)}", highlight=False)
        return policy, done

    policy, done = _run(go)
    if as_json:
        for item, one in zip(texts, done, strict=True):
            typer.echo(json.dumps(_file_result_json(item, one, stage)))
    else:
        console.print(_file_table(texts, done, with_ids=read_as == "jsonl"))
    counts = {v: sum(one.decision.verdict is v for one in done) for v in VERDICT_ORDER}
    summary = f"{len(done)} texts: " + ", ".join(f"{n} {v.value}" for v, n in counts.items())
    (err_console if as_json else console).print(f"{summary} (policy {policy.ref}, {stage})", highlight=False)
    for skipped in done[0].skipped:
        err_console.print(f"{skipped.check} not judged: {skipped.reason}", highlight=False)
    worst = max((_EXIT_CODES.get(v, 0) for v, n in counts.items() if n), default=0)
    raise typer.Exit(worst)


def _file_result_json(item: FileText, one: TextScreening, stage: Stage) -> dict[str, Any]:
    decision = one.decision
    return {
        "line": item.line,
        "id": item.id,
        "policy": decision.policy,
        "stage": stage,
        "verdict": decision.verdict.value,
        "reason": decision.reason(),
        "findings": [f.model_dump(mode="json") for f in decision.findings],
        "text": one.passed_on,
        "skipped": [{"check": s.check, "reason": s.reason} for s in one.skipped],
        "elapsed_ms": round(one.seconds * 1000, 3),
    }


def _file_table(texts: Sequence[FileText], done: Sequence[TextScreening], *, with_ids: bool) -> Table:
    table = Table("line", *(["id"] if with_ids else []), "verdict", "fired", "text")
    for item, one in zip(texts, done, strict=True):
        fired = ", ".join(f"{f.check}={f.score:.2f}" for f in one.decision.fired)
        shown = _short(one.screening.redacted[0])  # personal data that fired is never shown
        row = [str(item.line), *([item.id] if with_ids else []), _verdict(one.decision.verdict), fired, shown]
        table.add_row(*row)
    return table


@policies_app.command("validate")
def policies_validate() -> None:
    """Load and validate every policy file in CAIRN_POLICY_DIR; exit 1 listing each problem (file and field)."""
    from cairn_safety.adapters.policy_files import PolicyFiles, resolve_policy_dir

    settings = load_settings()
    try:
        files = PolicyFiles(resolve_policy_dir(settings.policy_dir))
        loaded = files.validate_all()
    except PolicyError as exc:
        console.print(f"[red]invalid policies in {exc.path}:[/red]")
        for problem in exc.problems:
            console.print(f"  {problem}")
        raise typer.Exit(1) from None
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{len(loaded)} valid policies in {files.directory}: " + ", ".join(p.ref for p in loaded))


@policies_app.command("show")
def policies_show(tenant: str = typer.Argument("default", help="Tenant.")) -> None:
    """Print the policy that applies to TENANT (its own file, else the default), as JSON."""
    settings = load_settings()
    try:
        policy = _policy_files(settings).policy_for(tenant)
    except (PolicyError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    typer.echo(policy.model_dump_json(indent=2))


async def _with_queue(settings: Settings, use: Callable[[Any], Awaitable[T]]) -> T:
    from cairn_bus.postgres import create_pool
    from cairn_safety.adapters.postgres import PostgresReviewQueue

    pool = await create_pool(settings.postgres_dsn, 1, 2)
    try:
        queue = PostgresReviewQueue(pool)
        await queue.migrate()
        return await use(queue)
    finally:
        await pool.close()


def _item_json(item: ReviewItem) -> dict[str, Any]:
    return {
        "review_id": item.review_id,
        "request_id": item.request_id,
        "tenant": item.tenant,
        "stage": item.stage,
        "verdict": item.verdict.value,
        "status": item.status.value,
        "policy": item.policy,
        "text": item.text,
        "findings": [f.model_dump(mode="json") for f in item.findings],
        "created_at": item.created_at.isoformat(),
        "deadline_at": item.deadline_at.isoformat() if item.deadline_at else None,
        "on_deadline": item.on_deadline.value,
        "resolved_by": item.resolved_by,
        "resolved_at": item.resolved_at.isoformat() if item.resolved_at else None,
        "note": item.note,
        "edited_text": item.edited_text,
    }


@reviews_app.command("list")
def reviews_list(
    status: str = typer.Option("pending", help="pending, approved, edited, rejected or all."),
    tenant: str | None = typer.Option(None, help="Only this tenant's items."),
    limit: int = typer.Option(50, min=1, help="At most this many items."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List review items, oldest first."""
    if status != "all" and status not in {s.value for s in ReviewStatus}:
        raise typer.BadParameter("must be pending, approved, edited, rejected or all", param_hint="--status")
    wanted = None if status == "all" else ReviewStatus(status)
    settings = load_settings()
    items = _run(lambda: _with_queue(settings, lambda q: q.items(wanted, tenant, limit)))
    if as_json:
        for item in items:
            typer.echo(json.dumps(_item_json(item)))
        return
    table = Table("review id", "request", "tenant", "stage", "status", "fired", "text", "created")
    for item in items:
        fired = ", ".join(f"{f.check}={f.score:.2f}" for f in item.findings if f.fired)
        text = item.text if len(item.text) <= 60 else item.text[:57] + "..."
        table.add_row(
            item.review_id,
            item.request_id,
            item.tenant,
            item.stage,
            item.status.value,
            fired,
            text,
            item.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    console.print(table)
    console.print(f"{len(items)} item(s)")


@reviews_app.command("show")
def reviews_show(review_id: str = typer.Argument(..., help="Review id.")) -> None:
    """Print one review item as JSON."""
    settings = load_settings()
    item = _run(lambda: _with_queue(settings, lambda q: q.get(review_id)))
    if item is None:
        console.print(f"[red]error:[/red] no review item {review_id!r}")
        raise typer.Exit(1)
    typer.echo(json.dumps(_item_json(item), indent=2))


def _decide_through_api(
    api: str, key: str, review_id: str, decision: ReviewDecision, text: str | None, note: str | None
) -> dict[str, Any]:
    """POST the decision to the safety API; the item as the API returns it. Exits 1 with the API's
    message on an error (409 when decided before)."""
    body = json.dumps({"decision": decision.value, "text": text, "note": note}).encode()
    url = f"{api.rstrip('/')}/v1/reviews/{urllib.parse.quote(review_id, safe='')}/decision"
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            found: dict[str, Any] = json.loads(response.read())
            return found
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(json.loads(detail).get("detail", detail))
        console.print(f"[red]error:[/red] {exc.code}: {detail}")
        raise typer.Exit(1) from None
    except urllib.error.URLError as exc:
        console.print(f"[red]error:[/red] cannot reach {api}: {exc.reason}")
        raise typer.Exit(1) from None


async def _decide_in_database(
    settings: Settings, review_id: str, decision: ReviewDecision, who: str, text: str | None, note: str | None
) -> ReviewItem:
    """Decide in the review queue's database and publish the decision, in one transaction."""
    from cairn_bus.kafka import KafkaPublisher, ensure_topics, make_producer
    from cairn_safety.app import router
    from cairn_safety.decisions import announcer

    await ensure_topics(settings.kafka_bootstrap)
    producer = make_producer(settings)
    await producer.start()
    try:
        publisher = KafkaPublisher(
            producer, "/cairn/safety", allowed_types=router.published_types, service=settings.service_name
        )

        async def decide(queue: Any) -> ReviewItem:
            item: ReviewItem = await queue.resolve(
                review_id, decision, resolved_by=who, note=note, text=text, then=announcer(publisher)
            )
            return item

        return await _with_queue(settings, decide)
    finally:
        await producer.stop()


@reviews_app.command("decide")
def reviews_decide(
    review_id: str = typer.Argument(..., help="Review id."),
    decision: str = typer.Argument(..., help="approve, edit or reject."),
    text: str | None = typer.Option(None, "--text", help="The corrected answer (edit only)."),
    note: str | None = typer.Option(None, "--note", help="Why; a rejection answers the request with it."),
    api: str | None = typer.Option(
        None, "--api", envvar="CAIRN_API_URL", help="The safety API's URL (e.g. http://127.0.0.1:8083)."
    ),
    key: str | None = typer.Option(None, "--key", envvar="CAIRN_API_KEY", help="Your API key (operator)."),
) -> None:
    """Decide a pending review: approve releases the held answer, edit releases TEXT instead (screened
    again), reject answers the request `blocked`. The decision is published as
    `cairn.review.resolved.v1` and the safety service answers the request.

    With --api and --key (or CAIRN_API_URL / CAIRN_API_KEY) through the API, checked against your key;
    without them directly in the database, recorded as `cli:<user>`.
    """
    try:
        chosen = ReviewDecision(decision)
    except ValueError:
        raise typer.BadParameter("must be approve, edit or reject", param_hint="DECISION") from None
    if (chosen is ReviewDecision.EDIT) != bool(text and text.strip()):
        raise typer.BadParameter("--text is required for edit, and only for edit", param_hint="--text")
    if api and key:
        out = _decide_through_api(api, key, review_id, chosen, text, note)
        console.print(f"{out['review_id']}: {out['status']} by {out['resolved_by']}")
        return
    if api or key:
        raise typer.BadParameter("give both --api and --key (or neither, for the database)")
    who = f"cli:{getpass.getuser()}"
    err_console.print(
        f"[bold yellow]warning:[/bold yellow] no --api/--key: deciding DIRECTLY IN THE DATABASE as {who} "
        "(no API key, role or tenant check)"
    )
    settings = load_settings()
    item = _run(lambda: _decide_in_database(settings, review_id, chosen, who, text, note))
    console.print(f"{item.review_id}: {item.status.value} by {item.resolved_by}")

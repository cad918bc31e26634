"""`cairn tenants erase TENANT`: crypto-shredding of a tenant's stored content, as an audited admin action.

The command publishes `cairn.admin_action.recorded.v1` (action `tenant.erase`, target: the tenant)
on `cairn.admin`. Every service that stores the tenant's content encrypted consumes it and destroys its
own data key for the tenant (audit: the trail's payloads; feedback: its tables and the dataset rows in
S3; safety: the review queue), so what they stored of the tenant can never be read again; the
evaluator forgets the embeddings of the tenant's questions; the audit's hash chain, computed over the ciphertext, still verifies, and
the erasure itself stays in the trail (admin actions are stored unencrypted).
"""

from __future__ import annotations

import asyncio
import getpass

import typer
from rich.console import Console

from cairn_auth.domain.principals import check_tenant_id
from cairn_auth.encryption import TENANT_ERASE
from cairn_auth.management import action_event_id, admin_action
from cairn_cli.config import CliSettings, load_settings
from cairn_events import AdminActionRecordedV1, JsonScalar

app = typer.Typer(
    help="Tenants: erase a tenant's stored content everywhere (crypto-shredding).", no_args_is_help=True
)
console = Console()


@app.callback()
def tenants() -> None:
    """Tenants: erase a tenant's stored content everywhere (crypto-shredding)."""


@app.command()
def erase(
    tenant: str = typer.Argument(..., help="The tenant whose stored content is erased."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    reason: str | None = typer.Option(None, help="Why (e.g. a ticket id); recorded in the audit trail."),
    by: str | None = typer.Option(None, help="Who erases (default: the OS user)."),
) -> None:
    """Erase TENANT: every service destroys its key for the tenant, so the tenant's requests, prompts,
    answers, context and feedback stored so far become unreadable for good. Cannot be undone."""
    try:
        check_tenant_id(tenant, allow_platform=False)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not yes:
        typer.confirm(f"Erase tenant {tenant!r}? Its stored content becomes unreadable for good", abort=True)
    details: dict[str, JsonScalar] = {"reason": reason} if reason else {}
    event = admin_action(by or getpass.getuser(), TENANT_ERASE, tenant, tenant=tenant, details=details)
    try:
        event_id = asyncio.run(_publish(load_settings(), event))
    except OSError as exc:
        console.print(f"[red]error:[/red] the erasure could not be published: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"erasure of tenant [bold]{tenant}[/bold] published (event {event_id}): the audit, feedback and "
        "safety services destroy their keys for it as they consume it (dataset rows in S3 included), "
        "the evaluator forgets its questions' embeddings",
        highlight=False,
    )


async def _publish(settings: CliSettings, event: AdminActionRecordedV1) -> str:
    """Publish the action on `cairn.admin`; its id is derived from the action, so a retry is one event."""
    from cairn_auth.serving import kafka_publisher
    from cairn_bus.kafka import ensure_topics
    from cairn_events import load_topics

    await ensure_topics(
        settings.kafka_bootstrap,
        [load_topics()[event.topic]],
        replication_factor=settings.kafka_replication_factor,
    )
    async with kafka_publisher(settings) as publisher:
        meta = await publisher.publish(
            event, event_id=action_event_id(event.action, event.target, event.recorded_at)
        )
    return meta.id

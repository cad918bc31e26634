"""`cairn stack`: the embedded local stack (Tansu, PostgreSQL + pgvector, SeaweedFS), no Docker."""

from __future__ import annotations

import typer

from cairn_localstack.cli import run

app = typer.Typer(help="The local stack: Kafka-protocol broker, PostgreSQL, S3 store.", no_args_is_help=True)

_PROFILE = typer.Option(None, "--profile", help="Stack profile (default: $CAIRN_STACK_PROFILE or 'local').")
_STORAGE = typer.Option(None, "--broker-storage", help="Broker storage: 's3' (durable) or 'memory'.")


def _call(command: str, profile: str | None, storage: str | None = None, *extra: str) -> None:
    argv = [command]
    if profile:
        argv += ["--profile", profile]
    if storage:
        argv += ["--broker-storage", storage]
    code = run([*argv, *extra])
    if code:
        raise typer.Exit(code)


@app.command()
def up(
    profile: str | None = _PROFILE,
    broker_storage: str | None = _STORAGE,
    prometheus: bool = typer.Option(
        False,
        "--prometheus",
        help="Also run Prometheus (Debian package, fetched once) scraping the services.",
    ),
) -> None:
    """Install-free start: each component started (or health-checked if running), with timings."""
    _call("up", profile, broker_storage, *(["--prometheus"] if prometheus else []))


@app.command()
def down(
    profile: str | None = _PROFILE,
    purge: bool = typer.Option(False, help="Also delete the stack's data folder."),
) -> None:
    """Stop every component by its recorded PID."""
    _call("down", profile, None, *(["--purge"] if purge else []))


@app.command()
def status(profile: str | None = _PROFILE) -> None:
    """Each component: state, port, PID, health. Exit 1 when anything is down."""
    _call("status", profile)


@app.command()
def env(profile: str | None = _PROFILE) -> None:
    """The CAIRN_* variables that point the services at this stack (shell `export` lines)."""
    _call("env", profile)


@app.command("restart-broker")
def restart_broker(profile: str | None = _PROFILE) -> None:
    """Restart only the broker (its data survives when storage is s3)."""
    _call("restart-broker", profile)

"""`cairn services`: run the Cairn services as local processes against the local stack."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cairn_bus.contract import service_modules, service_routers
from cairn_localstack.config import LOCAL_CONSUMER_ENV, StackConfig
from cairn_localstack.process import ProcessManager

app = typer.Typer(help="Start, stop and inspect the Cairn services as local processes.", no_args_is_help=True)
console = Console()


def runnable_services() -> list[str]:
    """Services whose router consumes something (the others have no handlers yet)."""
    return sorted(name for name, router in service_routers().items() if router.topics)


def manager(config: StackConfig) -> ProcessManager:
    """The process manager of the services of one stack profile."""
    return ProcessManager(config.stack_dir / "services")


def start_services(config: StackConfig, names: list[str] | None = None) -> list[str]:
    """Start the named services (all when None) that are not running; returns those started."""
    modules = service_modules()
    unknown = sorted(set(names or []) - set(modules))
    if unknown:
        raise typer.BadParameter(
            f"unknown service(s): {', '.join(unknown)}; known: {', '.join(sorted(modules))}"
        )
    pm = manager(config)
    env = {**os.environ, **config.service_env(), **LOCAL_CONSUMER_ENV, "CAIRN_LOG_FORMAT": "json"}
    started = []
    for name in names or runnable_services():
        if pm.is_running(name):
            continue
        env["CAIRN_SERVICE_NAME"] = name
        env.update(config.service_metrics_env(name))
        pm.start(name, [sys.executable, "-m", modules[name]], env=env, cwd=Path.cwd())
        started.append(name)
    return started


def stop_services(config: StackConfig, names: list[str] | None = None) -> list[str]:
    """Stop the named services (all when None); returns those that were running."""
    pm = manager(config)
    return [n for n in (names or sorted(service_modules())) if pm.stop(n)]


@app.command("up")
def up(
    names: list[str] = typer.Argument(None, help="Services to start (default: all that have handlers)."),
    wait: bool = typer.Option(True, help="Wait until each started service has joined its consumer group."),
    timeout: float = typer.Option(300.0, help="Seconds to wait for readiness."),
) -> None:
    """Start services as background processes with the local stack's settings."""
    config = StackConfig()
    started = start_services(config, names or None)
    console.print(f"started: {', '.join(started) or 'nothing (already running)'}")
    if wait and started:
        try:
            wait_ready(config, started, timeout)
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/red]; see `cairn services logs NAME`")
            raise typer.Exit(1) from None
        console.print("ready: every started service joined its consumer group")


@app.command("down")
def down(names: list[str] = typer.Argument(None, help="Services to stop (default: all).")) -> None:
    """Stop services by their recorded PIDs."""
    stopped = stop_services(StackConfig(), names or None)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command("status")
def status() -> None:
    """One line per service: running or not, PID, uptime, log file."""
    pm = manager(StackConfig())
    table = Table("service", "state", "pid", "uptime", "log")
    for name in sorted(service_modules()):
        info = pm.info(name)
        uptime = f"{info.uptime_s:.0f} s" if info.uptime_s is not None else "-"
        state = "[green]running[/green]" if info.running else "stopped"
        table.add_row(name, state, str(info.pid or "-"), uptime, str(info.log_path))
    console.print(table)


@app.command("logs")
def logs(name: str, lines: int = typer.Option(40, help="How many lines from the end.")) -> None:
    """The last lines of a service's log."""
    console.print(manager(StackConfig()).tail(name, lines), markup=False, highlight=False)


def wait_ready(config: StackConfig, names: list[str], timeout_s: float = 60.0) -> None:
    """Wait until each service's log says it is ready (or it exited)."""
    pm = manager(config)
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            text = pm.tail(name, 400)
            text = text[text.rfind("=== ") :]  # only what this start wrote
            if '"service ready"' in text or "nothing to consume" in text:
                pending.discard(name)
            elif not pm.is_running(name):
                raise RuntimeError(f"{name} exited while starting:\n{pm.tail(name, 15)}")
        time.sleep(0.3)
    if pending:
        raise RuntimeError(f"services not ready after {timeout_s:.0f} s: {', '.join(sorted(pending))}")

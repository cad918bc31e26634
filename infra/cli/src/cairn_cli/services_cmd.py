"""`cairn services`: run the Cairn services as local processes against the local stack.

A service can run as several members of its consumer group (`up --replicas`): each member is its own
process with its own PID file, log and /metrics port, all in the group `cairn-<service>`. The first
member keeps the service's name (`retriever`); the others are `retriever#2`, `retriever#3`, ...
(see `cairn_localstack.config.member_name` and, for their ports, `REPLICA_PORT_STRIDE`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cairn_bus.contract import service_modules, service_routers
from cairn_events import load_topics
from cairn_localstack.config import (
    EXTRA_MEMBER_ENV,
    LOCAL_CONSUMER_ENV,
    LOCAL_SERVICE_ENV,
    MAX_REPLICAS,
    StackConfig,
    member_name,
    split_member,
)
from cairn_localstack.keys import signing_env
from cairn_localstack.process import ProcessManager

app = typer.Typer(help="Start, stop and inspect the Cairn services as local processes.", no_args_is_help=True)
console = Console()


def runnable_services() -> list[str]:
    """Services whose router consumes something (the others have no handlers yet)."""
    return sorted(name for name, router in service_routers().items() if router.topics)


def manager(config: StackConfig) -> ProcessManager:
    """The process manager of the services of one stack profile."""
    return ProcessManager(config.stack_dir / "services")


def parse_replicas(values: Iterable[str], services: Iterable[str]) -> dict[str, int]:
    """Members per service from `--replicas` values: `N` for every service in `services`, or
    `SERVICE=N` for one (which wins over `N`, whatever the order)."""
    known = list(services)
    every: int | None = None
    each: dict[str, int] = {}
    for value in values:
        name, sep, count = value.rpartition("=")
        if not count.isdigit() or not 1 <= int(count) <= MAX_REPLICAS:
            raise typer.BadParameter(f"--replicas {value!r}: the count must be 1 to {MAX_REPLICAS}")
        if not sep:
            every = int(count)
        elif name in known:
            each[name] = int(count)
        else:
            raise typer.BadParameter(f"--replicas {value!r}: {name!r} is not among {', '.join(known)}")
    return {name: each.get(name, every or 1) for name in known}


def _check_names(names: Iterable[str]) -> None:
    modules = service_modules()
    unknown = []
    for name in names:
        try:
            service, _ = split_member(name)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if service not in modules:
            unknown.append(name)
    if unknown:
        raise typer.BadParameter(
            f"unknown service(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(modules))}"
        )


def recorded_members(pm: ProcessManager, service: str) -> list[str]:
    """The members of `service` with a record in `pm` (running or not), first member first."""
    found = []
    for info in pm.status():
        try:
            owner, number = split_member(info.name)
        except ValueError:
            continue
        if owner == service:
            found.append((number, info.name))
    return [name for _, name in sorted(found)]


def member_env(config: StackConfig, service: str, member: int) -> dict[str, str]:
    """The environment of member `member` of `service`: its local defaults (`LOCAL_SERVICE_ENV`, unless the
    environment sets them), the stack's settings, the service's name (so
    its default consumer group, `cairn-<service>`, is the same for every member) and its own
    /metrics port; members after the first do not serve the service's HTTP API."""
    return {
        **LOCAL_SERVICE_ENV.get(service, {}),
        **os.environ,
        **config.service_env(),
        **signing_env(config.stack_dir, service),  # signs as the service, verifies against the stack's keys
        **LOCAL_CONSUMER_ENV,
        "CAIRN_LOG_FORMAT": "json",
        "CAIRN_SERVICE_NAME": service,
        **config.service_metrics_env(service, member),
        **(EXTRA_MEMBER_ENV if member > 1 else {}),
    }


def start_services(
    config: StackConfig, names: list[str] | None = None, replicas: Mapping[str, int] | None = None
) -> list[str]:
    """Start the named services (all when None) that are not running; returns the processes started.

    A service runs `replicas[service]` members (1 when not given); a member name (`retriever#2`) in
    `names` starts that member alone.
    """
    _check_names(names or [])
    modules = service_modules()
    pm = manager(config)
    wanted: list[tuple[str, int]] = []
    for name in names or runnable_services():
        service, member = split_member(name)
        if member > 1:
            wanted.append((service, member))
        else:
            wanted.extend((service, k) for k in range(1, (replicas or {}).get(service, 1) + 1))
    started = []
    for service, member in wanted:
        process = member_name(service, member)
        if pm.is_running(process):
            continue
        env = member_env(config, service, member)
        pm.start(process, [sys.executable, "-m", modules[service]], env=env, cwd=Path.cwd())
        started.append(process)
    return started


def stop_services(config: StackConfig, names: list[str] | None = None) -> list[str]:
    """Stop the named services (all when None), every member of each, or the named members alone;
    returns the processes that were running."""
    _check_names(names or [])
    pm = manager(config)
    targets: list[str] = []
    for name in names or sorted(service_modules()):
        service, member = split_member(name)
        targets.extend([name] if member > 1 else [service, *recorded_members(pm, service)])
    return [n for n in dict.fromkeys(targets) if pm.stop(n)]


def idle_members(replicas: Mapping[str, int]) -> dict[str, int]:
    """Services asked for more members than the most partitions of any topic they read (those extra
    members would hold no partition and idle): the most members that get work, by service."""
    routers = service_routers()
    partitions = {name: spec.partitions for name, spec in load_topics().items()}
    limits = {}
    for service, count in replicas.items():
        topics = routers[service].topics if service in routers else []
        most = max((partitions.get(t, 1) for t in topics), default=1)
        if count > most:
            limits[service] = most
    return limits


@app.command("up")
def up(
    names: list[str] = typer.Argument(
        None, help="Services (or members, e.g. retriever#2) to start (default: all that have handlers)."
    ),
    replicas: list[str] = typer.Option(
        None,
        "--replicas",
        help=f"Members of each service's consumer group: N for all, or SERVICE=N (repeatable); 1 to "
        f"{MAX_REPLICAS}. Members after the first are named SERVICE#2, SERVICE#3, ...",
    ),
    wait: bool = typer.Option(True, help="Wait until each started service has joined its consumer group."),
    timeout: float = typer.Option(300.0, help="Seconds to wait for readiness."),
) -> None:
    """Start services as background processes with the local stack's settings."""
    config = StackConfig()
    _check_names(names or [])
    services = sorted({split_member(n)[0] for n in names} if names else runnable_services())
    counts = parse_replicas(replicas or [], services)
    for service, most in idle_members(counts).items():
        console.print(
            f"[yellow]{service}: {counts[service]} members, but its topics have at most {most} "
            f"partitions: {counts[service] - most} will hold none and idle[/yellow]"
        )
    started = start_services(config, names or None, counts)
    console.print(f"started: {', '.join(started) or 'nothing (already running)'}")
    pm = manager(config)
    beyond = [
        m
        for s in services
        for m in recorded_members(pm, s)
        if split_member(m)[1] > counts[s] and pm.is_running(m) and m not in (names or [])
    ]
    if beyond and replicas:
        console.print(f"also running: {', '.join(beyond)} (stop with `cairn services down NAME`)")
    if wait and started:
        try:
            wait_ready(config, started, timeout)
        except RuntimeError as exc:
            console.print(f"[red]{exc}[/red]; see `cairn services logs NAME`")
            raise typer.Exit(1) from None
        console.print("ready: every started service joined its consumer group")


@app.command("down")
def down(
    names: list[str] = typer.Argument(
        None, help="Services to stop, every member of each (default: all), or members (retriever#2)."
    ),
) -> None:
    """Stop services by their recorded PIDs."""
    stopped = stop_services(StackConfig(), names or None)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command("status")
def status() -> None:
    """One line per service and per further member: running or not, PID, uptime, log file."""
    pm = manager(StackConfig())
    table = Table("service", "state", "pid", "uptime", "log")
    for service in sorted(service_modules()):
        for name in dict.fromkeys([service, *recorded_members(pm, service)]):
            info = pm.info(name)
            uptime = f"{info.uptime_s:.0f} s" if info.uptime_s is not None else "-"
            state = "[green]running[/green]" if info.running else "stopped"
            table.add_row(name, state, str(info.pid or "-"), uptime, str(info.log_path))
    console.print(table)


@app.command("logs")
def logs(
    name: str = typer.Argument(..., help="A service (its first member) or a member, e.g. retriever#2."),
    lines: int = typer.Option(40, help="How many lines from the end."),
) -> None:
    """The last lines of a service's (or a member's) log."""
    _check_names([name])
    console.print(manager(StackConfig()).tail(name, lines), markup=False, highlight=False)


def wait_ready(config: StackConfig, names: list[str], timeout_s: float = 60.0) -> None:
    """Wait until each service's (or member's) log says it is ready (or it exited)."""
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

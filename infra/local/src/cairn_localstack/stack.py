"""`LocalStack`: bring the servers up (S3 → PostgreSQL → broker, then Prometheus when enabled),
report on them, take them down."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import shlex
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .components import Component, Postgres, Prometheus, SeaweedFS, StartReport, Tansu
from .config import StackConfig
from .keys import signing_env
from .process import ProcessManager

log = logging.getLogger("cairn_localstack")


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    running: bool
    pid: int | None
    port: int
    healthy: bool
    data_dir: str
    log: Path
    uptime_s: float | None = None
    action: str | None = None  # what the last `up` did: started, restarted, running
    start_ms: float | None = None  # how long that took
    steps_ms: dict[str, float] = field(default_factory=dict)

    @property
    def state(self) -> str:
        if not self.running:
            return "stopped"
        return "healthy" if self.healthy else "unhealthy"


@dataclass(frozen=True)
class StackStatus:
    profile: str
    stack_dir: Path
    components: tuple[ComponentStatus, ...]
    total_ms: float | None = None

    @property
    def healthy(self) -> bool:
        """Every component runs and passes its health check."""
        return all(c.running and c.healthy for c in self.components)

    @property
    def stopped(self) -> bool:
        return not any(c.running for c in self.components)

    def __getitem__(self, name: str) -> ComponentStatus:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    def format(self) -> str:
        """A line per component: name, state, port, pid, start time (ms), then where its data and log are."""
        lines = [f"stack {self.profile!r} in {self.stack_dir}"]
        for c in self.components:
            start = f"{c.start_ms:8.0f} ms" if c.start_ms is not None else "        - ms"
            action = f" ({c.action})" if c.action else ""
            steps = ", ".join(f"{k} {v:.0f} ms" for k, v in c.steps_ms.items() if k != "ready")
            lines.append(
                f"  {c.name:<11}{c.state:<10} port {c.port:<6} pid {c.pid if c.running else '-'!s:<8}"
                f"start {start}{action}{f' [{steps}]' if steps else ''}"
            )
            lines.append(f"  {'':<11}data {c.data_dir}  log {c.log}")
        if self.total_ms is not None:
            lines.append(f"  total {self.total_ms:.0f} ms")
        return "\n".join(lines)


class LocalStack:
    """The embedded local stack of one profile. Every method is synchronous; `*_async` twins exist."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.processes = ProcessManager(self.config.stack_dir)
        self.s3 = SeaweedFS(self.config, self.processes)
        self.postgres = Postgres(self.config, self.processes)
        self.broker = Tansu(self.config, self.processes)
        self.prometheus = Prometheus(self.config, self.processes)
        self.components: tuple[Component, ...] = (self.s3, self.postgres, self.broker)
        # Prometheus is optional: managed when enabled, and still reported and stopped while it
        # runs from an earlier `up` that enabled it
        if self.config.prometheus or self.processes.is_running(self.prometheus.name):
            self.components += (self.prometheus,)

    @property
    def stack_dir(self) -> Path:
        return self.config.stack_dir

    @property
    def env_file(self) -> Path:
        return self.stack_dir / "stack.env"

    @property
    def _timings_file(self) -> Path:
        return self.stack_dir / "last-up.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One `up`/`down`/`restart` at a time per stack folder, across processes."""
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        with (self.stack_dir / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- public API ----------------------------------------------------------------------------

    def up(self) -> StackStatus:
        """Start what is not running (S3, then PostgreSQL, then the broker) and wait until all are
        healthy. On a running stack, only re-checks health. Writes `stack.env`."""
        with self._locked():
            t0 = time.perf_counter()
            pending = [c for c in self.components if not self.processes.is_running(c.name)]
            for component in pending:
                for port in component.busy_ports():
                    raise component.port_error(port)
            reports: dict[str, StartReport] = {}
            for component in self.components:
                if component is self.broker and self.config.broker_storage == "s3":
                    self.broker.require_storage(self.s3.healthy())
                report = component.ensure_running()
                reports[component.name] = report
                log.info("%s %s in %.0f ms %s", component.name, report.action, report.total_ms, report.steps)
            total = (time.perf_counter() - t0) * 1000
            self.write_env_file()
            self._save_timings(reports, total)
        return self._status(reports, total)

    def down(self, purge: bool = False) -> StackStatus:
        """Stop every component by its recorded PID (broker, PostgreSQL, S3). `purge` also deletes
        the stack folder and any folder outside it that held the stack's files."""
        with self._locked():
            for component in reversed(self.components):
                if component.stop():
                    log.info("%s stopped", component.name)
            outside = [*self.postgres.recorded_dirs(), self.s3.sockets]
        if purge:
            for folder in outside:
                if not folder.is_relative_to(self.stack_dir):
                    shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(self.stack_dir, ignore_errors=True)
        return self.status()

    def status(self) -> StackStatus:
        """Per component: running, pid, port, health (checked now), data folder, log, last start time."""
        try:
            saved = json.loads(self._timings_file.read_text())
        except (FileNotFoundError, ValueError):
            saved = {}
        reports = {
            name: StartReport(str(r.get("action")), float(r.get("total_ms", 0)), dict(r.get("steps", {})))
            for name, r in saved.get("components", {}).items()
        }
        return self._status(reports, saved.get("total_ms"))

    def restart_broker(self) -> ComponentStatus:
        """Stop and start the broker alone (its storage, S3 or memory, stays as configured)."""
        with self._locked():
            if self.config.broker_storage == "s3":
                self.broker.require_storage(self.s3.healthy())
            t0 = time.perf_counter()
            self.broker.stop()
            steps = self.broker.start()
            report = StartReport("restarted", (time.perf_counter() - t0) * 1000, steps)
            self._save_timings({self.broker.name: report})
        log.info("broker restarted in %.0f ms", report.total_ms)
        return self._component_status(self.broker, report)

    def env(self) -> dict[str, str]:
        """What the services need to reach this stack (also written to `stack.env` by `up`), with the
        event signing keys (made when missing) a process beside it uses: the CLI's key, every
        service's public key (`cairn_localstack.keys`)."""
        return {**self.config.service_env(), **signing_env(self.stack_dir)}

    def write_env_file(self) -> Path:
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        lines = [f"export {key}={shlex.quote(value)}" for key, value in self.env().items()]
        self.env_file.write_text(
            "# written by cairn_localstack; source it: . "
            + str(self.env_file)
            + "\n"
            + "\n".join(lines)
            + "\n"
        )
        return self.env_file

    async def up_async(self) -> StackStatus:
        return await asyncio.to_thread(self.up)

    async def down_async(self, purge: bool = False) -> StackStatus:
        return await asyncio.to_thread(self.down, purge)

    async def status_async(self) -> StackStatus:
        return await asyncio.to_thread(self.status)

    async def restart_broker_async(self) -> ComponentStatus:
        return await asyncio.to_thread(self.restart_broker)

    # -- helpers -------------------------------------------------------------------------------

    def _component_status(self, component: Component, report: StartReport | None) -> ComponentStatus:
        info = self.processes.info(component.name)
        running = info.running
        return ComponentStatus(
            name=component.name,
            running=running,
            pid=info.pid if running else None,
            port=component.port,
            healthy=running and component.healthy(),
            data_dir=component.storage(),
            log=info.log_path,
            uptime_s=info.uptime_s,
            action=report.action if report and running else None,
            start_ms=report.total_ms if report and running else None,
            steps_ms=dict(report.steps) if report and running else {},
        )

    def _status(self, reports: dict[str, StartReport], total_ms: float | None) -> StackStatus:
        components = tuple(self._component_status(c, reports.get(c.name)) for c in self.components)
        return StackStatus(self.config.profile, self.stack_dir, components, total_ms)

    def _save_timings(self, reports: dict[str, StartReport], total_ms: float | None = None) -> None:
        """Remember the last real start of each component (an idempotent `up` keeps the earlier one)."""
        try:
            data = json.loads(self._timings_file.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        components = data.setdefault("components", {})
        for name, r in reports.items():
            if r.action != "running" or name not in components:
                components[name] = {
                    "action": r.action,
                    "total_ms": r.total_ms,
                    "steps": r.steps,
                    "at": time.time(),
                }
        if total_ms is not None:
            data["total_ms"] = total_ms
        self._timings_file.write_text(json.dumps(data, indent=2))

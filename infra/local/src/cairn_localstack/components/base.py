"""What every component of the stack provides, and the generic start / wait-healthy logic."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .._util import port_available, run_async, short_hash
from ..config import StackConfig
from ..errors import HealthCheckError, PortInUseError
from ..process import ProcessManager, exit_code, kill_process_group, pid_alive

log = logging.getLogger("cairn_localstack")


@dataclass(frozen=True)
class LaunchSpec:
    """How to run a component's process."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    user: str | None = None
    stop_signal: int = signal.SIGTERM
    #: settings that change the server's behaviour without showing in argv (keys, environment)
    settings: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        return short_hash("\0".join([*self.argv, "--", *self.settings]), 16)


@dataclass(frozen=True)
class PortSpec:
    role: str
    port: int
    setting: str  # the environment variable that moves it
    hint: str = ""


@dataclass
class StartReport:
    """What `ensure_running` did and how long each step took (ms)."""

    action: str  # "started", "restarted", "running"
    total_ms: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)


class Component(ABC):
    """One server of the stack, run as a plain process recorded by `ProcessManager`."""

    name: ClassVar[str]
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 15.0
    probe_timeout: ClassVar[float] = 5.0

    def __init__(self, config: StackConfig, processes: ProcessManager) -> None:
        self.config = config
        self.processes = processes

    @property
    def home(self) -> Path:
        """This component's folder inside the stack folder."""
        return self.config.stack_dir / self.name

    @property
    @abstractmethod
    def port(self) -> int:
        """The port clients use."""

    @abstractmethod
    def ports(self) -> list[PortSpec]:
        """Every port the process listens on."""

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def storage(self) -> str:
        """Where the component keeps its data, for humans."""
        return str(self.data_dir)

    def prepare(self) -> dict[str, float]:
        """One-off work before the process starts (folders, initdb); returns timings of slow steps."""
        return {}

    @abstractmethod
    def launch(self) -> LaunchSpec:
        """The command line; compared with the running one to tell whether settings changed."""

    @abstractmethod
    async def probe(self) -> None:
        """Raise unless the server answers (one attempt)."""

    async def bootstrap(self) -> None:  # noqa: B027 - optional hook
        """Idempotent setup once the server answers (bucket, role, database, extension)."""

    async def check(self) -> None:
        """Raise unless the component is fully usable (one attempt)."""
        await self.probe()

    # -- generic behaviour ---------------------------------------------------------------------

    def busy_ports(self) -> list[PortSpec]:
        return [spec for spec in self.ports() if not port_available(self.config.host, spec.port)]

    def port_error(self, spec: PortSpec) -> PortInUseError:
        return PortInUseError(self.name, spec.role, self.config.host, spec.port, spec.setting, spec.hint)

    def healthy(self) -> bool:
        try:
            run_async(asyncio.wait_for(self.check(), self.probe_timeout))
        except Exception as exc:
            log.debug("%s health check failed: %r", self.name, exc)
            return False
        return True

    def start(self) -> dict[str, float]:
        """Prepare, start the process and wait until it is healthy."""
        steps = self.prepare()
        spec = self.launch()
        for port in self.busy_ports():
            raise self.port_error(port)
        t0 = time.perf_counter()
        pid = self.processes.start(
            self.name,
            spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            user=spec.user,
            stop_signal=spec.stop_signal,
            labels={"fingerprint": spec.fingerprint},
        )
        steps["spawn"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        try:
            run_async(self.wait_ready(self.start_timeout))
        except HealthCheckError:
            self.processes.stop(self.name, timeout=self.stop_timeout)
            if pid_alive(pid):  # not recognised from its PID file any more: still leave nothing behind
                kill_process_group(pid)
            raise
        steps["ready"] = (time.perf_counter() - t0) * 1000
        return steps

    def stop(self) -> bool:
        return self.processes.stop(self.name, timeout=self.stop_timeout)

    def runs_with_current_settings(self) -> bool:
        """Whether the running process was started with today's command line and settings."""
        spec = self.launch()
        recorded = self.processes.meta(self.name).get("labels", {}).get("fingerprint")
        if recorded is None:  # started by an older version of this package: compare argv only
            return list(self.processes.recorded_argv(self.name)) == spec.argv
        return bool(recorded == spec.fingerprint)

    def ensure_running(self) -> StartReport:
        """Start the component unless it runs with the same settings; then be sure it is healthy."""
        t0 = time.perf_counter()
        if self.processes.is_running(self.name):
            if self.runs_with_current_settings():
                if not self.healthy():
                    run_async(self.wait_ready(self.start_timeout))
                return StartReport("running", (time.perf_counter() - t0) * 1000)
            log.info("%s: settings changed, restarting", self.name)
            self.stop()
            steps = self.start()
            return StartReport("restarted", (time.perf_counter() - t0) * 1000, steps)
        steps = self.start()
        return StartReport("started", (time.perf_counter() - t0) * 1000, steps)

    async def wait_ready(self, within_s: float) -> None:
        """Probe until the server answers, bootstrap it, then check it; fail fast if it exits."""
        deadline = time.monotonic() + within_s
        last: BaseException | None = None
        while True:
            if not self.processes.is_running(self.name):
                pid = self.processes.read_pid(self.name)
                code = exit_code(pid) if pid is not None else None
                status = f" with status {code}" if code is not None else ""
                raise self._health_error(f"exited while starting{status} (pid {pid})")
            try:
                await asyncio.wait_for(self.probe(), self.probe_timeout)
                await asyncio.wait_for(self.bootstrap(), max(self.probe_timeout, 30.0))
                await asyncio.wait_for(self.check(), self.probe_timeout)
                return
            except Exception as exc:
                last = exc
            if time.monotonic() >= deadline:
                reason = f"did not become healthy within {within_s:.0f}s (last error: {last!r})"
                raise self._health_error(reason)
            await asyncio.sleep(0.1)

    def _health_error(self, reason: str) -> HealthCheckError:
        info = self.processes.info(self.name)
        return HealthCheckError(self.name, reason, str(info.log_path), self.processes.tail(self.name, 20))

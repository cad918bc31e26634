"""Cairn's services as processes for end-to-end tests and benchmarks, and the `cairn` command beside them.

A service is started with `python -m <its package>` (found from the `cairn.services` entry points),
in a consumer group of its own that starts at the current end of its topics, and is ready once its
log says `"service ready"`. More members of the same group run as processes named `<service>#<k>`
(`cairn_localstack.config.member_name`), as `cairn services up --replicas` names them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cairn_bus.contract import service_modules, service_routers
from cairn_localstack.config import (
    EXTRA_MEMBER_ENV,
    LOCAL_CONSUMER_ENV,
    StackConfig,
    member_name,
    split_member,
)
from cairn_localstack.keys import private_key_file, signing_env
from cairn_localstack.process import ProcessManager
from cairn_testing.events import start_group_at_end

CAIRN = str(Path(sys.executable).with_name("cairn"))
"""The `cairn` command of the running Python environment."""


def service_env(
    stack_env: Mapping[str, str], database_dsn: str, stack_dir: Path | None = None
) -> dict[str, str]:
    """What every service process gets: this environment, the stack's settings, its own database,
    fast local group joins, JSON logs, one torch thread and no model downloads; and the stack's event
    signing keys (`stack_dir`, default the `CAIRN_STACK_PROFILE` stack's): every service's public key
    trusted, the CLI's key to sign with (`ServiceProcesses.start` gives each service its own)."""
    if stack_dir is None:
        stack_dir = StackConfig.for_profile(os.environ.get("CAIRN_STACK_PROFILE", "test")).stack_dir
    return {
        **os.environ,
        **signing_env(stack_dir),
        **stack_env,
        "CAIRN_POSTGRES_DSN": database_dsn,
        **LOCAL_CONSUMER_ENV,
        "CAIRN_LOG_FORMAT": "json",
        "CAIRN_TORCH_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }


async def prepare_groups(bootstrap: str, suffix: str) -> dict[str, str]:
    """A fresh consumer group per installed service (`cairn-<name>-<suffix>`), starting at the
    current end of its topics (which must exist: `cairn_bus.kafka.ensure_topics`)."""
    groups = {}
    for name, router in service_routers().items():
        group = f"cairn-{name}-{suffix}"
        if router.topics:
            await start_group_at_end(bootstrap, group, router.topics)
        groups[name] = group
    return groups


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for a service's /metrics or API)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cairn(env: Mapping[str, str], *args: str, cwd: Path | None = None, timeout: float = 900) -> str:
    """Run `cairn <args>` with `env`; its standard output. Raises RuntimeError with its output when it fails."""
    done = subprocess.run(
        [CAIRN, *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"cairn {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


@dataclass
class ServiceProcesses:
    """The services of one session as processes: one environment, one consumer group per service.

    `env` is what every service gets (see `service_env`); `groups` maps service name to its
    consumer group (see `prepare_groups`); `cwd` is where the processes run. A name is a service (its
    first member) or a further member of the service's group, `<service>#<k>` (see `member_name`).
    """

    pm: ProcessManager
    env: dict[str, str]
    groups: dict[str, str]
    modules: dict[str, str] = field(default_factory=service_modules)
    cwd: Path | None = None
    metrics_ports: dict[str, int] = field(default_factory=dict)
    """The /metrics port each process was last started with (by process name), where it had one."""

    def start(self, name: str, extra_env: Mapping[str, str] | None = None) -> None:
        """Start service or member `name` (`extra_env` on top of `env`); returns at once, see
        `wait_ready`. Every member of a service runs under the service's name in its group; members
        after the first do not serve the service's HTTP API (`EXTRA_MEMBER_ENV`)."""
        service, member = split_member(name)
        env = {
            **self.env,
            "CAIRN_SERVICE_NAME": service,
            "CAIRN_KAFKA_GROUP_ID": self.groups[service],
            **(EXTRA_MEMBER_ENV if member > 1 else {}),
            **(extra_env or {}),
        }
        if env.get("CAIRN_TRUSTED_KEYS_DIR") and not (extra_env and "CAIRN_SIGNING_KEY_FILE" in extra_env):
            own_key = private_key_file(Path(env["CAIRN_TRUSTED_KEYS_DIR"]), service)
            if own_key.exists():
                env["CAIRN_SIGNING_KEY_FILE"] = str(own_key)
        self.pm.start(name, [sys.executable, "-m", self.modules[service]], env=env, cwd=self.cwd)
        if env.get("CAIRN_METRICS_PORT"):
            self.metrics_ports[name] = int(env["CAIRN_METRICS_PORT"])

    def stop(self, name: str) -> None:
        """Stop service or member `name` (SIGTERM, then SIGKILL after 20 s); nothing when it is not running."""
        self.pm.stop(name, timeout=20)

    def members(self, service: str) -> list[str]:
        """The running members of `service`, first member first."""
        found = []
        for info in self.pm.status():
            try:
                owner, member = split_member(info.name)
            except ValueError:  # not a name this class gives
                continue
            if owner == service and info.running:
                found.append((member, info.name))
        return [name for _, name in sorted(found)]

    def wait_ready(self, names: Sequence[str], timeout: float = 600.0) -> None:
        """Return once every service (or member) in `names` logged `"service ready"` since it was last
        started.

        Raises RuntimeError (with its log) as soon as one exits, TimeoutError after `timeout` s.
        """
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                if '"service ready"' in self._since_last_start(name):
                    pending.discard(name)
                elif not self.pm.is_running(name):
                    raise RuntimeError(f"{name} exited while starting:\n{self.pm.tail(name, 60)}")
            time.sleep(0.3)
        if pending:
            logs = "\n".join(f"--- {n}\n{self.pm.tail(n, 40)}" for n in sorted(pending))
            raise TimeoutError(f"not ready after {timeout:.0f}s: {sorted(pending)}\n{logs}")

    def _since_last_start(self, name: str) -> str:
        """The end of the log of `name` from the line its last start wrote (`=== ... starting`)."""
        lines = self.pm.tail(name, 400).splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("=== ")]
        return "\n".join(lines[starts[-1] if starts else 0 :])

    def log(self, name: str, lines: int = 80) -> str:
        """The last `lines` lines of the log of service or member `name`."""
        return self.pm.tail(name, lines)

    @contextmanager
    def running(
        self,
        names: Sequence[str],
        extra_env: Mapping[str, Mapping[str, str]] | None = None,
        replicas: int | Mapping[str, int] = 1,
    ) -> Iterator[ServiceProcesses]:
        """Start `names` (each with its `extra_env[name]`), wait until all are ready, and stop them all
        on exit, also when one fails to start.

        `replicas` members of each service (a count for all, or per service name, 1 where not named)
        run in its group. A further member gets `extra_env[<service>#<k>]` when given, else its
        service's, with a free /metrics port of its own where that sets one.
        """
        started: list[str] = []
        extra = extra_env or {}
        try:
            for service in names:
                count = replicas if isinstance(replicas, int) else replicas.get(service, 1)
                for k in range(1, count + 1):
                    name = member_name(service, k)
                    env = dict(extra.get(name, extra.get(service, {})))
                    if k > 1 and name not in extra and "CAIRN_METRICS_PORT" in env:
                        env["CAIRN_METRICS_PORT"] = str(free_port())
                    started.append(name)
                    self.start(name, env)
            self.wait_ready(started)
            yield self
        finally:
            for name in started:
                self.stop(name)

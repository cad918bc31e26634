"""ProcessManager: start, status, stop by recorded PID, stale PID files, escalation to SIGKILL."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn_localstack.process import (
    ProcessError,
    ProcessManager,
    boot_id,
    descendants,
    pid_alive,
    proc_cpu_ticks,
    proc_start_ticks,
)


@pytest.fixture
def pm(tmp_path: Path) -> ProcessManager:
    return ProcessManager(tmp_path / "run")


def _wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_start_status_stop(pm: ProcessManager) -> None:
    pid = pm.start("sleeper", ["sleep", "60"])
    assert pm.pid_path("sleeper").read_text().strip() == str(pid)
    assert pm.is_running("sleeper")
    assert pm.pid("sleeper") == pid
    [info] = pm.status()
    assert (info.name, info.pid, info.running) == ("sleeper", pid, True)
    assert info.uptime_s is not None
    assert info.uptime_s >= 0
    assert info.log_path == pm.log_path("sleeper")
    assert info.argv == ("sleep", "60")
    assert pm.stop("sleeper", timeout=5) is True
    assert not pid_alive(pid)
    assert not pm.is_running("sleeper")
    assert not pm.pid_path("sleeper").exists()
    assert not pm.meta_path("sleeper").exists()
    assert pm.stop("sleeper") is False  # stopping a stopped process is fine


def test_output_goes_to_the_log_and_is_appended(pm: ProcessManager) -> None:
    for word in ("first", "second"):
        pid = pm.start("echo", ["sh", "-c", f"echo {word}-out; echo {word}-err >&2"])
        assert _wait_for(lambda p=pid: not pid_alive(p))
    log = pm.log_path("echo").read_text()
    for line in ("first-out", "first-err", "second-out", "second-err"):
        assert line in log
    assert pm.tail("echo", 2).splitlines() == ["second-out", "second-err"]
    assert not pm.is_running("echo")


def test_env_and_cwd(pm: ProcessManager, tmp_path: Path) -> None:
    pid = pm.start(
        "env", ["sh", "-c", 'echo "$FOO $(pwd)"'], env={"FOO": "bar", "PATH": "/usr/bin:/bin"}, cwd=tmp_path
    )
    assert _wait_for(lambda: not pid_alive(pid))
    assert f"bar {tmp_path}" in pm.log_path("env").read_text()


def test_cannot_start_twice_and_names_are_checked(pm: ProcessManager) -> None:
    pm.start("once", ["sleep", "60"])
    try:
        with pytest.raises(ProcessError, match="already running"):
            pm.start("once", ["sleep", "60"])
    finally:
        pm.stop("once")
    with pytest.raises(ProcessError, match="invalid process name"):
        pm.start("../evil", ["true"])
    with pytest.raises(ProcessError, match="cannot start"):
        pm.start("missing", ["/nonexistent/binary"])


def test_process_survives_its_parent(pm: ProcessManager) -> None:
    script = textwrap.dedent(
        f"""
        from cairn_localstack.process import ProcessManager
        print(ProcessManager({str(pm.run_dir)!r}).start("orphan", ["sleep", "60"]))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    pid = int(out.stdout.strip())
    try:
        time.sleep(0.2)
        assert pm.is_running("orphan")
        assert pm.pid("orphan") == pid
        assert os.getsid(pid) == pid  # its own session
    finally:
        assert pm.stop("orphan")
    assert not pid_alive(pid)


def _write_record(pm: ProcessManager, name: str, pid: int, argv: list[str], ticks: int | None) -> None:
    pm.run_dir.mkdir(parents=True, exist_ok=True)
    pm.pid_path(name).write_text(f"{pid}\n")
    meta = {"pid": pid, "argv": argv, "start_ticks": ticks, "boot_id": boot_id(), "started_at": time.time()}
    pm.meta_path(name).write_text(json.dumps(meta))


def test_stale_pid_of_a_dead_process(pm: ProcessManager) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    _write_record(pm, "ghost", dead.pid, ["sleep"], None)
    assert not pm.is_running("ghost")
    assert pm.status()[0].running is False
    assert pm.stop("ghost") is False
    assert not pm.pid_path("ghost").exists()


def test_stale_pid_reused_by_another_program_is_never_signalled(pm: ProcessManager) -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        # the PID file says "tansu", /proc says "sleep": stale
        _write_record(pm, "reused", other.pid, ["/opt/bin/tansu", "broker"], None)
        assert not pm.is_running("reused")
        assert pm.stop("reused") is False
        assert other.poll() is None
        # same program but another start time: stale too
        _write_record(pm, "restarted", other.pid, ["sleep", "60"], (proc_start_ticks(other.pid) or 0) + 1)
        assert not pm.is_running("restarted")
        assert pm.stop("restarted") is False
        assert other.poll() is None
        # the same program and start time: ours (as after a restart of the managing process)
        _write_record(pm, "adopted", other.pid, ["sleep", "60"], proc_start_ticks(other.pid))
        assert pm.is_running("adopted")
        # a PID file without its record is not trusted
        pm.pid_path("bare").write_text(f"{other.pid}\n")
        assert not pm.is_running("bare")
    finally:
        other.kill()
        other.wait()


def test_garbage_pid_file(pm: ProcessManager) -> None:
    pm.run_dir.mkdir(parents=True)
    pm.pid_path("junk").write_text("not a pid\n")
    assert pm.read_pid("junk") is None
    assert not pm.is_running("junk")
    assert pm.stop("junk") is False


def test_stop_escalates_to_sigkill_and_leaves_no_process(
    pm: ProcessManager, group_members: Callable[[int], list[int]]
) -> None:
    # ignores SIGTERM, and has a child that ignores it too
    script = 'trap "" TERM; sleep 60 & wait'
    pid = pm.start("stubborn", ["sh", "-c", script])
    assert _wait_for(lambda: len(group_members(pid)) == 2)
    assert pm.stop("stubborn", timeout=0.5)
    assert group_members(pid) == []  # SIGTERM was ignored: only the escalation to SIGKILL ends both


def test_a_process_that_execs_another_program_is_still_recognised(pm: ProcessManager) -> None:
    pid = pm.start("wrapper", ["sh", "-c", "exec sleep 60"])
    assert _wait_for(lambda: Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep"))
    assert pm.is_running("wrapper")
    assert pm.stop("wrapper")
    assert not pid_alive(pid)


def test_stop_cleans_up_the_rest_of_the_process_group(
    pm: ProcessManager, group_members: Callable[[int], list[int]]
) -> None:
    # the leader dies on SIGTERM at once; its background child would be left behind
    pid = pm.start("leader", ["sh", "-c", "sleep 60 & exec sleep 61"])
    assert _wait_for(lambda: len(group_members(pid)) == 2)
    assert pm.stop("leader", timeout=5)
    assert _wait_for(lambda: group_members(pid) == [])


def test_stop_kills_descendants_that_left_the_group(pm: ProcessManager) -> None:
    # like PostgreSQL's workers: children in their own session, which would outlive the leader
    pid = pm.start("spawner", ["sh", "-c", "setsid sleep 60 & wait"])
    assert _wait_for(lambda: len(descendants(pid)) == 1)
    [child] = descendants(pid)
    assert os.getsid(child) == child
    assert pm.stop("spawner", timeout=5, kill_timeout=1)
    assert _wait_for(lambda: not pid_alive(child))


def test_custom_stop_signal(pm: ProcessManager, tmp_path: Path) -> None:
    marker = tmp_path / "got-int"
    ready = tmp_path / "traps-set"
    script = f'trap "touch {marker}; exit 0" INT; trap "" TERM; touch {ready}; while true; do sleep 0.1; done'
    pm.start("intish", ["sh", "-c", script], stop_signal=signal.SIGINT)
    assert pm.meta("intish")["stop_signal"] == signal.SIGINT
    assert _wait_for(ready.exists)  # a signal sent before the shell set its traps would just kill it
    assert pm.stop("intish", timeout=5)
    assert marker.exists()  # the INT trap ran: stopped by its own signal, TERM (ignored) was not needed


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_start_as_another_user(pm: ProcessManager) -> None:
    nobody = pwd.getpwnam("nobody")
    pid = pm.start("unprivileged", ["sleep", "60"], user="nobody")
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1] == str(nobody.pw_uid)
        assert pm.meta("unprivileged")["user"] == "nobody"
    finally:
        assert pm.stop("unprivileged")


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the non-root refusal")
def test_switching_user_needs_root(pm: ProcessManager) -> None:
    with pytest.raises(ProcessError, match="needs root"):
        pm.start("x", ["true"], user="root")


def test_cpu_ticks_count_a_process_s_own_work_and_its_reaped_children() -> None:
    before = proc_cpu_ticks(os.getpid())
    assert before is not None
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # 0.3 s of this process's own CPU
        pass
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nt = time.process_time() + 0.3\nwhile time.process_time() < t: pass",
        ],
        check=True,
    )
    after = proc_cpu_ticks(os.getpid())
    assert after is not None
    ticks = os.sysconf("SC_CLK_TCK")
    assert after[0] - before[0] >= 0.2 * ticks  # own
    assert after[1] - before[1] >= 0.2 * ticks  # the child, reaped by subprocess.run
    assert proc_cpu_ticks(2**22 + 1) is None  # no such process

"""Start, watch and stop plain background processes by recorded PID.

Generic: knows nothing of the stack. For each process `name` the run folder holds `<name>.pid`
(the PID alone), `<name>.json` (argv, start time, stop signal, ...) and `logs/<name>.log` (stdout
and stderr, appended). A PID file is trusted only while `/proc/<pid>` shows the same process: the same
start time in the same boot or, failing that record, the recorded program in its command line;
anything else is a stale file and is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: A process name; `#<n>` at the end numbers a further member of a group (`retriever#2`).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(#[0-9]+)?$")
_PROC = Path("/proc")
_ROTATE_BYTES = 20 * 1024 * 1024
#: Popen objects of the processes started by this interpreter, so their exit can be reaped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
#: Exit statuses of those that were reaped, by PID.
_EXIT_CODES: dict[int, int] = {}


class ProcessError(RuntimeError):
    """A process could not be started or stopped."""


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    pid: int | None
    running: bool
    uptime_s: float | None
    log_path: Path
    argv: tuple[str, ...] = ()


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state first), or None when there is no such process."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


def proc_start_ticks(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def proc_cpu_ticks(pid: int) -> tuple[int, int] | None:
    """(its own user + system ticks, those of its reaped children) of a process, or None when it is
    gone; `os.sysconf("SC_CLK_TCK")` ticks make a second."""
    fields = _proc_stat(pid)
    if not fields or len(fields) <= 14:
        return None
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def boot_id() -> str | None:
    try:
        return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return None


def proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pid_alive(pid: int) -> bool:
    """Whether `pid` is a live process (zombies count as gone). /proc is the truth where it exists."""
    child = _CHILDREN.get(pid)
    if child is not None:
        with contextlib.suppress(OSError):
            child.poll()  # reaps it if it exited
    if _PROC.is_dir():
        fields = _proc_stat(pid)
        alive = fields is not None and fields[0] not in ("Z", "X")
    elif child is not None:
        alive = child.returncode is None
    else:
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        except PermissionError:
            alive = True
    if not alive:
        _forget_child(pid)
    return alive


def _forget_child(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        # it may have exited after the poll above and before /proc said so: reap it now, or it
        # stays a zombie until this interpreter exits
        with contextlib.suppress(OSError):
            child.poll()
        if child.returncode is not None:
            _EXIT_CODES[pid] = child.returncode


def exit_code(pid: int) -> int | None:
    """The exit status of a process this interpreter started and that has exited, if known."""
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll()
    return _EXIT_CODES.get(pid)


def kill_process_group(pid: int) -> None:
    """SIGKILL the session/group led by `pid` (processes started here lead their own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _resolve_user(user: str | int | None) -> pwd.struct_passwd | None:
    """The account to switch to, or None to run as ourselves."""
    if user is None:
        return None
    entry = pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    if entry.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise ProcessError(f"cannot start a process as user {entry.pw_name!r}: that needs root")
    return entry


def _default_signal_handling() -> None:
    """In the child before exec: default dispositions for the stop signals.

    A process started from a background job of a non-interactive shell (CI runners, `nohup ... &`)
    inherits SIGINT and SIGQUIT as ignored, and an ignored signal cannot even be trapped by a child
    shell; a managed process must get the signal it is stopped with.
    """
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


class ProcessManager:
    """Background processes recorded under `run_dir`."""

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self.logs_dir = self.run_dir / "logs"

    def pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def meta_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    # -- reading state -------------------------------------------------------------------------

    def read_pid(self, name: str) -> int | None:
        """The PID in `<name>.pid`, live or not."""
        try:
            return int(self.pid_path(name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def meta(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads(self.meta_path(name).read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _owns(self, pid: int, meta: Mapping[str, Any]) -> bool:
        """Whether `pid` is still the process recorded in `meta`.

        The same start time in the same boot identifies it for sure (even after an `exec`); without
        that, the recorded program must appear in `/proc/<pid>/cmdline`."""
        argv = meta.get("argv")
        if not argv or meta.get("pid") != pid or not pid_alive(pid):
            return False
        ticks = meta.get("start_ticks")
        same_boot = meta.get("boot_id") is not None and meta.get("boot_id") == boot_id()
        if ticks is not None and same_boot:
            return bool(proc_start_ticks(pid) == ticks)
        cmdline = proc_cmdline(pid)
        if cmdline is None:  # no /proc (not Linux): trust the live PID
            return not _PROC.is_dir()
        program = Path(str(argv[0])).name
        return bool(cmdline) and (program in Path(cmdline[0]).name or program in " ".join(cmdline))

    def pid(self, name: str) -> int | None:
        """The PID of `name` if it is running, else None."""
        pid = self.read_pid(name)
        return pid if pid is not None and self._owns(pid, self.meta(name)) else None

    def is_running(self, name: str) -> bool:
        return self.pid(name) is not None

    def recorded_argv(self, name: str) -> tuple[str, ...]:
        return tuple(str(part) for part in self.meta(name).get("argv", ()))

    def info(self, name: str) -> ProcessInfo:
        meta = self.meta(name)
        pid = self.read_pid(name)
        running = pid is not None and self._owns(pid, meta)
        started = meta.get("started_at")
        uptime = time.time() - float(started) if running and started is not None else None
        log_file = Path(meta["log"]) if meta.get("log") else self.log_path(name)
        return ProcessInfo(name, pid, running, uptime, log_file, self.recorded_argv(name))

    def status(self) -> list[ProcessInfo]:
        if not self.run_dir.is_dir():
            return []
        names = {path.stem for path in self.run_dir.glob("*.pid")}
        names |= {path.stem for path in self.run_dir.glob("*.json") if "argv" in self.meta(path.stem)}
        return [self.info(name) for name in sorted(names)]

    def tail(self, name: str, lines: int = 20) -> str:
        """The last `lines` lines of the log of `name`."""
        try:
            text = self.info(name).log_path.read_bytes()[-64 * 1024 :].decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- starting and stopping -----------------------------------------------------------------

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        log_file: Path | str | None = None,
        user: str | int | None = None,
        stop_signal: int = signal.SIGTERM,
        labels: Mapping[str, str] | None = None,
    ) -> int:
        """Start `argv` in its own session (it outlives this process) and record its PID.

        `labels` are kept in its record (see `meta`), e.g. a hash of the settings it was started with.
        """
        if not _NAME.match(name):
            raise ProcessError(f"invalid process name {name!r}")
        if self.is_running(name):
            raise ProcessError(f"{name} is already running (pid {self.pid(name)})")
        account = _resolve_user(user)
        child_env = dict(os.environ if env is None else env)
        if account is not None:
            child_env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
        log_path = Path(log_file) if log_file is not None else self.log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if log_path.exists() and log_path.stat().st_size > _ROTATE_BYTES:
            log_path.replace(log_path.with_name(log_path.name + ".1"))
        with log_path.open("ab") as out:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            out.write(f"\n=== {stamp} starting {name}: {' '.join(argv)}\n".encode())
            out.flush()
            try:
                proc = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=child_env,
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=_default_signal_handling,
                    close_fds=True,
                    user=account.pw_uid if account else None,
                    group=account.pw_gid if account else None,
                    extra_groups=[] if account else None,
                )
            except OSError as exc:
                raise ProcessError(f"cannot start {name} ({argv[0]}): {exc}") from exc
        _CHILDREN[proc.pid] = proc
        _EXIT_CODES.pop(proc.pid, None)
        meta = {
            "name": name,
            "pid": proc.pid,
            "argv": list(argv),
            "start_ticks": proc_start_ticks(proc.pid),
            "boot_id": boot_id(),
            "started_at": time.time(),
            "stop_signal": int(stop_signal),
            "log": str(log_path),
            "user": account.pw_name if account else None,
            "cwd": str(cwd) if cwd is not None else None,
            "labels": dict(labels or {}),
        }
        _write_atomic(self.meta_path(name), json.dumps(meta, indent=2))
        _write_atomic(self.pid_path(name), f"{proc.pid}\n")
        log.debug("started %s pid %d", name, proc.pid)
        return proc.pid

    def stop(self, name: str, timeout: float = 10.0, kill_timeout: float = 5.0) -> bool:
        """Stop `name`: its stop signal, up to `timeout` s for it to exit, then SIGKILL to it, its
        process group and its descendants. Descendants still alive once it has exited (children that
        left its process group, as PostgreSQL's do) get `kill_timeout` s, then SIGKILL.

        Returns whether it was running. Stale or missing PID files are removed and never acted on.
        """
        meta = self.meta(name)
        pid = self.read_pid(name)
        if pid is None or not self._owns(pid, meta):
            self._forget(name)
            return False
        ticks = meta.get("start_ticks")
        family = descendants(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, int(meta.get("stop_signal", signal.SIGTERM)))
        if not _wait_gone(pid, ticks, timeout):
            log.warning("%s (pid %d) did not stop within %.1fs: sending SIGKILL", name, pid, timeout)
            family.update(descendants(pid))
            kill_process_group(pid)
            for member in (pid, *family):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(member, signal.SIGKILL)
            if not _wait_gone(pid, ticks, kill_timeout):
                raise ProcessError(f"{name} (pid {pid}) survived SIGKILL")
        kill_process_group(pid)  # leftovers of its process group, if any
        for member, member_ticks in family.items():
            if not _wait_gone(member, member_ticks, kill_timeout):
                log.warning("%s: pid %d outlived its parent: sending SIGKILL", name, member)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(member, signal.SIGKILL)
        self._forget(name)
        return True

    def _forget(self, name: str) -> None:
        for path in (self.pid_path(name), self.meta_path(name)):
            path.unlink(missing_ok=True)


def descendants(pid: int) -> dict[int, int | None]:
    """Live descendants of `pid` with their start times (empty without /proc)."""
    if not _PROC.is_dir():
        return {}
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and len(fields) > 1 and fields[0] not in ("Z", "X"):
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: dict[int, int | None] = {}
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        if child not in found:
            found[child] = proc_start_ticks(child)
            pending.extend(children.get(child, []))
    return found


def _wait_gone(pid: int, ticks: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not pid_alive(pid) or (ticks is not None and proc_start_ticks(pid) not in (None, ticks)):
            _forget_child(pid)
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)

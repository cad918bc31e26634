"""Where each service's CPU goes under load: py-spy samples of running processes, summarised.

`SpyRecording(pids, folder)` starts `py-spy record` (a dev dependency; it attaches to a running
process by pid, changing nothing in it) on each process and `stop()` ends them; `top_frames` reads a
recording (py-spy's `raw` format: one collapsed stack and its sample count per line) and returns the
functions that were on-CPU most, by own samples ("self") and with what they called ("total").
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

RATE_HZ = 100


def _frame(text: str) -> str:
    """`function (path/to/module.py:line)` -> `function (module.py)`: lines vary, files do not."""
    name, _, where = text.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({Path(file).name})" if file else name


def top_frames(raw: Path, n: int = 8) -> dict[str, Any]:
    """The `n` functions with the most own samples and the `n` with the most samples including their
    callees, each as a share of all samples of the recording."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(c / samples, 3)] for name, c in counter.most_common(n)] if samples else []

    return {"samples": samples, "self": share(own), "total": share(total)}


class SpyRecording:
    """py-spy recording each of `pids` (name -> pid) into `folder/<name>.txt` until `stop()`."""

    def __init__(self, pids: dict[str, int | None], folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        exe = Path(sys.executable).with_name("py-spy")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for name, pid in pids.items():
            if pid is None:
                continue
            self.procs[name] = subprocess.Popen(
                [
                    str(exe),
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(RATE_HZ),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--output",
                    str(self.path(name)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.txt"

    def stop(self, n: int = 8) -> dict[str, Any]:
        """End every recording (py-spy writes its file on SIGINT) and summarise each."""
        for proc in self.procs.values():
            proc.send_signal(signal.SIGINT)
        out: dict[str, Any] = {}
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            path = self.path(name)
            out[name] = top_frames(path, n) if path.exists() else {"error": f"py-spy wrote no {path.name}"}
        return out

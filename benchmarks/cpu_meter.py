"""CPU time of named process trees from /proc: what a benchmark's processes (the services, the broker,
PostgreSQL) spent between two snapshots, in user + system seconds.

A tree's time is its root's own and reaped children's time (utime, stime, cutime, cstime) plus the
own time of its live descendants, so PostgreSQL's per-connection backends count whether they are
still running or have exited.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cairn_localstack.process import descendants, proc_cpu_ticks

TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """User + system seconds of `pid` and its descendants (live and reaped) so far; 0 when it is gone."""
    root = proc_cpu_ticks(pid)
    if root is None:
        return 0.0
    ticks = root[0] + root[1]
    for child in descendants(pid):
        if (times := proc_cpu_ticks(child)) is not None:
            ticks += times[0]
    return ticks / TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds per named process tree at one moment."""

    at: float
    seconds: dict[str, float]

    def since(self, earlier: CpuSnapshot) -> dict[str, float]:
        """CPU seconds each tree spent since `earlier` (trees present in both)."""
        return {n: self.seconds[n] - earlier.seconds[n] for n in self.seconds if n in earlier.seconds}


def snapshot(pids: Mapping[str, int | None]) -> CpuSnapshot:
    """CPU seconds of each named tree now (names whose pid is None are left out)."""
    return CpuSnapshot(time.monotonic(), {n: tree_cpu_s(p) for n, p in pids.items() if p is not None})


def per_request_ms(
    spent: Mapping[str, float],
    requests: int,
    idle_cores: Mapping[str, float] | None = None,
    span_s: float = 0.0,
) -> dict[str, dict[str, float]]:
    """CPU-ms per request of each tree and in total: gross, and net of what the tree burns idle
    (`idle_cores` x `span_s`; cores by tree name, other keys such as a `total` are ignored)."""
    if requests <= 0:
        return {}
    idle_of = {n: c for n, c in (idle_cores or {}).items() if n in spent}
    idle_of["total"] = sum(idle_of.values())
    out: dict[str, dict[str, float]] = {}
    for name, seconds in {**spent, "total": sum(spent.values())}.items():
        idle = idle_of.get(name, 0.0)
        out[name] = {
            "gross": round(seconds * 1000 / requests, 2),
            "net_of_idle": round(max(seconds - idle * span_s, 0.0) * 1000 / requests, 2),
        }
    return out

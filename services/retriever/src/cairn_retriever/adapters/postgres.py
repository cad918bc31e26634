"""What the retriever adds to `cairn_bus.postgres`: pgvector's `vector` type read and written as lists
of floats, and the extension created before a pool registers that codec."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from cairn_bus.postgres import create_pool, migrate

VECTOR_EXTENSION_LOCK = "cairn_retriever_vector_ext"


def encode_vector(values: Sequence[float]) -> bytes:
    """pgvector's binary format: dimension (uint16), unused (uint16), float4 values, big-endian."""
    arr = np.asarray(values, dtype=">f4")
    return struct.pack(">HH", arr.shape[0], 0) + arr.tobytes()


def decode_vector(data: bytes) -> list[float]:
    """A vector from pgvector's binary format."""
    (dim,) = struct.unpack_from(">H", data)
    return [float(x) for x in np.frombuffer(data, dtype=">f4", count=dim, offset=4)]


async def register_vector(conn: Any) -> None:
    """The `vector` codec on one connection (pass as `init` to `cairn_bus.postgres.create_pool`);
    nothing when the extension is not installed yet."""
    schema = await conn.fetchval(
        "SELECT n.nspname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'vector'"
    )
    if schema is not None:
        await conn.set_type_codec(
            "vector", schema=schema, encoder=encode_vector, decoder=decode_vector, format="binary"
        )


async def ensure_vector_extension(dsn: str) -> None:
    """`CREATE EXTENSION IF NOT EXISTS vector` (before a pool registers the type's codec); replicas
    starting together create it one at a time. A database that cannot be reached raises
    `TransientError`."""
    pool = await create_pool(dsn, 1, 1)  # no vector codec yet: the type may not exist
    try:
        await migrate(pool, VECTOR_EXTENSION_LOCK, "CREATE EXTENSION IF NOT EXISTS vector")
    finally:
        await pool.close()

"""The PostgreSQL inbox: a claim is once per (consumer, event), and joins the caller's transaction."""

from __future__ import annotations

import asyncpg
import pytest

from cairn_bus import PostgresInbox

pytestmark = pytest.mark.integration


async def test_claims_once_and_rolls_back_with_the_transaction(fresh_database: str) -> None:
    pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
    try:
        inbox = PostgresInbox(pool)
        await inbox.migrate()
        assert await inbox.claim("svc", "e1") is True
        assert await inbox.claim("svc", "e1") is False
        assert await inbox.claim("other", "e1") is True

        class HandlerFailedError(Exception):
            pass

        # a handler that fails after claiming must leave the event claimable again
        with pytest.raises(HandlerFailedError):  # noqa: PT012 - the claim and the failure share one transaction
            async with pool.acquire() as conn, conn.transaction():
                assert await inbox.claim("svc", "e2", conn) is True
                raise HandlerFailedError
        async with pool.acquire() as conn, conn.transaction():
            assert await inbox.claim("svc", "e2", conn) is True
        assert await inbox.claim("svc", "e2") is False
        assert await pool.fetchval("SELECT count(*) FROM cairn_inbox") == 3
    finally:
        await pool.close()

"""An asyncio connection pool on PostgreSQL, for the API's hottest paths (submit and status).

Everything else goes through SQLAlchemy sessions (``db.py``); these two paths run one SQL
statement each on a raw psycopg ``AsyncConnection`` instead, without the thread pool hop of a
sync handler and without the ORM (docs/BENCHMARKS.md has the figures). Only on PostgreSQL: on
SQLite (the embedded default) ``get_pool`` returns None and the callers take the ordinary path.

The same deadlines as ``db.py``: connecting, waiting for a pooled connection and every round
trip give up after a few seconds with a ``psycopg.OperationalError`` (the API answers 503), so a
database that is frozen or partitioned never holds a request for longer.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from vocalborn.config import get_settings

_pool: Any = None
_pool_key: tuple[int, int] | None = None


def _connection_class() -> Any:
    import psycopg
    from psycopg import errors

    class DeadlineAsyncConnection(psycopg.AsyncConnection[Any]):
        io_timeout: float | None = None

        async def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            limit = timeout if timeout is not None else self.io_timeout
            try:
                return await super().wait(gen, interval=interval, timeout=limit)
            except errors._WaitTimeout:
                self.pgconn.finish()  # an unknown state: never reuse it
                raise psycopg.OperationalError(f"the database did not answer within {limit:g} s") from None

    return DeadlineAsyncConnection


async def get_pool() -> Any:
    """The process's pool (opened on first use, in the running event loop), or None when the
    database is not PostgreSQL."""
    global _pool, _pool_key
    settings = get_settings()
    url = settings.effective_database_url
    if not url.startswith("postgresql"):
        return None
    key = (os.getpid(), id(asyncio.get_running_loop()))
    if _pool is not None and _pool_key == key:
        return _pool
    from psycopg_pool import AsyncConnectionPool

    io_timeout = settings.database_statement_timeout + 0.5
    statement_ms = int(settings.database_statement_timeout * 1000)

    async def configure(conn: Any) -> None:
        conn.io_timeout = io_timeout
        await conn.set_autocommit(True)  # each fast path is one statement: its own transaction

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    pool = AsyncConnectionPool(
        conninfo,
        connection_class=_connection_class(),
        min_size=1,
        max_size=settings.database_pool_size,
        timeout=settings.database_pool_timeout,
        kwargs={
            "connect_timeout": settings.database_connect_timeout,
            "options": f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
        },
        configure=configure,
        open=False,
        name="vocalborn-fast",
    )
    await pool.open(wait=False)
    _pool, _pool_key = pool, key
    return pool


async def close_pool() -> None:
    """Close the pool if it belongs to this process and this event loop; a pool of another loop
    (a test client's, long gone) is only forgotten: its loop can no longer run its close."""
    global _pool, _pool_key
    try:
        here = (os.getpid(), id(asyncio.get_running_loop()))
    except RuntimeError:
        here = None
    if _pool is not None and _pool_key == here:
        await _pool.close(timeout=2)
    _pool, _pool_key = None, None

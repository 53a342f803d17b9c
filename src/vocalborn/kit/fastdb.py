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
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from vocalborn.config import get_settings
from vocalborn.kit.singletons import PerLoop

T = TypeVar("T")

_pools: PerLoop[Pool] = PerLoop()  # by generic plans, per process and event loop
GENERIC_POOL_SIZE = 2  # the batch submit's pool: a connection per batch in flight (submit_batch.IN_FLIGHT)


class DatabaseDeadline(psycopg.OperationalError):
    """The database did not answer within the deadline (frozen, partitioned): never retried."""


def _connection_class() -> Any:
    from psycopg import errors

    class DeadlineAsyncConnection(psycopg.AsyncConnection[Any]):
        io_timeout: float | None = None

        async def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            limit = timeout if timeout is not None else self.io_timeout
            try:
                return await super().wait(gen, interval=interval, timeout=limit)
            except errors._WaitTimeout:
                self.pgconn.finish()  # an unknown state: never reuse it
                raise DatabaseDeadline(f"the database did not answer within {limit:g} s") from None

    return DeadlineAsyncConnection


class PoolTimeout(psycopg.OperationalError):
    """No connection came free within DATABASE_POOL_TIMEOUT seconds."""


class Pool:
    """Connections made on demand (like SQLAlchemy's pool: no background reconnecting, so a
    database that comes back is used by the very next request), at most ``size`` at once, idle
    ones kept for reuse. Bound to the event loop it was made in."""

    def __init__(self, conninfo: str, kwargs: dict[str, Any], size: int, timeout: float, io_timeout: float) -> None:
        self.conninfo, self.kwargs, self.timeout, self.io_timeout = conninfo, kwargs, timeout, io_timeout
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Any] = []
        self._class = _connection_class()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        try:
            await asyncio.wait_for(self._slots.acquire(), self.timeout)
        except TimeoutError:
            raise PoolTimeout(f"no database connection came free within {self.timeout:g} s") from None
        conn = None
        try:
            conn = self._idle.pop() if self._idle else await self._connect()
            yield conn
        finally:
            if conn is not None:
                if _reusable(conn):
                    self._idle.append(conn)
                else:
                    await _close(conn)
            self._slots.release()

    async def _connect(self) -> Any:
        conn = await self._class.connect(self.conninfo, autocommit=True, **self.kwargs)
        conn.io_timeout = self.io_timeout
        return conn

    async def check(self) -> None:
        """Drop every idle connection (after one was found dead: a restart kills them all)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await _close(conn)

    async def close(self) -> None:
        await self.check()


def _reusable(conn: Any) -> bool:
    from psycopg import pq

    return not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE


async def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):
        await conn.close()


async def get_pool(*, generic_plans: bool = False) -> Pool | None:
    """The process's pool (made on first use, in the running event loop), or None when the
    database is not PostgreSQL.

    ``generic_plans``: a second, small pool (``GENERIC_POOL_SIZE``) whose sessions always use a prepared statement's
    generic plan (``plan_cache_mode``), for the batch submit: PostgreSQL otherwise plans it
    again for most batches (its custom plans look cheaper), ~1.3 ms each, more than the
    statement itself takes for a small batch. The other statements keep the default: a status
    read or a queue count is better planned with its values (``status = ANY(...)``)."""
    settings = get_settings()
    url = settings.effective_database_url
    if not url.startswith("postgresql"):
        return None

    def make() -> Pool:
        statement_ms = int(settings.database_statement_timeout * 1000)
        options = f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}"
        if generic_plans:
            options += " -c plan_cache_mode=force_generic_plan"
        return Pool(
            url.replace("postgresql+psycopg://", "postgresql://", 1),
            {"connect_timeout": settings.database_connect_timeout, "options": options},
            size=GENERIC_POOL_SIZE if generic_plans else settings.database_pool_size,
            timeout=settings.database_pool_timeout,
            io_timeout=settings.database_statement_timeout + 0.5,
        )

    return _pools.get(generic_plans, make)


async def on_connection(work: Callable[[Any], Awaitable[T]], *, generic_plans: bool = False) -> T:
    """``work(conn)`` on a pooled connection.

    A pooled connection the server has closed meanwhile (a restart, a failover) fails at once;
    the pool then drops its idle connections and ``work`` runs once more on a new one, so a
    database that came back answers the first request after it. A deadline (a frozen database)
    and a pool timeout (none came free) are not retried: each took its seconds."""
    pool = await get_pool(generic_plans=generic_plans)
    assert pool is not None, "the asyncio pool needs PostgreSQL"
    for attempt in (1, 2):
        try:
            async with pool.connection() as conn:
                return await work(conn)
        except (DatabaseDeadline, PoolTimeout):
            raise
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if attempt == 2:
                raise
            await pool.check()
    raise AssertionError("unreachable: the second attempt returns or raises")


async def fetch_all(sql: str, params: dict[str, Any]) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Run one statement on a pooled connection (``on_connection``): (its rows, the column names)."""

    async def run(conn: Any) -> tuple[list[tuple[Any, ...]], list[str]]:
        cur = await conn.execute(sql, params, prepare=True)
        return await cur.fetchall(), [d.name for d in cur.description or ()]

    return await on_connection(run)


async def fetch_one(sql: str, params: dict[str, Any]) -> tuple[tuple[Any, ...] | None, list[str]]:
    """``fetch_all`` for a statement of one row: (the row or None, the column names)."""
    rows, names = await fetch_all(sql, params)
    return (rows[0] if rows else None), names


async def close_pool() -> None:
    """Close the pools that belong to this process and this event loop; a pool of another loop
    (a test client's, long gone) is only forgotten: its loop can no longer run its close."""
    for pool in _pools.take_all():
        await pool.close()

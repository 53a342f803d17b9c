"""Group commit for the fast submit: the submits that arrive while one batch is being written
are written together, in one transaction on one connection, and their messages published
together, in one round trip.

Each submit keeps its own statement (``fastpath._SUBMIT``, unchanged): the statements of a batch
are sent at once (psycopg's pipeline mode, ``executemany``) and run one after the other inside
one transaction, so each sees the ones before it (a second submit of the same record finds the
first one's task; a learner's active-task limit counts the batch's own inserts). The batch
commits once, then its messages are published, then every submit of the batch is answered:
the dual write is the same as one submit's (committed, then published; a failed publish stays
pending and Beat's republisher sends it).

Nothing waits to fill a batch: a submit arriving at an idle process is written at once (a
batch of one). Under load the batches grow by themselves while the previous one is in flight.
The next batch's statements are written while the previous batch's messages are published, and
publishes keep their order (the queue stays FIFO).

Errors: a frozen or unreachable database (a deadline, no connection free) fails the batch and
every submit queued behind it with the same 503, at once, instead of each waiting its own
deadline. Any other database error rolls the batch back and sends each of its submits down the
ordinary path, which decides it alone and gives the usual answer or error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from fastapi.concurrency import run_in_threadpool

from vocalborn.fastdb import DatabaseDeadline, PoolTimeout, get_pool
from vocalborn.tasks import publisher

log = logging.getLogger(__name__)

MAX_BATCH = 64


@dataclass(eq=False)
class _Submit:
    args: dict[str, Any]
    outgoing: publisher.Outgoing
    future: asyncio.Future[tuple[Any, ...] | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Batcher:
    """One per event loop (``batcher()``)."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self._queue: list[_Submit] = []
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._publishing: asyncio.Task[None] | None = None
        self.batches = 0  # written, for tests and the log
        self.largest = 0

    async def submit(self, args: dict[str, Any], outgoing: publisher.Outgoing) -> tuple[Any, ...] | None:
        """The statement's row for this submit once committed and published, or None when the
        ordinary path must decide."""
        item = _Submit(args, outgoing)
        self._queue.append(item)
        self._wake.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="vocalborn-submit-batcher")
        return await item.future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [s for s in self._queue[:MAX_BATCH] if not s.future.done()]
            del self._queue[:MAX_BATCH]
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[_Submit]) -> None:
        try:
            rows = await _execute(self.sql, [s.args for s in batch])
        except (DatabaseDeadline, PoolTimeout) as exc:
            waiting, self._queue = self._queue, []
            for s in batch + waiting:
                _fail(s, type(exc)(str(exc)))  # one exception object per waiter
            return
        except psycopg.Error as exc:
            log.warning("a batch of %d submits was rolled back (%s: %s); each takes the ordinary path",
                        len(batch), type(exc).__name__, exc)  # fmt: skip
            for s in batch:
                _answer(s, None)
            return
        except Exception as exc:  # a bug: never leave a submit waiting forever
            for s in batch:
                _fail(s, exc)
            return
        self.batches += 1
        self.largest = max(self.largest, len(batch))
        written = [(s, row) for s, row in zip(batch, rows, strict=True)]
        previous = self._publishing
        self._publishing = asyncio.get_running_loop().create_task(_publish_then_answer(written, previous))


async def _execute(sql: str, params: list[dict[str, Any]]) -> list[tuple[Any, ...] | None]:
    """All statements in one transaction, sent at once; the first row of each. A pooled
    connection the server closed meanwhile is replaced once (as ``fastdb.fetch_one``)."""
    pool = await get_pool()
    assert pool is not None, "the fast submit needs PostgreSQL"
    for attempt in (1, 2):
        try:
            async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                await cur.executemany(sql, params, returning=True)
                rows: list[tuple[Any, ...] | None] = []
                while True:
                    rows.append(await cur.fetchone())
                    if not cur.nextset():
                        break
                return rows
        except (DatabaseDeadline, PoolTimeout):
            raise
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if attempt == 2:
                raise
            await pool.check()
    raise AssertionError("unreachable: the second attempt returns or raises")


async def _publish_then_answer(
    written: list[tuple[_Submit, tuple[Any, ...] | None]], previous: asyncio.Task[None] | None
) -> None:
    if previous is not None:
        await asyncio.wait([previous])  # the earlier batch's messages go first
    created = [s.outgoing for s, row in written if row is not None and row[0] == 1]
    try:
        if publisher.supported():
            await publisher.publish(created)
        else:
            from vocalborn.tasks.service import publish_message

            for o in created:
                await run_in_threadpool(publish_message, uuid.UUID(o.task_id), o.celery_task_id, o.request_id)
    finally:
        for s, row in written:
            _answer(s, row)


def _answer(s: _Submit, row: tuple[Any, ...] | None) -> None:
    if not s.future.done():
        s.future.set_result(row)


def _fail(s: _Submit, exc: BaseException) -> None:
    if not s.future.done():
        s.future.set_exception(exc)


_batchers: dict[tuple[int, int], Batcher] = {}


def batcher(sql: str) -> Batcher:
    """This event loop's batcher (made on first use; one of another loop is dropped)."""
    key = (os.getpid(), id(asyncio.get_running_loop()))
    found = _batchers.get(key)
    if found is None:
        _batchers.clear()
        found = _batchers[key] = Batcher(sql)
    return found

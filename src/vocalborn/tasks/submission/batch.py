"""Group commit for the fast submit: the submits that arrive while one batch is being written
are written together, in one transaction on one connection, and their messages published
together, in one round trip.

A batch is one statement (``fastpath.SUBMIT_SQL``): each submit is a row of its array parameters,
and the statement writes, for each row it can decide alone, what one submit writes (a second
submit of the same record in the batch, or one that would take a learner over the active-task
limit counting the batch's earlier submits, is left to the ordinary path). One statement in
place of one per submit (psycopg's pipeline mode before) cut the client's work per submit and
PostgreSQL's (docs/BENCHMARKS.md, "Hot routes and one statement per batch"). The batch
commits once, then its messages are published, then every submit of the batch is answered:
the dual write is the same as one submit's (committed, then published; a failed publish stays
pending and Beat's republisher sends it).

Nothing waits to fill a batch (``vocalborn.kit.coalesce``): a submit arriving at an idle process
is written at once (a batch of one). Under load the batches grow by themselves while the ones
in flight (two at most, so PostgreSQL works on two cores) are written, up to ``MAX_BATCH``.
Messages are published in the order the batches started, so the queue stays FIFO.

Errors: a frozen or unreachable database (a deadline, a lost connection twice, no connection
free: ``psycopg.OperationalError``) fails the batch and
every submit queued behind it with the same 503, at once, instead of each waiting its own
deadline. Any other database error rolls the batch back and sends each of its submits down the
ordinary path, which decides it alone and gives the usual answer or error.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from fastapi.concurrency import run_in_threadpool

from vocalborn.kit.coalesce import Coalescer, per_loop
from vocalborn.kit.fastdb import GENERIC_POOL_SIZE, on_connection
from vocalborn.tasks.service import send_celery_message
from vocalborn.tasks.submission import broker_push

log = logging.getLogger(__name__)

# At most this many submits per batch. Larger batches cost PostgreSQL less per submit, but the
# submits then move in convoys: a batch of 60 out, a batch of 1 beside it, and the event loop
# idle while both are written. Sixteen keeps several groups of requests moving in turn (two
# batches written while the next are read and checked): at 64 connections the process went
# from ~75 % busy to ~90 % and submits per second rose by a fifth (docs/BENCHMARKS.md, "Less CPU
# per submit, and batches of sixteen").
MAX_BATCH = 16
IN_FLIGHT = GENERIC_POOL_SIZE  # batches written at once (a connection each): PostgreSQL runs each on its own core


@dataclass(frozen=True)
class Row:
    """One submit's values in the batch statement."""

    user_id: uuid.UUID
    record_id: uuid.UUID
    task_id: uuid.UUID
    params_json: str
    request_id: str | None
    now: datetime
    reanalyse: bool


@dataclass(frozen=True)
class Submit:
    row: Row
    outgoing: broker_push.Outgoing


@dataclass(frozen=True)
class Written:
    """A submit the batch wrote (and published)."""

    audio_seconds: float | None  # the recording's length, for the ETA


Prepare = Callable[[list[Row]], dict[str, Any]]  # a batch's rows -> the statement's parameters


class _Writer:
    """Runs one batch: its statement (one transaction), then its messages (in the order the
    batches started, so the queue stays FIFO), then the rows back to their submits."""

    def __init__(self, sql: str, prepare: Prepare) -> None:
        self.sql = sql
        self.prepare = prepare
        self._gate: asyncio.Future[None] | None = None  # opens when the last batch has published

    async def __call__(self, batch: list[Submit]) -> list[Written | None]:
        loop = asyncio.get_running_loop()
        previous, mine = self._gate, loop.create_future()
        self._gate = mine
        try:
            try:
                written = await _execute(self.sql, self.prepare([s.row for s in batch]))
            except psycopg.OperationalError:
                raise  # unreachable, frozen, no connection free: a 503 for this batch and the queue
            except psycopg.Error as exc:
                log.warning("a batch of %d submits was rolled back (%s: %s); each takes the ordinary path",
                            len(batch), type(exc).__name__, exc)  # fmt: skip
                return [None] * len(batch)
            if previous is not None:
                await asyncio.wait([previous])  # an earlier batch's messages go first
            await _publish([s.outgoing for s in batch if s.row.task_id in written])
            return [written.get(s.row.task_id) for s in batch]
        finally:
            mine.set_result(None)


def batcher(sql: str, prepare: Prepare) -> Coalescer[Submit, Written | None]:
    """This event loop's batcher of fast submits."""
    return per_loop(
        ("submit", sql, prepare),
        lambda: Coalescer(
            _Writer(sql, prepare), max_batch=MAX_BATCH, in_flight=IN_FLIGHT, fail_all=(psycopg.OperationalError,)
        ),
    )


async def _execute(sql: str, params: dict[str, Any]) -> dict[uuid.UUID, Written]:
    """The batch's statement (``fastdb.on_connection``: a connection the server closed meanwhile
    is replaced once; one statement: one transaction): the submits it wrote, by task id. It
    returns a row per written task: (task id, audio seconds, records updated, events written)."""

    async def run(conn: Any) -> dict[uuid.UUID, Written]:
        cur = await conn.execute(sql, params, prepare=True)
        rows = await cur.fetchall()
        if any(r[2] != len(rows) or r[3] != len(rows) for r in rows):  # committed already: say so, go on
            log.error("a batch wrote %d tasks but %s records and %s events", len(rows), rows[0][2], rows[0][3])
        return {r[0]: Written(r[1]) for r in rows}

    return await on_connection(run, generic_plans=True)


async def _publish(created: list[broker_push.Outgoing]) -> None:
    if broker_push.supported():
        await broker_push.push_messages(created)
        return

    for o in created:  # RabbitMQ: Celery's own publish, one message at a time
        await run_in_threadpool(send_celery_message, uuid.UUID(o.task_id), o.celery_task_id, o.request_id)

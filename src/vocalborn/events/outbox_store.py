"""The relay's database side (``events/relay.py``): the outbox rows it reads, in ``seq`` order,
the waves that keep each learner's order, marking rows sent, pruning old sent rows, and the
advisory lock that keeps one relay active on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from vocalborn.events.catalogue import message
from vocalborn.events.outbox import NOTIFY_CHANNEL
from vocalborn.sqltypes import UTCDateTime, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

log = logging.getLogger("vocalborn.events.relay")


# pg_advisory_lock key of the active relay ('vbrelay' in ASCII).
RELAY_LOCK_KEY = 0x7662_7265_6C61_79


@dataclass(frozen=True)
class Row:
    seq: int
    event_id: str
    event_type: str
    ordering_key: str
    body: bytes  # the message (catalogue.message), as published


# PostgreSQL writes each message itself (the relay only sends the bytes): the same keys and
# values as ``catalogue.message``, the time as ``catalogue.timestamp`` writes it.
# The batch is chosen first (the inner query), so only its rows are written as JSON whatever plan
# the unsent rows get.
_FETCH_PG = """
SELECT seq, event_id::text, event_type, ordering_key::text,
  jsonb_build_object('id', event_id::text, 'type', event_type, 'schema_version', schema_version,
    'occurred_at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'subject', subject)::text
FROM (SELECT * FROM event_outbox WHERE sent_at IS NULL AND seq > :after ORDER BY seq LIMIT :n) o ORDER BY seq
"""
# An erased account's last trace in the database goes as soon as it is published (rights.py).
_FORGET_ERASED = "DELETE FROM event_outbox WHERE event_type = 'account.erased'"
_FETCH = (
    "SELECT seq, event_id, event_type, schema_version, ordering_key, subject, occurred_at"
    " FROM event_outbox WHERE sent_at IS NULL AND seq > :after ORDER BY seq LIMIT :n"
)


def waves(rows: Iterable[Row]) -> list[list[Row]]:
    """Rows (in ``seq`` order) split so that each wave holds at most one row per ordering key and
    every key's rows keep their order across waves: wave n holds each key's n-th row."""
    out: list[list[Row]] = []
    seen: dict[str, int] = {}
    for row in rows:
        n = seen.get(row.ordering_key, 0)
        seen[row.ordering_key] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(row)
    return out


class OutboxStore:
    """The relay's database side: one connection, used from one thread only."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn: Connection | None = None
        self.postgresql = engine.dialect.name == "postgresql"

    def ready(self) -> bool:
        """Connected and (on PostgreSQL) holding the relay lock; False: another relay is active."""
        if self.conn is None:
            self.conn = self.engine.connect()
            if self.postgresql:
                # The relay's reads walk the partial index in seq order and stop at the batch's
                # size. A queue table's statistics are always stale (a backlog comes and goes
                # between two ANALYZEs), and a plan that sorts every unsent row for each batch made
                # a backlog of 50,000 twice as slow: this session never plans that way.
                self.conn.execute(text("SET enable_bitmapscan = off"))
                self.conn.execute(text("SET enable_seqscan = off"))
                got = self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": RELAY_LOCK_KEY}).scalar()
                self.conn.commit()
                if not got:
                    self.close()
                    return False
        return True

    def fetch(self, limit: int, after: int = 0) -> list[Row]:
        """The first ``limit`` unsent rows (after ``seq`` ``after``), in order."""
        assert self.conn is not None
        with self.conn.begin():
            if self.postgresql:
                found = self.conn.execute(text(_FETCH_PG), {"n": limit, "after": after}).all()
                return [Row(int(r[0]), r[1], r[2], r[3], r[4].encode()) for r in found]
            found = self.conn.execute(text(_FETCH), {"n": limit, "after": after}).all()
        return [_row(*r) for r in found]

    def mark(self, seqs: list[int]) -> None:
        """Mark rows sent. Not waiting for the WAL flush (PostgreSQL): a mark lost in a database
        crash only means the rows go out again, and JetStream drops the copies (Nats-Msg-Id)."""
        assert self.conn is not None
        if not seqs:
            return
        now = _bind_time(self.postgresql, utcnow())
        with self.conn.begin():
            if self.postgresql:
                self.conn.execute(text("SET LOCAL synchronous_commit = off"))
                self.conn.execute(text(_FORGET_ERASED + " AND seq = ANY(:seqs)"), {"seqs": seqs})
                self.conn.execute(
                    text("UPDATE event_outbox SET sent_at = :now WHERE seq = ANY(:seqs)"), {"now": now, "seqs": seqs}
                )
                return
            for start in range(0, len(seqs), 500):
                marks = ", ".join(str(int(s)) for s in seqs[start : start + 500])  # integers from our own read
                self.conn.execute(text(f"{_FORGET_ERASED} AND seq IN ({marks})"))  # noqa: S608
                self.conn.execute(text(f"UPDATE event_outbox SET sent_at = :now WHERE seq IN ({marks})"), {"now": now})  # noqa: S608

    def prune(self, older_than: datetime, limit: int = 5000) -> int:
        """Delete sent rows older than ``older_than`` (a bounded batch); how many went."""
        assert self.conn is not None
        with self.conn.begin():
            done = self.conn.execute(  # the oldest rows first: a walk of the primary key from its start
                text(
                    "DELETE FROM event_outbox WHERE seq IN (SELECT seq FROM event_outbox"
                    " WHERE sent_at IS NOT NULL AND sent_at < :t ORDER BY seq LIMIT :n)"
                ),
                {"t": _bind_time(self.postgresql, older_than), "n": limit},
            )
        return int(done.rowcount or 0)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.invalidate()  # a broken connection is dropped, a lock with it
                self.conn.close()
            except Exception:  # closing a connection the server ended may fail too
                log.debug("closing the relay's connection failed", exc_info=True)
        self.conn = None


class OutboxListener:
    """``LISTEN vocalborn_outbox`` on a connection of its own (PostgreSQL only): sets ``wake`` at
    every notification (events/outbox.py sends one with each transaction that adds rows), and
    once when it starts listening (rows committed while nobody listened). The relay keeps polling
    besides: a listener that lost its connection only makes the relay as slow as its poll until
    the next :meth:`ensure` starts it again."""

    RETRY_SECONDS = 1.0

    def __init__(self, engine: Engine, wake: asyncio.Event) -> None:
        self.enabled = engine.dialect.name == "postgresql"
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.wake = wake
        self.task: asyncio.Task[None] | None = None
        self._next_try = 0.0

    @property
    def listening(self) -> bool:
        return self.task is not None and not self.task.done()

    def ensure(self) -> None:
        """Start listening (again) unless it is running, or failed less than a second ago."""
        loop = asyncio.get_running_loop()
        if not self.enabled or self.listening or loop.time() < self._next_try:
            return
        self._next_try = loop.time() + self.RETRY_SECONDS
        self.task = loop.create_task(self._listen())

    async def _listen(self) -> None:
        import psycopg

        try:
            conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True, connect_timeout=5)
        except Exception as exc:  # the database away: the relay polls meanwhile
            log.debug("relay: cannot LISTEN (%s)", exc)
            return
        try:
            await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.wake.set()
            async for _ in conn.notifies():
                self.wake.set()
        except Exception as exc:  # the connection ended
            log.debug("relay: the LISTEN connection ended (%s)", exc)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        self.task = None


def _bind_time(postgresql: bool, moment: datetime) -> Any:
    """Raw SQL bypasses the column type: SQLite stores the naive UTC string the ORM writes."""
    return moment if postgresql else moment.replace(tzinfo=None).isoformat(sep=" ")


def _row(seq: int, event_id: Any, event_type: str, version: int, key: Any, subject: Any, occurred_at: Any) -> Row:

    if isinstance(subject, str):  # SQLite's JSON text through raw SQL
        subject = json.loads(subject)
    if isinstance(occurred_at, str):
        occurred_at = datetime.fromisoformat(occurred_at)
    occurred_at = UTCDateTime().process_result_value(occurred_at, None)  # type: ignore[arg-type]  # the dialect is unused
    event = str(uuid.UUID(str(event_id)))
    body = json.dumps(message(event, event_type, int(version), occurred_at, subject), separators=(",", ":"))
    return Row(int(seq), event, event_type, str(uuid.UUID(str(key))), body.encode())

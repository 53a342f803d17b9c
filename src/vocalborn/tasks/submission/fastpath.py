"""Submit and status in one SQL statement each, for the common case, on PostgreSQL.

These are the two requests every learner's client makes (one submit, then a status poll every
second or two), so they skip the ORM and the thread pool: one round trip on the asyncio pool of
``fastdb``. Each answers only the case it can decide alone, and returns None otherwise; the
caller then takes the ordinary path in ``service``, which has every rule and every error
message. So the rules live once, and the fast path is an optimisation that can never answer
differently:

* submit, fast: the token names a checked session, the request sends no Idempotency-Key, and
  every rule of ``rules.RULES`` lets the submit through (one table: each rule's Python check
  beside its SQL predicate, the fast statement built from the latter). Then the task, its ``submitted`` event and the
  record's status are written exactly as ``ordinary.submit_analysis`` writes them, by one
  statement for all the submits of the moment (``submit_batch``; one transaction); the partial
  unique index still lets only one active task per record in (``ON CONFLICT DO NOTHING``: a lost
  race falls back and returns the winner).
* status, fast: the token's user exists and owns the task (the learner polling their own
  analysis). Therapists and admins take the ordinary path (access log, worker names).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from vocalborn.config import get_settings
from vocalborn.events import outbox
from vocalborn.kit.coalesce import Coalescer, per_loop
from vocalborn.kit.fastdb import fetch_all, fetch_one, get_pool
from vocalborn.kit.refreshing import Refreshing
from vocalborn.practice.models import RecordStatus
from vocalborn.sqltypes import utcnow
from vocalborn.tasks import status_cache
from vocalborn.tasks.states import ACTIVE_STATUSES, EventType, TaskStatus
from vocalborn.tasks.submission import batch as submit_batch
from vocalborn.tasks.submission import broker_push, rules

log = logging.getLogger(__name__)

_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_WAITING = [TaskStatus.PENDING.value, TaskStatus.RETRY.value]


# One statement for a whole batch of submits (``submit_batch``): each submit is one row of the
# arrays, numbered by ``ord``. It writes what one submit of ``ordinary.submit_analysis`` writes,
# for each row it can decide alone, and returns a row for each task it wrote (the others are left
# to the ordinary path). A row is written when every rule of ``rules.RULES`` lets it through (the
# ``ok`` rows are built from their SQL halves). The existing-task rule is checked against the
# tasks before the statement: two rows of one record in one batch both pass it, and the partial
# unique index (one active task per record) lets only the first in (``ON CONFLICT DO NOTHING``);
# the second is left to the ordinary path, which returns the first.
# Every lookup is a subquery on a key of its own (an index scan whatever the batch's size), so
# the generic plan (the submit pool's sessions use it: ``fastdb.get_pool``) suits every batch:
# a join would let a generic plan, which cannot know the batch's size, pick a hash join over a
# scan of the whole table. The arrays go in binary (``%b``): psycopg writes a text array one
# element at a time through a regular expression, ~4 times the CPU (docs/BENCHMARKS.md).
def submit_sql(table: tuple[rules.Rule, ...] = rules.RULES) -> str:
    """The batch statement, its ``ok`` rows being those every rule of ``table`` lets through."""
    return _SUBMIT_TEMPLATE.replace("{rules}", rules.sql_predicate(table))


_SUBMIT_TEMPLATE = """
WITH i AS (
  SELECT * FROM unnest(%(ord)b::int[], %(uid)b::uuid[], %(rid)b::uuid[], %(tid)b::uuid[], %(params)b::text[],
    %(request_id)b::text[], %(now)b::timestamptz[], %(reanalyse)b::bool[], %(nth)b::int[])
    AS i(ord, uid, rid, tid, params, request_id, now, reanalyse, nth)
),
ok AS (
  SELECT i.* FROM i
  WHERE {rules}
),
ins AS (
  INSERT INTO ai_analysis_tasks (task_id, celery_task_id, practice_record_id, user_id, status, task_type,
    task_params, progress, retry_count, max_retries, attempt, deliveries, publish_count, request_id,
    created_at, updated_at)
  SELECT tid, tid::text, rid, uid, %(pending)s, 'audio_analysis',
    params::jsonb, 0, 0, %(max_retries)s, 0, 0, 1, request_id, now, now
  FROM ok ORDER BY ord
  ON CONFLICT DO NOTHING
  RETURNING task_id, practice_record_id, user_id, created_at
),
upd AS (
  UPDATE practice_records p
  SET ai_task_id = (SELECT task_id FROM ins WHERE ins.practice_record_id = p.practice_record_id),
    record_status = %(queued)s,
    updated_at = (SELECT created_at FROM ins WHERE ins.practice_record_id = p.practice_record_id)
  WHERE p.practice_record_id = ANY(ARRAY(SELECT practice_record_id FROM ins))
  RETURNING 1
),
ev AS (
  INSERT INTO ai_analysis_task_events (task_id, event_type, status, progress, attempt, created_at)
  SELECT task_id, %(submitted)s, %(pending)s, 0, 0, created_at FROM ins
  RETURNING 1
),
obx AS (  -- the analysis.submitted integration event, in the same transaction (events/outbox.py)
  INSERT INTO event_outbox {outbox}
  FROM ins ORDER BY ins.created_at
  RETURNING 1
)
SELECT ins.task_id,
  (SELECT r.audio_duration_seconds FROM practice_records r WHERE r.practice_record_id = ins.practice_record_id),
  (SELECT count(*) FROM upd), (SELECT count(*) FROM ev)
FROM ins
""".replace("{outbox}", outbox.ANALYSIS_ROW_SQL.format(cte="ins", moment="ins.created_at"))
SUBMIT_SQL = submit_sql()

_STATUS = """
SELECT t.task_id, t.user_id, t.practice_record_id, t.status, t.progress, t.current_step, t.started_at,
  t.completed_at, t.created_at, t.attempt, t.retry_count, t.max_retries, t.error_message, r.audio_duration_seconds,
  CASE WHEN t.status = ANY(%(waiting)s) THEN (
    SELECT count(*) FROM ai_analysis_tasks a WHERE a.status = ANY(%(waiting)s) AND a.created_at < t.created_at
  ) END AS ahead
FROM ai_analysis_tasks t JOIN users u ON u.user_id = t.user_id
JOIN practice_records r ON r.practice_record_id = t.practice_record_id
WHERE t.task_id = ANY(%(tids)s)
"""


@dataclass
class Submitted:
    task_id: uuid.UUID
    record_id: uuid.UUID
    audio_seconds: float | None  # the recording's length, for the ETA


async def submit(
    user_id: uuid.UUID,
    record_id: uuid.UUID,
    params: dict[str, Any],
    *,
    reanalyse: bool,
    request_id: str | None,
    sql: str = SUBMIT_SQL,
) -> Submitted | None:
    """Write a new task in one statement and publish its message (both batched with the other
    submits of the moment: ``submit_batch``), or None: the ordinary path must decide."""
    pool = await get_pool()
    if pool is None:
        return None
    task_id = uuid.uuid4()
    row = await submit_batch.batcher(sql, _batch_params).submit(
        submit_batch.Submit(
            submit_batch.Row(user_id, record_id, task_id, json.dumps(params), request_id, utcnow(), reanalyse),
            broker_push.Outgoing(str(task_id), str(task_id), request_id),
        )
    )
    if row is None:
        return None
    WAITING.added()
    return Submitted(task_id, record_id, row.audio_seconds)


def _batch_params(rows: list[submit_batch.Row]) -> dict[str, Any]:
    """The parameters of ``SUBMIT_SQL`` for a batch: a column of each per-submit value."""
    settings = get_settings()
    seen: dict[uuid.UUID, int] = {}
    nth = []
    for r in rows:  # how many earlier rows of the batch are the same learner's
        nth.append(seen.get(r.user_id, 0))
        seen[r.user_id] = nth[-1] + 1
    return {
        "ord": list(range(len(rows))),
        "uid": [r.user_id for r in rows],
        "rid": [r.record_id for r in rows],
        "tid": [r.task_id for r in rows],
        "params": [r.params_json for r in rows],
        "request_id": [r.request_id for r in rows],
        "now": [r.now for r in rows],
        "reanalyse": [r.reanalyse for r in rows],
        "nth": nth,
        "active": _ACTIVE,
        "success": TaskStatus.SUCCESS.value,
        "limit": settings.max_active_tasks_per_learner,
        "max_retries": settings.task_max_retries,
        "pending": TaskStatus.PENDING.value,
        "queued": RecordStatus.AI_QUEUED.value,
        "submitted": EventType.SUBMITTED.value,
        **outbox.analysis_args("analysis.submitted"),
    }


async def status(user_id: uuid.UUID, task_id: uuid.UUID) -> dict[str, Any] | None:
    """The owner's view of the task (as ``task_status.status_view`` builds it), or None. Remembered
    until the task's next event (``status_cache``), so polls between two events read no row."""
    pool = await get_pool()
    if pool is None:
        return None
    from vocalborn.tasks.api.ws import get_hub  # reason: upward import (CONTRIBUTING, 3)

    get_hub().start()  # the subscription that keeps the cache true (running already, mostly)
    cached, due = status_cache.CACHE.lookup(task_id, user_id)
    if cached is not None:
        if due:
            _refresh_later(task_id, user_id)
        return cached
    return await _read_and_remember(task_id, user_id)


async def _read_and_remember(task_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any] | None:
    began = status_cache.CACHE.begin()
    found = await _status_reads().submit(task_id)
    if found is None or found["user_id"] != user_id:
        return None
    status_cache.CACHE.put(task_id, user_id, found, began, waiting=found["status"] in _WAITING)
    return found


_refreshing: set[asyncio.Task[Any]] = set()  # held until done (the loop keeps only weak references)


def _refresh_later(task_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Read a remembered row again in the background (with the other reads of the moment), so
    the task's next poll is answered from memory too; this poll is answered from memory, the row
    still younger than ``status_cache.TTL``."""
    task = asyncio.get_running_loop().create_task(_refresh(task_id, user_id))
    _refreshing.add(task)
    task.add_done_callback(_refreshing.discard)


async def _refresh(task_id: uuid.UUID, user_id: uuid.UUID) -> None:
    try:
        if await _read_and_remember(task_id, user_id) is None:  # gone (erased), or not theirs any more
            status_cache.CACHE.drop(task_id, queue_moved=False)
    except psycopg.OperationalError as exc:  # the database is away: the row ages out, a poll then fails itself
        log.debug("could not read the status of %s again: %s", task_id, exc)
    except Exception:  # a bug: say so (each poll then reads the row itself once it ages out)
        log.warning("could not read the status of %s again", task_id, exc_info=True)


def cancel_background() -> None:
    """Stop this event loop's background reads (at shutdown, before the pool closes)."""
    loop = asyncio.get_running_loop()
    for task in list(_refreshing):
        if not task.done() and task.get_loop() is loop:
            task.cancel()
    WAITING.cancel()


async def _read_statuses(task_ids: list[uuid.UUID]) -> list[dict[str, Any] | None]:
    """The rows of ``task_ids`` in one statement (``task_id = ANY(...)``), in their order."""
    rows, names = await fetch_all(_STATUS, {"tids": list(dict.fromkeys(task_ids)), "waiting": _WAITING})
    found = {row[0]: dict(zip(names, row, strict=True)) for row in rows}
    return [found.get(t) for t in task_ids]


def _status_reads() -> Coalescer[uuid.UUID, dict[str, Any] | None]:
    """The polls asked for while a read is in flight go together in the next statement."""
    return per_loop(
        "status",
        lambda: Coalescer(_read_statuses, max_batch=256, in_flight=2, fail_all=(psycopg.OperationalError,)),
    )


class WaitingCount(Refreshing[int]):
    """How many analyses wait in the queue, for a new task's queue position: counted at most
    every ``ttl`` seconds (a count is as long as the queue), plus this process's submits since.
    An estimate, like the ETA it feeds; a status poll counts the tasks ahead exactly. While the
    last count is younger than ``usable`` seconds, a new one is made in the background and the
    submits meanwhile use the last one (with a queue of 100k the count takes tens of
    milliseconds: under load no submit waits for it); an older count (after a quiet spell) is
    not used: the submits wait for a new one, as the first does (kit/refreshing.py)."""

    what = "the waiting tasks' count"

    def __init__(self, ttl: float = 1.0, usable: float = 10.0) -> None:
        super().__init__(ttl, usable)
        self._lock = threading.Lock()
        self._value: int | None = None
        self._at = 0.0

    def added(self) -> None:
        with self._lock:
            if self._value is not None:
                self._value += 1

    def peek(self, max_age: float) -> int | None:
        with self._lock:
            return self._value if time.monotonic() - self._at < max_age else None

    def set(self, value: int) -> None:
        with self._lock:
            self._value, self._at = value, time.monotonic()

    async def read(self) -> int:
        row, _ = await fetch_one(
            "SELECT count(*) FROM ai_analysis_tasks WHERE status = ANY(%(waiting)s)", {"waiting": _WAITING}
        )
        value = int(row[0]) if row else 0
        self.set(value)
        return value

    async def position(self) -> int:
        """The queue position of a task just added (1 = next)."""
        return max(1, await self.get())


WAITING = WaitingCount()

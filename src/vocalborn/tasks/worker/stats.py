"""What an operator reads: task counts, the queue's length, throughput, failure rate and
durations over recent windows (``GET /api/v1/admin/tasks/stats``)."""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from vocalborn.celery_app import celery_app
from vocalborn.config import get_settings
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import ACTIVE_STATUSES, EventType, TaskStatus
from vocalborn.tasks.worker import registry

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
def broker_queue_length(queue: str | None = None) -> int | None:
    """Messages waiting in the analysis queue (Redis LLEN or an AMQP passive declare)."""
    settings = get_settings()
    name = queue or settings.task_queue
    try:
        with celery_app.connection_for_read() as conn:
            channel = conn.default_channel
            if conn.transport.driver_type == "redis":
                return int(channel.client.llen(name))
            _name, count, _consumers = channel.queue_declare(queue=name, passive=True)
            return int(count)
    except Exception as exc:
        log.warning("cannot read the length of queue %s: %s", name, exc)
        return None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return round(ordered[index], 3)


def task_stats(db: Session, windows: tuple[int, ...] = (300, 3600, 86400)) -> dict[str, Any]:
    now = utcnow()
    counts = {s.value: 0 for s in TaskStatus}
    counts.update(status_counts(db) if _postgres(db) else counted_statuses(db))
    try:
        workers = registry.online_workers()
    except Exception as exc:
        log.warning("cannot read the worker registry: %s", exc)
        workers = []
    out: dict[str, Any] = {
        "generated_at": now,
        "counts": counts,
        "active": sum(counts[s.value] for s in ACTIVE_STATUSES),
        "queue": {"name": get_settings().task_queue, "length": broker_queue_length()},
        "workers": {
            "online": len(workers),
            "processes": sum(int(w.get("concurrency", 1)) for w in workers),
            "nodes": sorted(w["hostname"] for w in workers),
        },
        "windows": {},
    }
    finished = finished_in_sql(db, now, windows) if _postgres(db) else finished_in_python(db, now, windows)
    for seconds in windows:
        since = now - timedelta(seconds=seconds)
        done = finished[seconds]
        succeeded, failed = done["succeeded"], done["failed"]
        retried = db.exec(
            select(func.count())
            .select_from(AIAnalysisTaskEvent)
            .where(AIAnalysisTaskEvent.event_type == EventType.RETRY.value)
            .where(col(AIAnalysisTaskEvent.created_at) >= since)
        ).one()
        out["windows"][f"{seconds}s"] = {
            "succeeded": succeeded,
            "failed": failed,
            "cancelled": done["cancelled"],
            "retried": int(retried),
            "throughput_per_minute": round(succeeded / (seconds / 60), 3),
            # None, not 0, when nothing finished: "no data" must not read as "all good".
            "failure_rate": round(failed / (failed + succeeded), 4) if failed + succeeded else None,
            "processing_seconds": done["processing_seconds"],
            "queue_wait_seconds": done["queue_wait_seconds"],
        }
    return out


def _postgres(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def counted_statuses(db: Session) -> dict[str, int]:
    """Tasks by status, counted in the table (SQLite; on PostgreSQL a scan of a million rows)."""
    rows = db.exec(select(AIAnalysisTask.status, func.count()).group_by(AIAnalysisTask.status))
    return {status_value: int(n) for status_value, n in rows}


# One folder at a time (two deleting the same rows in different orders could deadlock); the
# others just read the sums, which are exact whether or not the rows are folded.
_FOLD = """
WITH gone AS (DELETE FROM ai_analysis_task_status_counts WHERE pg_try_advisory_xact_lock(:lock) RETURNING status, n)
INSERT INTO ai_analysis_task_status_counts (status, n) SELECT status, sum(n) FROM gone GROUP BY status
HAVING sum(n) <> 0
"""
_FOLD_LOCK = 0x7662_7374_6174  # "vbstat": this advisory lock's number


def status_counts(db: Session, *, fold: bool = True) -> dict[str, int]:
    """Tasks by status, from the deltas the triggers keep (PostgreSQL): exactly
    ``counted_statuses`` in the same snapshot, at the cost of the deltas since the last fold.
    ``fold``: first fold the deltas into one row per status (commits)."""
    if fold:
        db.execute(text(_FOLD), {"lock": _FOLD_LOCK})
        db.commit()
    rows = db.execute(text("SELECT status, sum(n) FROM ai_analysis_task_status_counts GROUP BY status"))
    return {status_value: int(n) for status_value, n in rows if n}


Finished = dict[int, dict[str, Any]]


def finished_in_python(db: Session, now: datetime, windows: tuple[int, ...]) -> Finished:
    """Per window: the tasks finished in it by outcome, and the p50/p95 of their processing time
    (successes) and queue wait (those that started), read row by row (SQLite)."""
    rows = list(
        db.exec(
            select(
                AIAnalysisTask.status,
                AIAnalysisTask.created_at,
                AIAnalysisTask.started_at,
                AIAnalysisTask.completed_at,
            ).where(col(AIAnalysisTask.completed_at) >= now - timedelta(seconds=max(windows, default=0)))
        )
    )
    out: Finished = {}
    for seconds in windows:
        since = now - timedelta(seconds=seconds)
        finished = [r for r in rows if r[3] is not None and r[3] >= since]
        processing = [(r[3] - r[2]).total_seconds() for r in finished if r[0] == TaskStatus.SUCCESS and r[2] and r[3]]
        waits = [(r[2] - r[1]).total_seconds() for r in finished if r[2]]
        out[seconds] = {
            "succeeded": sum(1 for r in finished if r[0] == TaskStatus.SUCCESS),
            "failed": sum(1 for r in finished if r[0] == TaskStatus.FAILURE),
            "cancelled": sum(1 for r in finished if r[0] == TaskStatus.CANCELLED),
            "processing_seconds": {"p50": _percentile(processing, 0.5), "p95": _percentile(processing, 0.95)},
            "queue_wait_seconds": {"p50": _percentile(waits, 0.5), "p95": _percentile(waits, 0.95)},
        }
    return out


def _window_sql(i: int) -> str:
    """One window's aggregates. ``percentile_disc`` is ``_percentile``'s nearest rank (the
    ceil(q·n)-th smallest)."""
    inside = f"completed_at >= :since{i}"
    return (
        f"count(*) FILTER (WHERE {inside} AND status = :success), "
        f"count(*) FILTER (WHERE {inside} AND status = :failure), "
        f"count(*) FILTER (WHERE {inside} AND status = :cancelled), "
        "percentile_disc(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY processing) "
        f"FILTER (WHERE {inside} AND status = :success AND processing IS NOT NULL), "
        "percentile_disc(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY wait) "
        f"FILTER (WHERE {inside} AND wait IS NOT NULL)"
    )


# The durations once per row (OFFSET 0 keeps the subquery from being flattened into every
# aggregate): exact numeric epochs, made floats as Python's total_seconds makes them. Every
# status (the CHECK constraint allows no other), so that the (status, completed_at) index serves.
_FINISHED = """
SELECT status, completed_at, extract(epoch FROM completed_at - started_at)::float8 AS processing,
  extract(epoch FROM started_at - created_at)::float8 AS wait
FROM ai_analysis_tasks WHERE status = ANY(:statuses) AND completed_at >= :since OFFSET 0
"""


def finished_in_sql(db: Session, now: datetime, windows: tuple[int, ...]) -> Finished:
    """``finished_in_python``'s figures, aggregated by PostgreSQL in one statement over the
    largest window (ranges of ix_ai_analysis_tasks_status_completed_at): no rows come to Python."""
    if not windows:
        return {}
    params: dict[str, Any] = {f"since{i}": now - timedelta(seconds=s) for i, s in enumerate(windows)}
    params.update(since=min(params.values()), statuses=[s.value for s in TaskStatus], success=TaskStatus.SUCCESS.value)
    params.update(failure=TaskStatus.FAILURE.value, cancelled=TaskStatus.CANCELLED.value)
    parts = ", ".join(_window_sql(i) for i in range(len(windows)))
    sql = f"SELECT {parts} FROM ({_FINISHED}) finished"
    row = db.execute(text(sql), params).one()
    out: Finished = {}
    for i, seconds in enumerate(windows):
        succeeded, failed, cancelled, processing, waits = row[5 * i : 5 * i + 5]
        out[seconds] = {
            "succeeded": int(succeeded),
            "failed": int(failed),
            "cancelled": int(cancelled),
            "processing_seconds": _quantiles(processing),
            "queue_wait_seconds": _quantiles(waits),
        }
    return out


def _quantiles(values: list[float] | None) -> dict[str, float | None]:
    if values is None:  # nothing in the window
        return {"p50": None, "p95": None}
    return {"p50": round(values[0], 3), "p95": round(values[1], 3)}

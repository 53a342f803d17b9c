"""What an operator reads: task counts, the queue's length, throughput, failure rate and
durations over recent windows (``GET /api/v1/admin/tasks/stats``)."""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from vocalborn.celery_app import celery_app
from vocalborn.config import get_settings
from vocalborn.sqltypes import utcnow
from vocalborn.tasks import registry
from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import ACTIVE_STATUSES, EventType, TaskStatus

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
    for status_value, n in db.exec(select(AIAnalysisTask.status, func.count()).group_by(AIAnalysisTask.status)):
        counts[status_value] = int(n)
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
    for seconds in windows:
        since = now - timedelta(seconds=seconds)
        finished = list(
            db.exec(
                select(
                    AIAnalysisTask.status,
                    AIAnalysisTask.created_at,
                    AIAnalysisTask.started_at,
                    AIAnalysisTask.completed_at,
                )
                .where(col(AIAnalysisTask.completed_at) >= since)
                .limit(20000)
            )
        )
        succeeded = sum(1 for r in finished if r[0] == TaskStatus.SUCCESS)
        failed = sum(1 for r in finished if r[0] == TaskStatus.FAILURE)
        cancelled = sum(1 for r in finished if r[0] == TaskStatus.CANCELLED)
        processing = [(r[3] - r[2]).total_seconds() for r in finished if r[0] == TaskStatus.SUCCESS and r[2] and r[3]]
        waits = [(r[2] - r[1]).total_seconds() for r in finished if r[2]]
        retried = db.exec(
            select(func.count())
            .select_from(AIAnalysisTaskEvent)
            .where(AIAnalysisTaskEvent.event_type == EventType.RETRY.value)
            .where(col(AIAnalysisTaskEvent.created_at) >= since)
        ).one()
        out["windows"][f"{seconds}s"] = {
            "succeeded": succeeded,
            "failed": failed,
            "cancelled": cancelled,
            "retried": int(retried),
            "throughput_per_minute": round(succeeded / (seconds / 60), 3),
            # None, not 0, when nothing finished: "no data" must not read as "all good".
            "failure_rate": round(failed / (failed + succeeded), 4) if failed + succeeded else None,
            "processing_seconds": {"p50": _percentile(processing, 0.5), "p95": _percentile(processing, 0.95)},
            "queue_wait_seconds": {"p50": _percentile(waits, 0.5), "p95": _percentile(waits, 0.95)},
        }
    return out

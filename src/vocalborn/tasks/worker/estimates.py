"""Estimates for a waiting learner: the queue position and when the analysis should be done,
from real recent durations and the slots of the workers online."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from vocalborn.practice.models import PracticeRecord
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.states import ACTIVE_STATUSES, TERMINAL_STATUSES, TaskStatus
from vocalborn.tasks.worker import registry

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
@dataclass
class Capacity:
    mean_seconds: float | None  # mean processing time of recent successes
    slots: int  # worker processes online
    at: float


_capacity_cache: dict[str, Capacity] = {}
_capacity_lock = threading.Lock()
CAPACITY_TTL = 5.0


def capacity(db: Session) -> Capacity:
    with _capacity_lock:
        cached = _capacity_cache.get("c")
        if cached and time.monotonic() - cached.at < CAPACITY_TTL:
            return cached
    recent = (
        select(AIAnalysisResult.processing_time_seconds)
        .order_by(col(AIAnalysisResult.created_at).desc())
        .limit(50)
        .subquery()
    )
    mean = db.exec(select(func.avg(recent.c.processing_time_seconds))).one()
    try:
        slots = sum(int(w.get("concurrency", 1)) for w in registry.online_workers())
    except Exception as exc:  # Redis down: estimates degrade, submits do not fail
        log.warning("cannot read the worker registry: %s", exc)
        slots = 0
    cap = Capacity(mean_seconds=float(mean) if mean is not None else None, slots=slots, at=time.monotonic())
    with _capacity_lock:
        _capacity_cache["c"] = cap
    return cap


def queue_position(db: Session, task: AIAnalysisTask) -> int | None:
    """1 = next to run. None once the task is running or finished."""
    if task.status not in (TaskStatus.PENDING, TaskStatus.RETRY):
        return None
    ahead = db.exec(
        select(func.count())
        .select_from(AIAnalysisTask)
        .where(col(AIAnalysisTask.status).in_([TaskStatus.PENDING.value, TaskStatus.RETRY.value]))
        .where(col(AIAnalysisTask.created_at) < task.created_at)
    ).one()
    return int(ahead) + 1


def _expected_duration(cap: Capacity, audio_seconds: float | None) -> float:
    if cap.mean_seconds is not None:
        return cap.mean_seconds
    # No history yet: scale by the recording's length (an analysis reads both recordings).
    return max(1.0, 2.0 * (audio_seconds or 5.0) * 0.05)


def estimate_completion(db: Session, task: AIAnalysisTask, position: int | None) -> datetime | None:
    cap = capacity(db)
    audio_seconds = None
    if task.status in ACTIVE_STATUSES and cap.slots:  # only then does the recording's length count
        record = db.get(PracticeRecord, task.practice_record_id)
        audio_seconds = record.audio_duration_seconds if record else None
    return estimate_from(cap, task.status, position, task.started_at, task.completed_at, audio_seconds)


def estimate_from(
    cap: Capacity,
    status: str,
    position: int | None,
    started_at: datetime | None,
    completed_at: datetime | None,
    audio_seconds: float | None,
) -> datetime | None:
    """When the task should be done, from the workers' capacity and its place in the queue."""
    if status in TERMINAL_STATUSES:
        return completed_at
    if cap.slots == 0:
        return None  # no worker online: nobody can promise a time
    each = _expected_duration(cap, audio_seconds)
    now = utcnow()
    if status == TaskStatus.PROCESSING:
        elapsed = (now - started_at).total_seconds() if started_at else 0.0
        return now + timedelta(seconds=max(0.0, each - elapsed))
    waves = math.ceil((position or 1) / cap.slots)  # tasks run `slots` at a time, FIFO
    return now + timedelta(seconds=waves * each)


def cached_capacity(max_age: float = CAPACITY_TTL) -> Capacity | None:
    """The capacity if read within ``max_age`` seconds, without touching the database."""
    with _capacity_lock:
        cached = _capacity_cache.get("c")
    return cached if cached and time.monotonic() - cached.at < max_age else None


def remaining_time(status: str, eta: datetime | None) -> str | None:
    """``estimated_remaining_time`` of a status answer: until the ETA while the task is active,
    PT0S once it succeeded, None otherwise (or when nobody can promise a time)."""
    if status in ACTIVE_STATUSES:
        return iso_duration((eta - utcnow()).total_seconds()) if eta is not None else None
    return "PT0S" if status == TaskStatus.SUCCESS else None


def iso_duration(seconds: float) -> str:
    return f"PT{max(0, round(seconds))}S"

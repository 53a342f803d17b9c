"""Beat's retention jobs: delete expired tasks (with their events and results) and purge old
recordings' audio. Idempotent and in bounded batches, resting between them (the API shares the
database), so running one twice, late or concurrently does no harm.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.practice.models import PracticeRecord, RecordStatus, Sentence
from vocalborn.sqltypes import utcnow
from vocalborn.storage import get_storage
from vocalborn.tasks import transitions
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import ACTIVE_STATUSES, TERMINAL_STATUSES, TaskStatus
from vocalborn.tasks.worker.stats import status_counts

log = logging.getLogger(__name__)
BATCH = 500  # records per purge round


@dataclass
class CleanupReport:
    tasks_deleted: int = 0
    events_deleted: int = 0
    files_deleted: int = 0


def cleanup_expired_tasks(now: datetime | None = None) -> CleanupReport:
    """Retention: failed/cancelled tasks after RETENTION_FAILED_DAYS, event logs of finished tasks
    after RETENTION_EVENTS_DAYS, successful analyses only if RETENTION_SUCCESS_DAYS > 0, and
    recordings no row points to. A record whose latest task ages out goes back to RECORDED."""
    settings = get_settings()
    now = now or utcnow()
    report = CleanupReport()
    with open_session() as db:
        doomed = [TaskStatus.FAILURE.value, TaskStatus.CANCELLED.value]
        report.tasks_deleted += _delete_tasks(db, doomed, now - timedelta(days=settings.retention_failed_days))
        if settings.retention_success_days > 0:
            report.tasks_deleted += _delete_tasks(
                db, [TaskStatus.SUCCESS.value], now - timedelta(days=settings.retention_success_days)
            )
        report.events_deleted += _delete_old_events(db, now - timedelta(days=settings.retention_events_days))
        report.files_deleted += _delete_orphan_files(db, now - timedelta(days=1))
        if db.get_bind().dialect.name == "postgresql":
            status_counts(db)  # folds the deltas the deletes (and the day's work) appended
    log.info("cleanup: %s", asdict(report))
    return report


# The retention cleanup deletes in small transactions and rests between them (as long as the
# last one took, at most CLEANUP_REST_MAX s), so submits and status reads on the same database
# keep their latency while a backlog of a million rows goes (docs/BENCHMARKS.md).
CLEANUP_BATCH = 200
CLEANUP_REST_MAX = 0.5


def _rest(started: float) -> None:
    time.sleep(min(time.monotonic() - started, CLEANUP_REST_MAX))


def _delete_tasks(db: Session, statuses: list[str], before: datetime) -> int:
    return sum(_delete_status(db, status, before) for status in statuses)


def _delete_status(db: Session, status: str, before: datetime) -> int:
    """Oldest first along ix_ai_analysis_tasks_status_completed_at, from where the last batch
    ended: a range of this status's entries only, never a walk over the rows that stay (most of
    the table) nor over the dead entries of the batches already deleted."""
    total = 0
    after: datetime | None = None
    while True:
        started = time.monotonic()
        query = select(
            col(AIAnalysisTask.task_id), col(AIAnalysisTask.completed_at), col(AIAnalysisTask.practice_record_id)
        ).where(col(AIAnalysisTask.status) == status, col(AIAnalysisTask.completed_at) < before)
        if after is not None:
            query = query.where(col(AIAnalysisTask.completed_at) >= after)
        # Locked until the batch commits: an admin retrying one of them meanwhile waits, then
        # finds it gone (409), instead of having a task deleted under it. One locked by someone
        # else is skipped, for the next run.
        rows = list(
            db.execute(
                query.order_by(col(AIAnalysisTask.completed_at)).limit(CLEANUP_BATCH).with_for_update(skip_locked=True)
            )
        )
        if not rows:
            return total
        ids = [r[0] for r in rows]
        after = rows[-1][1]
        _repoint_records(db, ids, {r[2] for r in rows})
        db.execute(delete(AIAnalysisTaskEvent).where(col(AIAnalysisTaskEvent.task_id).in_(ids)))
        db.execute(delete(AIAnalysisResult).where(col(AIAnalysisResult.task_id).in_(ids)))
        db.execute(delete(AIAnalysisTask).where(col(AIAnalysisTask.task_id).in_(ids)))
        db.commit()
        total += len(ids)
        _rest(started)


def _repoint_records(db: Session, ids: list[Any], record_ids: set[Any]) -> None:
    """A record pointing at a task that ages out points at its latest successful analysis that
    stays, if any; otherwise it is simply "recorded" again and can be resubmitted. A record only
    ever points at one of its own tasks, so the records are looked up by their key (a scan of
    ``ai_task_id`` is what a planner with stale statistics chose, for every batch)."""
    pointing = list(
        db.execute(
            select(PracticeRecord.practice_record_id)  # type: ignore[call-overload]  # sqlmodel types select() of a column loosely
            .where(col(PracticeRecord.practice_record_id).in_(record_ids))
            .where(col(PracticeRecord.ai_task_id).in_(ids))
        ).scalars()
    )
    for record_id in pointing:
        kept = transitions.latest_success(db, record_id, exclude=ids)
        db.execute(
            update(PracticeRecord)
            .where(col(PracticeRecord.practice_record_id) == record_id)
            .values(
                ai_task_id=kept.task_id if kept else None,
                record_status=(RecordStatus.AI_ANALYZED if kept else RecordStatus.RECORDED).value,
                updated_at=utcnow(),
            )
        )


def _delete_old_events(db: Session, before: datetime) -> int:
    terminal = [s.value for s in TERMINAL_STATUSES]
    total = 0
    while True:
        started = time.monotonic()
        ids = list(
            db.scalars(
                select(col(AIAnalysisTaskEvent.event_id))
                .join(AIAnalysisTask, col(AIAnalysisTask.task_id) == col(AIAnalysisTaskEvent.task_id))
                .where(col(AIAnalysisTask.status).in_(terminal))
                .where(col(AIAnalysisTaskEvent.created_at) < before)
                .limit(CLEANUP_BATCH)
            )
        )
        if not ids:
            return total
        db.execute(delete(AIAnalysisTaskEvent).where(col(AIAnalysisTaskEvent.event_id).in_(ids)))
        db.commit()
        total += len(ids)
        _rest(started)


def _delete_orphan_files(db: Session, older_than: datetime) -> int:
    storage = get_storage()
    known = set(db.scalars(select(col(PracticeRecord.audio_key))))
    known |= set(db.scalars(select(col(Sentence.reference_audio_key))))
    cutoff = older_than.timestamp()
    removed = 0
    for kind in ("recordings", "references"):
        for key in storage.iter_keys(kind):
            if key in known:
                continue
            path = storage.path(key)
            try:
                if path.stat().st_mtime < cutoff:  # a young file may belong to an upload in flight
                    storage.delete(key)
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


# --------------------------------------------------------------------------------------------
def purge_old_recordings(now: datetime | None = None) -> int:
    """RETENTION_RECORDINGS_DAYS: delete the raw audio of recordings older than that (never one
    being analysed), keep the record and its scores, mark it ``audio_deleted_at``. 0 = keep."""
    settings = get_settings()
    if settings.retention_recordings_days <= 0:
        return 0
    now = now or utcnow()
    before = now - timedelta(days=settings.retention_recordings_days)
    storage = get_storage()
    active = [s.value for s in ACTIVE_STATUSES]
    total = 0
    with open_session() as db:
        while True:
            busy = select(col(AIAnalysisTask.practice_record_id)).where(col(AIAnalysisTask.status).in_(active))
            records = list(
                db.scalars(
                    select(PracticeRecord)
                    .where(col(PracticeRecord.created_at) < before)
                    .where(col(PracticeRecord.audio_deleted_at).is_(None))
                    .where(col(PracticeRecord.practice_record_id).not_in(busy))
                    .limit(BATCH)
                )
            )
            if not records:
                break
            for record in records:
                storage.delete(record.audio_key)
                record.audio_deleted_at = now
                db.add(record)
            db.commit()
            total += len(records)
    if total:
        log.info(
            "retention: deleted the audio of %d recordings older than %d days",
            total,
            settings.retention_recordings_days,
        )
    return total

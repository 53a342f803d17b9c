"""Beat's jobs: republish stranded tasks, reap stalled ones, clean up, check health.

Each job is idempotent and works in bounded batches, so running it twice, late or concurrently
does no harm.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlmodel import Session, col

from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.practice.models import PracticeRecord, RecordStatus, Sentence
from vocalborn.sqltypes import utcnow
from vocalborn.storage import get_storage
from vocalborn.tasks import service, unit_of_work
from vocalborn.tasks.events import get_redis
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import ACTIVE_STATUSES, TERMINAL_STATUSES, EventType, TaskStatus

log = logging.getLogger(__name__)
BATCH = 500


# --------------------------------------------------------------------------------------------
def _message_task_id(item: bytes | str) -> str | None:
    try:
        message = json.loads(item)
        if isinstance(message, list):  # unacked entries are [message, exchange, routing_key]
            message = message[0]
        task_id = message.get("headers", {}).get("id")
    except (ValueError, AttributeError, IndexError):
        return None
    return str(task_id) if task_id else None


def queued_task_ids() -> tuple[set[str], set[str]] | None:
    """Celery ids in the Redis broker: (waiting in the queue, reserved by a live-looking worker).

    None when we cannot look (another broker). Tells a task that waits in a long queue from one
    whose message was lost. A reservation older than the hard time limit is not trusted: its
    worker was killed, and Redis would only hand the message back after the visibility timeout.
    """
    settings = get_settings()
    broker = settings.effective_broker_url
    if not broker.startswith("redis"):
        return None
    import redis

    client = redis.Redis.from_url(broker, socket_timeout=5)
    try:
        waiting_raw = client.lrange(settings.task_queue, 0, -1)
        fresh_tags: list[Any] = client.zrangebyscore("unacked_index", time.time() - settings.task_time_limit, "+inf")
        reserved_raw = [v for v in client.hmget("unacked", fresh_tags) if v] if fresh_tags else []
    finally:
        client.close()
    waiting = {t for t in map(_message_task_id, waiting_raw) if t}
    reserved = {t for t in map(_message_task_id, reserved_raw) if t}
    return waiting, reserved


def _reservation_holders(task_ids: list[str]) -> tuple[dict[str, str | None], set[str] | None]:
    """Which worker took each message (as the worker noted it), and which workers are online;
    ({}, None) when Redis cannot tell."""
    from vocalborn.tasks.worker import registry

    try:
        return registry.reserved_by(task_ids), {w["hostname"] for w in registry.online_workers()}
    except Exception as exc:
        log.warning("cannot read reservations or the worker registry: %s", exc)
        return {}, None


def republish_stranded_tasks(now: datetime | None = None) -> int:
    """Publish pending tasks whose message never reached the broker (or was lost with it), and
    overdue retries whose delayed message is gone."""
    settings = get_settings()
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.republish_after_seconds)
    with open_session() as db:
        candidates = list(
            db.scalars(
                select(AIAnalysisTask)
                .where(
                    or_(
                        (col(AIAnalysisTask.status) == TaskStatus.PENDING.value)
                        & (col(AIAnalysisTask.updated_at) < cutoff),
                        (col(AIAnalysisTask.status) == TaskStatus.RETRY.value)
                        & (col(AIAnalysisTask.next_attempt_at) < cutoff),
                    )
                )
                .order_by(col(AIAnalysisTask.created_at))
                .limit(BATCH)
            )
        )
        if not candidates:
            return 0
        try:
            in_broker = queued_task_ids()
        except Exception as exc:
            log.warning("cannot inspect the broker (%s); republishing nothing this round", exc)
            return 0
        holders, alive = _reservation_holders([t.celery_task_id for t in candidates])
        count = 0
        for task in candidates:
            if in_broker is not None:
                waiting, reserved = in_broker
                if task.celery_task_id in waiting:
                    continue  # still waiting its turn
                holder = holders.get(task.celery_task_id)
                held_by_the_dead = holder is not None and alive is not None and holder not in alive
                if task.status == TaskStatus.PENDING and task.celery_task_id in reserved and not held_by_the_dead:
                    continue  # a worker holds it and is about to start it
                # A worker that was killed left it reserved: Redis would hand it back only after
                # the visibility timeout. (A duplicate, should that worker live, is harmless: the
                # claim takes a task once.)
                # An overdue retry held by a worker is not trusted: its countdown has long passed.
            event = unit_of_work.transition(
                db,
                task,
                EventType.QUEUED,
                values={"publish_count": task.publish_count + 1},
                message="republished: its message was not in the broker",
            )
            if event is None:
                continue
            if service.publish_task(task):
                count += 1
        if count:
            log.info("republished %d stranded task(s)", count)
        return count


def reap_stalled_tasks(now: datetime | None = None) -> dict[str, int]:
    """Tasks 'processing' whose worker stopped heartbeating: requeue them, or fail them once they
    have used up their deliveries."""
    settings = get_settings()
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.task_lease_seconds)
    requeued = failed = cancelled = 0
    with open_session() as db:
        stalled = list(
            db.scalars(
                select(AIAnalysisTask)
                .where(col(AIAnalysisTask.status) == TaskStatus.PROCESSING.value)
                .where(or_(col(AIAnalysisTask.heartbeat_at) < cutoff, col(AIAnalysisTask.heartbeat_at).is_(None)))
                .where(col(AIAnalysisTask.updated_at) < cutoff)
                .limit(BATCH)
            )
        )
        for task in stalled:
            event_type, values, message = _reaper_verdict(task, now, settings.task_max_deliveries)
            event = unit_of_work.transition(
                db, task, event_type, expect_attempt=task.attempt, values=values, message=message
            )
            if event is None:
                continue
            if event_type == EventType.CANCELLED:
                cancelled += 1
            elif event_type == EventType.FAILED:
                failed += 1
            else:
                requeued += 1
                service.publish_task(task)
    cancelled += _force_overdue_cancels(now)
    if requeued or failed or cancelled:
        log.warning("reaper: %d stalled task(s) requeued, %d failed, %d cancelled", requeued, failed, cancelled)
    return {"requeued": requeued, "failed": failed, "cancelled": cancelled}


def _reaper_verdict(task: AIAnalysisTask, now: datetime, max_deliveries: int) -> tuple[EventType, dict[str, Any], str]:
    """What the reaper does with a task whose worker stopped heartbeating. The messages name no
    worker: learners read them; the event's ``worker_name`` (shown to admins only) says which."""
    if task.cancel_requested_at is not None:  # its worker died before it could stop
        return (
            EventType.CANCELLED,
            {"completed_at": now, "heartbeat_at": None},
            "cancelled; its worker had stopped",
        )
    if task.deliveries >= max_deliveries:
        return (
            EventType.FAILED,
            {
                "completed_at": now,
                "error_message": f"gave up after {task.deliveries} deliveries: the worker stopped every time",
            },
            "its worker stopped; no deliveries left",
        )
    return (
        EventType.QUEUED,
        {"publish_count": task.publish_count + 1, "heartbeat_at": None},
        "its worker stopped heartbeating; requeued",
    )


def _force_overdue_cancels(now: datetime) -> int:
    """A cancel is honoured at the next step boundary. A run stuck inside one step (a hung remote
    call, say) never gets there while its heartbeat keeps the lease: after a grace period the task
    is cancelled here, which fences off every later write of that run, and the run is terminated
    (Celery's revoke with terminate, the documented last resort) to free its pool slot."""
    grace = timedelta(seconds=2 * get_settings().task_lease_seconds)
    done = 0
    with open_session() as db:
        overdue = list(
            db.scalars(
                select(AIAnalysisTask)
                .where(col(AIAnalysisTask.status) == TaskStatus.PROCESSING.value)
                .where(col(AIAnalysisTask.cancel_requested_at) < now - grace)
                .limit(BATCH)
            )
        )
        for task in overdue:
            event = unit_of_work.transition(
                db,
                task,
                EventType.CANCELLED,
                expect_attempt=task.attempt,
                values={"completed_at": now, "heartbeat_at": None},
                message=f"cancelled by force: its worker did not stop within {grace.seconds} s",
            )
            if event is None:
                continue
            done += 1
            try:
                from vocalborn.celery_app import celery_app

                celery_app.control.revoke(task.celery_task_id, terminate=True, signal="SIGTERM")
            except Exception as exc:  # the database already says cancelled; this only frees the slot
                log.warning("could not revoke task %s: %s", task.task_id, exc)
    return done


# --------------------------------------------------------------------------------------------
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
            from vocalborn.tasks.worker.stats import status_counts

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
        kept = service.latest_success(db, record_id, exclude=ids)
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


# --------------------------------------------------------------------------------------------
def health_check() -> dict[str, Any]:
    """The plan's health_check, made to check something: the database and Redis answer."""
    started = time.perf_counter()
    with open_session() as db:
        db.execute(text("SELECT 1"))
        active = db.scalars(
            select(func.count())
            .select_from(AIAnalysisTask)
            .where(col(AIAnalysisTask.status).in_(["pending", "processing", "retry"]))
        ).one()
    get_redis().ping()
    result = {
        "status": "healthy",
        "active_tasks": int(active),
        "checked_in_ms": round((time.perf_counter() - started) * 1000, 1),
        "timestamp": utcnow().isoformat(),
    }
    get_redis().set(f"{get_settings().redis_key_prefix}health:last", json.dumps(result), ex=3600)
    return result

"""Task lifecycle in the database: submit, every state change, queries and estimates.

Every change of a task's state goes through ``apply_transition``: a conditional UPDATE that only
succeeds from the state (and, for worker writes, the attempt) the caller saw, the record's status
kept in step, and one row appended to the event log, all in the caller's transaction.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vocalborn.analysis.types import TOTAL_STEPS
from vocalborn.auth.models import Role, User
from vocalborn.celery_app import ANALYZE_TASK, celery_app
from vocalborn.config import get_settings
from vocalborn.errors import Conflict, Forbidden, NotFound, NotReady
from vocalborn.events import outbox
from vocalborn.events.catalogue import FOR_TASK_EVENT
from vocalborn.practice import service as practice_service
from vocalborn.practice.models import PracticeRecord, RecordStatus, Sentence
from vocalborn.sqltypes import utcnow
from vocalborn.tasks import events, status_cache, unit_of_work
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import (
    ACTIVE_STATUSES,
    RECORD_STATUS_FOR,
    TERMINAL_STATUSES,
    EventType,
    IllegalTransition,
    TaskStatus,
    check_transition,
)

log = logging.getLogger(__name__)


class StaleTask(Exception):
    """The task changed under us (another worker, a cancel, the reaper): our write was refused."""


# --------------------------------------------------------------------------------------------
# state changes
# --------------------------------------------------------------------------------------------
def apply_transition(
    db: Session,
    task: AIAnalysisTask,
    event_type: EventType,
    *,
    expect_attempt: int | None = None,
    values: dict[str, Any] | None = None,
    message: str | None = None,
    worker_name: str | None = None,
) -> AIAnalysisTaskEvent:
    """Move ``task`` along ``event_type`` and log it. The caller commits, then publishes."""
    current = TaskStatus(task.status)
    try:
        target = check_transition(event_type, current)
    except IllegalTransition:
        if expect_attempt is not None:
            # A writer fenced by an attempt saw the task move on (requeued, resubmitted, cancelled).
            raise StaleTask(f"task {task.task_id} is {current}; '{event_type}' no longer applies") from None
        raise
    now = utcnow()
    changes: dict[str, Any] = {"status": target.value, "updated_at": now, **(values or {})}
    stmt = update(AIAnalysisTask).where(
        col(AIAnalysisTask.task_id) == task.task_id, col(AIAnalysisTask.status) == current.value
    )
    if expect_attempt is not None:
        stmt = stmt.where(col(AIAnalysisTask.attempt) == expect_attempt)
    if db.execute(stmt.values(**changes)).rowcount != 1:  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult
        raise StaleTask(f"task {task.task_id} is no longer {current} (attempt {expect_attempt})")
    for name, value in changes.items():
        setattr(task, name, value)
    if target != current:
        _sync_record_status(db, task, target, now)
    event = AIAnalysisTaskEvent(
        task_id=task.task_id,
        event_type=event_type.value,
        status=target.value,
        progress=task.progress,
        current_step=task.current_step,
        attempt=task.attempt,
        worker_name=worker_name or task.worker_name,
        message=message,
        created_at=now,
    )
    db.add(event)
    outbox_row(db, task, event_type.value, now)
    db.flush()
    return event


def outbox_row(db: Session, task: AIAnalysisTask, event_type: str, now: datetime) -> None:
    """The integration event of this state change, if it is one (``events/catalogue.py``)."""
    kind = FOR_TASK_EVENT.get(event_type)
    if kind is not None:
        outbox.add(
            db,
            kind,
            now,
            task_id=task.task_id,
            learner_id=task.user_id,
            practice_record_id=task.practice_record_id,
        )


def latest_success(db: Session, record_id: uuid.UUID, exclude: list[uuid.UUID] | None = None) -> AIAnalysisTask | None:
    """The record's most recent successful analysis (other than ``exclude``), if any."""
    stmt = select(AIAnalysisTask).where(
        AIAnalysisTask.practice_record_id == record_id, AIAnalysisTask.status == TaskStatus.SUCCESS.value
    )
    if exclude:
        stmt = stmt.where(col(AIAnalysisTask.task_id).notin_(exclude))
    return db.exec(stmt.order_by(col(AIAnalysisTask.created_at).desc()).limit(1)).first()


def _sync_record_status(db: Session, task: AIAnalysisTask, status: TaskStatus, now: datetime) -> None:
    """Keep the record in step with its tasks. While a task is active, the record's latest task
    speaks for it. Once the record has a successful analysis it keeps pointing at its latest
    one, whatever happens to later tasks: a re-analysis that is cancelled or fails leaves the
    record analysed (the failed task keeps its own status and history)."""
    record = update(PracticeRecord).where(col(PracticeRecord.practice_record_id) == task.practice_record_id)
    if status == TaskStatus.SUCCESS:
        newer_success = (
            select(AIAnalysisTask.task_id)
            .where(AIAnalysisTask.practice_record_id == task.practice_record_id)
            .where(AIAnalysisTask.status == TaskStatus.SUCCESS.value)
            .where(col(AIAnalysisTask.created_at) > task.created_at)
        )
        db.execute(
            record.where(
                (col(PracticeRecord.ai_task_id) == task.task_id)
                | col(PracticeRecord.ai_task_id).is_(None)
                | col(PracticeRecord.ai_task_id).notin_(newer_success)
            ).values(ai_task_id=task.task_id, record_status=RecordStatus.AI_ANALYZED.value, updated_at=now)
        )
        return
    speaking = record.where(col(PracticeRecord.ai_task_id) == task.task_id)
    if status in (TaskStatus.FAILURE, TaskStatus.CANCELLED):
        earlier = latest_success(db, task.practice_record_id, exclude=[task.task_id])
        if earlier is not None:
            db.execute(
                speaking.values(
                    ai_task_id=earlier.task_id, record_status=RecordStatus.AI_ANALYZED.value, updated_at=now
                )
            )
            return
    db.execute(speaking.values(record_status=RECORD_STATUS_FOR[status].value, updated_at=now))


def publish_event(event: AIAnalysisTaskEvent) -> None:
    # This process's own status cache first: a client's next poll must not wait for the message.
    status_cache.CACHE.drop(event.task_id, queue_moved=event.event_type != EventType.PROGRESS.value)
    events.publish(events.event_message(event, TOTAL_STEPS))


# --------------------------------------------------------------------------------------------
# publishing the task's Celery message
# --------------------------------------------------------------------------------------------
def publish_task(task: AIAnalysisTask, countdown: float | None = None) -> bool:
    """Send the Celery message. False (and a warning) when the broker is unreachable."""
    return publish_message(task.task_id, task.celery_task_id, task.request_id, countdown)


def publish_message(
    task_id: uuid.UUID, celery_task_id: str, request_id: str | None, countdown: float | None = None
) -> bool:
    """``publish_task`` for a task known by its ids (the fast submit path has no ORM object)."""
    try:
        celery_app.send_task(
            ANALYZE_TASK,
            args=[str(task_id)],
            task_id=celery_task_id,
            queue=get_settings().task_queue,
            countdown=countdown,
            # Our database holds results; without this, send_task subscribes to the result
            # backend and a Redis outage stalls the request for 20 s of reconnects.
            ignore_result=True,
            headers={"vocalborn_request_id": request_id or ""},
            # Fail fast: the task is safe in the database and Beat republishes it.
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
        )
        return True
    except Exception as exc:  # kombu raises several types for an unreachable broker
        log.warning(
            "publishing task %s failed (%s: %s); it stays pending and will be republished",
            task_id,
            type(exc).__name__,
            exc,
        )
        return False


def find_active_task(db: Session, record_id: uuid.UUID) -> AIAnalysisTask | None:
    stmt = select(AIAnalysisTask).where(
        AIAnalysisTask.practice_record_id == record_id,
        col(AIAnalysisTask.status).in_([s.value for s in ACTIVE_STATUSES]),
    )
    return db.exec(stmt).first()


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def get_task_for(db: Session, task_id: uuid.UUID, reader: User) -> AIAnalysisTask:
    task = db.get(AIAnalysisTask, task_id)
    if task is None or not practice_service.may_read(db, reader, task.user_id):
        raise NotFound("task not found")
    if reader.role != Role.ADMIN and reader.user_id != task.user_id:
        # The result names the sentence character by character: the sentence's rule applies.
        record = db.get(PracticeRecord, task.practice_record_id)
        if record is None or not practice_service.may_read_sentence_of(db, reader, task.user_id, record.sentence_id):
            raise NotFound("task not found")
    return task


def get_result_for(db: Session, task_id: uuid.UUID, reader: User) -> tuple[AIAnalysisTask, AIAnalysisResult]:
    task = get_task_for(db, task_id, reader)
    if task.status != TaskStatus.SUCCESS:
        raise NotReady(task.status, task.error_message)
    result = db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == task.task_id)).first()
    if result is None:  # cannot happen: result and success commit together
        raise NotReady(task.status, task.error_message)
    return task, result


def list_events(db: Session, task: AIAnalysisTask, after: int = 0, limit: int = 1000) -> list[AIAnalysisTaskEvent]:
    stmt = (
        select(AIAnalysisTaskEvent)
        .where(AIAnalysisTaskEvent.task_id == task.task_id, col(AIAnalysisTaskEvent.event_id) > after)
        .order_by(col(AIAnalysisTaskEvent.event_id))
        .limit(limit)
    )
    return list(db.exec(stmt))


def list_session_tasks(db: Session, session_id: uuid.UUID, reader: User) -> list[AIAnalysisTask]:
    session = practice_service.get_session_for(db, session_id, reader)
    stmt = (
        select(AIAnalysisTask)
        .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
        .join(Sentence, col(Sentence.sentence_id) == col(PracticeRecord.sentence_id))
        .where(
            PracticeRecord.practice_session_id == session.practice_session_id,
            practice_service.sentence_readable_clause(reader, col(AIAnalysisTask.user_id)),
        )
        .order_by(col(AIAnalysisTask.created_at))
    )
    return list(db.exec(stmt))


# --------------------------------------------------------------------------------------------
# cancel and retry (learners cancel their own; admins anything)
# --------------------------------------------------------------------------------------------
def cancel_task(db: Session, task: AIAnalysisTask, by: User) -> AIAnalysisTask:
    """A queued task is cancelled at once (its message is skipped when a worker gets it); a
    running task is flagged and stops at its next step boundary. The flag lives in the database
    (and in Redis for the worker's next step), so it survives worker restarts, unlike a revoke."""
    if task.user_id != by.user_id and by.role != Role.ADMIN:
        raise Forbidden("only the learner who asked for this analysis can cancel it")
    status = TaskStatus(task.status)
    if status in TERMINAL_STATUSES:
        raise Conflict(f"the task is already {status}; there is nothing to cancel")
    if status == TaskStatus.PROCESSING and task.cancel_requested_at is not None:
        return task
    now, who = utcnow(), f"{by.role} {by.email}"
    if status == TaskStatus.PROCESSING:
        event = unit_of_work.transition(
            db,
            task,
            EventType.CANCEL_REQUESTED,
            expect_attempt=task.attempt,
            values={"cancel_requested_at": now},
            message=f"cancel requested by {who}; stops at the next step",
        )
    else:
        event = unit_of_work.transition(
            db,
            task,
            EventType.CANCELLED,
            values={"cancel_requested_at": now, "completed_at": now},
            message=f"cancelled by {who} before it started",
        )
    if event is None:  # it moved on meanwhile: decide again from its new state
        db.refresh(task)
        return cancel_task(db, task, by)
    log.info("task %s: %s by %s", task.task_id, event.event_type, who)
    return task


def retry_task(db: Session, task: AIAnalysisTask, by: User) -> AIAnalysisTask:
    """Run a failed or cancelled task again. Its history is kept; ``attempt`` keeps counting."""
    try:
        check_transition(EventType.RESUBMITTED, TaskStatus(task.status))
    except IllegalTransition:
        raise Conflict(f"only failed or cancelled tasks can be retried; this one is {task.status}") from None
    other = find_active_task(db, task.practice_record_id)
    if other is not None and other.task_id != task.task_id:
        raise Conflict(f"the record already has an active analysis: {other.task_id}")
    fresh = {"retry_count": 0, "deliveries": 0, "error_message": None, "cancel_requested_at": None}
    fresh |= {"completed_at": None, "next_attempt_at": None, "heartbeat_at": None, "progress": 0}
    try:
        event = unit_of_work.transition(
            db,
            task,
            EventType.RESUBMITTED,
            values={**fresh, "current_step": None, "publish_count": task.publish_count + 1},
            message=f"retried by {by.role} {by.email}",
            before_commit=lambda s: _speak_for_record(s, task),
        )
    except Exception as exc:
        db.rollback()
        if isinstance(exc, IntegrityError):
            raise Conflict("the task changed meanwhile, or its record has another active analysis") from None
        raise
    if event is None:
        raise Conflict("the task changed meanwhile, or its record has another active analysis")
    publish_task(task)
    return task


def _speak_for_record(db: Session, task: AIAnalysisTask) -> None:
    """A retried task becomes its record's latest again, unless a newer analysis of the record
    already succeeded: that one keeps speaking for it."""
    record = db.get(PracticeRecord, task.practice_record_id)
    if record is None:
        return
    current = db.get(AIAnalysisTask, record.ai_task_id) if record.ai_task_id else None
    if current is not None and current.task_id != task.task_id and current.status == TaskStatus.SUCCESS:
        return
    record.ai_task_id = task.task_id
    record.record_status = RECORD_STATUS_FOR[TaskStatus.PENDING].value
    record.updated_at = utcnow()
    db.add(record)


def list_tasks(db: Session, status: str | None, limit: int, offset: int) -> list[AIAnalysisTask]:
    stmt = select(AIAnalysisTask)
    if status:
        stmt = stmt.where(AIAnalysisTask.status == status)
    stmt = stmt.order_by(col(AIAnalysisTask.created_at).desc()).limit(limit).offset(offset)
    return list(db.exec(stmt))

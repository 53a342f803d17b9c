"""Task lifecycle in the database: publishing the task's message, reading, cancel and retry.

Every change of a task's state goes through ``transitions.apply_transition`` (through
``unit_of_work.transition`` where it commits); the submit is ``submission.ordinary``.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vocalborn.auth.models import Role, User
from vocalborn.celery_app import ANALYZE_TASK, celery_app
from vocalborn.config import get_settings
from vocalborn.errors import Conflict, Forbidden, NotFound, NotReady
from vocalborn.practice import service as practice_service
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.sqltypes import utcnow
from vocalborn.tasks import unit_of_work
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


# --------------------------------------------------------------------------------------------
# publishing the task's Celery message
# --------------------------------------------------------------------------------------------
def send_task_message(task: AIAnalysisTask, countdown: float | None = None) -> bool:
    """Send the Celery message. False (and a warning) when the broker is unreachable."""
    return send_celery_message(task.task_id, task.celery_task_id, task.request_id, countdown)


def send_celery_message(
    task_id: uuid.UUID, celery_task_id: str, request_id: str | None, countdown: float | None = None
) -> bool:
    """``send_task_message`` for a task known by its ids (the fast submit path has no ORM object)."""
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
    send_task_message(task)
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

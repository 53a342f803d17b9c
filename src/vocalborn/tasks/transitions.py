"""Every change of a task's state: ``apply_transition`` (a conditional UPDATE that only succeeds
from the state, and for worker writes the attempt, the caller saw; the record's status kept in
step; one row appended to the event log and the outbox, all in the caller's transaction) and the
publishing of the committed event to the live channel (``publish_live_event``).

Below ``service`` and ``unit_of_work``: it imports neither.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from vocalborn.analysis.types import TOTAL_STEPS
from vocalborn.events import outbox
from vocalborn.events.catalogue import FOR_TASK_EVENT
from vocalborn.practice.models import PracticeRecord, RecordStatus
from vocalborn.sqltypes import utcnow
from vocalborn.tasks import events, status_cache
from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import (
    RECORD_STATUS_FOR,
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


def publish_live_event(event: AIAnalysisTaskEvent) -> None:
    # This process's own status cache first: a client's next poll must not wait for the message.
    status_cache.CACHE.drop(event.task_id, queue_moved=event.event_type != EventType.PROGRESS.value)
    events.publish_live(events.event_message(event, TOTAL_STEPS))

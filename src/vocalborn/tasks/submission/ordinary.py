"""The ordinary submit: every rule (``rules``), every error, the Idempotency-Key, on any database.

The fast path (``fastpath``) writes the same rows for the submits it can decide alone and leaves
every other one here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from vocalborn.auth.models import User
from vocalborn.config import get_settings
from vocalborn.errors import IdempotencyKeyReused
from vocalborn.practice import service as practice_service
from vocalborn.practice.models import PracticeRecord
from vocalborn.sqltypes import utcnow
from vocalborn.tasks import service, transitions
from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import RECORD_STATUS_FOR, EventType, TaskStatus
from vocalborn.tasks.submission import rules


@dataclass
class SubmitOutcome:
    task: AIAnalysisTask
    created: bool
    published: bool


IDEMPOTENCY_WINDOW = timedelta(hours=24)


def _by_idempotency_key(db: Session, owner_id: uuid.UUID, key: str) -> AIAnalysisTask | None:
    return db.exec(
        select(AIAnalysisTask).where(AIAnalysisTask.user_id == owner_id, AIAnalysisTask.idempotency_key == key)
    ).first()


def submit_analysis(
    db: Session,
    user: User,
    record_id: uuid.UUID,
    params: dict[str, Any],
    request_id: str | None = None,
    *,
    reanalyse: bool = False,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> SubmitOutcome:
    """Write the task (pending), the record (AI_QUEUED) and the event in one transaction, then
    publish with the task's own UUID as the Celery id. If publishing fails, or this process dies
    first, the task stays pending in the database and Beat's republisher sends it later.

    A client that retries (a lost 202) gets the same task back: by its Idempotency-Key (same body,
    within IDEMPOTENCY_WINDOW), by the record's active task, or, unless ``reanalyse``, by the
    record's latest successful analysis. Only then is a new analysis started."""
    record = practice_service.get_record_for(db, record_id, user)
    rules.run(rules.ACCESS_RULES, db, user, record, reanalyse)
    released: AIAnalysisTask | None = None
    if idempotency_key is not None:
        prior = _by_idempotency_key(db, record.user_id, idempotency_key)
        if prior is not None and prior.created_at >= utcnow() - IDEMPOTENCY_WINDOW:
            _same_body(prior, fingerprint)
            return SubmitOutcome(prior, created=False, published=False)
        released = prior  # expired: the key may name a new submit
    existing = rules.run(rules.START_RULES, db, user, record, reanalyse)
    if existing is not None:
        return SubmitOutcome(existing, created=False, published=False)
    task = AIAnalysisTask(
        task_id=(task_id := uuid.uuid4()),
        celery_task_id=str(task_id),
        practice_record_id=record.practice_record_id,
        user_id=record.user_id,
        task_params=params,
        max_retries=get_settings().task_max_retries,
        request_id=request_id,
        publish_count=1,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint if idempotency_key is not None else None,
    )
    try:
        _write_new_task(db, task, record, released)
    except IntegrityError:
        # Two submits raced; a unique index (one active task per record, one task per key) let
        # only one in. Return the winner.
        db.rollback()
        winner = _by_idempotency_key(db, record.user_id, idempotency_key) if idempotency_key else None
        if winner is not None:
            _same_body(winner, fingerprint)
        winner = winner or service.find_active_task(db, record_id)
        if winner is None:
            raise
        return SubmitOutcome(winner, created=False, published=False)
    return SubmitOutcome(task, created=True, published=service.send_task_message(task))


def _same_body(prior: AIAnalysisTask, fingerprint: str | None) -> None:
    if prior.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was already used with a different request body; use a new key")


def _write_new_task(db: Session, task: AIAnalysisTask, record: PracticeRecord, released: AIAnalysisTask | None) -> None:
    """The task, the record pointing at it and the ``submitted`` event, in one commit."""
    now = task.created_at
    if released is not None:
        released.idempotency_key = None
        db.add(released)
        db.flush()
    db.add(task)
    db.flush()
    record.ai_task_id = task.task_id
    record.record_status = RECORD_STATUS_FOR[TaskStatus.PENDING].value
    record.updated_at = now
    db.add(record)
    db.add(
        AIAnalysisTaskEvent(
            task_id=task.task_id,
            event_type=EventType.SUBMITTED.value,
            status=TaskStatus.PENDING.value,
            progress=0,
            attempt=0,
            created_at=now,
        )
    )
    transitions.outbox_row(db, task, EventType.SUBMITTED.value, now)
    db.commit()

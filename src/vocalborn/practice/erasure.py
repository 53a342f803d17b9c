"""A learner deletes one attempt (issue #26): its recording, its analyses and their results.

Only the learner who recorded it may: a therapist or an admin who can see it is refused (403),
anyone else gets 404 as for an id that does not exist. While an analysis of it is still queued
or running the delete is refused (409: cancel it first), so a worker never writes a result for
a record that is gone. The rows go in one transaction; the audio file after the commit; the
deletion is logged (``vocalborn.practice.erasure``) as the account erasure is.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from vocalborn.auth.models import User
from vocalborn.config import get_settings
from vocalborn.errors import Conflict, Forbidden, NotFound
from vocalborn.learning.models import TherapistReview, TherapistReviewRevision
from vocalborn.practice.models import PracticeRecord
from vocalborn.practice.service import may_read
from vocalborn.redis_connect import client as redis_client
from vocalborn.storage import Storage
from vocalborn.tasks import events, status_cache
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import ACTIVE_STATUSES

log = logging.getLogger(__name__)


def delete_record(db: Session, storage: Storage, record_id: uuid.UUID, user: User) -> int:
    """Erase the attempt; returns how many analyses went with it."""

    record = db.get(PracticeRecord, record_id)
    if record is None or not may_read(db, user, record.user_id):
        raise NotFound("practice record not found")
    if record.user_id != user.user_id:
        raise Forbidden("only the learner who recorded this attempt can delete it")
    tasks = list(db.exec(select(AIAnalysisTask).where(AIAnalysisTask.practice_record_id == record_id)))
    if any(t.status in ACTIVE_STATUSES for t in tasks):
        raise Conflict("this attempt is still being analysed; cancel the analysis first, then delete it")
    task_ids = [t.task_id for t in tasks]
    key = record.audio_key if record.audio_deleted_at is None else None
    db.execute(
        update(PracticeRecord).where(col(PracticeRecord.practice_record_id) == record_id).values(ai_task_id=None)
    )
    if task_ids:
        reviews = list(db.exec(select(TherapistReview.review_id).where(col(TherapistReview.task_id).in_(task_ids))))
        if reviews:
            db.execute(delete(TherapistReviewRevision).where(col(TherapistReviewRevision.review_id).in_(reviews)))
            db.execute(delete(TherapistReview).where(col(TherapistReview.review_id).in_(reviews)))
        db.execute(delete(AIAnalysisTaskEvent).where(col(AIAnalysisTaskEvent.task_id).in_(task_ids)))
        db.execute(delete(AIAnalysisResult).where(col(AIAnalysisResult.task_id).in_(task_ids)))
        db.execute(delete(AIAnalysisTask).where(col(AIAnalysisTask.task_id).in_(task_ids)))
    db.execute(delete(PracticeRecord).where(col(PracticeRecord.practice_record_id) == record_id))
    db.commit()
    if key is not None:
        storage.delete(key)
    _forget(user.user_id, task_ids)
    log.info("learner %s erased practice record %s with %d analyses", user.user_id, record_id, len(task_ids))
    return len(task_ids)


def _forget(user_id: uuid.UUID, task_ids: list[uuid.UUID]) -> None:
    """Every API process's status cache forgets the learner's rows; Celery's result keys go."""
    import redis

    status_cache.CACHE.drop_user(user_id)
    try:
        events.publish_live({"forget_user": str(user_id)})
    except redis.RedisError as exc:
        log.warning("could not tell the API processes to forget the erased attempt's statuses (%s)", exc)
    if not task_ids:
        return
    try:
        backend = redis_client(get_settings().effective_result_backend, socket_timeout=5)
        backend.delete(*[f"celery-task-meta-{t}" for t in task_ids])
        backend.close()
    except (redis.RedisError, ValueError) as exc:
        log.warning("could not remove the result keys of an erased attempt's analyses (%s)", exc)

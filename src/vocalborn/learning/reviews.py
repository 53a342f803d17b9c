"""Therapists' reviews of analyses: save (every version kept), read, and export beside the engine's scores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vocalborn.auth.models import Role, User
from vocalborn.errors import Conflict, Forbidden, NotFound
from vocalborn.events import outbox
from vocalborn.learning.models import (
    SCORE_FIELDS,
    TherapistReview,
    TherapistReviewRevision,
)
from vocalborn.practice.models import PracticeRecord
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.service import get_task_for


def _task_readable(db: Session, reader: User, task_id: uuid.UUID) -> AIAnalysisTask:
    return get_task_for(db, task_id, reader)


def save_review(
    db: Session, therapist: User, task_id: uuid.UUID, fields: dict[str, Any]
) -> tuple[TherapistReview, bool]:
    """Create or edit the therapist's review of a task; every version is kept. (review, created)"""
    task = _task_readable(db, therapist, task_id)
    if therapist.role != Role.THERAPIST:
        raise Forbidden("only the learner's linked therapist may review this analysis")
    owner = db.get(User, task.user_id)
    if owner is None or owner.therapist_id != therapist.user_id:
        raise NotFound("task not found")
    attempts = 5  # a lost race (same version, or a second first review) is retried on fresh data
    for attempt in range(attempts):
        review = db.exec(
            select(TherapistReview).where(
                TherapistReview.task_id == task_id, TherapistReview.therapist_id == therapist.user_id
            )
        ).first()
        created = review is None
        now = utcnow()
        if review is None:
            review = TherapistReview(task_id=task_id, therapist_id=therapist.user_id, created_at=now, version=0)
        for name in (*SCORE_FIELDS, "characters", "comment"):
            setattr(review, name, fields.get(name))
        review.version += 1
        review.updated_at = now
        db.add(review)
        try:
            db.flush()
            db.add(
                TherapistReviewRevision(
                    review_id=review.review_id,
                    version=review.version,
                    created_at=now,
                    **{name: fields.get(name) for name in (*SCORE_FIELDS, "characters", "comment")},
                )
            )
            outbox.add(
                db,
                "review.saved",
                now,
                review_id=review.review_id,
                task_id=task_id,
                learner_id=task.user_id,
                therapist_id=therapist.user_id,
            )
            db.commit()
        except IntegrityError:
            db.rollback()  # a concurrent save won the race; edit its review instead
            if attempt == attempts - 1:
                raise Conflict("the review was changed at the same time; try again") from None
            continue
        # No refresh: a concurrent save may already have written the next version, and the
        # caller must get the version this save wrote (expire_on_commit is off, so it is kept).
        return review, created
    raise Conflict("the review was changed at the same time; try again")


def reviews_of(db: Session, reader: User, task_id: uuid.UUID) -> tuple[AIAnalysisTask, list[TherapistReview]]:
    task = _task_readable(db, reader, task_id)
    stmt = (
        select(TherapistReview)
        .where(TherapistReview.task_id == task_id)
        .order_by(col(TherapistReview.updated_at).desc())
    )
    return task, list(db.exec(stmt))


def revisions(db: Session, review_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[TherapistReviewRevision]]:
    out: dict[uuid.UUID, list[TherapistReviewRevision]] = {}
    if not review_ids:
        return out
    stmt = (
        select(TherapistReviewRevision)
        .where(col(TherapistReviewRevision.review_id).in_(list(review_ids)))
        .order_by(col(TherapistReviewRevision.version))
    )
    for rev in db.exec(stmt):
        out.setdefault(rev.review_id, []).append(rev)
    return out


def export_rows(db: Session) -> Iterator[dict[str, Any]]:
    """Every review beside the engine's scores of the same attempt: calibration data."""
    stmt = (
        select(TherapistReview, AIAnalysisTask, PracticeRecord, AIAnalysisResult)
        .join(AIAnalysisTask, col(AIAnalysisTask.task_id) == col(TherapistReview.task_id))
        .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
        .outerjoin(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
        .order_by(col(TherapistReview.updated_at))
        .execution_options(yield_per=500)
    )
    for review, task, record, result in db.exec(stmt):
        row: dict[str, Any] = {
            "task_id": task.task_id,
            "practice_record_id": record.practice_record_id,
            "sentence_id": record.sentence_id,
            "learner_id": task.user_id,
            "therapist_id": review.therapist_id,
            "review_version": review.version,
            "reviewed_at": review.updated_at.isoformat(),
            "analysis_model_version": result.analysis_model_version if result else None,
            "engine_fallback": result.engine_fallback if result else None,
        }
        for f in SCORE_FIELDS:
            row[f"engine_{f}"] = getattr(result, f) if result else None
            row[f"therapist_{f}"] = getattr(review, f)
        row["therapist_deviating_characters"] = "".join(
            str(c.get("char", "")) for c in (review.characters or []) if isinstance(c, dict) and c.get("deviating")
        )
        row["comment"] = review.comment
        yield row

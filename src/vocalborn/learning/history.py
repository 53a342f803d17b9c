"""The analysis history: a reader's analyses, newest first, a page at a time (keyset cursor)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from vocalborn.auth.models import Role, User
from vocalborn.learning.access import learner_for, linked_learner_ids
from vocalborn.learning.models import TherapistReview
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.practice.service import sentence_readable_clause
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask


def encode_cursor(created_at: datetime, task_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{task_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, tid = raw.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError
        return when, uuid.UUID(tid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("the cursor is not valid; start again without it") from None


@dataclass
class HistoryRow:
    task: AIAnalysisTask
    record: PracticeRecord
    sentence: Sentence
    result: AIAnalysisResult | None
    review: TherapistReview | None


def history(
    db: Session,
    reader: User,
    *,
    user_id: uuid.UUID | None,
    sentence_id: uuid.UUID | None,
    status: str | None,
    since: datetime | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[HistoryRow], str | None]:
    stmt = (
        select(AIAnalysisTask, PracticeRecord, Sentence, AIAnalysisResult)
        .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
        .join(Sentence, col(Sentence.sentence_id) == col(PracticeRecord.sentence_id))
        .outerjoin(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
    )
    if user_id is not None:
        learner_for(db, reader, user_id)  # 404 unless the reader may see this learner
        stmt = stmt.where(col(AIAnalysisTask.user_id) == user_id)
    elif reader.role == Role.THERAPIST:
        stmt = stmt.where(col(AIAnalysisTask.user_id).in_(linked_learner_ids(db, reader)))
    elif reader.role != Role.ADMIN:
        stmt = stmt.where(col(AIAnalysisTask.user_id) == reader.user_id)
    # Another therapist's private sentence never shows through a learner's history.
    stmt = stmt.where(sentence_readable_clause(reader, col(AIAnalysisTask.user_id)))
    if sentence_id is not None:
        stmt = stmt.where(col(PracticeRecord.sentence_id) == sentence_id)
    if status is not None:
        stmt = stmt.where(col(AIAnalysisTask.status) == status)
    if since is not None:
        stmt = stmt.where(col(AIAnalysisTask.created_at) >= since)
    if cursor:
        at, tid = decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                col(AIAnalysisTask.created_at) < at,
                and_(col(AIAnalysisTask.created_at) == at, col(AIAnalysisTask.task_id) < tid),
            )
        )
    stmt = stmt.order_by(col(AIAnalysisTask.created_at).desc(), col(AIAnalysisTask.task_id).desc()).limit(limit + 1)
    rows = list(db.exec(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    reviews = latest_reviews(db, [t.task_id for t, _, _, _ in rows])
    out = [HistoryRow(t, r, s, res, reviews.get(t.task_id)) for t, r, s, res in rows]
    next_cursor = encode_cursor(rows[-1][0].created_at, rows[-1][0].task_id) if more and rows else None
    return out, next_cursor


def latest_reviews(db: Session, task_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TherapistReview]:
    if not task_ids:
        return {}
    stmt = (
        select(TherapistReview)
        .where(col(TherapistReview.task_id).in_(list(task_ids)))
        .order_by(col(TherapistReview.updated_at))
    )
    return {r.task_id: r for r in db.exec(stmt)}  # the newest wins

"""The access log: every read of a learner's data by someone else goes here, and the learner
can read it (GET /api/v1/me/access-log). Append-only: nothing updates or deletes an entry,
except the learner's own erasure."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import Session, col, select

from vocalborn.auth.models import User
from vocalborn.security.models import DataAccessLog
from vocalborn.sqltypes import utcnow

# A therapist's page polling one task's status writes one entry per minute, not one per second.
DEDUPE_SECONDS = 60


def record_access(
    db: Session, reader: User, learner_id: uuid.UUID, what: str, object_id: uuid.UUID | str | None = None
) -> None:
    """Log that ``reader`` read ``what`` (e.g. "task_result") of ``learner_id``; nothing when the
    learner reads their own data. Commits (call it after the read succeeded, before answering)."""
    if reader.user_id == learner_id:
        return
    oid = str(object_id) if object_id is not None else None
    since = utcnow() - timedelta(seconds=DEDUPE_SECONDS)
    recent = db.exec(
        select(DataAccessLog.access_id)
        .where(DataAccessLog.learner_id == learner_id)
        .where(DataAccessLog.reader_id == reader.user_id)
        .where(DataAccessLog.what == what)
        .where(DataAccessLog.object_id == oid if oid is not None else col(DataAccessLog.object_id).is_(None))
        .where(col(DataAccessLog.created_at) > since)
        .limit(1)
    ).first()
    if recent is not None:
        return
    db.add(
        DataAccessLog(
            learner_id=learner_id,
            reader_id=reader.user_id,
            reader_role=reader.role,
            reader_name=reader.name,
            what=what,
            object_id=oid,
        )
    )
    db.commit()


def access_log_of(db: Session, learner_id: uuid.UUID, limit: int, offset: int) -> list[DataAccessLog]:
    stmt = (
        select(DataAccessLog)
        .where(DataAccessLog.learner_id == learner_id)
        .order_by(col(DataAccessLog.access_id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(db.exec(stmt))

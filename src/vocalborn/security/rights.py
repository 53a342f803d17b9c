"""The learner's rights over their data: a full export (zip) and erasure.

The export is built from SECTIONS: each is a function (db, user) -> list of JSON-able rows,
written to ``<name>.json``; add a section (e.g. reviews) by adding one entry. Recordings go
under ``audio/`` (decrypted if storage encryption is on).

Erasure removes, in one transaction: the learner's analysis events, results, tasks, recordings,
practice sessions, their access-log entries and the account; then the audio files, and the Redis
keys that name them (Celery result meta of their tasks, rate-limit counters).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, update
from sqlmodel import Session, col, select

from vocalborn.auth import sessions
from vocalborn.auth.models import AuthSession, RecoveryCode, RefreshToken, Role, User
from vocalborn.config import get_settings
from vocalborn.errors import Conflict
from vocalborn.events import outbox
from vocalborn.events.models import EventOutbox
from vocalborn.learning.models import LinkInvitation, SentenceAssignment, TherapistReview, TherapistReviewRevision
from vocalborn.notify.models import AccountToken, Notification, NotificationPreferences
from vocalborn.practice.models import PracticeRecord, PracticeSession, Sentence
from vocalborn.redis_connect import client as redis_client
from vocalborn.security.models import DataAccessLog, TherapistInvitation
from vocalborn.security.ratelimit import forget_user
from vocalborn.sqltypes import utcnow
from vocalborn.storage import MissingKey, get_storage
from vocalborn.tasks import events, status_cache
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent

log = logging.getLogger(__name__)


class CannotErase(Conflict):
    """The account holds what others use (a therapist's sentences): 409, saying what."""


def _row(obj: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for name, value in obj.model_dump().items():
        if name in drop:
            continue
        out[name] = (
            value.isoformat() if isinstance(value, datetime) else str(value) if isinstance(value, uuid.UUID) else value
        )
    return out


def _account(db: Session, user: User) -> list[dict[str, Any]]:
    return [_row(user, drop=("password_hash",))]


def _sessions(db: Session, user: User) -> list[dict[str, Any]]:
    return [_row(s) for s in db.exec(select(PracticeSession).where(PracticeSession.user_id == user.user_id))]


def _records(db: Session, user: User) -> list[dict[str, Any]]:
    rows = []
    for r in db.exec(select(PracticeRecord).where(PracticeRecord.user_id == user.user_id)):
        row = _row(r, drop=("audio_key",))
        row["audio_file"] = None if r.audio_deleted_at else f"audio/{r.practice_record_id}.{r.audio_format}"
        rows.append(row)
    return rows


def _sentences(db: Session, user: User) -> list[dict[str, Any]]:
    ids = select(PracticeRecord.sentence_id).where(PracticeRecord.user_id == user.user_id)
    stmt = select(Sentence).where(col(Sentence.sentence_id).in_(ids))
    return [_row(s, drop=("reference_audio_key",)) for s in db.exec(stmt)]


def _analyses(db: Session, user: User) -> list[dict[str, Any]]:
    rows = []
    for task in db.exec(select(AIAnalysisTask).where(AIAnalysisTask.user_id == user.user_id)):
        row = _row(task, drop=("worker_name",))
        result = db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == task.task_id)).first()
        row["result"] = _row(result) if result else None
        row["events"] = [
            _row(e, drop=("worker_name",))
            for e in db.exec(
                select(AIAnalysisTaskEvent)
                .where(AIAnalysisTaskEvent.task_id == task.task_id)
                .order_by(col(AIAnalysisTaskEvent.event_id))
            )
        ]
        rows.append(row)
    return rows


def _access_log(db: Session, user: User) -> list[dict[str, Any]]:
    stmt = select(DataAccessLog).where(DataAccessLog.learner_id == user.user_id).order_by(col(DataAccessLog.access_id))
    return [_row(e) for e in db.exec(stmt)]


def _reviews(db: Session, user: User) -> list[dict[str, Any]]:
    """Therapists' reviews of this learner's analyses, each with its earlier versions."""
    tasks = select(AIAnalysisTask.task_id).where(AIAnalysisTask.user_id == user.user_id)
    rows = []
    for review in db.exec(select(TherapistReview).where(col(TherapistReview.task_id).in_(tasks))):
        row = _row(review)
        row["revisions"] = [
            _row(v)
            for v in db.exec(
                select(TherapistReviewRevision)
                .where(TherapistReviewRevision.review_id == review.review_id)
                .order_by(col(TherapistReviewRevision.version))
            )
        ]
        rows.append(row)
    return rows


def _assignments(db: Session, user: User) -> list[dict[str, Any]]:
    return [_row(a) for a in db.exec(select(SentenceAssignment).where(SentenceAssignment.learner_id == user.user_id))]


# name -> rows: one JSON file each in the export.
SECTIONS: dict[str, Callable[[Session, User], list[dict[str, Any]]]] = {
    "account": _account,
    "sessions": _sessions,
    "recordings": _records,
    "sentences": _sentences,
    "analyses": _analyses,
    "reviews": _reviews,
    "assignments": _assignments,
    "access_log": _access_log,
}


def export_zip(db: Session, user: User) -> bytes:
    storage = get_storage()
    buffer = io.BytesIO()
    manifest: dict[str, Any] = {"exported_at": utcnow().isoformat(), "user_id": str(user.user_id), "sections": {}}
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, section in SECTIONS.items():
            rows = section(db, user)
            manifest["sections"][name] = len(rows)
            zf.writestr(f"{name}.json", json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        missing = []
        for r in db.exec(select(PracticeRecord).where(PracticeRecord.user_id == user.user_id)):
            if r.audio_deleted_at:
                continue
            try:
                zf.writestr(f"audio/{r.practice_record_id}.{r.audio_format}", storage.read(r.audio_key))
            except (FileNotFoundError, MissingKey):
                missing.append(str(r.practice_record_id))
        manifest["audio_missing"] = missing
        zf.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    return buffer.getvalue()


def erase_user(db: Session, user: User) -> dict[str, int]:
    """Erase a learner (or a therapist/admin without sentences) and everything that is theirs."""
    uid = user.user_id
    if user.role != Role.LEARNER:
        authored = db.exec(select(Sentence.sentence_id).where(Sentence.created_by == uid).limit(1)).first()
        if authored is not None:
            raise CannotErase(
                "this account authored sentences that learners practise with; an admin must reassign or delete them first"
            )
    task_ids = list(db.exec(select(AIAnalysisTask.task_id).where(AIAnalysisTask.user_id == uid)))
    keys = list(db.exec(select(PracticeRecord.audio_key).where(PracticeRecord.user_id == uid)))
    counts = {"analyses": len(task_ids), "recordings": len(keys)}
    db.execute(update(PracticeRecord).where(col(PracticeRecord.user_id) == uid).values(ai_task_id=None))
    # Therapists' reviews of the learner's analyses, and (for a therapist) the reviews they wrote.
    reviews = select(TherapistReview.review_id).where(
        or_(col(TherapistReview.task_id).in_(task_ids), col(TherapistReview.therapist_id) == uid)
    )
    review_ids = list(db.exec(reviews))
    if review_ids:
        db.execute(delete(TherapistReviewRevision).where(col(TherapistReviewRevision.review_id).in_(review_ids)))
        db.execute(delete(TherapistReview).where(col(TherapistReview.review_id).in_(review_ids)))
    db.execute(delete(SentenceAssignment).where(col(SentenceAssignment.learner_id) == uid))
    db.execute(update(SentenceAssignment).where(col(SentenceAssignment.assigned_by) == uid).values(assigned_by=None))
    db.execute(delete(LinkInvitation).where(col(LinkInvitation.therapist_id) == uid))
    db.execute(update(LinkInvitation).where(col(LinkInvitation.used_by) == uid).values(used_by=None))
    if task_ids:
        db.execute(delete(AIAnalysisTaskEvent).where(col(AIAnalysisTaskEvent.task_id).in_(task_ids)))
        db.execute(delete(AIAnalysisResult).where(col(AIAnalysisResult.task_id).in_(task_ids)))
        db.execute(delete(AIAnalysisTask).where(col(AIAnalysisTask.task_id).in_(task_ids)))
    db.execute(delete(PracticeRecord).where(col(PracticeRecord.user_id) == uid))
    counts["sessions"] = db.execute(delete(PracticeSession).where(col(PracticeSession.user_id) == uid)).rowcount  # type: ignore[attr-defined]  # a DELETE result is a CursorResult
    db.execute(delete(DataAccessLog).where(col(DataAccessLog.learner_id) == uid))
    db.execute(update(User).where(col(User.therapist_id) == uid).values(therapist_id=None))
    db.execute(update(TherapistInvitation).where(col(TherapistInvitation.created_by) == uid).values(created_by=None))
    db.execute(update(TherapistInvitation).where(col(TherapistInvitation.used_by) == uid).values(used_by=None))
    # Their sessions end with the account: every token of theirs is refused from now on.
    session_ids = list(db.exec(select(AuthSession.session_id).where(AuthSession.user_id == uid)))
    if session_ids:
        db.execute(delete(RefreshToken).where(col(RefreshToken.session_id).in_(session_ids)))
        db.execute(delete(AuthSession).where(col(AuthSession.session_id).in_(session_ids)))
    db.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == uid))
    _forget_notifications(db, uid)
    db.execute(delete(User).where(col(User.user_id) == uid))
    _forget_events(db, uid)
    outbox.add(db, "account.erased", user_id=uid)
    db.commit()
    for sid in session_ids:
        sessions.forget(sid)
    storage = get_storage()
    for key in keys:
        storage.delete(key)
    _forget_in_redis(uid, user.email, task_ids)
    _forget_statuses(uid)
    log.info("erased user %s: %s", uid, counts)
    return counts


def _forget_events(db: Session, uid: uuid.UUID) -> None:
    """The outbox keeps nothing of the erased account but its ``account.erased`` event: every
    other row naming it (its own events, sent or not, and others' that name it) goes, in the
    erasure's transaction. The relay deletes ``account.erased`` once it is published
    (docs/EVENTS.md); consumers forget the id when it arrives."""
    from sqlalchemy import String, cast

    db.execute(
        delete(EventOutbox).where(
            or_(col(EventOutbox.ordering_key) == uid, cast(EventOutbox.subject, String).like(f"%{uid}%"))
        )
    )


def _forget_notifications(db: Session, uid: uuid.UUID) -> None:
    """Their notifications, preferences and account tokens, and every other user's notification
    about them (a therapist's about a learner's analysis: its ids name the learner)."""
    from sqlalchemy import String, cast

    db.execute(
        delete(Notification).where(
            or_(col(Notification.user_id) == uid, cast(Notification.subject, String).like(f"%{uid}%"))
        )
    )
    db.execute(delete(NotificationPreferences).where(col(NotificationPreferences.user_id) == uid))
    db.execute(delete(AccountToken).where(col(AccountToken.user_id) == uid))


def _forget_statuses(uid: uuid.UUID) -> None:
    """Every API process's status cache drops the erased user's rows (``tasks.status_cache``)."""

    status_cache.CACHE.drop_user(uid)
    events.publish_live({"forget_user": str(uid)})


def _forget_in_redis(uid: uuid.UUID, email: str, task_ids: list[uuid.UUID]) -> None:
    import redis

    forget_user(uid.hex, email)
    if not task_ids:
        return
    try:
        from vocalborn.tasks.worker.registry import forget_reserved  # reason: upward import (CONTRIBUTING, 2)

        forget_reserved([str(t) for t in task_ids])
    except redis.RedisError as exc:
        log.warning("could not remove the reservation notes of an erased user's tasks (%s)", exc)
    try:
        backend = redis_client(get_settings().effective_result_backend, socket_timeout=5)
        backend.delete(*[f"celery-task-meta-{t}" for t in task_ids])
        backend.close()
    except (redis.RedisError, ValueError) as exc:
        log.warning("could not remove the result keys of an erased user's tasks (%s)", exc)

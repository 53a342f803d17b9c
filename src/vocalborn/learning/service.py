"""History, progress, the therapist's dashboard, linking, reviews and practice sets.

Who may see what (the same rule as the rest of the API): a learner's analyses are visible to the
learner, to the therapist linked to them (``users.therapist_id``) and to admins. Anyone else is
told the learner, task or review does not exist (404), so ids cannot be probed.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import fmean
from typing import Any

from sqlalchemy import and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vocalborn.auth.models import Role, User
from vocalborn.learning.models import (
    SCORE_FIELDS,
    LinkInvitation,
    SentenceAssignment,
    TherapistReview,
    TherapistReviewRevision,
)
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.practice.service import NotFound
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.service import Conflict, Forbidden

# The dashboard's flag (documented in docs/PRACTICE.md).
INACTIVE_AFTER = timedelta(days=7)
WEEK = timedelta(days=7)
DECLINE_RECENT = 3  # the newest attempts ...
DECLINE_MIN_ATTEMPTS = 5  # ... compared with the older ones of the last 10, once there are this many
DECLINE_POINTS = 10.0  # flagged when the newest mean is this many points lower
TREND_LAST_N = 3

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud or typed from paper
CODE_LENGTH = 10


class Gone(Exception):
    """An invitation that existed but can no longer be used (expired or used)."""


# ------------------------------------------------------------------------------------------------
# who may see a learner
# ------------------------------------------------------------------------------------------------
def learner_for(db: Session, reader: User, learner_id: uuid.UUID) -> User:
    """The learner if ``reader`` is the learner, their linked therapist or an admin; else NotFound."""
    learner = db.get(User, learner_id)
    if learner is None or learner.role != Role.LEARNER:
        raise NotFound("learner not found")
    if reader.role == Role.ADMIN or reader.user_id == learner.user_id:
        return learner
    if reader.role == Role.THERAPIST and learner.therapist_id == reader.user_id:
        return learner
    raise NotFound("learner not found")


def _linked_learner_ids(db: Session, therapist: User) -> list[uuid.UUID]:
    stmt = select(User.user_id).where(User.therapist_id == therapist.user_id, User.role == Role.LEARNER.value)
    return list(db.exec(stmt))


# ------------------------------------------------------------------------------------------------
# history
# ------------------------------------------------------------------------------------------------
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
        stmt = stmt.where(col(AIAnalysisTask.user_id).in_(_linked_learner_ids(db, reader)))
    elif reader.role != Role.ADMIN:
        stmt = stmt.where(col(AIAnalysisTask.user_id) == reader.user_id)
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


# ------------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------------
def _is_deviating(entry: dict[str, Any]) -> bool | None:
    """Read a per-character entry defensively: several spellings of the flag, or a confidence."""
    for key in ("deviating", "deviates", "is_deviating", "deviation", "flagged", "off"):
        if key in entry and isinstance(entry[key], bool | int | float):
            return bool(entry[key])
    for key in ("ok", "correct", "matches"):
        if key in entry and isinstance(entry[key], bool):
            return not entry[key]
    status = entry.get("status")
    if isinstance(status, str) and status:  # like phoneme_analysis: "ok" or what went wrong
        return status.lower() not in ("ok", "match", "matched", "correct", "good")
    return None


def character_marks(detailed: Any) -> list[tuple[int, str, bool]] | None:
    """``(index, char, deviating)`` from ``detailed_analysis["characters"]``; None without it."""
    if not isinstance(detailed, dict):
        return None
    chars = detailed.get("characters")
    if not isinstance(chars, list):
        return None
    marks: list[tuple[int, str, bool]] = []
    for i, entry in enumerate(chars):
        if not isinstance(entry, dict):
            continue
        deviating = _is_deviating(entry)
        if deviating is None:
            continue
        index = entry.get("index", i)
        char = entry.get("char", entry.get("character", ""))
        if not isinstance(index, int) or not isinstance(char, str):
            continue
        marks.append((index, char, deviating))
    return marks


def slope(values: Sequence[float]) -> float | None:
    n = len(values)
    if n < 2:
        return None
    mx = (n - 1) / 2
    my = fmean(values)
    num = sum((i - mx) * (v - my) for i, v in enumerate(values))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den


def trend(values: Sequence[float | None], last_n: int) -> dict[str, float | None]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"first": None, "last_n_mean": None, "change": None, "slope_per_attempt": None}
    last = fmean(vals[-last_n:])
    s = slope(vals)
    return {
        "first": round(vals[0], 2),
        "last_n_mean": round(last, 2),
        "change": round(last - vals[0], 2),
        "slope_per_attempt": None if s is None else round(s, 3),
    }


def progress(
    db: Session, reader: User, learner_id: uuid.UUID, sentence_id: uuid.UUID | None, since: datetime | None
) -> list[dict[str, Any]]:
    learner_for(db, reader, learner_id)
    stmt = (
        select(AIAnalysisTask, PracticeRecord, Sentence, AIAnalysisResult)
        .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
        .join(Sentence, col(Sentence.sentence_id) == col(PracticeRecord.sentence_id))
        .join(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
        .where(col(AIAnalysisTask.user_id) == learner_id, col(AIAnalysisTask.status) == "success")
    )
    if sentence_id is not None:
        stmt = stmt.where(col(PracticeRecord.sentence_id) == sentence_id)
    if since is not None:
        stmt = stmt.where(col(AIAnalysisTask.created_at) >= since)
    stmt = stmt.order_by(col(AIAnalysisTask.created_at), col(AIAnalysisTask.task_id))
    by_sentence: dict[uuid.UUID, dict[str, Any]] = {}
    for task, record, sentence, result in db.exec(stmt):
        entry = by_sentence.setdefault(sentence.sentence_id, {"sentence": sentence, "points": [], "marks": []})
        marks = character_marks(result.detailed_analysis)
        entry["marks"].append(marks)
        entry["points"].append(
            {
                "task_id": task.task_id,
                "practice_record_id": record.practice_record_id,
                "at": task.completed_at or task.created_at,
                **{f: getattr(result, f) for f in SCORE_FIELDS},
                "deviating_characters": None if marks is None else [c for _, c, d in marks if d],
            }
        )
    out = []
    for sid, entry in by_sentence.items():
        points = entry["points"]
        chars = _character_progress([m for m in entry["marks"] if m is not None])
        out.append(
            {
                "sentence_id": sid,
                "sentence_text": entry["sentence"].text,
                "attempts": len(points),
                "points": points,
                "last_n": min(TREND_LAST_N, len(points)),
                "trend": {f: trend([p[f] for p in points], TREND_LAST_N) for f in SCORE_FIELDS},
                "characters": chars,
                "improved_characters": [c["char"] for c in chars if c["improved"]],
                "still_deviating": [c["char"] for c in chars if c["last_deviating"]],
            }
        )
    out.sort(key=lambda e: e["points"][-1]["at"], reverse=True)  # the sentence practised last first
    return out


def _character_progress(attempts: list[list[tuple[int, str, bool]]]) -> list[dict[str, Any]]:
    if not attempts:
        return []
    seen: dict[int, dict[str, Any]] = {}
    for n, marks in enumerate(attempts):
        for index, char, deviating in marks:
            c = seen.setdefault(
                index,
                {"index": index, "char": char, "attempts": 0, "deviating_count": 0, "first": None, "last": None},
            )
            c["attempts"] += 1
            c["deviating_count"] += int(deviating)
            if c["first"] is None:
                c["first"] = deviating
            c["last"] = deviating
            c["last_seen"] = n
    out = []
    for c in sorted(seen.values(), key=lambda c: c["index"]):
        out.append(
            {
                "index": c["index"],
                "char": c["char"],
                "attempts": c["attempts"],
                "deviating_count": c["deviating_count"],
                "first_deviating": bool(c["first"]),
                "last_deviating": bool(c["last"]),
                "improved": bool(c["first"]) and not c["last"],
            }
        )
    return out


# ------------------------------------------------------------------------------------------------
# the therapist's dashboard
# ------------------------------------------------------------------------------------------------
def dashboard(db: Session, therapist: User, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each linked learner with a flag. A learner is flagged when they never practised, when
    their last attempt is older than 7 days, or when their scores fall: with at least 5 scored
    attempts among their last 10, the mean overall of the newest 3 is 10 or more points below
    the mean of the older ones."""
    now = now or utcnow()
    learners = list(
        db.exec(
            select(User)
            .where(User.therapist_id == therapist.user_id, User.role == Role.LEARNER.value)
            .order_by(col(User.name), col(User.email))
        )
    )
    out = []
    for learner in learners:
        last = db.exec(
            select(AIAnalysisTask.created_at)
            .where(AIAnalysisTask.user_id == learner.user_id)
            .order_by(col(AIAnalysisTask.created_at).desc())
            .limit(1)
        ).first()
        week = db.exec(
            select(func.count())
            .select_from(AIAnalysisTask)
            .where(AIAnalysisTask.user_id == learner.user_id, col(AIAnalysisTask.created_at) >= now - WEEK)
        ).one()
        scores = [
            float(s)
            for s in db.exec(
                select(AIAnalysisResult.overall_score)
                .join(AIAnalysisTask, col(AIAnalysisTask.task_id) == col(AIAnalysisResult.task_id))
                .where(AIAnalysisTask.user_id == learner.user_id, col(AIAnalysisResult.overall_score).is_not(None))
                .order_by(col(AIAnalysisTask.created_at).desc())
                .limit(10)
            )
            if s is not None
        ]
        reasons = flag_reasons(last, scores, now)
        out.append(
            {
                "user_id": learner.user_id,
                "name": learner.name,
                "email": learner.email,
                "last_practice_at": last,
                "attempts_this_week": int(week),
                "mean_overall_last_10": round(fmean(scores), 2) if scores else None,
                "flagged": bool(reasons),
                "flag_reasons": reasons,
            }
        )
    out.sort(key=lambda d: not d["flagged"])  # flagged first (stable: then by name)
    return out


def flag_reasons(last_practice: datetime | None, newest_first_scores: list[float], now: datetime) -> list[str]:
    reasons = []
    if last_practice is None:
        reasons.append("never_practised")
    elif now - last_practice > INACTIVE_AFTER:
        reasons.append("inactive")
    if len(newest_first_scores) >= DECLINE_MIN_ATTEMPTS:
        recent = fmean(newest_first_scores[:DECLINE_RECENT])
        older = fmean(newest_first_scores[DECLINE_RECENT:])
        if older - recent >= DECLINE_POINTS:
            reasons.append("declining")
    return reasons


# ------------------------------------------------------------------------------------------------
# linking
# ------------------------------------------------------------------------------------------------
def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def create_invitation(db: Session, therapist: User, expires_in: timedelta) -> LinkInvitation:
    now = utcnow()
    inv = LinkInvitation(
        code="".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)),
        therapist_id=therapist.user_id,
        created_at=now,
        expires_at=now + expires_in,
    )
    db.add(inv)
    db.commit()
    db.refresh(inv)
    return inv


def list_invitations(db: Session, therapist: User) -> list[LinkInvitation]:
    stmt = (
        select(LinkInvitation)
        .where(LinkInvitation.therapist_id == therapist.user_id, col(LinkInvitation.used_at).is_(None))
        .where(col(LinkInvitation.expires_at) > utcnow())
        .order_by(col(LinkInvitation.created_at).desc())
        .limit(100)
    )
    return list(db.exec(stmt))


def accept_invitation(db: Session, learner: User, code: str) -> User:
    """Link ``learner`` to the invitation's therapist. The code is used up in the same
    transaction (a conditional UPDATE), so two learners racing for one code cannot both win."""
    if learner.role != Role.LEARNER:
        raise Forbidden("only learners accept invitations")
    inv = db.exec(select(LinkInvitation).where(LinkInvitation.code == normalize_code(code))).first()
    if inv is None:
        raise NotFound("invitation code not found")
    now = utcnow()
    if inv.used_at is not None:
        raise Gone("this invitation has already been used; ask your therapist for a new code")
    if inv.expires_at <= now:
        raise Gone("this invitation has expired; ask your therapist for a new code")
    therapist = db.get(User, inv.therapist_id)
    if therapist is None or therapist.role != Role.THERAPIST:
        raise NotFound("invitation code not found")
    if learner.therapist_id is not None and learner.therapist_id != therapist.user_id:
        raise Conflict("you are already linked to another therapist; unlink first")
    used = db.execute(
        update(LinkInvitation)
        .where(col(LinkInvitation.invitation_id) == inv.invitation_id, col(LinkInvitation.used_at).is_(None))
        .values(used_at=now, used_by=learner.user_id)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        raise Gone("this invitation has already been used; ask your therapist for a new code")
    learner.therapist_id = therapist.user_id
    db.add(learner)
    db.commit()
    return therapist


def unlink(db: Session, actor: User, learner_id: uuid.UUID) -> None:
    """The learner, their therapist or an admin ends the link."""
    learner = db.get(User, learner_id)
    if learner is None or learner.role != Role.LEARNER:
        raise NotFound("learner not found")
    if actor.role == Role.THERAPIST and learner.therapist_id != actor.user_id:
        raise NotFound("learner not found")
    if actor.role == Role.LEARNER and actor.user_id != learner.user_id:
        raise NotFound("learner not found")
    if learner.therapist_id is None:
        raise NotFound("no therapist is linked to this learner")
    learner.therapist_id = None
    db.add(learner)
    db.commit()


# ------------------------------------------------------------------------------------------------
# reviews
# ------------------------------------------------------------------------------------------------
def _task_readable(db: Session, reader: User, task_id: uuid.UUID) -> AIAnalysisTask:
    from vocalborn.tasks.service import get_task_for

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
            db.commit()
        except IntegrityError:
            db.rollback()  # a concurrent save won the race; edit its review instead
            if attempt == attempts - 1:
                raise Conflict("the review was changed at the same time; try again") from None
            continue
        db.refresh(review)
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
        }
        for f in SCORE_FIELDS:
            row[f"engine_{f}"] = getattr(result, f) if result else None
            row[f"therapist_{f}"] = getattr(review, f)
        row["therapist_deviating_characters"] = "".join(
            str(c.get("char", "")) for c in (review.characters or []) if isinstance(c, dict) and c.get("deviating")
        )
        row["comment"] = review.comment
        yield row


# ------------------------------------------------------------------------------------------------
# practice sets
# ------------------------------------------------------------------------------------------------
def _may_assign(db: Session, actor: User, learner_id: uuid.UUID) -> User:
    learner = learner_for(db, actor, learner_id)
    if actor.role not in (Role.THERAPIST, Role.ADMIN):
        raise Forbidden("this needs the role admin or therapist")
    return learner


def add_assignment(
    db: Session, actor: User, learner_id: uuid.UUID, sentence_id: uuid.UUID
) -> tuple[SentenceAssignment, bool]:
    _may_assign(db, actor, learner_id)
    if db.get(Sentence, sentence_id) is None:
        raise NotFound("sentence not found")
    existing = db.exec(
        select(SentenceAssignment).where(
            SentenceAssignment.learner_id == learner_id, SentenceAssignment.sentence_id == sentence_id
        )
    ).first()
    if existing is not None:
        return existing, False
    a = SentenceAssignment(learner_id=learner_id, sentence_id=sentence_id, assigned_by=actor.user_id)
    db.add(a)
    try:
        db.commit()
    except IntegrityError:  # assigned twice at the same moment
        db.rollback()
        existing = db.exec(
            select(SentenceAssignment).where(
                SentenceAssignment.learner_id == learner_id, SentenceAssignment.sentence_id == sentence_id
            )
        ).one()
        return existing, False
    db.refresh(a)
    return a, True


def remove_assignment(db: Session, actor: User, learner_id: uuid.UUID, sentence_id: uuid.UUID) -> None:
    _may_assign(db, actor, learner_id)
    a = db.exec(
        select(SentenceAssignment).where(
            SentenceAssignment.learner_id == learner_id, SentenceAssignment.sentence_id == sentence_id
        )
    ).first()
    if a is None:
        raise NotFound("this sentence is not assigned to this learner")
    db.delete(a)
    db.commit()


def assignments(db: Session, reader: User, learner_id: uuid.UUID) -> list[dict[str, Any]]:
    learner_for(db, reader, learner_id)
    rows = db.exec(
        select(SentenceAssignment, Sentence)
        .join(Sentence, col(Sentence.sentence_id) == col(SentenceAssignment.sentence_id))
        .where(SentenceAssignment.learner_id == learner_id)
        .order_by(col(SentenceAssignment.created_at))
    ).all()
    out = []
    for a, sentence in rows:
        scored = list(
            db.exec(
                select(AIAnalysisTask.created_at, AIAnalysisResult.overall_score)
                .join(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
                .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
                .where(AIAnalysisTask.user_id == learner_id, PracticeRecord.sentence_id == sentence.sentence_id)
                .order_by(col(AIAnalysisTask.created_at).desc())
            )
        )
        values = [s for _, s in scored if s is not None]
        out.append(
            {
                "assignment_id": a.assignment_id,
                "learner_id": a.learner_id,
                "sentence_id": sentence.sentence_id,
                "sentence_text": sentence.text,
                "assigned_by": a.assigned_by,
                "created_at": a.created_at,
                "attempts": len(scored),
                "best_overall": max(values) if values else None,
                "last_overall": values[0] if values else None,
                "last_practised_at": scored[0][0] if scored else None,
            }
        )
    return out

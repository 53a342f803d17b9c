"""The therapist's dashboard: each linked learner with a flag (documented in docs/PRACTICE.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from statistics import fmean
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from vocalborn.auth.models import Role, User
from vocalborn.learning import goals
from vocalborn.notify import preferences
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask

INACTIVE_AFTER = timedelta(days=7)
WEEK = timedelta(days=7)
DECLINE_RECENT = 3  # the newest attempts ...
DECLINE_MIN_ATTEMPTS = 5  # ... compared with the older ones of the last 10, once there are this many
DECLINE_POINTS = 10.0  # flagged when the newest mean is this many points lower


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
            .outerjoin(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
            .where(AIAnalysisTask.user_id == learner.user_id, col(AIAnalysisTask.created_at) >= now - WEEK)
            .where(or_(col(AIAnalysisResult.result_id).is_(None), col(AIAnalysisResult.counted)))
        ).one()
        scores = [
            float(s)
            for s in db.exec(
                select(AIAnalysisResult.overall_score)
                .join(AIAnalysisTask, col(AIAnalysisTask.task_id) == col(AIAnalysisResult.task_id))
                .where(AIAnalysisTask.user_id == learner.user_id, col(AIAnalysisResult.overall_score).is_not(None))
                .where(col(AIAnalysisResult.counted))
                .order_by(col(AIAnalysisTask.created_at).desc())
                .limit(10)
            )
            if s is not None
        ]
        reasons = flag_reasons(last, scores, now)
        dose = goals.learner_dose(db, learner.user_id, now)
        practised = bool(goals.counted_attempts_since(db, learner.user_id, now - INACTIVE_AFTER))
        zone = preferences.zone(preferences.get(db, learner.user_id))
        flags = goal_flags(dose, practised, scores, goals.below_dose(dose, now, zone))
        out.append(
            {
                "user_id": learner.user_id,
                "name": learner.name,
                "email": learner.email,
                "last_practice_at": last,
                "attempts_this_week": int(week),
                "mean_overall_last_10": round(fmean(scores), 2) if scores else None,
                "flagged": bool(reasons or flags),
                "flag_reasons": reasons,
                "dose_met_percent": dose,
                "flags": flags,
            }
        )
    out.sort(key=lambda d: not d["flagged"])  # flagged first (stable: then by name)
    return out


def goal_flags(
    dose: float | None, practised_this_week: bool, newest_first_scores: list[float], below_dose: bool
) -> list[str]:
    """Issue #26's flags, from attempts that count only: ``no_practice`` (none in the last 7
    days), ``below_dose`` (``goals.below_dose``: below half the dose expected by now, pro-rated
    by the days of the week over in the learner's time zone), ``falling_scores`` (the decline
    rule). ``dose`` (``dose_met_percent``) is only the share of the whole week's target done."""
    flags = []
    if not practised_this_week:
        flags.append("no_practice")
    if dose is not None and below_dose:
        flags.append("below_dose")
    if _declining(newest_first_scores):
        flags.append("falling_scores")
    return flags


def _declining(newest_first_scores: list[float]) -> bool:
    if len(newest_first_scores) < DECLINE_MIN_ATTEMPTS:
        return False
    recent = fmean(newest_first_scores[:DECLINE_RECENT])
    older = fmean(newest_first_scores[DECLINE_RECENT:])
    return older - recent >= DECLINE_POINTS


def flag_reasons(last_practice: datetime | None, newest_first_scores: list[float], now: datetime) -> list[str]:
    reasons = []
    if last_practice is None:
        reasons.append("never_practised")
    elif now - last_practice > INACTIVE_AFTER:
        reasons.append("inactive")
    if _declining(newest_first_scores):
        reasons.append("declining")
    return reasons

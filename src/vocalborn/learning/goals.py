"""Weekly goals (issue #26): what a learner has done this week against their practice set's
targets, what is due today, their streak, and the dose a therapist sees. Documented in
docs/PRACTICE.md ("Goals and dose").

Only attempts that count (``ai_analysis_results.counted``) are counted. The week is the ISO
week in UTC (Monday 00:00 to Sunday 24:00); a day is a UTC day. Minutes are the recordings'
durations of those attempts.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session, col, select

from vocalborn.auth.models import User
from vocalborn.learning.models import SentenceAssignment
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.practice.service import _visible_sentences as visible_sentences
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.states import TaskStatus

BELOW_DOSE_PERCENT = 50.0  # flagged below half the weekly dose, from the second day of the week
STREAK_LOOKBACK_DAYS = 400


def week_start(now: datetime) -> datetime:
    """Monday 00:00 UTC of ``now``'s week."""
    day = now.date() - timedelta(days=now.weekday())
    return datetime.combine(day, time(0), tzinfo=now.tzinfo)


@dataclass
class Week:
    """A learner's attempts that count, from the start of this week."""

    attempts: dict[uuid.UUID, list[tuple[date, float]]] = field(default_factory=lambda: defaultdict(list))

    def days(self, sentence_id: uuid.UUID | None = None) -> set[date]:
        rows = self.attempts.get(sentence_id, []) if sentence_id else [r for v in self.attempts.values() for r in v]
        return {d for d, _ in rows}


def counted_attempts_since(
    db: Session, learner_id: uuid.UUID, since: datetime
) -> list[tuple[datetime, uuid.UUID, float]]:
    """(asked at, sentence, recording seconds) of the learner's attempts that count since ``since``."""
    stmt = (
        select(AIAnalysisTask.created_at, PracticeRecord.sentence_id, PracticeRecord.audio_duration_seconds)
        .join(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
        .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
        .where(AIAnalysisTask.user_id == learner_id, AIAnalysisTask.status == TaskStatus.SUCCESS.value)
        .where(col(AIAnalysisResult.counted), col(AIAnalysisTask.created_at) >= since)
    )
    return [(at, sid, float(seconds)) for at, sid, seconds in db.exec(stmt)]


def this_week(db: Session, learner_id: uuid.UUID, now: datetime) -> Week:
    week = Week()
    for at, sid, seconds in counted_attempts_since(db, learner_id, week_start(now)):
        week.attempts[sid].append((at.date(), seconds))
    return week


def streak_days(db: Session, learner_id: uuid.UUID, now: datetime) -> int:
    """Consecutive days with an attempt that counts, ending today (or yesterday, when today has
    none yet: the streak is not lost before the day is over)."""
    since = now - timedelta(days=STREAK_LOOKBACK_DAYS)
    days = {at.date() for at, _, _ in counted_attempts_since(db, learner_id, since)}
    day = now.date() if now.date() in days else now.date() - timedelta(days=1)
    n = 0
    while day in days:
        n += 1
        day -= timedelta(days=1)
    return n


def dose_met_percent(assignments: list[SentenceAssignment], week: Week) -> float | None:
    """The share of this week's targets met, 0..100: per kind (attempts, minutes), the attempts
    (minutes) done on each sentence with a target, each capped at its target, over the sum of
    the targets; with both kinds, the lower. None when no assignment has a target."""
    shares = []
    for kind in ("attempts", "minutes"):
        done = target = 0.0
        for a in assignments:
            goal = a.target_attempts_per_week if kind == "attempts" else a.target_minutes_per_week
            if goal is None:
                continue
            rows = week.attempts.get(a.sentence_id, [])
            value = float(len(rows)) if kind == "attempts" else sum(s for _, s in rows) / 60.0
            done += min(value, float(goal))
            target += goal
        if target:
            shares.append(100.0 * done / target)
    return round(min(shares), 1) if shares else None


def expected_share(now: datetime, zone: Any = None) -> float:
    """The share of the weekly dose expected by ``now``: the days of the week already over in the
    learner's time zone (``zone``; UTC without one), over 7. Monday: 0 (nothing is expected
    before a whole day has passed; ``no_practice`` speaks of absence); Tuesday: 1/7; Sunday: 6/7."""
    local = now.astimezone(zone) if zone is not None else now
    return local.weekday() / 7.0


def below_dose(dose: float | None, now: datetime, zone: Any = None) -> bool:
    """Whether ``dose`` (``dose_met_percent``, this week's share of the weekly target) is below
    ``BELOW_DOSE_PERCENT``, once the first day of the learner's week is over (``expected_share``
    above 0): on Monday nobody is behind yet."""
    return dose is not None and expected_share(now, zone) > 0 and dose < BELOW_DOSE_PERCENT


def _due_today(target: float | None, before: float, today: float, days_left: int, spread_days: int) -> float | None:
    """What is left for today of a weekly target: the rest at the start of today spread over the
    days left to practise, less what was done today."""
    if target is None:
        return None
    remaining = max(0.0, target - before)
    return max(0.0, math.ceil(remaining / max(1, min(days_left, spread_days))) - today)


def learner_goals(
    db: Session, learner_id: uuid.UUID, now: datetime | None = None, readers: tuple[User, ...] = ()
) -> dict[str, Any]:
    """The learner's home: each assigned sentence's goal and this week's progress on it, what is
    due today and this week, the streak, minutes and the dose. With ``readers`` (the learner and
    whoever asks), only the assignments whose sentence each of them may see, as the practice set
    lists them (the one sentence rule, issue #23)."""
    now = now or utcnow()
    today = now.date()
    start = week_start(now).date()
    days_left = 7 - today.weekday()  # today included
    week = this_week(db, learner_id, now)
    rows = list(
        db.exec(
            select(SentenceAssignment, Sentence)
            .join(Sentence, col(Sentence.sentence_id) == col(SentenceAssignment.sentence_id))
            .where(SentenceAssignment.learner_id == learner_id, col(Sentence.deleted_at).is_(None))
            .where(*(visible_sentences(r) for r in readers))
            .order_by(col(SentenceAssignment.created_at))
        )
    )
    items = []
    for a, sentence in rows:
        done = week.attempts.get(a.sentence_id, [])
        before = [(d, s) for d, s in done if d < today]
        now_done = [(d, s) for d, s in done if d == today]
        days_before = len({d for d, _ in before})
        spread = days_left if a.days_per_week is None else max(1, a.days_per_week - days_before)
        minutes = round(sum(s for _, s in done) / 60.0, 1)
        due_minutes = _due_today(
            a.target_minutes_per_week,
            sum(s for _, s in before) / 60.0,
            sum(s for _, s in now_done) / 60.0,
            days_left,
            spread,
        )
        due_attempts = _due_today(a.target_attempts_per_week, len(before), len(now_done), days_left, spread)
        targets = [(a.target_attempts_per_week, len(done)), (a.target_minutes_per_week, minutes)]
        given = [(t, v) for t, v in targets if t is not None]
        items.append(
            {
                "sentence_id": a.sentence_id,
                "sentence_text": sentence.text,
                "target_attempts_per_week": a.target_attempts_per_week,
                "target_minutes_per_week": a.target_minutes_per_week,
                "days_per_week": a.days_per_week,
                "due_on": a.due_on,
                "attempts_this_week": len(done),
                "minutes_this_week": minutes,
                "days_practised_this_week": len({d for d, _ in done}),
                "attempts_due_today": None if due_attempts is None else int(due_attempts),
                "minutes_due_today": None if due_minutes is None else round(due_minutes, 1),
                "due_today": a.due_on == today,
                "due_this_week": a.due_on is not None and start <= a.due_on <= start + timedelta(days=6),
                "overdue": a.due_on is not None and a.due_on < today and bool(given) and any(v < t for t, v in given),
                "met": all(v >= t for t, v in given) if given else None,
            }
        )
    assignments = [a for a, _ in rows]
    return {
        "user_id": learner_id,
        "today": today,
        "week_start": start,
        "attempts_this_week": sum(len(v) for v in week.attempts.values()),
        "minutes_this_week": round(sum(s for v in week.attempts.values() for _, s in v) / 60.0, 1),
        "days_practised_this_week": len(week.days()),
        "streak_days": streak_days(db, learner_id, now),
        "dose_met_percent": dose_met_percent(assignments, week),
        "items": items,
    }


def learner_dose(db: Session, learner_id: uuid.UUID, now: datetime) -> float | None:
    assignments = list(
        db.exec(
            select(SentenceAssignment)
            .join(Sentence, col(Sentence.sentence_id) == col(SentenceAssignment.sentence_id))
            .where(SentenceAssignment.learner_id == learner_id, col(Sentence.deleted_at).is_(None))
        )
    )
    if not any(a.target_attempts_per_week or a.target_minutes_per_week for a in assignments):
        return None
    return dose_met_percent(assignments, this_week(db, learner_id, now))

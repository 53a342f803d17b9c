"""What a clinical report says (issue #26), gathered once for the CSV and the PDF alike.

Per learner and date range (days in UTC, both ends included): per ISO week the attempts that
count, those that do not, the minutes, the days practised and the dose met; every analysed attempt
with its four scores on its date (the same time and scores progress gives); per character the
verdicts of the attempts that count per week; the tone confusion matrix (expected tone against the
tone the engine heard, from the per-character verdicts); the therapists' reviews. Documented in
docs/PRACTICE.md ("Clinical report").

Counting follows learning/goals.py and learning/progress.py exactly, so the report's numbers are
the API's: a week is counted by the time the analysis was asked for, an attempt's date on the
score axis is its ``completed_at`` (else ``created_at``), minutes are recording durations of
attempts that count, and the dose applies the learner's current targets to each week.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from vocalborn.auth.models import User
from vocalborn.learning import goals
from vocalborn.learning.models import SCORE_FIELDS, SentenceAssignment, TherapistReview
from vocalborn.learning.progress import ERROR_TYPES, TREND_LAST_N, _never_judged
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.practice.service import sentence_readable_clause
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.states import TaskStatus

MAX_RANGE_DAYS = 366 * 2  # a report covers at most two years
TONES = (1, 2, 3, 4, 5)  # 5: the neutral tone


@dataclass
class WeekRow:
    week_start: date
    attempts: int = 0
    not_counted: int = 0
    seconds: float = 0.0
    days: set[date] = field(default_factory=set)
    dose_met_percent: float | None = None
    # verdicts of judged characters in attempts that count: error_type -> n
    verdicts: Counter[str] = field(default_factory=Counter)

    @property
    def minutes(self) -> float:
        return round(self.seconds / 60.0, 1)


@dataclass
class Attempt:
    task_id: uuid.UUID
    at: datetime
    asked_at: datetime
    sentence_id: uuid.UUID
    sentence_text: str
    duration_seconds: float
    counted: bool
    not_counted_reason: str | None
    scores: dict[str, float | None]
    completeness_score: float | None


@dataclass
class CharacterRow:
    char: str
    pinyin: str | None
    judged: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # error_type -> n (not "none")
    by_week: dict[date, list[int]] = field(default_factory=dict)  # week -> [judged, errors]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class ReviewRow:
    task_id: uuid.UUID
    at: datetime
    therapist_id: uuid.UUID
    therapist_name: str
    sentence_text: str
    scores: dict[str, float | None]
    engine_overall: float | None
    characters: list[str]
    comment: str | None


@dataclass
class Report:
    learner_id: uuid.UUID
    learner_name: str
    first_day: date
    last_day: date
    generated_at: datetime
    weeks: list[WeekRow]
    attempts: list[Attempt]
    characters: list[CharacterRow]
    tone_matrix: dict[tuple[int, int | None], int]  # (expected, heard or None) -> n
    reviews: list[ReviewRow]
    has_targets: bool

    @property
    def counted(self) -> list[Attempt]:
        return [a for a in self.attempts if a.counted]

    def sentences(self) -> list[dict[str, Any]]:
        """Per sentence practised (most attempts first): attempts that count and not, the first
        overall score and the mean of the last three (progress' trend, on this range)."""
        by: dict[uuid.UUID, dict[str, Any]] = {}
        for a in self.attempts:
            s = by.setdefault(a.sentence_id, {"text": a.sentence_text, "counted": [], "not_counted": 0})
            if a.counted:
                if a.scores["overall_score"] is not None:
                    s["counted"].append(a.scores["overall_score"])
            else:
                s["not_counted"] += 1
        out = []
        for s in by.values():
            scores = s["counted"]
            last = scores[-TREND_LAST_N:]
            out.append({
                "text": s["text"], "attempts": len(scores), "not_counted": s["not_counted"],
                "first": scores[0] if scores else None, "last_mean": round(sum(last) / len(last), 2) if last else None,
            })  # fmt: skip
        return sorted(out, key=lambda s: -s["attempts"])


def _start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def gather(db: Session, reader: User, learner: User, first_day: date, last_day: date) -> Report:
    """Everything the report shows; ``reader`` may read ``learner`` (checked by the caller)."""
    since, until = _start(first_day), _start(last_day + timedelta(days=1))
    characters_json = AIAnalysisResult.detailed_analysis["characters"]  # only what the report reads
    columns: list[Any] = [  # many columns: the typed overloads of select stop at fewer
        AIAnalysisTask.task_id,
        AIAnalysisTask.created_at,
        AIAnalysisTask.completed_at,
        PracticeRecord.sentence_id,
        PracticeRecord.audio_duration_seconds,
        Sentence.text,
        AIAnalysisResult.counted,
        AIAnalysisResult.not_counted_reason,
        *(getattr(AIAnalysisResult, f) for f in SCORE_FIELDS),
        AIAnalysisResult.completeness_score,
        characters_json,
    ]
    stmt = (
        sql_select(*columns)
        .join(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
        .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
        .join(Sentence, col(Sentence.sentence_id) == col(PracticeRecord.sentence_id))
        .where(col(AIAnalysisTask.user_id) == learner.user_id, col(AIAnalysisTask.status) == TaskStatus.SUCCESS.value)
        .where(col(AIAnalysisTask.created_at) >= since, col(AIAnalysisTask.created_at) < until)
        .where(sentence_readable_clause(reader, col(AIAnalysisTask.user_id)))
        .order_by(col(AIAnalysisTask.created_at), col(AIAnalysisTask.task_id))
    )
    weeks: dict[date, WeekRow] = {}
    monday = goals.week_start(since).date()
    while monday <= last_day:
        weeks[monday] = WeekRow(monday)
        monday += timedelta(days=7)
    per_week_sentence: dict[date, goals.Week] = defaultdict(goals.Week)
    attempts: list[Attempt] = []
    chars: dict[tuple[str, str | None], CharacterRow] = {}
    matrix: Counter[tuple[int, int | None]] = Counter()
    n_scores = len(SCORE_FIELDS)
    for row in db.execute(stmt):
        task_id, created, completed, sentence_id, seconds, text, counted, reason = row[:8]
        scores = dict(zip(SCORE_FIELDS, row[8 : 8 + n_scores], strict=True))
        completeness, entries = row[8 + n_scores], row[9 + n_scores]
        seconds = float(seconds)
        attempts.append(
            Attempt(task_id, completed or created, created, sentence_id, text, seconds, bool(counted), reason,
                    scores, completeness)
        )  # fmt: skip
        week = weeks[goals.week_start(created).date()]
        if not counted:
            week.not_counted += 1
            continue
        week.attempts += 1
        week.seconds += seconds
        week.days.add(created.date())
        per_week_sentence[week.week_start].attempts[sentence_id].append((created.date(), seconds))
        for entry in entries if isinstance(entries, list) else ():
            _count_character(entry, week, chars, matrix)
    assignments = list(
        db.exec(
            select(SentenceAssignment)
            .join(Sentence, col(Sentence.sentence_id) == col(SentenceAssignment.sentence_id))
            .where(SentenceAssignment.learner_id == learner.user_id, col(Sentence.deleted_at).is_(None))
        )
    )
    has_targets = any(a.target_attempts_per_week or a.target_minutes_per_week for a in assignments)
    if has_targets:
        for start, week in weeks.items():
            week.dose_met_percent = goals.dose_met_percent(assignments, per_week_sentence[start])
    return Report(
        learner_id=learner.user_id,
        learner_name=learner.name,
        first_day=first_day,
        last_day=last_day,
        generated_at=datetime.now(UTC),
        weeks=list(weeks.values()),
        attempts=attempts,
        characters=sorted(chars.values(), key=lambda c: (-c.error_count, -c.judged, c.char)),
        tone_matrix=dict(matrix),
        reviews=_reviews(db, reader, learner, since, until),
        has_targets=has_targets,
    )


def _count_character(
    entry: Any,
    week: WeekRow,
    chars: dict[tuple[str, str | None], CharacterRow],
    matrix: Counter[tuple[int, int | None]],
) -> None:
    """One judged character of an attempt that counts: its verdict, per character and week, and
    its tones. Characters never judged (punctuation) and entries without a verdict are skipped."""
    if not isinstance(entry, dict):
        return
    error_type = entry.get("error_type")
    char = entry.get("char")
    if error_type not in ERROR_TYPES or not isinstance(char, str) or _never_judged(char):
        return
    # numbered pinyin (hao3): every PDF font has its letters; tone marks like ǎ are not in all
    pinyin = next((v for k in ("pinyin", "pinyin_marks") if isinstance(v := entry.get(k), str)), None)
    row = chars.setdefault((char, pinyin), CharacterRow(char, pinyin))
    row.judged += 1
    per_week = row.by_week.setdefault(week.week_start, [0, 0])
    per_week[0] += 1
    week.verdicts[error_type] += 1
    if error_type != "none":
        row.errors[error_type] += 1
        per_week[1] += 1
    expected, heard = entry.get("expected_tone"), entry.get("heard_tone")
    if expected in TONES and error_type != "omission":
        matrix[(expected, heard if heard in TONES else None)] += 1


def _reviews(db: Session, reader: User, learner: User, since: datetime, until: datetime) -> list[ReviewRow]:
    reading: list[Any] = [TherapistReview, AIAnalysisTask, Sentence, User.name, AIAnalysisResult.overall_score]
    stmt = (
        sql_select(*reading)
        .join(AIAnalysisTask, col(AIAnalysisTask.task_id) == col(TherapistReview.task_id))
        .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
        .join(Sentence, col(Sentence.sentence_id) == col(PracticeRecord.sentence_id))
        .join(User, col(User.user_id) == col(TherapistReview.therapist_id))
        .outerjoin(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
        .where(col(AIAnalysisTask.user_id) == learner.user_id)
        .where(col(AIAnalysisTask.created_at) >= since, col(AIAnalysisTask.created_at) < until)
        .where(sentence_readable_clause(reader, col(AIAnalysisTask.user_id)))
        .order_by(col(TherapistReview.updated_at), col(TherapistReview.review_id))
    )
    out = []
    for review, task, sentence, name, engine_overall in db.execute(stmt):
        marked = [
            str(c.get("char", ""))
            for c in review.characters or []
            if isinstance(c, dict) and c.get("deviating") and c.get("char")
        ]
        out.append(
            ReviewRow(
                task_id=task.task_id,
                at=review.updated_at,
                therapist_id=review.therapist_id,
                therapist_name=name,
                sentence_text=sentence.text,
                scores={f: getattr(review, f) for f in SCORE_FIELDS},
                engine_overall=engine_overall,
                characters=marked,
                comment=review.comment,
            )
        )
    return out

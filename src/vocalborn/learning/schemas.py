from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Score = Field(default=None, ge=0, le=100)


class Scores(BaseModel):
    overall_score: float | None = None
    pronunciation_accuracy: float | None = None
    fluency_score: float | None = None
    rhythm_score: float | None = None


class ReviewSummary(Scores):
    therapist_id: uuid.UUID
    comment: str | None
    updated_at: datetime


class HistoryItem(Scores):
    task_id: uuid.UUID
    practice_record_id: uuid.UUID
    practice_session_id: uuid.UUID
    sentence_id: uuid.UUID
    sentence_text: str
    user_id: uuid.UUID
    status: str
    created_at: datetime
    completed_at: datetime | None
    completeness_score: float | None = Field(
        default=None,
        description="share 0..100 of the sentence's judged characters the attempt said; null before the "
        "analysis succeeded and for results older than the measure",
    )
    review: ReviewSummary | None = Field(default=None, description="the latest therapist review, if any")
    counted: bool | None = Field(
        default=None,
        description="whether the attempt counts in trends, means, dose and flags; null before the analysis succeeded",
    )
    not_counted_reason: str | None = Field(
        default=None, description="when it does not count: silent, too_short or wrong_sentence"
    )
    not_counted_text: str | None = Field(default=None, description="the reason in the caller's language")


class HistoryPage(BaseModel):
    items: list[HistoryItem]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null at the end")


class ProgressPoint(Scores):
    task_id: uuid.UUID
    practice_record_id: uuid.UUID
    at: datetime
    deviating_characters: list[str] | None = Field(
        description="characters the engine marked as deviating; null when the result has no per-character data"
    )


class CharacterProgress(BaseModel):
    index: int
    char: str
    attempts: int
    deviating_count: int
    first_deviating: bool
    last_deviating: bool
    improved: bool = Field(description="deviating in the first attempt, not in the last")


class ScoreTrend(BaseModel):
    first: float | None
    last_n_mean: float | None
    change: float | None = Field(description="last_n_mean minus first")
    slope_per_attempt: float | None = Field(description="least-squares slope over the attempts, points per attempt")


class SentenceProgress(BaseModel):
    sentence_id: uuid.UUID
    sentence_text: str
    attempts: int = Field(description="attempts that count (the points)")
    not_counted_attempts: int = Field(
        default=0, description="analysed attempts left out (silent, too short, another sentence)"
    )
    points: list[ProgressPoint]
    trend: dict[str, ScoreTrend] = Field(description="per score field")
    last_n: int
    characters: list[CharacterProgress]
    improved_characters: list[str]
    still_deviating: list[str]


class ProgressResponse(BaseModel):
    user_id: uuid.UUID
    sentences: list[SentenceProgress]


class DashboardLearner(BaseModel):
    user_id: uuid.UUID
    name: str
    email: str
    last_practice_at: datetime | None
    attempts_this_week: int = Field(
        description="analyses asked for in the last 7 days, without those that do not count"
    )
    mean_overall_last_10: float | None
    flagged: bool
    flag_reasons: list[str] = Field(description="never_practised, inactive (no attempt in 7 days), declining")
    dose_met_percent: float | None = Field(
        default=None,
        description="share 0..100 of this week's targets met (attempts that count only); null without targets",
    )
    flags: list[str] = Field(
        default_factory=list,
        description="no_practice (no attempt that counts in 7 days), below_dose (below half the dose expected by now: the weekly dose pro-rated by the days of the week over in the learner's time zone; never on Monday), "
        "falling_scores",
    )


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in_hours: int = Field(default=72, ge=1, le=720)


class InvitationPublic(BaseModel):
    invitation_id: uuid.UUID
    code: str | None = Field(
        description="the code to give the learner: in the answer that creates it only (it is stored hashed); "
        "null in listings"
    )
    url: str | None = Field(
        description="the page with the code filled in, a link to send instead of the code: in the answer "
        "that creates it only; null in listings"
    )
    qr_svg: str | None = Field(
        default=None,
        description="``url`` as a QR code (an SVG document, made on the server without any network): in the "
        "answer that creates it only; null in listings",
    )
    expires_at: datetime
    used_at: datetime | None
    created_at: datetime


class AcceptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=4, max_length=32)


class PersonPublic(BaseModel):
    user_id: uuid.UUID
    name: str
    email: str


class LinkPublic(BaseModel):
    learner: PersonPublic
    therapist: PersonPublic | None


class CharacterMark(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, le=10_000)
    char: str = Field(min_length=1, max_length=8)
    deviating: bool = Field(description="the therapist hears this character as off")
    note: str | None = Field(default=None, max_length=500)


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overall_score: float | None = Score
    pronunciation_accuracy: float | None = Score
    fluency_score: float | None = Score
    rhythm_score: float | None = Score
    characters: list[CharacterMark] | None = Field(default=None, max_length=1000)
    comment: str | None = Field(default=None, max_length=5000)

    @model_validator(mode="after")
    def _something(self) -> ReviewRequest:
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("a review needs at least one score, a character mark or a comment")
        return self


class ReviewRevision(Scores):
    version: int
    characters: list[dict[str, Any]] | None
    comment: str | None
    created_at: datetime


class ReviewPublic(Scores):
    review_id: uuid.UUID
    task_id: uuid.UUID
    therapist_id: uuid.UUID
    therapist_name: str | None
    characters: list[dict[str, Any]] | None
    comment: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    history: list[ReviewRevision] | None = Field(default=None, description="every saved version, with ?history=true")


class TaskReviews(BaseModel):
    task_id: uuid.UUID
    engine: Scores | None = Field(description="the engine's scores, null until the analysis succeeded")
    reviews: list[ReviewPublic]


class AssignmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sentence_id: uuid.UUID
    target_attempts_per_week: int | None = Field(default=None, ge=1, le=100, description="attempts a week")
    target_minutes_per_week: int | None = Field(default=None, ge=1, le=1000, description="minutes of practice a week")
    days_per_week: int | None = Field(default=None, ge=1, le=7, description="on how many days a week")
    due_on: date | None = Field(default=None, description="the date it is due by (not in the past)")

    @model_validator(mode="after")
    def _sensible(self) -> AssignmentCreate:
        if self.due_on is not None and self.due_on < datetime.now(UTC).date():
            raise ValueError("due_on: the date is in the past")
        if (
            self.days_per_week is not None
            and self.target_attempts_per_week is not None
            and self.days_per_week > self.target_attempts_per_week
        ):
            raise ValueError("days_per_week: more practice days than target_attempts_per_week attempts")
        return self

    def goals(self) -> dict[str, Any]:
        """The goal fields the request gave (an update leaves the others as they are)."""
        return {k: getattr(self, k) for k in GOAL_FIELDS if k in self.model_fields_set}


GOAL_FIELDS = ("target_attempts_per_week", "target_minutes_per_week", "days_per_week", "due_on")


class AssignmentPublic(BaseModel):
    assignment_id: uuid.UUID
    learner_id: uuid.UUID
    sentence_id: uuid.UUID
    sentence_text: str
    assigned_by: uuid.UUID | None
    created_at: datetime
    attempts: int
    best_overall: float | None
    last_overall: float | None
    last_practised_at: datetime | None
    target_attempts_per_week: int | None = None
    target_minutes_per_week: int | None = None
    days_per_week: int | None = None
    due_on: date | None = None


class GoalItem(BaseModel):
    sentence_id: uuid.UUID
    sentence_text: str
    target_attempts_per_week: int | None
    target_minutes_per_week: int | None
    days_per_week: int | None
    due_on: date | None
    attempts_this_week: int
    minutes_this_week: float
    days_practised_this_week: int
    attempts_due_today: int | None = Field(description="what is left for today of the weekly attempts; null without")
    minutes_due_today: float | None = Field(description="what is left for today of the weekly minutes; null without")
    due_today: bool = Field(description="due_on is today")
    due_this_week: bool = Field(description="due_on falls in this week")
    overdue: bool = Field(description="due_on has passed and this week's target is not met")
    met: bool | None = Field(description="this week's targets are met; null without targets")


class LearnerGoals(BaseModel):
    user_id: uuid.UUID
    today: date = Field(description="the UTC day the figures are for")
    week_start: date = Field(description="Monday of this (ISO, UTC) week")
    attempts_this_week: int = Field(description="attempts that count, every sentence")
    minutes_this_week: float
    days_practised_this_week: int
    streak_days: int = Field(description="consecutive days with an attempt that counts, up to today or yesterday")
    dose_met_percent: float | None
    items: list[GoalItem]

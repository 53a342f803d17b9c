from __future__ import annotations

import uuid
from datetime import datetime
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


class InvitationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in_hours: int = Field(default=72, ge=1, le=720)


class InvitationPublic(BaseModel):
    invitation_id: uuid.UUID
    code: str
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

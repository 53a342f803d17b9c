"""Invitations that link a learner to a therapist, therapist reviews (with their history) and
practice sets (sentences a therapist assigns to a learner)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import BigIntPK, JSONType, UTCDateTime, utcnow

SCORE_FIELDS = ("overall_score", "pronunciation_accuracy", "fluency_score", "rhythm_score")


def _score_range(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} IS NULL OR ({column} >= 0 AND {column} <= 100)", name=f"{column}_range")


def _score_column() -> Any:
    return Column(Numeric(5, 2, asdecimal=False), nullable=True)


class LinkInvitation(SQLModel, table=True):
    """A code a therapist gives a learner; accepting it links them. Expiring and single use. Only a
    keyed digest of the code is stored (``links.code_digest``): a database dump holds no usable code."""

    __tablename__ = "link_invitations"

    invitation_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    code_sha256: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    therapist_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    used_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="SET NULL"), nullable=True)
    )


class TherapistReview(SQLModel, table=True):
    """A therapist's own judgement of one analysed attempt: one per therapist and task, editable."""

    __tablename__ = "therapist_reviews"
    __table_args__ = (
        UniqueConstraint("task_id", "therapist_id", name="uq_therapist_reviews_task_id_therapist_id"),
        *(_score_range(c) for c in SCORE_FIELDS),
    )

    review_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    task_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("ai_analysis_tasks.task_id", ondelete="CASCADE"), nullable=False, index=True)
    )
    therapist_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False, index=True)
    )
    overall_score: float | None = Field(default=None, sa_column=_score_column())
    pronunciation_accuracy: float | None = Field(default=None, sa_column=_score_column())
    fluency_score: float | None = Field(default=None, sa_column=_score_column())
    rhythm_score: float | None = Field(default=None, sa_column=_score_column())
    characters: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False, server_default="1"))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class TherapistReviewRevision(SQLModel, table=True):
    """Every saved version of a review, append-only: edits never lose what was said before."""

    __tablename__ = "therapist_review_revisions"
    __table_args__ = (UniqueConstraint("review_id", "version", name="uq_therapist_review_revisions_review_id_version"),)

    revision_id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    review_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("therapist_reviews.review_id", ondelete="CASCADE"), nullable=False)
    )
    version: int = Field(sa_column=Column(Integer, nullable=False))
    overall_score: float | None = Field(default=None, sa_column=_score_column())
    pronunciation_accuracy: float | None = Field(default=None, sa_column=_score_column())
    fluency_score: float | None = Field(default=None, sa_column=_score_column())
    rhythm_score: float | None = Field(default=None, sa_column=_score_column())
    characters: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class SentenceAssignment(SQLModel, table=True):
    """A sentence a therapist put in a learner's practice set."""

    __tablename__ = "sentence_assignments"
    __table_args__ = (
        UniqueConstraint("learner_id", "sentence_id", name="uq_sentence_assignments_learner_id_sentence_id"),
        CheckConstraint(
            "target_attempts_per_week IS NULL OR (target_attempts_per_week >= 1 AND target_attempts_per_week <= 100)",
            name="target_attempts_per_week_range",
        ),
        CheckConstraint(
            "target_minutes_per_week IS NULL OR (target_minutes_per_week >= 1 AND target_minutes_per_week <= 1000)",
            name="target_minutes_per_week_range",
        ),
        CheckConstraint(
            "days_per_week IS NULL OR (days_per_week >= 1 AND days_per_week <= 7)", name="days_per_week_range"
        ),
    )

    assignment_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    learner_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False, index=True)
    )
    sentence_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("sentences.sentence_id", ondelete="CASCADE"), nullable=False)
    )
    assigned_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="SET NULL"), nullable=True)
    )
    # The weekly goal (issue #26), all optional: attempts and/or minutes a week, on how many days,
    # and a date it is due by. Counted from attempts that count only (learning/goals.py).
    target_attempts_per_week: int | None = Field(default=None, sa_column=Column(SmallInteger, nullable=True))
    target_minutes_per_week: int | None = Field(default=None, sa_column=Column(SmallInteger, nullable=True))
    days_per_week: int | None = Field(default=None, sa_column=Column(SmallInteger, nullable=True))
    due_on: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

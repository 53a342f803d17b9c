from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Column, Float, ForeignKey, String, Text, Uuid, false, true
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import UTCDateTime, utcnow


class RecordStatus(StrEnum):
    RECORDED = "RECORDED"
    AI_QUEUED = "AI_QUEUED"
    AI_PROCESSING = "AI_PROCESSING"
    AI_ANALYZED = "AI_ANALYZED"
    AI_FAILED = "AI_FAILED"


_RECORD_STATUSES = ", ".join(f"'{s.value}'" for s in RecordStatus)


class Sentence(SQLModel, table=True):
    """A course sentence and the therapist's reference recording of it."""

    __tablename__ = "sentences"

    sentence_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    text: str = Field(sa_column=Column(Text, nullable=False))
    reference_audio_key: str = Field(sa_column=Column(String(255), nullable=False))
    reference_audio_format: str = Field(sa_column=Column(String(16), nullable=False))
    reference_duration_seconds: float = Field(sa_column=Column(Float, nullable=False))
    created_by: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.user_id"), nullable=False, index=True))
    # Visible to every learner (set by an admin or the author); otherwise only the author's learners see it.
    shared: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # Soft delete (issue #26): a deleted sentence leaves the lists, practice sets and goals and takes
    # no new recordings; the attempts made of it, their results and its reference stay readable.
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    updated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class PracticeSession(SQLModel, table=True):
    __tablename__ = "practice_sessions"

    practice_session_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.user_id"), nullable=False, index=True))
    title: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class PracticeRecord(SQLModel, table=True):
    """One recorded attempt at a sentence inside a practice session."""

    __tablename__ = "practice_records"
    __table_args__ = (CheckConstraint(f"record_status IN ({_RECORD_STATUSES})", name="record_status"),)

    practice_record_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    practice_session_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("practice_sessions.practice_session_id"), nullable=False, index=True)
    )
    sentence_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("sentences.sentence_id"), nullable=False, index=True)
    )
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.user_id"), nullable=False, index=True))
    audio_key: str = Field(sa_column=Column(String(255), nullable=False))
    audio_format: str = Field(sa_column=Column(String(16), nullable=False))
    audio_size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    audio_duration_seconds: float = Field(sa_column=Column(Float, nullable=False))
    record_status: str = Field(
        default=RecordStatus.RECORDED.value,
        sa_column=Column(String(20), nullable=False, server_default=RecordStatus.RECORDED.value),
    )
    # The latest analysis task of this record. The FK is added after ai_analysis_tasks exists
    # (the two tables point at each other), hence use_alter.
    ai_task_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(
            Uuid,
            ForeignKey("ai_analysis_tasks.task_id", use_alter=True, ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
    )
    # Set when the raw audio was deleted (RETENTION_RECORDINGS_DAYS); the scores stay.
    audio_deleted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Whether the latest analysis counts (practice/counting.py): a silent, too short or other
    # sentence's attempt is kept but left out of trends, means, dose and flags (issue #26).
    counted: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, server_default=true()))
    not_counted_reason: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

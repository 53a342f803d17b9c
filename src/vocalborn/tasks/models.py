"""The plan's ai_analysis_tasks and ai_analysis_results, and the append-only event log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
    false,
    text,
    true,
)
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import BigIntPK, JSONType, UTCDateTime, utcnow
from vocalborn.tasks.states import ACTIVE_STATUSES, TaskStatus

_STATUSES = ", ".join(f"'{s.value}'" for s in TaskStatus)
_ACTIVE = ", ".join(f"'{s}'" for s in sorted(ACTIVE_STATUSES))


class AIAnalysisTask(SQLModel, table=True):
    __tablename__ = "ai_analysis_tasks"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
        CheckConstraint("retry_count >= 0", name="retry_count_nonnegative"),
        Index("ix_ai_analysis_tasks_status_created_at", "status", "created_at"),
        # A learner's history, newest first, cursor-paged: read in index order however large the
        # table grows (without it, PostgreSQL walks created_at backwards filtering by user).
        Index("ix_ai_analysis_tasks_user_created_at", "user_id", "created_at", "task_id"),
        # What finished lately, by status (the admin stats' windows: on PostgreSQL an index-only
        # scan, the columns they read included) and what aged out (the retention cleanup, one
        # status at a time, oldest first: never a walk over the rows that stay).
        Index(
            "ix_ai_analysis_tasks_status_completed_at",
            "status",
            "completed_at",
            postgresql_include=["created_at", "started_at"],
        ),
        # At most one active task per record: resubmitting returns the active one, and two
        # racing submits cannot both win.
        Index(
            "uq_ai_analysis_tasks_active_record",
            "practice_record_id",
            unique=True,
            postgresql_where=text(f"status IN ({_ACTIVE})"),
            sqlite_where=text(f"status IN ({_ACTIVE})"),
        ),
        # A client's Idempotency-Key names one submit of one user (NULLs never collide).
        Index("uq_ai_analysis_tasks_user_idempotency_key", "user_id", "idempotency_key", unique=True),
    )

    task_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    # We publish with the task's own UUID as the Celery id, so this is known before publishing.
    celery_task_id: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    practice_record_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("practice_records.practice_record_id"), nullable=False, index=True)
    )
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.user_id"), nullable=False, index=True))
    status: str = Field(
        default=TaskStatus.PENDING.value,
        sa_column=Column(String(20), nullable=False, server_default=TaskStatus.PENDING.value, index=True),
    )
    task_type: str = Field(
        default="audio_analysis",
        sa_column=Column(String(50), nullable=False, server_default="audio_analysis"),
    )
    task_params: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))

    worker_name: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    progress: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    current_step: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))

    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    retry_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    max_retries: int = Field(default=3, sa_column=Column(Integer, nullable=False, server_default="3"))

    # Beyond the plan: how many times a worker claimed the task (a fencing token for every write
    # of that run), its heartbeat, when it may run next, and a cancel flag checked at each step.
    attempt: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # Claims since the task was last (re)submitted; capped by TASK_MAX_DELIVERIES. ``attempt``
    # never goes back (it fences writes); this one restarts when an admin retries the task.
    deliveries: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    cancel_requested_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    publish_count: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    request_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    # The submit's Idempotency-Key header and a hash of its body: the same key with the same body
    # within IDEMPOTENCY_WINDOW returns this task; with another body it is refused.
    idempotency_key: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    request_fingerprint: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))

    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


def _score_check(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} >= 0 AND {column} <= 100", name=f"{column}_range")


class AIAnalysisResult(SQLModel, table=True):
    __tablename__ = "ai_analysis_results"
    __table_args__ = (
        _score_check("overall_score"),
        _score_check("pronunciation_accuracy"),
        _score_check("fluency_score"),
        _score_check("rhythm_score"),
        _score_check("completeness_score"),
    )

    result_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    # Unique: one result per task, whatever the number of deliveries.
    task_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("ai_analysis_tasks.task_id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    overall_score: float | None = Field(default=None, sa_column=Column(Numeric(5, 2, asdecimal=False)))
    pronunciation_accuracy: float | None = Field(default=None, sa_column=Column(Numeric(5, 2, asdecimal=False)))
    fluency_score: float | None = Field(default=None, sa_column=Column(Numeric(5, 2, asdecimal=False)))
    rhythm_score: float | None = Field(default=None, sa_column=Column(Numeric(5, 2, asdecimal=False)))
    # Share (0..100) of the reference's judged characters the attempt said (issue #22); null for
    # results older than it and for analyses without sentence text.
    completeness_score: float | None = Field(default=None, sa_column=Column(Numeric(5, 2, asdecimal=False)))
    # Whether the attempt counts, decided when the result is stored (practice/counting.py): a
    # silent, too short or other sentence's attempt is kept but left out of trends, means, dose
    # and flags (issue #26). ``not_counted_reason``: silent, too_short, wrong_sentence.
    counted: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, server_default=true()))
    not_counted_reason: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    detailed_analysis: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    sentence_analyses: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    suggestions: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    improvement_areas: list[str] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    analysis_model_version: str | None = Field(default=None, sa_column=Column(String(50), nullable=True))
    # The local engine analysed it because the remote service's circuit was open (issue #27).
    engine_fallback: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=false()))
    processing_time_seconds: float | None = Field(default=None, sa_column=Column(Numeric(10, 3, asdecimal=False)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))


class AIAnalysisTaskEvent(SQLModel, table=True):
    """Append-only history of a task: audit trail, WebSocket replay, and failure forensics."""

    __tablename__ = "ai_analysis_task_events"
    __table_args__ = (Index("ix_ai_analysis_task_events_task_id_event_id", "task_id", "event_id"),)

    event_id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    task_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("ai_analysis_tasks.task_id", ondelete="CASCADE"), nullable=False)
    )
    event_type: str = Field(sa_column=Column(String(20), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    progress: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    current_step: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    attempt: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    worker_name: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))


class AIAnalysisTaskStatusCount(SQLModel, table=True):
    """How many tasks are in each status, as deltas summed by status (PostgreSQL only).

    Triggers on ``ai_analysis_tasks`` (migration 0007) append a row per statement and status
    that changes the count, in the writer's transaction, so a snapshot's sums are exactly its
    ``count(*) ... GROUP BY status``. Append-only for writers (no row is ever updated, so no
    writer waits on another); the admin stats and the retention cleanup fold the rows into one
    per status (``stats.status_counts``). SQLite keeps none: it counts the table."""

    __tablename__ = "ai_analysis_task_status_counts"

    count_id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    n: int = Field(sa_column=Column(BigInteger, nullable=False))

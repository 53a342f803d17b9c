"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 21:33:34.897808
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import vocalborn.sqltypes

Text = sa.Text

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("therapist_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('learner', 'therapist', 'admin')", name=op.f("ck_users_role")),
        sa.ForeignKeyConstraint(
            ["therapist_id"], ["users.user_id"], name=op.f("fk_users_therapist_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_therapist_id"), ["therapist_id"], unique=False)

    op.create_table(
        "practice_sessions",
        sa.Column("practice_session_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], name=op.f("fk_practice_sessions_user_id_users")),
        sa.PrimaryKeyConstraint("practice_session_id", name=op.f("pk_practice_sessions")),
    )
    with op.batch_alter_table("practice_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_practice_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "sentences",
        sa.Column("sentence_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reference_audio_key", sa.String(length=255), nullable=False),
        sa.Column("reference_audio_format", sa.String(length=16), nullable=False),
        sa.Column("reference_duration_seconds", sa.Float(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["users.user_id"], name=op.f("fk_sentences_created_by_users")),
        sa.PrimaryKeyConstraint("sentence_id", name=op.f("pk_sentences")),
    )
    with op.batch_alter_table("sentences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sentences_created_by"), ["created_by"], unique=False)

    op.create_table(
        "practice_records",
        sa.Column("practice_record_id", sa.Uuid(), nullable=False),
        sa.Column("practice_session_id", sa.Uuid(), nullable=False),
        sa.Column("sentence_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("audio_key", sa.String(length=255), nullable=False),
        sa.Column("audio_format", sa.String(length=16), nullable=False),
        sa.Column("audio_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("audio_duration_seconds", sa.Float(), nullable=False),
        sa.Column("record_status", sa.String(length=20), server_default="RECORDED", nullable=False),
        sa.Column("ai_task_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "record_status IN ('RECORDED', 'AI_QUEUED', 'AI_PROCESSING', 'AI_ANALYZED', 'AI_FAILED')",
            name=op.f("ck_practice_records_record_status"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_session_id"],
            ["practice_sessions.practice_session_id"],
            name=op.f("fk_practice_records_practice_session_id_practice_sessions"),
        ),
        sa.ForeignKeyConstraint(
            ["sentence_id"], ["sentences.sentence_id"], name=op.f("fk_practice_records_sentence_id_sentences")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], name=op.f("fk_practice_records_user_id_users")),
        sa.PrimaryKeyConstraint("practice_record_id", name=op.f("pk_practice_records")),
    )
    with op.batch_alter_table("practice_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_practice_records_ai_task_id"), ["ai_task_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_practice_records_practice_session_id"), ["practice_session_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_practice_records_sentence_id"), ["sentence_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_practice_records_user_id"), ["user_id"], unique=False)

    op.create_table(
        "ai_analysis_tasks",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("celery_task_id", sa.String(length=255), nullable=False),
        sa.Column("practice_record_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("task_type", sa.String(length=50), server_default="audio_analysis", nullable=False),
        sa.Column(
            "task_params", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=True
        ),
        sa.Column("worker_name", sa.String(length=100), nullable=True),
        sa.Column("started_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("progress", sa.Integer(), server_default="0", nullable=False),
        sa.Column("current_step", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("retry_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_retries", sa.Integer(), server_default="3", nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("heartbeat_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_requested_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("publish_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'retry', 'success', 'failure', 'cancelled')",
            name=op.f("ck_ai_analysis_tasks_status"),
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 100", name=op.f("ck_ai_analysis_tasks_progress_range")),
        sa.CheckConstraint("retry_count >= 0", name=op.f("ck_ai_analysis_tasks_retry_count_nonnegative")),
        sa.ForeignKeyConstraint(
            ["practice_record_id"],
            ["practice_records.practice_record_id"],
            name=op.f("fk_ai_analysis_tasks_practice_record_id_practice_records"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], name=op.f("fk_ai_analysis_tasks_user_id_users")),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_ai_analysis_tasks")),
        sa.UniqueConstraint("celery_task_id", name=op.f("uq_ai_analysis_tasks_celery_task_id")),
    )
    with op.batch_alter_table("ai_analysis_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_analysis_tasks_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ai_analysis_tasks_practice_record_id"), ["practice_record_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ai_analysis_tasks_status"), ["status"], unique=False)
        batch_op.create_index("ix_ai_analysis_tasks_status_created_at", ["status", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_ai_analysis_tasks_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            "uq_ai_analysis_tasks_active_record",
            ["practice_record_id"],
            unique=True,
            postgresql_where=sa.text("status IN ('pending', 'processing', 'retry')"),
            sqlite_where=sa.text("status IN ('pending', 'processing', 'retry')"),
        )

    # practice_records and ai_analysis_tasks point at each other: add this FK once both exist.
    with op.batch_alter_table("practice_records", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_practice_records_ai_task_id_ai_analysis_tasks"),
            "ai_analysis_tasks",
            ["ai_task_id"],
            ["task_id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "ai_analysis_results",
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("overall_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("pronunciation_accuracy", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("fluency_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("rhythm_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column(
            "detailed_analysis",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "sentence_analyses",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("suggestions", sa.Text(), nullable=True),
        sa.Column(
            "improvement_areas",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("analysis_model_version", sa.String(length=50), nullable=True),
        sa.Column("processing_time_seconds", sa.Numeric(precision=10, scale=3, asdecimal=False), nullable=True),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "fluency_score >= 0 AND fluency_score <= 100", name=op.f("ck_ai_analysis_results_fluency_score_range")
        ),
        sa.CheckConstraint(
            "overall_score >= 0 AND overall_score <= 100", name=op.f("ck_ai_analysis_results_overall_score_range")
        ),
        sa.CheckConstraint(
            "pronunciation_accuracy >= 0 AND pronunciation_accuracy <= 100",
            name=op.f("ck_ai_analysis_results_pronunciation_accuracy_range"),
        ),
        sa.CheckConstraint(
            "rhythm_score >= 0 AND rhythm_score <= 100", name=op.f("ck_ai_analysis_results_rhythm_score_range")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["ai_analysis_tasks.task_id"],
            name=op.f("fk_ai_analysis_results_task_id_ai_analysis_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("result_id", name=op.f("pk_ai_analysis_results")),
        sa.UniqueConstraint("task_id", name=op.f("uq_ai_analysis_results_task_id")),
    )
    with op.batch_alter_table("ai_analysis_results", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_analysis_results_created_at"), ["created_at"], unique=False)

    op.create_table(
        "ai_analysis_task_events",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("current_step", sa.String(length=100), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker_name", sa.String(length=100), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["ai_analysis_tasks.task_id"],
            name=op.f("fk_ai_analysis_task_events_task_id_ai_analysis_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_ai_analysis_task_events")),
    )
    with op.batch_alter_table("ai_analysis_task_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ai_analysis_task_events_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_ai_analysis_task_events_task_id_event_id", ["task_id", "event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("practice_records", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_practice_records_ai_task_id_ai_analysis_tasks"), type_="foreignkey")
    with op.batch_alter_table("ai_analysis_task_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ai_analysis_task_events_task_id_event_id")
        batch_op.drop_index(batch_op.f("ix_ai_analysis_task_events_created_at"))

    op.drop_table("ai_analysis_task_events")
    with op.batch_alter_table("ai_analysis_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ai_analysis_results_created_at"))

    op.drop_table("ai_analysis_results")
    with op.batch_alter_table("ai_analysis_tasks", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_ai_analysis_tasks_active_record",
            postgresql_where=sa.text("status IN ('pending', 'processing', 'retry')"),
            sqlite_where=sa.text("status IN ('pending', 'processing', 'retry')"),
        )
        batch_op.drop_index(batch_op.f("ix_ai_analysis_tasks_user_id"))
        batch_op.drop_index("ix_ai_analysis_tasks_status_created_at")
        batch_op.drop_index(batch_op.f("ix_ai_analysis_tasks_status"))
        batch_op.drop_index(batch_op.f("ix_ai_analysis_tasks_practice_record_id"))
        batch_op.drop_index(batch_op.f("ix_ai_analysis_tasks_created_at"))

    op.drop_table("ai_analysis_tasks")
    with op.batch_alter_table("practice_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practice_records_user_id"))
        batch_op.drop_index(batch_op.f("ix_practice_records_sentence_id"))
        batch_op.drop_index(batch_op.f("ix_practice_records_practice_session_id"))
        batch_op.drop_index(batch_op.f("ix_practice_records_ai_task_id"))

    op.drop_table("practice_records")
    with op.batch_alter_table("sentences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sentences_created_by"))

    op.drop_table("sentences")
    with op.batch_alter_table("practice_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practice_sessions_user_id"))

    op.drop_table("practice_sessions")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_therapist_id"))

    op.drop_table("users")

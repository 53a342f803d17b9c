"""learning: invitations reviews assignments

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 20:35:01.809392
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import vocalborn.sqltypes

Text = sa.Text

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_invitations",
        sa.Column("invitation_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("therapist_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["therapist_id"], ["users.user_id"], name=op.f("fk_link_invitations_therapist_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["used_by"], ["users.user_id"], name=op.f("fk_link_invitations_used_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("invitation_id", name=op.f("pk_link_invitations")),
        sa.UniqueConstraint("code", name=op.f("uq_link_invitations_code")),
    )
    with op.batch_alter_table("link_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_invitations_therapist_id"), ["therapist_id"], unique=False)

    op.create_table(
        "sentence_assignments",
        sa.Column("assignment_id", sa.Uuid(), nullable=False),
        sa.Column("learner_id", sa.Uuid(), nullable=False),
        sa.Column("sentence_id", sa.Uuid(), nullable=False),
        sa.Column("assigned_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_by"],
            ["users.user_id"],
            name=op.f("fk_sentence_assignments_assigned_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["learner_id"], ["users.user_id"], name=op.f("fk_sentence_assignments_learner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sentence_id"],
            ["sentences.sentence_id"],
            name=op.f("fk_sentence_assignments_sentence_id_sentences"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assignment_id", name=op.f("pk_sentence_assignments")),
        sa.UniqueConstraint("learner_id", "sentence_id", name="uq_sentence_assignments_learner_id_sentence_id"),
    )
    with op.batch_alter_table("sentence_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sentence_assignments_learner_id"), ["learner_id"], unique=False)

    op.create_table(
        "therapist_reviews",
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("therapist_id", sa.Uuid(), nullable=False),
        sa.Column("overall_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("pronunciation_accuracy", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("fluency_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("rhythm_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column(
            "characters", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=True
        ),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "fluency_score IS NULL OR (fluency_score >= 0 AND fluency_score <= 100)",
            name=op.f("ck_therapist_reviews_fluency_score_range"),
        ),
        sa.CheckConstraint(
            "overall_score IS NULL OR (overall_score >= 0 AND overall_score <= 100)",
            name=op.f("ck_therapist_reviews_overall_score_range"),
        ),
        sa.CheckConstraint(
            "pronunciation_accuracy IS NULL OR (pronunciation_accuracy >= 0 AND pronunciation_accuracy <= 100)",
            name=op.f("ck_therapist_reviews_pronunciation_accuracy_range"),
        ),
        sa.CheckConstraint(
            "rhythm_score IS NULL OR (rhythm_score >= 0 AND rhythm_score <= 100)",
            name=op.f("ck_therapist_reviews_rhythm_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["ai_analysis_tasks.task_id"],
            name=op.f("fk_therapist_reviews_task_id_ai_analysis_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["therapist_id"],
            ["users.user_id"],
            name=op.f("fk_therapist_reviews_therapist_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("review_id", name=op.f("pk_therapist_reviews")),
        sa.UniqueConstraint("task_id", "therapist_id", name="uq_therapist_reviews_task_id_therapist_id"),
    )
    with op.batch_alter_table("therapist_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_therapist_reviews_task_id"), ["task_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_therapist_reviews_therapist_id"), ["therapist_id"], unique=False)

    op.create_table(
        "therapist_review_revisions",
        sa.Column(
            "revision_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("overall_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("pronunciation_accuracy", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("fluency_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column("rhythm_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True),
        sa.Column(
            "characters", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=True
        ),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["therapist_reviews.review_id"],
            name=op.f("fk_therapist_review_revisions_review_id_therapist_reviews"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("revision_id", name=op.f("pk_therapist_review_revisions")),
        sa.UniqueConstraint("review_id", "version", name="uq_therapist_review_revisions_review_id_version"),
    )


def downgrade() -> None:
    op.drop_table("therapist_review_revisions")
    with op.batch_alter_table("therapist_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_therapist_reviews_therapist_id"))
        batch_op.drop_index(batch_op.f("ix_therapist_reviews_task_id"))

    op.drop_table("therapist_reviews")
    with op.batch_alter_table("sentence_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sentence_assignments_learner_id"))

    op.drop_table("sentence_assignments")
    with op.batch_alter_table("link_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_link_invitations_therapist_id"))

    op.drop_table("link_invitations")

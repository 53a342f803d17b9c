"""learner activity: the event-sourced projection of practice per learner per day

Revision ID: 0016_hooks_learner_activity
Revises: 0015_hooks_webhooks
Create Date: 2026-12-07 17:10:00

Issue #25 (replay): built by the ``learner-activity`` consumer from the stream and rebuilt by
``vocalborn events rebuild learner-activity``. ``learner_activity_attempts`` holds one row per
analysis applied (the idempotency key), ``learner_activity_days`` the sums per learner and day.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vocalborn.sqltypes import UTCDateTime

revision: str = "0016_hooks_learner_activity"
down_revision: str | None = "0015_hooks_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "learner_activity_attempts",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("learner_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_learner_activity_attempts")),
    )
    op.create_index(
        op.f("ix_learner_activity_attempts_learner_id"), "learner_activity_attempts", ["learner_id"], unique=False
    )
    op.create_table(
        "learner_activity_days",
        sa.Column("learner_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("learner_id", "day", name=op.f("pk_learner_activity_days")),
    )


def downgrade() -> None:
    op.drop_table("learner_activity_days")
    op.drop_index(op.f("ix_learner_activity_attempts_learner_id"), table_name="learner_activity_attempts")
    op.drop_table("learner_activity_attempts")

"""assignment goals: weekly targets, days per week and a due date on sentence_assignments

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 14:10:00

Issue #26: a practice set's sentence carries an optional weekly goal (attempts and/or minutes,
on how many days) and due date. All nullable: existing assignments have no goal. Adding nullable
columns is instant on PostgreSQL; SQLite recreates the table (batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECKS = {
    "target_attempts_per_week_range": (
        "target_attempts_per_week IS NULL OR (target_attempts_per_week >= 1 AND target_attempts_per_week <= 100)"
    ),
    "target_minutes_per_week_range": (
        "target_minutes_per_week IS NULL OR (target_minutes_per_week >= 1 AND target_minutes_per_week <= 1000)"
    ),
    "days_per_week_range": "days_per_week IS NULL OR (days_per_week >= 1 AND days_per_week <= 7)",
}


def upgrade() -> None:
    with op.batch_alter_table("sentence_assignments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_attempts_per_week", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("target_minutes_per_week", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("days_per_week", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("due_on", sa.Date(), nullable=True))
        for name, condition in _CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_sentence_assignments_{name}"), condition)


def downgrade() -> None:
    with op.batch_alter_table("sentence_assignments", schema=None) as batch_op:
        for name in _CHECKS:
            batch_op.drop_constraint(op.f(f"ck_sentence_assignments_{name}"), type_="check")
        batch_op.drop_column("due_on")
        batch_op.drop_column("days_per_week")
        batch_op.drop_column("target_minutes_per_week")
        batch_op.drop_column("target_attempts_per_week")

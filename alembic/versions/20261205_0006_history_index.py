"""history index: a learner's tasks by (user_id, created_at, task_id)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 06:55:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ai_analysis_tasks_user_created_at", "ai_analysis_tasks", ["user_id", "created_at", "task_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ai_analysis_tasks_user_created_at", table_name="ai_analysis_tasks")

"""task deliveries counter

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 21:53:40.361818
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_analysis_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deliveries", sa.Integer(), server_default="0", nullable=False))
    # Until now every claim was a delivery of the one and only run.
    op.execute("UPDATE ai_analysis_tasks SET deliveries = attempt")


def downgrade() -> None:
    with op.batch_alter_table("ai_analysis_tasks", schema=None) as batch_op:
        batch_op.drop_column("deliveries")

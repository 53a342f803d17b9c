"""submit idempotency key

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_analysis_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("request_fingerprint", sa.String(length=64), nullable=True))
        batch_op.create_index("uq_ai_analysis_tasks_user_idempotency_key", ["user_id", "idempotency_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("ai_analysis_tasks", schema=None) as batch_op:
        batch_op.drop_index("uq_ai_analysis_tasks_user_idempotency_key")
        batch_op.drop_column("request_fingerprint")
        batch_op.drop_column("idempotency_key")

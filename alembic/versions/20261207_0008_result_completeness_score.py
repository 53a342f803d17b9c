"""result completeness: ai_analysis_results.completeness_score (0..100, null for older results)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 13:30:00

Issue #22: the share of the reference's judged characters the attempt said, stored beside the
four scores so the history reads it without opening the result's JSON. Nullable: every result
stored before the engine measured it keeps null. On PostgreSQL adding a nullable column is
instant; the range check reads the (all null) rows once. SQLite recreates the table (batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_analysis_results", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("completeness_score", sa.Numeric(precision=5, scale=2, asdecimal=False), nullable=True)
        )
        batch_op.create_check_constraint(
            op.f("ck_ai_analysis_results_completeness_score_range"),
            "completeness_score >= 0 AND completeness_score <= 100",
        )


def downgrade() -> None:
    with op.batch_alter_table("ai_analysis_results", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_ai_analysis_results_completeness_score_range"), type_="check")
        batch_op.drop_column("completeness_score")

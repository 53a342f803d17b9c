"""attempts that count: counted and not_counted_reason on practice_records and ai_analysis_results

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:05:00

Issue #26: an attempt that is silent, too short or another sentence is kept but does not count
(practice/counting.py decides when the result is stored). Every existing row counts (the server
default), so older results keep their place in trends and means. On PostgreSQL a column with a
constant default is added without rewriting the table; SQLite recreates it (batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("practice_records", "ai_analysis_results")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("counted", sa.Boolean(), server_default=sa.true(), nullable=False))
            batch_op.add_column(sa.Column("not_counted_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("not_counted_reason")
            batch_op.drop_column("counted")

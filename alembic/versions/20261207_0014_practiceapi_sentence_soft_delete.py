"""sentences: soft delete and edit time (deleted_at, updated_at)

Revision ID: 0014_practiceapi
Revises: 0013
Create Date: 2026-12-07 17:00:00

Issue #26: a therapist edits (text, shared) and deletes their sentence; a deletion keeps the
history (the attempts made of it and their results stay readable), so the row stays and is
marked. Both nullable: instant on PostgreSQL; SQLite recreates the table (batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import vocalborn.sqltypes

revision: str = "0014_practiceapi"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sentences", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("updated_at", vocalborn.sqltypes.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sentences", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("deleted_at")

"""event outbox: integration events written in the transaction of the change they describe

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 14:00:00

Issue #25: one row per domain event (analysis submitted / started / succeeded / failed /
cancelled, review saved, assignment created, link made / ended, account erased), ids only; the
relay (``vocalborn relay``) publishes the unsent rows to NATS JetStream in ``seq`` order and sets
``sent_at``. The partial index keeps the relay's read of the unsent rows small however many sent
rows the table keeps. No index on sent_at: marking a row sent touches only the partial index
(the row leaves it), and the pruning of old sent rows walks the primary key from its start.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vocalborn.sqltypes import BigIntPK, JSONType, UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_outbox",
        sa.Column("seq", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("ordering_key", sa.Uuid(), nullable=False),
        sa.Column("subject", JSONType, nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_event_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_event_outbox_event_id")),
    )
    op.create_index(
        "ix_event_outbox_unsent",
        "event_outbox",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_event_outbox_unsent", table_name="event_outbox")
    op.drop_table("event_outbox")

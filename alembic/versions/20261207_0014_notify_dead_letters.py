"""event dead letters: messages a consumer gave up on

Revision ID: 0014_notify_dead_letters
Revises: 0014_outage
Create Date: 2026-12-07 16:50:00

Issue #25: a consumer (events/consumer.py) records a message whose handler failed on its last
allowed delivery, or that was delivered too often without an ack, here; an admin lists and
replays them. One row per consumer and event.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from vocalborn.sqltypes import UTCDateTime

revision: str = "0014_notify_dead_letters"
down_revision: str | None = "0014_outage"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_dead_letters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("replayed_at", UTCDateTime(), nullable=True),
        sa.Column("replay_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_dead_letters")),
        sa.UniqueConstraint("consumer", "event_id", name="uq_event_dead_letters_consumer_event"),
    )


def downgrade() -> None:
    op.drop_table("event_dead_letters")

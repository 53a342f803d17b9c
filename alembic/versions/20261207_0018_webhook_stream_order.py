"""webhook deliveries: the event's JetStream stream sequence, the order a learner's deliveries go in

Revision ID: 0018_webhook_stream_order
Revises: 0017_srvfix_token_language
Create Date: 2026-12-07 20:10:00

A consumer process killed mid-batch has its unacknowledged messages redelivered only after the
ack wait, while the next process already fetches newer ones: the order of arrival is no longer
the order of the stream. ``stream_seq`` keeps the stream's order (null: recorded without one, a
dead letter's replay); the dispatcher sends a learner's deliveries in that order and only up to
the consumer's ack floor (docs/EVENTS.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_webhook_stream_order"
down_revision: str | None = "0017_srvfix_token_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_deliveries",
        sa.Column("stream_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("webhook_deliveries", "stream_seq")

"""account tokens: the language of the page that asked for the mail

Revision ID: 0017_srvfix_token_language
Revises: 0016_hooks_learner_activity
Create Date: 2026-12-07 18:20:00

A password reset or verification mail is written in the user's mail language when they chose
one (notification preferences), otherwise in the language of the request that asked for it
(``?lang`` / Accept-Language): ``account_tokens.language`` keeps that (null: not known, zh-TW).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_srvfix_token_language"
down_revision: str | None = "0016_hooks_learner_activity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("account_tokens", sa.Column("language", sa.String(8), nullable=True))


def downgrade() -> None:
    op.drop_column("account_tokens", "language")

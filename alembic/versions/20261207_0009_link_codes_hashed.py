"""link invitation codes stored hashed: link_invitations.code -> code_sha256 (HMAC-SHA256)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 13:45:00

The open codes of an existing install are hashed in place (they keep working); the plain column
goes. The digest is ``vocalborn.learning.links.code_digest``, frozen here: HMAC-SHA256 of the
normalised code under a key derived from SECRET_KEY.

"""

import hashlib
import hmac
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _digest(secret: str, code: str) -> str:
    normalised = "".join(ch for ch in code.upper() if ch.isalnum())
    key = hmac.new(secret.encode(), b"vocalborn link invitation", hashlib.sha256).digest()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("link_invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code_sha256", sa.String(length=64), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT invitation_id, code FROM link_invitations")).fetchall()
    if rows:
        from vocalborn.config import get_settings

        secret = get_settings().effective_secret_key()
        update = sa.text("UPDATE link_invitations SET code_sha256 = :digest WHERE invitation_id = :id")
        for invitation_id, code in rows:  # the id as the driver gave it (a UUID, or SQLite's text)
            conn.execute(update, {"digest": _digest(secret, code), "id": invitation_id})
    with op.batch_alter_table("link_invitations", schema=None) as batch_op:
        batch_op.alter_column("code_sha256", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_constraint(batch_op.f("uq_link_invitations_code"), type_="unique")
        batch_op.drop_column("code")
        batch_op.create_unique_constraint(batch_op.f("uq_link_invitations_code_sha256"), ["code_sha256"])


def downgrade() -> None:
    # The codes cannot be recovered from their digests: open invitations end (therapists make new ones).
    op.execute("DELETE FROM link_invitations WHERE used_at IS NULL")
    with op.batch_alter_table("link_invitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code", sa.String(length=32), nullable=True))
    op.execute("UPDATE link_invitations SET code = substr(code_sha256, 1, 32)")
    with op.batch_alter_table("link_invitations", schema=None) as batch_op:
        batch_op.alter_column("code", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_constraint(batch_op.f("uq_link_invitations_code_sha256"), type_="unique")
        batch_op.drop_column("code_sha256")
        batch_op.create_unique_constraint(batch_op.f("uq_link_invitations_code"), ["code"])

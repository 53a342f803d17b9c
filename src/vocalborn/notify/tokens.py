"""Password reset and email verification tokens.

A token is ``HMAC-SHA256(SECRET_KEY, purpose:id)`` (URL-safe base64): the database keeps only
its SHA-256 (``account_tokens``), the outbox event carries only the row's id, and the mail
consumer derives the token again to put it in the link. Single use, expiring."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from vocalborn.config import get_settings
from vocalborn.notify.models import AccountToken
from vocalborn.sqltypes import utcnow

PASSWORD_RESET = "password_reset"
VERIFY_EMAIL = "verify_email"


def derive(purpose: str, token_id: uuid.UUID) -> str:
    key = get_settings().effective_secret_key().encode()
    digest = hmac.new(key, f"vocalborn-{purpose}:{token_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(db: Session, user_id: uuid.UUID, email: str, purpose: str, language: str | None = None) -> AccountToken:
    """A new token row in ``db``'s transaction (the caller commits, with the outbox event).
    Earlier unused tokens of the same purpose stop working: only the latest link works."""
    s = get_settings()
    lifetime = (
        timedelta(minutes=s.password_reset_token_minutes)
        if purpose == PASSWORD_RESET
        else timedelta(hours=s.email_verification_token_hours)
    )
    now = utcnow()
    db.execute(
        update(AccountToken)
        .where(
            col(AccountToken.user_id) == user_id,
            col(AccountToken.purpose) == purpose,
            col(AccountToken.used_at).is_(None),
        )
        .values(expires_at=now)
    )
    row = AccountToken(
        id=uuid.uuid4(),
        user_id=user_id,
        purpose=purpose,
        email=email,
        token_sha256="",
        expires_at=now + lifetime,
        language=language,
    )
    row.token_sha256 = sha256(derive(purpose, row.id))
    db.add(row)
    return row


def redeem(db: Session, token: str, purpose: str) -> AccountToken | None:
    """Mark the token used and return its row, if it is of ``purpose``, unused and not expired;
    None otherwise. In ``db``'s transaction (the caller commits); a concurrent redeem of the
    same token loses (the update is conditional)."""
    if not token or len(token) > 200:
        return None
    row = db.exec(select(AccountToken).where(AccountToken.token_sha256 == sha256(token))).first()
    now = utcnow()
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at <= now:
        return None
    done = db.execute(
        update(AccountToken)
        .where(col(AccountToken.id) == row.id, col(AccountToken.used_at).is_(None))
        .values(used_at=now)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        return None
    return row

"""Therapist invitations: an admin makes a single-use, expiring code; registering with it makes
a therapist. Only the code's SHA-256 is stored, so a database dump holds no usable code."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from vocalborn.auth.models import User
from vocalborn.errors import Forbidden
from vocalborn.security.models import TherapistInvitation
from vocalborn.sqltypes import utcnow


class InvalidInvitation(Forbidden):
    """An unknown, used or expired therapist invitation code: 403."""


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def create_invitation(db: Session, admin: User, hours: int, note: str | None) -> tuple[TherapistInvitation, str]:
    code = secrets.token_urlsafe(24)
    invitation = TherapistInvitation(
        code_sha256=_digest(code),
        note=note,
        created_by=admin.user_id,
        expires_at=utcnow() + timedelta(hours=hours),
    )
    db.add(invitation)
    db.commit()
    return invitation, code


def claim(db: Session, code: str) -> uuid.UUID:
    """Spend the code (unused and unexpired) and return its id; InvalidInvitation otherwise.
    A conditional UPDATE, committed: two registrations racing with one code cannot both win."""
    now = utcnow()
    stmt = (
        update(TherapistInvitation)
        .where(col(TherapistInvitation.code_sha256) == _digest(code))
        .where(col(TherapistInvitation.used_at).is_(None))
        .where(col(TherapistInvitation.expires_at) > now)
        .values(used_at=now)
        .returning(col(TherapistInvitation.invitation_id))
    )
    row = db.execute(stmt).first()
    db.commit()
    if row is None:
        raise InvalidInvitation("this invitation code is unknown, used or expired; ask an administrator for a new one")
    return uuid.UUID(str(row[0]))


def release(db: Session, invitation_id: uuid.UUID) -> None:
    """Give a claimed code back (the registration that claimed it made no account: the email was
    taken). Only while no account used it."""
    stmt = (
        update(TherapistInvitation)
        .where(col(TherapistInvitation.invitation_id) == invitation_id)
        .where(col(TherapistInvitation.used_by).is_(None))
        .values(used_at=None)
    )
    db.execute(stmt)
    db.commit()


def mark_used_by(db: Session, invitation_id: uuid.UUID, user_id: uuid.UUID) -> None:
    invitation = db.get(TherapistInvitation, invitation_id)
    if invitation is not None:
        invitation.used_by = user_id
        db.add(invitation)
        db.commit()

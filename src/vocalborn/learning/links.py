"""Linking a learner to a therapist: single-use invitation codes, accepting one, unlinking."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from vocalborn.auth.models import Role, User
from vocalborn.config import get_settings
from vocalborn.errors import Conflict, Forbidden, Gone, NotFound
from vocalborn.events import outbox
from vocalborn.learning.models import LinkInvitation
from vocalborn.sqltypes import utcnow

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud or typed from paper
CODE_LENGTH = 10


def normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_digest(code: str) -> str:
    """HMAC-SHA256 of the normalised code under a key derived from SECRET_KEY: what is stored.
    A code has ~50 bits (ten characters a person can read aloud), too few for a plain hash to
    resist guessing from a database dump; keyed, the dump alone is no help. Rotating SECRET_KEY
    voids the open codes (therapists make new ones)."""

    key = hmac.new(get_settings().effective_secret_key().encode(), b"vocalborn link invitation", hashlib.sha256)
    return hmac.new(key.digest(), normalize_code(code).encode(), hashlib.sha256).hexdigest()


def create_invitation(db: Session, therapist: User, expires_in: timedelta) -> tuple[LinkInvitation, str]:
    """The invitation and its code: the code is shown to the therapist once, never stored."""
    now = utcnow()
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    inv = LinkInvitation(
        code_sha256=code_digest(code),
        therapist_id=therapist.user_id,
        created_at=now,
        expires_at=now + expires_in,
    )
    db.add(inv)
    db.commit()
    db.refresh(inv)
    return inv, code


def list_invitations(db: Session, therapist: User) -> list[LinkInvitation]:
    stmt = (
        select(LinkInvitation)
        .where(LinkInvitation.therapist_id == therapist.user_id, col(LinkInvitation.used_at).is_(None))
        .where(col(LinkInvitation.expires_at) > utcnow())
        .order_by(col(LinkInvitation.created_at).desc())
        .limit(100)
    )
    return list(db.exec(stmt))


def accept_invitation(db: Session, learner: User, code: str) -> User:
    """Link ``learner`` to the invitation's therapist. The code is used up in the same
    transaction (a conditional UPDATE), so two learners racing for one code cannot both win."""
    if learner.role != Role.LEARNER:
        raise Forbidden("only learners accept invitations")
    inv = db.exec(select(LinkInvitation).where(LinkInvitation.code_sha256 == code_digest(code))).first()
    if inv is None:
        raise NotFound("invitation code not found")
    now = utcnow()
    if inv.used_at is not None:
        raise Gone("this invitation has already been used; ask your therapist for a new code")
    if inv.expires_at <= now:
        raise Gone("this invitation has expired; ask your therapist for a new code")
    therapist = db.get(User, inv.therapist_id)
    if therapist is None or therapist.role != Role.THERAPIST:
        raise NotFound("invitation code not found")
    if learner.therapist_id is not None and learner.therapist_id != therapist.user_id:
        raise Conflict("you are already linked to another therapist; unlink first")
    used = db.execute(
        update(LinkInvitation)
        .where(col(LinkInvitation.invitation_id) == inv.invitation_id, col(LinkInvitation.used_at).is_(None))
        .values(used_at=now, used_by=learner.user_id)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        db.rollback()
        raise Gone("this invitation has already been used; ask your therapist for a new code")
    if learner.therapist_id is None:  # accepting a second code of one's own therapist links nothing new
        outbox.add(db, "link.created", now, learner_id=learner.user_id, therapist_id=therapist.user_id)
    learner.therapist_id = therapist.user_id
    db.add(learner)
    db.commit()
    return therapist


def unlink(db: Session, actor: User, learner_id: uuid.UUID) -> None:
    """The learner, their therapist or an admin ends the link."""
    learner = db.get(User, learner_id)
    if learner is None or learner.role != Role.LEARNER:
        raise NotFound("learner not found")
    if actor.role == Role.THERAPIST and learner.therapist_id != actor.user_id:
        raise NotFound("learner not found")
    if actor.role == Role.LEARNER and actor.user_id != learner.user_id:
        raise NotFound("learner not found")
    if learner.therapist_id is None:
        raise NotFound("no therapist is linked to this learner")
    outbox.add(db, "link.ended", learner_id=learner.user_id, therapist_id=learner.therapist_id)
    learner.therapist_id = None
    db.add(learner)
    db.commit()

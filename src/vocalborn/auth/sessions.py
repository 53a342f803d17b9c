"""Sessions: a login, its rotating refresh tokens, and the access tokens that name it.

* A login starts a session (``auth_sessions``) and answers a short access token (JWT, ``sid``
  claim, ACCESS_TOKEN_EXPIRE_MINUTES) and a refresh token (random; only its SHA-256 is stored in
  ``auth_refresh_tokens``).
* ``POST /auth/refresh`` uses the refresh token up and answers a new pair. A refresh token that
  was used already coming back means two parties hold it (it was copied): the whole session ends,
  so the thief's copy and the rightful one both stop working, and the user logs in again.
* A session ends at logout, when its owner ends it (``DELETE /auth/sessions/{id}``), for every
  other session at a password change, for every session at a role change or erasure, and by
  itself REFRESH_TOKEN_DAYS after its last refresh.

Access tokens of an ended session are refused at once on every ordinary route: each request
that reads the user from the database reads the session beside it (``check``). The hot routes
(status polls, submit, the learner's own history) answer from memory without the database;
they trust a session this process checked in the last ``RECHECK_SECONDS`` and hand anything else
to the ordinary route, which checks. So an ended session's access token is refused at once by
the process that ended it, and by every other process within ``RECHECK_SECONDS``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from vocalborn.auth.models import AuthSession, RefreshToken, User
from vocalborn.auth.security import create_access_token
from vocalborn.config import get_settings
from vocalborn.sqltypes import utcnow

RECHECK_SECONDS = 30.0
_MEMORY = 100_000  # sessions remembered per process before the memory starts over

# session id -> time.monotonic() of the last check that found it alive, in this process
_checked: dict[uuid.UUID, float] = {}


class SessionRefused(Exception):
    """The refresh token or session cannot be used (401, with the reason)."""


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lifetime() -> timedelta:
    return timedelta(days=get_settings().refresh_token_days)


def _remember(session_id: uuid.UUID) -> None:
    if len(_checked) >= _MEMORY:
        _checked.clear()
    _checked[session_id] = time.monotonic()


def forget(session_id: uuid.UUID) -> None:
    """This process no longer trusts the session on the hot routes (it ended)."""
    _checked.pop(session_id, None)


def recently_checked(session_id: uuid.UUID) -> bool:
    """True when this process found the session alive in the last ``RECHECK_SECONDS``."""
    at = _checked.get(session_id)
    return at is not None and time.monotonic() - at < RECHECK_SECONDS


def _issue(db: Session, user: User, session: AuthSession) -> Issued:
    refresh = secrets.token_urlsafe(32)
    db.add(RefreshToken(token_sha256=_sha256(refresh), session_id=session.session_id))
    access, expires_in = create_access_token(user.user_id, user.role, session.session_id)
    return Issued(access, refresh, expires_in, session.session_id)


def start(db: Session, user: User, user_agent: str | None = None) -> Issued:
    """A new session for ``user`` (after the password and the second factor checked out)."""
    now = utcnow()
    # Sessions that ended or expired long ago are of no use to anyone: tidy the user's own.
    old = select(AuthSession.session_id).where(
        AuthSession.user_id == user.user_id, col(AuthSession.expires_at) < now - _lifetime()
    )
    for sid in list(db.exec(old)):
        db.delete(db.get(AuthSession, sid))
    session = AuthSession(
        user_id=user.user_id,
        created_at=now,
        last_used_at=now,
        expires_at=now + _lifetime(),
        user_agent=(user_agent or None) and user_agent[:200],
    )
    db.add(session)
    db.flush()
    issued = _issue(db, user, session)
    db.commit()
    _remember(session.session_id)
    return issued


def rotate(db: Session, refresh_token: str) -> Issued:
    """Use ``refresh_token`` up and answer a new pair; a reused one ends the session."""
    row = db.get(RefreshToken, _sha256(refresh_token))
    if row is None:
        raise SessionRefused("unknown refresh token: log in again")
    session = db.get(AuthSession, row.session_id)
    now = utcnow()
    if session is None or session.ended_at is not None or session.expires_at <= now:
        raise SessionRefused("this session has ended: log in again")
    user = db.get(User, session.user_id)
    if user is None:
        raise SessionRefused("this session has ended: log in again")
    used = db.execute(
        update(RefreshToken)
        .where(col(RefreshToken.token_sha256) == row.token_sha256, col(RefreshToken.used_at).is_(None))
        .values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]  # an UPDATE result is a CursorResult
        db.rollback()
        end(db, session.session_id, "refresh token reused")
        raise SessionRefused(
            "this refresh token was used already, so it may have been copied: the session is ended; log in again"
        )
    session.last_used_at = now
    session.expires_at = now + _lifetime()
    db.add(session)
    issued = _issue(db, user, session)
    db.commit()
    _remember(session.session_id)
    return issued


def check(db: Session, session_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Is the session alive and ``user_id``'s? (The ordinary routes ask on every request.)"""
    session = db.get(AuthSession, session_id)
    if session is None or session.user_id != user_id or session.ended_at is not None:
        forget(session_id)
        return False
    if session.expires_at <= utcnow():
        forget(session_id)
        return False
    _remember(session_id)
    return True


def end(db: Session, session_id: uuid.UUID, reason: str) -> bool:
    """End one session (its refresh and access tokens); False when it had ended already."""
    done = db.execute(
        update(AuthSession)
        .where(col(AuthSession.session_id) == session_id, col(AuthSession.ended_at).is_(None))
        .values(ended_at=utcnow(), ended_reason=reason[:40])
    )
    db.commit()
    forget(session_id)
    return bool(done.rowcount)  # type: ignore[attr-defined]


def end_all(db: Session, user_id: uuid.UUID, reason: str, keep: uuid.UUID | None = None) -> int:
    """End every live session of the user (but ``keep``); the number ended. Commits."""
    stmt = select(AuthSession.session_id).where(AuthSession.user_id == user_id, col(AuthSession.ended_at).is_(None))
    ids = [sid for sid in db.exec(stmt) if sid != keep]
    if ids:
        db.execute(
            update(AuthSession)
            .where(col(AuthSession.session_id).in_(ids), col(AuthSession.ended_at).is_(None))
            .values(ended_at=utcnow(), ended_reason=reason[:40])
        )
    db.commit()
    for sid in ids:
        forget(sid)
    return len(ids)


def session_of(db: Session, refresh_token: str) -> uuid.UUID | None:
    """The session a refresh token (used or not) belongs to."""
    row = db.get(RefreshToken, _sha256(refresh_token))
    return row.session_id if row is not None else None


def end_own(db: Session, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    """End the user's own live session; False when it is not theirs or has ended."""
    session = db.get(AuthSession, session_id)
    if session is None or session.user_id != user_id:
        return False
    return end(db, session_id, "ended by its user")


def live_sessions(db: Session, user_id: uuid.UUID) -> list[AuthSession]:
    stmt = (
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            col(AuthSession.ended_at).is_(None),
            col(AuthSession.expires_at) > utcnow(),
        )
        .order_by(col(AuthSession.last_used_at).desc())
    )
    return list(db.exec(stmt))


def token_for(db: Session, user: User) -> str:
    """An access token of a new session (for tools that act as a user: tests, benchmarks)."""
    return start(db, user, "internal").access_token

from __future__ import annotations

import uuid
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from vocalborn.auth import sessions
from vocalborn.auth.models import Role, User
from vocalborn.auth.security import decode_access_token
from vocalborn.config import get_settings
from vocalborn.db import get_db
from vocalborn.errors import raises

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

SessionDep = Annotated[Session, Depends(get_db)]

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def user_from_token(db: Session, token: str | None, enrolling: bool = False) -> User:
    """The user a bearer token names, if its session is alive; or 401 with a reason. In
    production an admin without the second factor may only enrol (``enrolling``: the auth
    routes); anything else is 403 until they have."""
    claims = token_claims(token)
    user_id, session_id = _ids(claims)
    if not sessions.check(db, session_id, user_id):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "this session has ended: log in again", headers=_UNAUTHORIZED)
    user = db.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the token's user no longer exists", headers=_UNAUTHORIZED)
    if not enrolling and user.role == Role.ADMIN and user.totp_enabled_at is None and _production():
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "admins need the second factor in production: turn it on first (POST /api/v1/auth/totp/setup)",
        )
    return user


def _production() -> bool:
    return get_settings().environment == "production"


def token_claims(token: str | None) -> dict[str, Any]:
    """The claims of a valid bearer token (its session not yet checked), or 401."""
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not authenticated: send 'Authorization: Bearer <token>'",
            headers=_UNAUTHORIZED,
        )
    try:
        claims = decode_access_token(token)
        _ids(claims)
    except jwt.ExpiredSignatureError:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "token expired: refresh it or log in again", headers=_UNAUTHORIZED
        ) from None
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token", headers=_UNAUTHORIZED) from None
    return claims


def _ids(claims: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID]:
    return uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])


def token_subject(token: str | None) -> uuid.UUID:
    """The user id a valid bearer token names (not yet checked against the database), or 401."""
    return _ids(token_claims(token))[0]


def fast_subject(token: str | None) -> uuid.UUID | None:
    """For the hot routes, which answer without the database: the user id when the token is
    valid and this process checked its session in the last few seconds
    (``sessions.recently_checked``); None otherwise, and the ordinary route decides."""
    if not token:
        return None
    try:
        user_id, session_id = _ids(decode_access_token(token))
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        return None
    return user_id if sessions.recently_checked(session_id) else None


def token_subject_dep(token: Annotated[str | None, Depends(oauth2_scheme)]) -> uuid.UUID:
    """``token_subject`` as a dependency: a missing or invalid token is refused (401) before the
    query is validated, as ``CurrentUser`` does, without reading the database."""
    return token_subject(token)


_ENROLMENT = "/api/v1/auth/"  # what an admin without the second factor may still use in production


def get_current_user(db: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)], request: Request) -> User:
    return user_from_token(db, token, enrolling=request.url.path.startswith(_ENROLMENT))


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_current_session(db: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> tuple[User, uuid.UUID]:
    """The user and the id of the session their token names (the auth routes only)."""
    user = user_from_token(db, token, enrolling=True)
    return user, _ids(token_claims(token))[1]


CurrentSession = Annotated[tuple[User, uuid.UUID], Depends(get_current_session)]


def require_roles(*roles: Role):
    allowed = {r.value for r in roles}

    @raises(403)
    def _check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the role {' or '.join(sorted(allowed))}")
        return user

    return _check


TherapistUser = Annotated[User, Depends(require_roles(Role.THERAPIST, Role.ADMIN))]
AdminUser = Annotated[User, Depends(require_roles(Role.ADMIN))]

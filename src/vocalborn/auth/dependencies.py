from __future__ import annotations

import uuid
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from vocalborn.auth.models import Role, User
from vocalborn.auth.security import decode_access_token
from vocalborn.db import get_db
from vocalborn.errors import raises

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)

SessionDep = Annotated[Session, Depends(get_db)]

_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def user_from_token(db: Session, token: str | None) -> User:
    """The user a bearer token names, or 401 with a reason."""
    user = db.get(User, token_subject(token))
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "the token's user no longer exists", headers=_UNAUTHORIZED)
    return user


def token_subject(token: str | None) -> uuid.UUID:
    """The user id a valid bearer token names (not yet checked against the database), or 401."""
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not authenticated: send 'Authorization: Bearer <token>'",
            headers=_UNAUTHORIZED,
        )
    try:
        claims = decode_access_token(token)
        user_id = uuid.UUID(claims["sub"])
    except jwt.ExpiredSignatureError:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "token expired: log in again", headers=_UNAUTHORIZED
        ) from None
    except (jwt.PyJWTError, ValueError, KeyError):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token", headers=_UNAUTHORIZED) from None
    return user_id


def token_subject_dep(token: Annotated[str | None, Depends(oauth2_scheme)]) -> uuid.UUID:
    """``token_subject`` as a dependency: a missing or invalid token is refused (401) before the
    query is validated, as ``CurrentUser`` does, without reading the database."""
    return token_subject(token)


def get_current_user(db: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    return user_from_token(db, token)


CurrentUser = Annotated[User, Depends(get_current_user)]


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

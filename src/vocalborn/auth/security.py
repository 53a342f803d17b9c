"""Password hashing (Argon2id) and access tokens (JWT, HS256)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from pwdlib import PasswordHash

from vocalborn.config import get_settings

ALGORITHM = "HS256"


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher().verify(password, password_hash)


@lru_cache
def _secret() -> str:
    return get_settings().effective_secret_key()


def create_access_token(user_id: uuid.UUID, role: str, session_id: uuid.UUID) -> tuple[str, int]:
    """A short access token naming its session (``sid``): ending the session refuses it."""
    minutes = get_settings().access_token_expire_minutes
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "role": role,
        "iat": now,
        "exp": now + timedelta(minutes=minutes),
        "jti": uuid.uuid4().hex[:16],  # each token its own, even two in the same second
    }
    return jwt.encode(claims, _secret(), algorithm=ALGORITHM), minutes * 60


_LEEWAY = 60  # seconds of clock difference a token's iat may have


def decode_access_token(token: str) -> dict[str, Any]:
    """Raise jwt.PyJWTError when the token is invalid, expired, or lives longer than
    ``ACCESS_TOKEN_EXPIRE_MINUTES`` allows (even when signed with our key: a token minted with a
    10-year ``exp`` is refused).

    A client sends the same token with every request (a status poll every second or two), so
    the signature check of a token seen before is remembered (``_verified``: only tokens whose
    signature and claims checked out are kept); its expiry is checked again on every use."""
    claims = _verified(_secret(), token)
    now = time.time()
    if claims["exp"] <= now:  # as PyJWT decides it, without leeway
        raise jwt.ExpiredSignatureError("Signature has expired")
    longest = get_settings().access_token_expire_minutes * 60
    if claims["exp"] - claims["iat"] > longest or claims["exp"] - now > longest + _LEEWAY:
        raise jwt.InvalidTokenError("the token lives longer than access tokens may")
    return dict(claims)


_TOKENS = 4096  # tokens remembered: a few per active user and API process


@lru_cache(maxsize=_TOKENS)
def _verified(secret: str, token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "sid", "exp", "iat"]}
    )
    return claims

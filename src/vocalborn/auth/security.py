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


def create_access_token(user_id: uuid.UUID, role: str) -> tuple[str, int]:
    minutes = get_settings().access_token_expire_minutes
    now = datetime.now(UTC)
    claims = {"sub": str(user_id), "role": role, "iat": now, "exp": now + timedelta(minutes=minutes)}
    return jwt.encode(claims, _secret(), algorithm=ALGORITHM), minutes * 60


def decode_access_token(token: str) -> dict[str, Any]:
    """Raise jwt.PyJWTError when the token is invalid or expired.

    A client sends the same token with every request (a status poll every second or two), so
    the signature check of a token seen before is remembered (``_verified``: only tokens whose
    signature and claims checked out are kept); its expiry is checked again on every use."""
    claims = _verified(_secret(), token)
    if claims["exp"] <= time.time():  # as PyJWT decides it, without leeway
        raise jwt.ExpiredSignatureError("Signature has expired")
    return dict(claims)


_TOKENS = 4096  # tokens remembered: a few per active user and API process


@lru_cache(maxsize=_TOKENS)
def _verified(secret: str, token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
    return claims

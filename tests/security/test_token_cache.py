"""A token's signature is checked once per process and remembered; its expiry (and its
allowed life) is checked on every use, and a token that never verified is never remembered."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from vocalborn.auth.security import ALGORITHM, _secret, _verified, create_access_token, decode_access_token


def _token(exp: float, iat: float | None = None, **extra: str) -> str:
    claims = {"sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()), "role": "learner", "exp": int(exp)}
    claims["iat"] = int(iat if iat is not None else time.time())
    return jwt.encode({**claims, **extra}, _secret(), algorithm=ALGORITHM)


def test_a_remembered_token_still_expires() -> None:
    token = _token(time.time() + 2)
    first = decode_access_token(token)
    assert decode_access_token(token) == first  # the second from memory
    assert _verified.cache_info().hits >= 1
    time.sleep(max(0.0, first["exp"] - time.time()) + 0.05)
    with pytest.raises(jwt.ExpiredSignatureError):
        decode_access_token(token)


def test_an_expired_or_forged_token_is_refused_every_time() -> None:
    expired = _token(time.time() - 5, time.time() - 60)
    good, _ = create_access_token(uuid.uuid4(), "learner", uuid.uuid4())
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(jwt.ExpiredSignatureError):
            decode_access_token(expired)
        with pytest.raises(jwt.InvalidSignatureError):
            decode_access_token(forged)
    assert decode_access_token(good)["role"] == "learner"


def test_a_token_living_longer_than_allowed_is_refused_even_when_signed_by_our_key() -> None:
    from vocalborn.config import get_settings

    life = get_settings().access_token_expire_minutes * 60
    now = time.time()
    ten_years = _token(now + 10 * 365 * 86400)
    backdated = _token(now + life, iat=now - 3600)  # iat moved back to fit: exp - now still counts
    claims_longer = _token(now + 600, iat=now - life)  # exp - iat longer than allowed
    for token in (ten_years, claims_longer):
        for _ in range(2):  # the cap is checked on every use, not only the first
            with pytest.raises(jwt.InvalidTokenError, match="longer"):
                decode_access_token(token)
    with pytest.raises(jwt.InvalidTokenError):
        decode_access_token(backdated)
    assert decode_access_token(_token(now + life - 5))["role"] == "learner"


def test_a_token_without_a_session_is_refused() -> None:
    no_sid = jwt.encode(
        {"sub": str(uuid.uuid4()), "exp": int(time.time()) + 60, "iat": int(time.time())}, _secret(), ALGORITHM
    )
    with pytest.raises(jwt.MissingRequiredClaimError):
        decode_access_token(no_sid)


def test_callers_cannot_alter_what_is_remembered() -> None:
    good, _ = create_access_token(uuid.uuid4(), "learner", uuid.uuid4())
    decode_access_token(good)["sub"] = "someone else"
    assert decode_access_token(good)["sub"] != "someone else"

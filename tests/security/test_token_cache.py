"""A token's signature is checked once per process and remembered; its expiry is checked on
every use, and a token that never verified is never remembered."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from vocalborn.auth.security import ALGORITHM, _secret, _verified, create_access_token, decode_access_token


def _token(exp: float) -> str:
    return jwt.encode({"sub": str(uuid.uuid4()), "role": "learner", "exp": int(exp)}, _secret(), algorithm=ALGORITHM)


def test_a_remembered_token_still_expires() -> None:
    token = _token(time.time() + 2)
    first = decode_access_token(token)
    assert decode_access_token(token) == first  # the second from memory
    assert _verified.cache_info().hits >= 1
    time.sleep(max(0.0, first["exp"] - time.time()) + 0.05)
    with pytest.raises(jwt.ExpiredSignatureError):
        decode_access_token(token)


def test_an_expired_or_forged_token_is_refused_every_time() -> None:
    expired = _token(time.time() - 5)
    good, _ = create_access_token(uuid.uuid4(), "learner")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(jwt.ExpiredSignatureError):
            decode_access_token(expired)
        with pytest.raises(jwt.InvalidSignatureError):
            decode_access_token(forged)
    assert decode_access_token(good)["role"] == "learner"


def test_callers_cannot_alter_what_is_remembered() -> None:
    good, _ = create_access_token(uuid.uuid4(), "learner")
    decode_access_token(good)["sub"] = "someone else"
    assert decode_access_token(good)["sub"] != "someone else"

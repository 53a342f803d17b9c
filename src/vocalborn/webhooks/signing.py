"""Standard Webhooks signatures (https://www.standardwebhooks.com): the secret is ``whsec_`` +
base64 of random bytes; a delivery carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds)
and ``webhook-signature`` = ``v1,`` + base64(HMAC-SHA256(secret bytes, f"{id}.{timestamp}.{body}")).
:func:`verify` is the recipe of docs/EVENTS.md, as a receiver runs it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
        "content-type": "application/json",
    }


class InvalidSignature(Exception):
    pass


def verify(secret: str, received: Mapping[str, str], body: bytes, tolerance: float = 300.0) -> None:
    """Raise InvalidSignature unless one of the signatures matches and the timestamp is within
    ``tolerance`` seconds of now (a replayed old delivery fails)."""
    lower = {k.lower(): v for k, v in received.items()}
    try:
        msg_id, ts_text, signatures = lower["webhook-id"], lower["webhook-timestamp"], lower["webhook-signature"]
        ts = int(ts_text)
    except (KeyError, ValueError):
        raise InvalidSignature("missing or malformed webhook headers") from None
    if abs(time.time() - ts) > tolerance:
        raise InvalidSignature("timestamp outside the tolerance")
    expected = sign(secret, msg_id, ts, body)
    for candidate in signatures.split():
        if hmac.compare_digest(candidate, expected):
            return
    raise InvalidSignature("no matching signature")

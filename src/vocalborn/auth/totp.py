"""The second factor: TOTP (RFC 6238 over RFC 4226's HOTP), recovery codes, and its lockout.

Codes are 6 digits over 30-second steps with HMAC-SHA-1 (RFC 6238's default, what every
authenticator app reads from an ``otpauth://`` URL). A code is accepted in its own step and the
one before or after (clock drift), and only once: the step of the last accepted code is kept, so
a code seen over a shoulder or in a log cannot be replayed. Ten single-use recovery codes stand
in for the app (SHA-256 only is stored). Five wrong codes in a row lock the second factor of the
account for 15 minutes (counted in Redis beside the login limits; a lock refuses even the right
code).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import logging
import re
import secrets
import struct
import time
import uuid
from urllib.parse import quote, urlencode

import redis
from sqlalchemy import update
from sqlmodel import Session, col, delete, select

from vocalborn.auth.models import RecoveryCode, User
from vocalborn.config import get_settings
from vocalborn.kit.redis import get_redis
from vocalborn.sqltypes import utcnow

log = logging.getLogger(__name__)

PERIOD = 30
DIGITS = 6
DRIFT_STEPS = 1  # a code of the step before or after is accepted too
ISSUER = "VocalBorn"
RECOVERY_CODES = 10
LOCK_FAILURES = 5
LOCK_SECONDS = 900


# --- RFC 4226 / 6238 -----------------------------------------------------------------------------
def new_secret() -> str:
    """160 random bits (RFC 4226's recommended length), base32 without padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    return base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))


def hotp(secret: str, counter: int, digits: int = DIGITS) -> str:
    mac = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_at(at: float) -> int:
    return int(at // PERIOD)


def code_at(secret: str, at: float) -> str:
    return hotp(secret, step_at(at))


def matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step whose code ``code`` is (now, or one step off), or None."""
    code = re.sub(r"\s", "", code)
    if not re.fullmatch(rf"\d{{{DIGITS}}}", code):
        return None
    now = step_at(time.time() if at is None else at)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(hotp(secret, step), code):  # every step compared: no timing hint
            found = step
    return found


def otpauth_url(secret: str, account: str) -> str:
    label = quote(f"{ISSUER}:{account}", safe="")
    query = urlencode({"secret": secret, "issuer": ISSUER, "algorithm": "SHA1", "digits": DIGITS, "period": PERIOD})
    return f"otpauth://totp/{label}?{query}"


def qr_svg(text: str, title: str = "TOTP") -> str:
    """The URL as a QR code, an SVG document (segno: pure Python; also the invitation links')."""
    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", xmldecl=False, scale=5, border=2, title=title)
    return out.getvalue().decode()


# --- recovery codes --------------------------------------------------------------------------------
def _normalized(code: str) -> str:
    return re.sub(r"[^a-z0-9]", "", code.lower())


def _sha256(code: str) -> str:
    return hashlib.sha256(_normalized(code).encode()).hexdigest()


def new_recovery_codes(db: Session, user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones (shown once; SHA-256 stored)."""
    db.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.user_id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 80 bits, 16 characters
        code = "-".join(raw[i : i + 4] for i in range(0, 16, 4))
        codes.append(code)
        db.add(RecoveryCode(code_sha256=_sha256(code), user_id=user.user_id))
    return codes


def use_recovery_code(db: Session, user: User, code: str) -> bool:
    """True (and the code is used up, committed) when ``code`` is one of the user's unused ones."""
    if len(_normalized(code)) != 16:
        return False
    used = db.execute(
        update(RecoveryCode)
        .where(
            col(RecoveryCode.code_sha256) == _sha256(code),
            col(RecoveryCode.user_id) == user.user_id,
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    db.commit()
    return bool(used.rowcount)  # type: ignore[attr-defined]


def recovery_codes_left(db: Session, user: User) -> int:
    stmt = select(RecoveryCode.code_sha256).where(
        RecoveryCode.user_id == user.user_id, col(RecoveryCode.used_at).is_(None)
    )
    return len(list(db.exec(stmt)))


# --- checking a code at login ------------------------------------------------------------------------
def use_code(db: Session, user: User, code: str) -> bool:
    """A TOTP code of the user's confirmed secret, not used before; or a recovery code. The
    accepted step is stored atomically, so two logins cannot use one code."""
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code)
    if step is not None:
        last = user.totp_last_step
        done = db.execute(
            update(User)
            .where(col(User.user_id) == user.user_id)
            .where((col(User.totp_last_step).is_(None)) | (col(User.totp_last_step) < step))
            .values(totp_last_step=step)
        )
        db.commit()
        if done.rowcount:  # type: ignore[attr-defined]
            return True
        log.info("a TOTP code was replayed (step %s, last %s)", step, last)
        return False
    return use_recovery_code(db, user, code)


# --- the lockout (Redis) -------------------------------------------------------------------------------
def _redis() -> redis.Redis:
    return get_redis()


def _rkey(kind: str, user_id: uuid.UUID) -> str:
    return f"{get_settings().redis_key_prefix}rl:totp-{kind}:{user_id.hex}"


def locked_for(user_id: uuid.UUID) -> int:
    """Seconds the user's second factor stays locked (0: not locked)."""
    try:
        ttl = int(_redis().ttl(_rkey("lock", user_id)))
    except redis.RedisError as exc:
        log.warning("TOTP lockout not checked: Redis is unavailable (%s)", exc)
        return 0
    return max(ttl, 0)


def failed(user_id: uuid.UUID) -> None:
    """One wrong code; the fifth in a row locks the second factor for LOCK_SECONDS."""
    key = _rkey("fails", user_id)
    try:
        pipe = _redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, LOCK_SECONDS)
        failures = int(pipe.execute()[0])
        if failures >= LOCK_FAILURES:
            pipe = _redis().pipeline()
            pipe.set(_rkey("lock", user_id), "1", ex=LOCK_SECONDS)
            pipe.delete(key)
            pipe.execute()
            log.warning("second factor locked for %d s after %d wrong codes (user %s)", LOCK_SECONDS, failures, user_id)
    except redis.RedisError as exc:
        log.warning("wrong TOTP code not counted: Redis is unavailable (%s)", exc)


def succeeded(user_id: uuid.UUID) -> None:
    with contextlib.suppress(redis.RedisError):
        _redis().delete(_rkey("fails", user_id))

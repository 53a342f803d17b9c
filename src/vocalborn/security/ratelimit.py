"""Abuse limits in Redis, so every API process counts against the same numbers.

Sliding windows: one sorted set per (limit, subject) holding the times of the accepted events of
the last window, trimmed, counted and added to in one Lua script (atomic on the Redis server).
No burst at a window boundary, and ``Retry-After`` is exact: when the oldest counted event leaves
the window. Refused events are not stored, so a flood costs at most ``limit`` entries per subject.
A refusal is a 429 JSON with ``Retry-After``. Login also keeps a count of consecutive wrong passwords per email; at
LOGIN_LOCKOUT_FAILURES the email is locked for LOGIN_LOCKOUT_SECONDS, whoever asks and whatever
the password, and for known and unknown emails alike (so a lockout says nothing about who exists).

Emails are hashed before they become key names: Redis holds no personal data. When Redis is
unreachable the limits let requests through (and log it): an outage of the limiter must not
lock everybody out; the database and Argon2 still stand.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import redis
from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordRequestForm

from vocalborn.config import get_settings
from vocalborn.errors import raises
from vocalborn.kit.coalesce import Coalescer, per_loop
from vocalborn.kit.redis import get_redis
from vocalborn.redis_connect import async_client

log = logging.getLogger(__name__)


class RateLimited(HTTPException):
    def __init__(self, detail: str, retry_after: int) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(429, detail, headers={"Retry-After": str(retry_after)})


def _redis() -> redis.Redis:
    return get_redis()


def _key(*parts: str) -> str:
    return get_settings().redis_key_prefix + "rl:" + ":".join(parts)


def subject_of_email(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def client_address(request: Request) -> str:
    # Behind a reverse proxy, run uvicorn with FORWARDED_ALLOW_IPS so this is the real client.
    return request.client.host if request.client else "unknown"


# The sliding window of one or more events, each decided alone, in order: event i is KEYS[i] and
# ARGV[4i-3 .. 4i] (now in ms, window in ms, limit, member); the verdicts come back flat, three
# numbers each. ``hit`` sends one event, ``_Checks`` the checks of a moment.
_SLIDING = """
local function slide(key, now, window, limit, member)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count < limit then
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
    return {1, count + 1, 0}
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, count + 1, tonumber(oldest[2]) + window - now}
end
local out = {}
for i, key in ipairs(KEYS) do
  local a = (i - 1) * 4
  local v = slide(key, tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), ARGV[a + 4])
  out[#out + 1] = v[1]; out[#out + 1] = v[2]; out[#out + 1] = v[3]
end
return out
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    retry_after: int


def _event(name: str, subject: str, limit: int, window: int) -> tuple[str, list[Any]]:
    """One event's key and arguments in ``_SLIDING`` (the same for both clients)."""
    now_ms = int(time.time() * 1000)
    return _key(name, subject), [now_ms, window * 1000, limit, f"{now_ms}-{uuid.uuid4().hex[:8]}"]


def _verdict(reply: Any) -> Verdict:
    allowed, count, retry_ms = reply
    return Verdict(bool(allowed), int(count), 0 if allowed else int(retry_ms) // 1000 + 1)


_UNCHECKED = Verdict(True, 0, 0)  # no limit set, or Redis unavailable (the limit fails open)


def hit(name: str, subject: str, limit: int, window: int) -> Verdict:
    """Count one event of ``name`` for ``subject``; refused above ``limit`` per ``window`` s."""
    if limit <= 0 or window <= 0:
        return _UNCHECKED
    try:
        key, argv = _event(name, subject, limit, window)
        return _verdict(_redis().eval(_SLIDING, 1, key, *argv))
    except redis.RedisError as exc:
        log.warning("rate limit %s not checked: Redis is unavailable (%s)", name, exc)
        return _UNCHECKED


def _refuse(verdict: Verdict, detail: str) -> None:
    if not verdict.allowed:
        raise RateLimited(f"{detail}; try again in {verdict.retry_after} s", verdict.retry_after)


def enforce(name: str, subject: str, limit: int, window: int, detail: str) -> None:
    _refuse(hit(name, subject, limit, window), detail)


class _Checks:
    """One batch of asyncio checks (``vocalborn.kit.coalesce``: those asked for while a round trip is
    in flight go together in the next): one script call for the whole batch, so a burst of
    submits costs Redis one round trip and the client one command to write and one reply to
    read, not one each (a pipeline of one EVALSHA per check cost the API ~10 % of its CPU per
    submit: docs/BENCHMARKS.md). Each check is decided as ``hit`` decides it, in order, with no
    other command in between (a script is not rolled back: a check counted before an error stays
    counted). An error fails every check of the batch open."""

    def __init__(self) -> None:
        self.client = async_client(get_settings().effective_redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.script = self.client.register_script(_SLIDING)

    async def __call__(self, batch: list[tuple[str, list[Any]]]) -> list[Any]:
        keys: list[str] = []
        argv: list[Any] = []
        for key, args in batch:
            keys.append(key)
            argv.extend(args)
        flat = await self.script(keys=keys, args=argv)
        return [flat[i : i + 3] for i in range(0, len(flat), 3)]


async def hit_async(name: str, subject: str, limit: int, window: int) -> Verdict:
    """``hit`` from a coroutine: the same sliding window and keys, on an asyncio Redis client
    (one per process and event loop, the checks of a moment in one script call: ``_Checks``), so
    an ``async def`` route never blocks its loop."""
    if limit <= 0 or window <= 0:
        return _UNCHECKED

    checks = per_loop("ratelimit", lambda: Coalescer(_Checks(), max_batch=1024))
    try:
        reply = await checks.submit(_event(name, subject, limit, window))
    except Exception as exc:  # unreachable, reset, timeout: every check of the batch fails open
        reply = exc
    if isinstance(reply, BaseException):
        log.warning("rate limit %s not checked: Redis is unavailable (%s)", name, reply)
        return _UNCHECKED
    return _verdict(reply)


async def limit_submits_async(user_id: uuid.UUID) -> None:
    """Analysis submits per user and window (the async submit route knows the user from the token)."""
    s = get_settings()
    verdict = await hit_async("submit", user_id.hex, s.rate_limit_submits_per_user, s.rate_limit_window_seconds)
    _refuse(verdict, "too many analysis requests")


# --- login --------------------------------------------------------------------------------------
class LoginGuard:
    """Checks the limits before a login, and records its outcome after."""

    def __init__(self, email: str, address: str) -> None:
        self.subject = subject_of_email(email)
        self.address = address

    def check(self) -> None:
        s = get_settings()
        try:
            ttl = int(_redis().ttl(_key("lock", self.subject)))
        except redis.RedisError as exc:
            log.warning("login lockout not checked: Redis is unavailable (%s)", exc)
            ttl = -2
        if ttl > 0:
            raise RateLimited("too many failed logins for this account: it is locked for a while", ttl)
        window = s.rate_limit_window_seconds
        enforce("login-ip", self.address, s.rate_limit_login_per_address, window, "too many logins from this address")
        enforce("login-acct", self.subject, s.rate_limit_login_per_account, window, "too many logins for this account")

    def failed(self) -> None:
        s = get_settings()
        if s.login_lockout_failures <= 0:
            return
        key = _key("fails", self.subject)
        try:
            pipe = _redis().pipeline()
            pipe.incr(key)
            pipe.expire(key, s.login_lockout_seconds)
            failures = int(pipe.execute()[0])
            if failures >= s.login_lockout_failures:
                pipe = _redis().pipeline()
                pipe.set(_key("lock", self.subject), "1", ex=s.login_lockout_seconds)
                pipe.delete(key)
                pipe.execute()
                log.warning(
                    "login locked for %d s after %d failures (account %s)",
                    s.login_lockout_seconds,
                    failures,
                    self.subject[:8],
                )
        except redis.RedisError as exc:
            log.warning("login failure not counted: Redis is unavailable (%s)", exc)

    def succeeded(self) -> None:
        with contextlib.suppress(redis.RedisError):
            _redis().delete(_key("fails", self.subject))


@raises(429)
def login_guard(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> LoginGuard:
    guard = LoginGuard(form.username, client_address(request))
    guard.check()
    return guard


LoginLimit = Annotated[LoginGuard, Depends(login_guard)]


# --- registration, uploads, submits ---------------------------------------------------------------
@raises(429)
def limit_registration(request: Request) -> None:
    s = get_settings()
    enforce(
        "register-ip",
        client_address(request),
        s.rate_limit_register_per_address,
        3600,
        "too many registrations from this address",
    )


def forget_user(user_id_hex: str, email: str) -> None:
    """Erasure: drop the counters that name this user (they expire anyway)."""
    try:
        client = _redis()
        for pattern in (
            _key("*", user_id_hex),
            _key("*", subject_of_email(email)),
        ):
            for key in client.scan_iter(match=pattern, count=500):
                client.delete(key)
    except redis.RedisError as exc:
        log.warning("rate-limit counters of an erased user not removed (%s); they expire by themselves", exc)

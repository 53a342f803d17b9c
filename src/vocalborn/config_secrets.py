"""The settings' secret checks: what refuses a production start (``production_problems``), the
example values, a secret's length and variety, the storage encryption keys and the Redis Sentinels
parsed from their settings (``config.Settings`` uses them; ``vocalborn check``-style tools too).
Imports nothing of the app but ``config_urls``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from vocalborn.config_urls import redact_url, url_password

if TYPE_CHECKING:
    from vocalborn.config import Settings

# Values that appear in .env.example and the docs. Refused when ENVIRONMENT=production.
EXAMPLE_SECRETS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "change-me-to-a-long-random-string",
        "vocalborn2024",
        "admin:vocalborn2024",
        "admin:change-me",
        "secure_password",
        "password",
        "admin",
        "admin:admin",
        "admin:password",
        "secret",
        "12345678",
        "letmein",
        "vocalborn",
    }
)


def secret_problem(name: str, value: str | None, min_length: int = 32, min_bytes: int = 0) -> str | None:
    """Why ``value`` is not a usable production secret (one line), or None when it is.

    Refused: missing, a known example (also after ``user:``), shorter than ``min_length``, with
    too little variety to be random (e.g. 57 x "a", "abcabcabc...", "1234567890..."), or
    carrying fewer than ``min_bytes`` random bytes at most (``random_bytes``: 64 hex digits
    are 32 bytes, 32 hex digits only 16)."""
    if not value:
        return f"{name} must be set"
    secret = value.split(":", 1)[1] if ":" in value and name.endswith("_AUTH") else value
    if value.lower() in EXAMPLE_SECRETS or secret.lower() in EXAMPLE_SECRETS:
        return f"{name} is a known example value (generate one with `openssl rand -hex 32`)"
    if len(secret) < min_length:
        return f"{name} is {len(secret)} characters, at least {min_length} random characters are needed"
    distinct = len(set(secret))
    # a random hex string of 16 characters has ~10 distinct ones, of 32 ~15: ask for a quarter
    if distinct < min(10, len(secret) // 4) or _repeats(secret):
        return f"{name} does not look random (too few distinct characters or a repeated pattern)"
    if min_bytes and random_bytes(secret) < min_bytes:
        return (
            f"{name} holds at most {random_bytes(secret):.0f} random bytes, {min_bytes} are needed "
            "(generate one with `openssl rand -hex 32`)"
        )
    return None


def production_problems(settings: Settings) -> list[str]:
    """Why ``settings`` may not run in production, one line per problem ([]: none): the secrets
    (missing, an example, too short or not random), the database and broker not set, a URL's
    example or weak password, the storage encryption keys missing or invalid."""
    problems = []
    # FLOWER_BASIC_AUTH is checked by `vocalborn flower` (it alone uses it).
    for name, value, required, min_bytes in (
        ("SECRET_KEY", settings.secret_key, True, 32),  # signs every token: 32 random bytes
        ("METRICS_TOKEN", settings.metrics_token, True, 0),
        ("AI_SERVICE_API_KEY", settings.ai_service_api_key, False, 0),
    ):
        if required or value:
            problem = secret_problem(name, value, min_bytes=min_bytes)
            if problem:
                problems.append(problem)
    if settings.database_url is None:
        problems.append("DATABASE_URL must be set")
    if settings.celery_broker_url is None:
        problems.append("CELERY_BROKER_URL must be set")
    for url in (settings.database_url, settings.celery_broker_url, settings.redis_url):
        password = url_password(url) if url else None
        if url and any(f":{bad}@" in url for bad in EXAMPLE_SECRETS if bad):
            problems.append(f"an example password is still in {redact_url(url)}")
        elif password is not None and secret_problem("password", password, 16):
            problems.append(f"the password in {redact_url(url or '')} is short or not random (16+ random characters)")
    try:
        if not settings.encryption_keys():
            problems.append(
                "STORAGE_ENCRYPTION_KEYS must be set: recordings are health data and are stored encrypted "
                "(e.g. STORAGE_ENCRYPTION_KEYS=k1:$(openssl rand -base64 32))"
            )
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def random_bytes(secret: str) -> float:
    """The most randomness ``secret`` can hold, in bytes, from the alphabet its characters use:
    hex digits carry 4 bits each, base64's 64 symbols 6, a wider mix up to ~6.5."""
    import math

    if all(c in "0123456789abcdef" for c in secret) or all(c in "0123456789ABCDEF" for c in secret):
        return len(secret) * 4 / 8
    pool = 0
    pool += 10 if any(c.isdigit() for c in secret) else 0
    pool += 26 if any(c.islower() for c in secret) else 0
    pool += 26 if any(c.isupper() for c in secret) else 0
    pool += 32 if any(not c.isalnum() for c in secret) else 0
    return len(secret) * math.log2(max(pool, 2)) / 8


def _repeats(secret: str) -> bool:
    """A short pattern repeated, or a run of consecutive characters (abcdef..., 123456...)."""
    for size in range(1, 9):
        if len(secret) >= 2 * size and (secret[:size] * (len(secret) // size + 1))[: len(secret)] == secret:
            return True
    steps = sum(1 for a, b in zip(secret, secret[1:], strict=False) if ord(b) - ord(a) == 1)
    return steps >= len(secret) * 0.6


def parse_encryption_keys(raw: str | None, single: str | None) -> dict[str, bytes]:
    """``id1:base64,id2:base64`` (and/or one bare base64 key, id ``k1``) -> {id: 32-byte key}."""
    import base64
    import binascii

    keys: dict[str, bytes] = {}
    entries = [e.strip() for e in (raw or "").split(",") if e.strip()]
    if single:
        entries.append(single.strip() if ":" in single.strip() else f"k1:{single.strip()}")
    for entry in entries:
        key_id, sep, b64 = entry.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", key_id):
            raise ValueError("STORAGE_ENCRYPTION_KEYS: each entry is ID:BASE64 (ID of 1-16 letters, digits, _ or -)")
        try:
            key = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"storage encryption key {key_id!r} is not valid base64") from None
        if len(key) != 32:
            raise ValueError(f"storage encryption key {key_id!r} is {len(key)} bytes; AES-256 needs 32")
        keys[key_id] = key
    return keys


def parse_sentinels(value: str | None) -> list[tuple[str, int]]:
    """``host:port,host:port`` as [(host, port)]; [] for None or blank. ValueError names the bad entry."""
    out: list[tuple[str, int]] = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"REDIS_SENTINELS: {item!r} is not host:port")
        out.append((host, int(port)))
    return out

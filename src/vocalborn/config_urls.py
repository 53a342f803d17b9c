"""The URLs in the settings: a pasted PostgreSQL URL made psycopg's, the bundled Redis's URL, and
a URL's password read or hidden (logs, refusals). Imports nothing of the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vocalborn.config import Settings


def normalise_database_url(url: str) -> str:
    """Let people paste ``postgresql://`` URLs; we drive PostgreSQL with psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def embedded_redis_url(settings: Settings, db: int) -> str:
    """URL of the bundled Redis that ``vocalborn up`` starts; its port is written to a file."""
    port_file = settings.data_dir / "redis" / "port"
    if port_file.exists():
        password_file = settings.data_dir / "redis" / "password"
        auth = f":{password_file.read_text().strip()}@" if password_file.exists() else ""
        return f"redis://{auth}127.0.0.1:{port_file.read_text().strip()}/{db}"
    raise RuntimeError("no broker configured: set CELERY_BROKER_URL, or start the embedded stack with `vocalborn up`")


def url_password(url: str) -> str | None:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    creds = rest.rpartition("@")[0]
    return creds.split(":", 1)[1] if ":" in creds else None


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"

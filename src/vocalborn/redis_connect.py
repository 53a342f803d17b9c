"""Every Redis connection of the project is made here: one direct server, or the primary that
Redis Sentinel names.

Without ``REDIS_SENTINELS`` a URL (``redis://[:password@]host:port/db``) is opened as it is.
With ``REDIS_SENTINELS=host:port,host:port,…`` the same URLs keep naming the database, the user
and the password, but not the server: the client asks the sentinels for the current primary of
``REDIS_SENTINEL_MASTER`` (default ``mymaster``) on every new connection, so after a failover the
next connection goes to the promoted replica, and a connection that finds the old primary
demoted (READONLY) is dropped and re-made. Commands that fail on a broken connection are retried
a few times with a short backoff, bounded so that a request waits about two seconds at most while
the sentinels elect a new primary, then fails the way a Redis outage fails (rate limits open,
publishes left to the republisher).

Celery's broker and result backend go through kombu's and Celery's own ``sentinel://``
transports (``celery_url`` and ``celery_transport_options``).

Self-contained on purpose: it depends on the settings only.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import ExponentialBackoff
from redis.connection import parse_url

from vocalborn.config import get_settings
from vocalborn.config_secrets import parse_sentinels  # a setting's parser (config uses it too)

if TYPE_CHECKING:
    from vocalborn.config import Settings

DEFAULT_MASTER = "mymaster"
# A failed command on a broken connection: retried this many times, 0.05 s, 0.1 s, … up to 0.5 s
# apart (about 2 s in all: the sentinels' election, not the client, decides how long a failover takes).
RETRIES = 6
_BACKOFF_CAP, _BACKOFF_BASE = 0.5, 0.05
_RETRY_ON = (redis.ConnectionError, redis.TimeoutError)

_lock = threading.Lock()
_sentinels: dict[tuple[Any, ...], Any] = {}


def _settings() -> Settings:
    return get_settings()


def sentinels(settings: Settings | None = None) -> list[tuple[str, int]]:
    s = settings or _settings()
    return parse_sentinels(s.redis_sentinels)


def master_name(settings: Settings | None = None) -> str:
    return (settings or _settings()).redis_sentinel_master or DEFAULT_MASTER


def _is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://"))


def _target(url: str) -> dict[str, Any]:
    """What the URL says about the database and credentials (the server comes from the sentinels)."""
    parsed = parse_url(url)
    out: dict[str, Any] = {"db": int(parsed.get("db") or 0)}
    for key in ("username", "password"):
        if parsed.get(key):
            out[key] = parsed[key]
    if url.startswith("rediss://"):
        out["ssl"] = True
    return out


def _sentinel(asynchronous: bool, addresses: list[tuple[str, int]], timeout: float) -> Any:
    """One Sentinel per process, event loop (asyncio) and address list: their connections to the
    sentinels are shared by every client made from them."""
    import asyncio

    loop = id(asyncio.get_running_loop()) if asynchronous else None
    key = (asynchronous, os.getpid(), loop, tuple(addresses), timeout)
    with _lock:
        found = _sentinels.get(key)
        if found is None:
            kind = redis.asyncio.sentinel.Sentinel if asynchronous else redis.sentinel.Sentinel
            sentinel_kwargs = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
            found = kind(addresses, sentinel_kwargs=sentinel_kwargs)
            if asynchronous:  # one per loop: a finished loop's entry is never used again
                for stale in [k for k in _sentinels if k[0] and k[1] == key[1] and k[2] != loop]:
                    del _sentinels[stale]
            _sentinels[key] = found
        return found


def _retry(asynchronous: bool) -> Any:
    backoff = ExponentialBackoff(cap=_BACKOFF_CAP, base=_BACKOFF_BASE)
    if asynchronous:
        from redis.asyncio.retry import Retry as AsyncRetry

        return AsyncRetry(backoff, RETRIES, supported_errors=_RETRY_ON)
    from redis.retry import Retry

    return Retry(backoff, RETRIES, supported_errors=_RETRY_ON)


def _timeout(kwargs: dict[str, Any]) -> float:
    return float(kwargs.get("socket_connect_timeout") or kwargs.get("socket_timeout") or 3.0)


def client(url: str, settings: Settings | None = None, **kwargs: Any) -> redis.Redis:
    """A synchronous client for ``url``: the Sentinel-managed primary when sentinels are
    configured (and ``url`` is a Redis URL), else ``redis.Redis.from_url``. ``kwargs`` are
    redis-py's (timeouts, health_check_interval, client_name…)."""
    addresses = sentinels(settings)
    if not addresses or not _is_redis(url):
        return redis.Redis.from_url(url, **kwargs)
    kwargs.setdefault("retry", _retry(False))
    sentinel = _sentinel(False, addresses, _timeout(kwargs))
    return sentinel.master_for(master_name(settings), redis_class=redis.Redis, **_target(url), **kwargs)


def async_client(url: str, settings: Settings | None = None, **kwargs: Any) -> redis.asyncio.Redis:
    """``client`` for asyncio (call it from the event loop that will use the client)."""
    addresses = sentinels(settings)
    if not addresses or not _is_redis(url):
        return redis.asyncio.Redis.from_url(url, **kwargs)
    kwargs.setdefault("retry", _retry(True))
    sentinel = _sentinel(True, addresses, _timeout(kwargs))
    return sentinel.master_for(master_name(settings), redis_class=redis.asyncio.Redis, **_target(url), **kwargs)


def celery_url(url: str, settings: Settings | None = None) -> str:
    """The broker or result-backend URL Celery is given: ``url`` itself, or with sentinels
    ``sentinel://[user:password@]host:port/db;sentinel://…`` (one per sentinel, each with the
    credentials and database of ``url``), as kombu's and Celery's Sentinel transports read it."""
    addresses = sentinels(settings)
    if not addresses or not _is_redis(url):
        return url
    target = _target(url)
    auth = ""
    if "password" in target or "username" in target:
        auth = quote(target.get("username", ""), safe="") + ":" + quote(target.get("password", ""), safe="") + "@"
    db = target["db"]
    return ";".join(f"sentinel://{auth}{_host(h)}:{p}/{db}" for h, p in addresses)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def celery_transport_options(url: str, options: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """``options`` plus, with sentinels, the ``master_name`` the transport needs and short
    timeouts for the sentinels themselves."""
    if not sentinels(settings) or not _is_redis(url):
        return dict(options)
    return {
        **options,
        "master_name": master_name(settings),
        "sentinel_kwargs": {"socket_timeout": 3, "socket_connect_timeout": 3},
    }


def describe(settings: Settings | None = None) -> str | None:
    """``sentinel mymaster via h:p, h:p`` for banners and logs; None without sentinels."""
    addresses = sentinels(settings)
    if not addresses:
        return None
    return f"sentinel {master_name(settings)} via " + ", ".join(f"{_host(h)}:{p}" for h, p in addresses)


# --------------------------------------------------------------------------------------------
# kombu's Sentinel transport, made safe to close after a failover
# --------------------------------------------------------------------------------------------
def _make_transport() -> Any:
    from kombu.transport import redis as kombu_redis

    class Channel(kombu_redis.SentinelChannel):
        """kombu's Sentinel channel, which reads the sentinels' addresses and the credentials
        from its connection each time it (re)builds its pool. After a failover the worker's
        consumer may close the channel after kombu dropped the connection's reference
        (``Connection.collect``): the close then rebuilds the pool to restore the unacknowledged
        messages and fails with AttributeError, which Celery does not treat as a connection
        error: the worker stopped ("Unrecoverable error"). This one keeps its connection's
        details and uses them when the reference is gone."""

        def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
            self._conninfo_kept = connection.client
            super().__init__(connection, *args, **kwargs)

        def _with_conninfo(self, method: Any, *args: Any) -> Any:
            transport = self.connection
            if transport.client is not None or self._conninfo_kept is None:
                return method(*args)
            transport.client = self._conninfo_kept
            try:
                return method(*args)
            finally:
                transport.client = None

        def _connparams(self, asynchronous: bool = False) -> Any:
            return self._with_conninfo(super()._connparams, asynchronous)

        def _sentinel_managed_pool(self, asynchronous: bool = False) -> Any:
            return self._with_conninfo(super()._sentinel_managed_pool, asynchronous)

    return type("SentinelTransport", (kombu_redis.SentinelTransport,), {"Channel": Channel})


def __getattr__(name: str) -> Any:  # the transport class is made on first use (kombu imported then)
    if name == "SentinelTransport":
        transport = _make_transport()
        globals()[name] = transport
        return transport
    raise AttributeError(name)


def use_safe_sentinel_transport() -> None:
    """Make ``sentinel://`` (kombu's alias) name our transport in this process, so the URLs stay
    what Celery, Flower and the logs expect while the worker gets the safe close."""
    from kombu import transport

    name = f"{__name__}:SentinelTransport"
    if transport.TRANSPORT_ALIASES.get("sentinel") != name:
        transport.TRANSPORT_ALIASES["sentinel"] = name
        transport._transport_cache.pop("sentinel", None)

"""The process's Redis client (the app's own Redis: live events, limits, registries, leases)."""

from __future__ import annotations

import redis

from vocalborn.config import get_settings
from vocalborn.kit.singletons import PerProcess
from vocalborn.redis_connect import client


def _connect() -> redis.Redis:
    return client(  # a plain URL, or the Sentinels' master (REDIS_SENTINELS)
        get_settings().effective_redis_url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
    )


_CLIENT: PerProcess[redis.Redis] = PerProcess(_connect)


def get_redis() -> redis.Redis:
    """One client per process (made again after a fork)."""
    return _CLIENT.get()

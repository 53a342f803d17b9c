"""Which workers are online and how many slots they have, kept in Redis with a TTL.

Each worker's main process refreshes its key; a dead worker's key simply expires. Used for
queue-time estimates and ``workers online`` in the admin stats, without Celery's slow broadcast.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import redis

from vocalborn.config import get_settings
from vocalborn.tasks.events import get_redis

TTL_SECONDS = 30


def _key(hostname: str = "*") -> str:
    return f"{get_settings().redis_key_prefix}workers:{hostname}"


def announce(hostname: str, concurrency: int, consumed: int) -> None:
    payload = {"hostname": hostname, "concurrency": concurrency, "consumed": consumed, "seen": time.time()}
    get_redis().set(_key(hostname), json.dumps(payload), ex=TTL_SECONDS)


def withdraw(hostname: str) -> None:
    with contextlib.suppress(redis.RedisError):
        get_redis().delete(_key(hostname))


def online_workers() -> list[dict[str, Any]]:
    client = get_redis()
    keys = list(client.scan_iter(match=_key(), count=100))
    if not keys:
        return []
    return [json.loads(v) for v in client.mget(keys) if v]


def _reserved_key(task_id: str) -> str:
    return f"{get_settings().redis_key_prefix}reserved:{task_id}"


def note_reserved(task_id: str, hostname: str) -> None:
    """A worker's main process took this message from the broker (it may wait in its buffer
    before a pool process starts it). Lets the republisher tell a reservation held by a live
    worker from one left behind by a worker that was killed."""
    get_redis().set(_reserved_key(task_id), hostname, ex=get_settings().task_time_limit)


def forget_reserved(task_ids: list[str]) -> None:
    """Drop the reservation notes of these tasks (an erased learner's: nothing of theirs stays)."""
    if task_ids:
        get_redis().delete(*[_reserved_key(t) for t in task_ids])


def reserved_by(task_ids: list[str]) -> dict[str, str | None]:
    if not task_ids:
        return {}
    values = get_redis().mget([_reserved_key(t) for t in task_ids])
    return {t: (v.decode() if isinstance(v, bytes) else v) for t, v in zip(task_ids, values, strict=True)}

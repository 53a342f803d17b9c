"""Progress events on Redis pub/sub: workers publish, API processes subscribe (one channel)."""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

import redis

from vocalborn.config import get_settings
from vocalborn.tasks.models import AIAnalysisTaskEvent

log = logging.getLogger(__name__)

_client: redis.Redis | None = None
_client_pid: int | None = None
_lock = threading.Lock()


def channel_name() -> str:
    return f"{get_settings().redis_key_prefix}task-events"


def get_redis() -> redis.Redis:
    """One client per process (re-made after fork)."""
    global _client, _client_pid
    with _lock:
        if _client is None or _client_pid != os.getpid():
            _client = redis.Redis.from_url(
                get_settings().effective_redis_url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
            )
            _client_pid = os.getpid()
        return _client


def event_message(event: AIAnalysisTaskEvent, total_steps: int) -> dict[str, Any]:
    """The plan's WebSocket message, plus the event id and type for ordering and resume."""
    return {
        "event_id": event.event_id,
        "task_id": str(event.task_id),
        "event_type": event.event_type,
        "status": event.status,
        "progress": event.progress,
        "current_step": event.current_step,
        "total_steps": total_steps,
        "attempt": event.attempt,
        "worker_name": event.worker_name,
        "message": event.message,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
    }


def publish(message: dict[str, Any]) -> None:
    """Best effort: the database already holds the event; a missed publish is replayed from it."""
    try:
        get_redis().publish(channel_name(), json.dumps(message, ensure_ascii=False))
    except redis.RedisError as exc:
        log.warning("could not publish progress event for task %s: %s", message.get("task_id"), exc)

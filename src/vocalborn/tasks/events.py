"""Task events on Redis pub/sub: workers publish, API processes subscribe (one channel).

The message is defined once, here (:class:`TaskEventMessage`), with one builder per kind: a
stored event (:func:`stored_event_message`), a throttled progress update that was never stored
(:func:`progress_message`) and the WebSocket's opening snapshot (:func:`snapshot_message`). The
worker, the service and the WebSocket hub all build it through these; ``docs/WEBSOCKET.md``
quotes the same shape.

Besides the message, a cancel request leaves a per-attempt flag in Redis (set in the same round
trip as its publish), which the worker reads at each step boundary in the round trip it makes
anyway to publish the step's progress. The database stays the source of truth: the worker's
heartbeat also reads the flag there, and its final transaction checks it again.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

import redis

from vocalborn.analysis.types import TOTAL_STEPS
from vocalborn.config import get_settings
from vocalborn.kit.redis import get_redis
from vocalborn.sqltypes import utcnow

if TYPE_CHECKING:
    from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent

log = logging.getLogger(__name__)


def channel_name() -> str:
    return f"{get_settings().redis_key_prefix}task-events"


# --------------------------------------------------------------------------------------------
# the message
# --------------------------------------------------------------------------------------------
class TaskEventMessage(TypedDict):
    """The plan's WebSocket message, plus the event id and type for ordering and resume.

    ``event_id`` is null for a progress update that was throttled (never stored) and for the
    snapshot. The key order is the order on the wire."""

    event_id: int | None
    task_id: str
    event_type: str
    status: str
    progress: int
    current_step: str | None
    total_steps: int
    attempt: int
    worker_name: str | None
    message: str | None
    timestamp: str


class SnapshotMessage(TaskEventMessage):
    """The first message on a socket: the task as it is now, and its newest stored event id."""

    last_event_id: int | None


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def stored_event_message(event: AIAnalysisTaskEvent) -> TaskEventMessage:
    """A row of the task's event log."""
    return {
        "event_id": event.event_id,
        "task_id": str(event.task_id),
        "event_type": event.event_type,
        "status": event.status,
        "progress": event.progress,
        "current_step": event.current_step,
        "total_steps": TOTAL_STEPS,
        "attempt": event.attempt,
        "worker_name": event.worker_name,
        "message": event.message,
        "timestamp": _timestamp(event.created_at),
    }


def event_message(event: AIAnalysisTaskEvent, total_steps: int = TOTAL_STEPS) -> TaskEventMessage:
    """:func:`stored_event_message` under its former name (``transitions.publish_live_event`` uses it);
    ``total_steps`` is always the engine's ``TOTAL_STEPS``."""
    return stored_event_message(event)


def progress_message(
    *, task_id: str, progress: int, current_step: str | None, attempt: int, worker_name: str | None
) -> TaskEventMessage:
    """A worker's progress update between two stored ones (throttled by PROGRESS_WRITE_INTERVAL)."""
    return {
        "event_id": None,
        "task_id": task_id,
        "event_type": "progress",
        "status": "processing",
        "progress": progress,
        "current_step": current_step,
        "total_steps": TOTAL_STEPS,
        "attempt": attempt,
        "worker_name": worker_name,
        "message": None,
        "timestamp": _timestamp(utcnow()),
    }


def snapshot_message(task: AIAnalysisTask, last_event_id: int | None) -> SnapshotMessage:
    """The task's current state, sent first on each WebSocket."""
    return {
        "event_id": None,
        "task_id": str(task.task_id),
        "event_type": "snapshot",
        "status": task.status,
        "progress": task.progress,
        "current_step": task.current_step,
        "total_steps": TOTAL_STEPS,
        "attempt": task.attempt,
        "worker_name": task.worker_name,
        "message": task.error_message,
        "timestamp": _timestamp(utcnow()),
        "last_event_id": last_event_id,
    }


# --------------------------------------------------------------------------------------------
# publishing, and the cancel flag
# --------------------------------------------------------------------------------------------
def cancel_flag_key(task_id: str, attempt: int) -> str:
    return f"{get_settings().redis_key_prefix}cancel:{task_id}:{attempt}"


def _flag_ttl() -> int:
    settings = get_settings()
    return int(settings.task_time_limit + 2 * settings.task_lease_seconds)


def publish_live(message: TaskEventMessage | dict[str, Any]) -> None:
    """Best effort: the database already holds the event; a missed publish is replayed from it.

    A ``cancel_requested`` event also raises its attempt's cancel flag, in the same round trip."""
    try:
        pipe = get_redis().pipeline(transaction=False)
        if message.get("event_type") == "cancel_requested":
            pipe.set(cancel_flag_key(str(message["task_id"]), int(message["attempt"])), "1", ex=_flag_ttl())
        pipe.publish(channel_name(), json.dumps(message, ensure_ascii=False))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not publish progress event for task %s: %s", message.get("task_id"), exc)


# Publish the message unless the attempt's cancel flag is up: one round trip, and a cancelled run
# never announces a step it will not run.
_PUBLISH_UNLESS_FLAGGED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return 0
"""


def publish_unless_cancelled(message: TaskEventMessage) -> bool:
    """Publish ``message`` unless a cancel was requested for its attempt; True when it was.

    Redis unavailable: nothing is published and False is returned (the heartbeat reads the flag
    from the database; the final transaction checks it again)."""
    key = cancel_flag_key(message["task_id"], message["attempt"])
    try:
        flagged = get_redis().eval(
            _PUBLISH_UNLESS_FLAGGED, 1, key, channel_name(), json.dumps(message, ensure_ascii=False)
        )
    except redis.RedisError as exc:
        log.warning("could not publish progress event for task %s: %s", message["task_id"], exc)
        return False
    return bool(flagged)


def cancel_flagged(task_id: str, attempt: int) -> bool:
    """Whether a cancel was requested for this attempt (False when Redis cannot say)."""
    try:
        return bool(get_redis().exists(cancel_flag_key(task_id, attempt)))
    except redis.RedisError as exc:
        log.warning("could not read the cancel flag of task %s: %s", task_id, exc)
        return False

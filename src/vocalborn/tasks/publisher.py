"""Publishing analysis messages in batches, for the fast submit path on a Redis broker.

``celery_app.send_task`` costs about 0.8 ms of CPU and two Redis round trips per message (the
message, then the ``task-sent`` event for Flower), in the thread pool. Here the same two things
are written for a whole batch of submits in one pipelined round trip on an asyncio client: the
message exactly as Celery's protocol 2 and kombu's Redis transport would build it (a test
compares them field by field with Celery's own), and the same ``task-sent`` event.

Only for a Redis broker; on RabbitMQ (``supported()`` is False) the caller publishes each
message with ``send_task``. As with ``send_task``, a failed publish is not an error: the task is
safe in the database, pending, and Beat's republisher sends it again.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from celery.utils.time import utcoffset

from vocalborn.celery_app import ANALYZE_TASK, celery_app
from vocalborn.config import get_settings
from vocalborn.monitoring.publish import PUBLISHED_AT_HEADER

log = logging.getLogger(__name__)

_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_clients: dict[tuple[int, int], Any] = {}
_hostname: str | None = None


@dataclass(frozen=True)
class Outgoing:
    task_id: str  # the task's id, the message's only argument
    celery_task_id: str  # the message's id (the same UUID, as text)
    request_id: str | None


def supported() -> bool:
    """Whether messages can be written here: a Redis broker (``redis://``, ``rediss://``)."""
    return get_settings().effective_broker_url.startswith(("redis://", "rediss://"))


def _origin() -> str:
    global _hostname
    if _hostname is None:
        _hostname = f"gen{os.getpid()}@{socket.gethostname()}"
    return _hostname


def _time_limits() -> list[Any]:
    """As ``send_task`` sets them: the task's own limits if it is registered in this process
    (a worker, a test), none otherwise (the API: the worker then applies its configured ones)."""
    task = celery_app._tasks.get(ANALYZE_TASK)
    get_options = getattr(task, "_get_exec_options", None)
    options = get_options() if callable(get_options) else None
    options = options or {}
    return [options.get("time_limit"), options.get("soft_time_limit")]


def task_message(item: Outgoing, queue: str, reply_to: str) -> dict[str, Any]:
    """The Redis envelope of one analysis message, as kombu writes what ``send_task`` builds."""
    args = [item.task_id]
    body = json.dumps([args, {}, _EMBED]).encode()
    headers: dict[str, Any] = {
        "lang": "py",
        "task": ANALYZE_TASK,
        "id": item.celery_task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": _time_limits(),
        "root_id": item.celery_task_id,
        "parent_id": None,
        "argsrepr": repr(args),
        "kwargsrepr": "{}",
        "origin": _origin(),
        "ignore_result": True,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
        "vocalborn_request_id": item.request_id or "",
        PUBLISHED_AT_HEADER: time.time(),  # as monitoring.publish stamps it: the queue-wait metric
    }
    return {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "correlation_id": item.celery_task_id,
            "reply_to": reply_to,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }


def sent_event(item: Outgoing, queue: str) -> dict[str, Any]:
    """The ``task-sent`` event (``task_send_sent_event``) Flower shows, as Celery sends it."""
    event = {
        "hostname": _origin(),
        "utcoffset": utcoffset(),
        "pid": os.getpid(),
        "clock": celery_app.clock.forward(),
        "uuid": item.celery_task_id,
        "root_id": item.celery_task_id,
        "parent_id": None,
        "name": ANALYZE_TASK,
        "args": repr([item.task_id]),
        "kwargs": "{}",
        "retries": 0,
        "eta": None,
        "expires": None,
        "queue": queue,
        "exchange": "",
        "routing_key": queue,
        "timestamp": time.time(),
        "type": "task-sent",
    }
    return {
        "body": base64.b64encode(json.dumps(event).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"hostname": _origin()},
        "properties": {
            "delivery_mode": 1,
            "delivery_info": {"exchange": "celeryev", "routing_key": "task.sent"},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }


def sent_topic() -> str:
    """The pub/sub channel kombu's Redis transport publishes ``celeryev``/``task.sent`` on."""
    return f"/{_broker_db()}.celeryev/task.sent"


def _broker_db() -> int:
    from kombu.utils.url import url_to_parts

    parts = url_to_parts(get_settings().effective_broker_url)
    path = (parts.path or "0").strip("/")
    return int(path) if path.isdigit() else 0


def _client() -> Any:
    import redis.asyncio as aioredis

    key = (os.getpid(), id(asyncio.get_running_loop()))
    client = _clients.get(key)
    if client is None:
        timeout = float(celery_app.conf.broker_connection_timeout or 3)
        client = aioredis.Redis.from_url(
            get_settings().effective_broker_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        _clients.clear()  # a client of another loop (a finished test client's) cannot be used here
        _clients[key] = client
    return client


async def publish(items: list[Outgoing]) -> bool:
    """Push the messages of ``items`` (in order, so FIFO holds) and their ``task-sent`` events in
    one round trip. False (logged) when the broker did not take them: they stay pending and the
    republisher sends them again."""
    if not items:
        return True
    queue = get_settings().task_queue
    reply_to = celery_app.thread_oid
    messages = [json.dumps(task_message(i, queue, reply_to)) for i in items]
    try:
        pipe = _client().pipeline(transaction=False)
        # LPUSH a b c puts c at the head; the worker pops from the tail: a first, FIFO.
        pipe.lpush(queue, *messages)
        if celery_app.conf.task_send_sent_event:
            channel = sent_topic()
            for item in items:
                pipe.publish(channel, json.dumps(sent_event(item, queue)))
        await pipe.execute()
        return True
    except Exception as exc:  # refused, reset, timeout: redis-py raises several types
        log.warning(
            "publishing %d task(s) failed (%s: %s), first %s; each stays pending and will be republished",
            len(items),
            type(exc).__name__,
            exc,
            items[0].task_id,
        )
        return False

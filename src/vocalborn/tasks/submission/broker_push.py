"""Publishing analysis messages in batches, for the fast submit path on a Redis broker.

``celery_app.send_task`` costs about 0.8 ms of CPU and two Redis round trips per message (the
message, then the ``task-sent`` event for Flower), in the thread pool. Here the same two things
are written for a whole batch of submits in one round trip (one script call) on an asyncio client: the
message exactly as Celery's protocol 2 and kombu's Redis transport would build it (a test
compares them field by field with Celery's own), and the same ``task-sent`` event.

Per submit this is CPU the API spends on every request, so the two JSON texts of a message
are not built with ``json.dumps`` each time: ``task_message`` and ``sent_event`` say what they
hold, and ``_Frames`` turns them once (per queue, process and limits) into templates whose holes
take the few values that change (ids, times, tags). One script call pushes a batch's messages
and publishes their events: one command to write and one reply to read, not one per event.

Only for a Redis broker; on RabbitMQ (``supported()`` is False) the caller publishes each
message with ``send_task``. As with ``send_task``, a failed publish is not an error: the task is
safe in the database, pending, and Beat's republisher sends it again.
"""

from __future__ import annotations

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
from vocalborn.kit.singletons import PerLoop
from vocalborn.monitoring.queue_wait import PUBLISHED_AT_HEADER
from vocalborn.redis_connect import async_client

log = logging.getLogger(__name__)

_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
_scripts: PerLoop[Any] = PerLoop()  # the push script on this process and event loop's client
_hostname: tuple[int, str] | None = None  # (pid, origin): a forked child names itself


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
    pid = os.getpid()
    if _hostname is None or _hostname[0] != pid:
        _hostname = (pid, f"gen{pid}@{socket.gethostname()}")
    return _hostname[1]


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
        PUBLISHED_AT_HEADER: time.time(),  # as monitoring.queue_wait stamps it: the queue-wait metric
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


# Push a batch's messages (in order: LPUSH a b c puts c at the head, and the worker pops from
# the tail, a first) and publish their events. KEYS[1] the queue; ARGV[1] the events' channel,
# ARGV[2] the number n of messages, then the n messages, then their events (none when the
# events are off). Slices keep ``unpack`` within Lua's stack whatever the batch's size.
_PUSH = """
local n = tonumber(ARGV[2])
for i = 3, n + 2, 1000 do
  redis.call('LPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, n + 2)))
end
for i = n + 3, #ARGV do
  redis.call('PUBLISH', ARGV[1], ARGV[i])
end
return n
"""


def _push() -> Any:
    """``_PUSH`` on this process and event loop's broker client (made on first use)."""

    def make() -> Any:
        timeout = float(celery_app.conf.broker_connection_timeout or 3)
        client = async_client(
            get_settings().effective_broker_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        return client.register_script(_PUSH)

    return _scripts.get("push", make)


_MARK = "\x1evb:%s\x1e"  # a hole's marker in the value a template is made from


def _mark(name: str) -> str:
    return _MARK % name


class _Template:
    """A JSON text made once from a value with markers (``_mark``) where values change; ``fill``
    puts JSON literals in their place. What json.dumps of the value with those values gives."""

    def __init__(self, value: Any, holes: tuple[str, ...]) -> None:
        text = json.dumps(value).replace("%", "%%")
        for name in holes:
            marker = json.dumps(_mark(name))
            if marker not in text:
                raise ValueError(f"the hole {name} is not in the template")
            text = text.replace(marker, f"%({name})s")
        self.text = text

    def fill(self, **literals: str) -> str:
        return self.text % literals


_quote = json.encoder.encode_basestring_ascii  # a str as a JSON literal, as json.dumps writes it


class _Frames:
    """The templates of one queue's messages and events in this process."""

    def __init__(self, queue: str, reply_to: str, offset: float) -> None:
        self.queue = queue
        self.channel = sent_topic()
        probe = Outgoing(_mark("id"), _mark("id"), _mark("request"))
        message = task_message(probe, queue, reply_to)
        message["body"] = _mark("body")
        message["headers"]["argsrepr"] = _mark("argsrepr")
        message["headers"]["vocalborn_request_id"] = _mark("request")
        message["headers"][PUBLISHED_AT_HEADER] = _mark("at")
        message["properties"]["delivery_tag"] = _mark("tag")
        self.message = _Template(message, ("id", "body", "argsrepr", "request", "at", "tag"))
        self.body = _Template([[_mark("id")], {}, _EMBED], ("id",))
        event = sent_event(probe, queue)
        envelope = {**event, "body": _mark("body")}
        envelope["properties"] = {**event["properties"], "delivery_tag": _mark("tag")}
        self.envelope = _Template(envelope, ("body", "tag"))
        fields = json.loads(base64.b64decode(event["body"]))
        fields.update(utcoffset=offset, clock=_mark("clock"), timestamp=_mark("at"), args=_mark("args"))
        self.event = _Template(fields, ("id", "clock", "at", "args"))

    def encode(self, item: Outgoing, now: float, with_event: bool = True) -> tuple[str, str | None]:
        """The message and (``with_event``) its ``task-sent`` event, as JSON texts (``json.dumps``
        of ``task_message`` and ``sent_event``, but for the tags and times)."""
        cid, tid = _quote(item.celery_task_id), _quote(item.task_id)
        args = _quote(repr([item.task_id]))
        at = repr(now)
        body = base64.b64encode(self.body.fill(id=tid).encode()).decode()
        message = self.message.fill(
            id=cid, body=_quote(body), argsrepr=args, request=_quote(item.request_id or ""), at=at, tag=_tag()
        )
        if not with_event:
            return message, None
        fields = self.event.fill(id=cid, clock=str(celery_app.clock.forward()), at=at, args=args)
        event = self.envelope.fill(body=_quote(base64.b64encode(fields.encode()).decode()), tag=_tag())
        return message, event


def _tag() -> str:
    return '"' + str(uuid.uuid4()) + '"'


_frames: dict[tuple[Any, ...], _Frames] = {}


def _frames_for(queue: str, reply_to: str) -> _Frames:
    offset = utcoffset()
    key = (queue, reply_to, _origin(), tuple(_time_limits()), offset, get_settings().effective_broker_url)
    found = _frames.get(key)
    if found is None:
        _frames.clear()  # the settings, the process, the task's limits or the clock's offset changed
        found = _frames[key] = _Frames(queue, reply_to, offset)
    return found


async def push_messages(items: list[Outgoing]) -> bool:
    """Push the messages of ``items`` (in order, so FIFO holds) and their ``task-sent`` events in
    one round trip. False (logged) when the broker did not take them: they stay pending and the
    republisher sends them again."""
    if not items:
        return True
    frames = _frames_for(get_settings().task_queue, celery_app.thread_oid)
    now = time.time()
    with_events = bool(celery_app.conf.task_send_sent_event)
    encoded = [frames.encode(i, now, with_events) for i in items]
    events = [e for _, e in encoded if e is not None]
    try:
        await _push()(keys=[frames.queue], args=[frames.channel, len(items), *(m for m, _ in encoded), *events])
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

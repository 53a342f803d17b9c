"""The one Redis pub/sub subscription of an API process, and the sockets it feeds.

The :class:`Hub` receives every task event the workers publish on ``events.channel_name()`` and
hands each one to the :class:`Subscriber` of each socket watching that task, through a bounded
queue per socket. ``tasks/api/ws.py`` owns the endpoint and one hub per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any

from vocalborn.config import get_settings
from vocalborn.redis_connect import async_client
from vocalborn.tasks import status_cache

log = logging.getLogger(__name__)

# Close codes (RFC 6455 section 7.4.1) a hub gives its sockets.
CLOSE_NORMAL = 1000  # the task reached success, failure or cancelled
CLOSE_GOING_AWAY = 1001  # this API process is shutting down: reconnect with ?after=
CLOSE_TRY_AGAIN = 1013  # this client read too slowly: reconnect with ?after=


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


RESYNC = _Marker("resync")  # the subscription was (re)established: events may have been missed


# --------------------------------------------------------------------------------------------
# the one subscription of this process
# --------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Subscriber:
    task_id: str
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(maxsize=get_settings().ws_queue_size))
    # Set when the socket must go: its queue overflowed, or the process is stopping. The socket
    # waits on this beside its sender, so even a send stuck on a full TCP buffer is abandoned.
    kicked: asyncio.Event = field(default_factory=asyncio.Event)
    kick_reason: tuple[int, str] = (CLOSE_NORMAL, "")

    def kick(self, code: int, reason: str) -> None:
        if not self.kicked.is_set():
            self.kick_reason = (code, reason)
            self.kicked.set()

    def offer(self, item: Any) -> None:
        """Never blocks the hub: a full queue disconnects this socket, and only this one."""
        if self.kicked.is_set():
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            while not self.queue.empty():  # nothing queued matters any more
                self.queue.get_nowait()
            self.kick(
                CLOSE_TRY_AGAIN, f"too slow: more than {self.queue.maxsize} messages behind; reconnect with after="
            )


class Hub:
    """Owns one Redis connection subscribed to the events channel, for one event loop."""

    def __init__(self, url: str, channel: str) -> None:
        self.url = url
        self.channel = channel
        self.loop = asyncio.get_running_loop()
        self.by_task: dict[str, set[Subscriber]] = {}
        self.connected = asyncio.Event()
        self.subscriptions = 0  # confirmations received (the first one, then one per reconnect)
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False

    # --- sockets ------------------------------------------------------------------------------
    def add(self, task_id: str) -> Subscriber:
        sub = Subscriber(task_id)
        self.by_task.setdefault(task_id, set()).add(sub)
        self.start()
        return sub

    def remove(self, sub: Subscriber) -> None:
        subs = self.by_task.get(sub.task_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.by_task[sub.task_id]

    def socket_count(self) -> int:
        return sum(len(s) for s in self.by_task.values())

    def dispatch(self, raw: bytes | str) -> None:
        try:
            message = json.loads(raw)
            status_cache.message_dropped(message)
            if "forget_user" in message:
                return  # for the status caches only
            task_id = message["task_id"]
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignoring a malformed message on %s", self.channel)
            return
        for sub in tuple(self.by_task.get(task_id, ())):
            sub.offer(message)

    def _resync_all(self) -> None:
        for subs in tuple(self.by_task.values()):
            for sub in tuple(subs):
                sub.offer(RESYNC)

    # --- the subscription ---------------------------------------------------------------------
    def start(self) -> None:
        if self._runner is None or self._runner.done():
            self._stopping = False
            self._runner = self.loop.create_task(self._run(), name="vocalborn-ws-hub")

    async def stop(self) -> None:
        self._stopping = True
        for subs in tuple(self.by_task.values()):
            for sub in tuple(subs):
                sub.kick(CLOSE_GOING_AWAY, "server shutting down; reconnect with after=")
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        self._runner = None
        self.connected.clear()

    async def _run(self) -> None:
        delay = 0.25
        while not self._stopping:
            client = async_client(
                self.url,
                socket_connect_timeout=5,
                socket_keepalive=True,
                health_check_interval=15,
                client_name=f"vocalborn-ws-{os.getpid()}",
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=5.0)
                    if message is None:
                        continue
                    kind = message.get("type")
                    if kind == "subscribe":
                        # Also seen when redis-py reconnects and re-subscribes by itself: anything
                        # published meanwhile was lost, so every socket re-reads the database.
                        self.subscriptions += 1
                        self.connected.set()
                        status_cache.CACHE.set_live(True)
                        delay = 0.25
                        if self.subscriptions > 1:
                            log.info("progress subscription re-established; sockets re-sync from the database")
                            self._resync_all()
                    elif kind == "message":
                        self.dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection refused, reset, timeout, protocol error
                if self.connected.is_set():
                    log.warning("progress subscription lost (%s: %s); reconnecting", type(exc).__name__, exc)
                    self.connected.clear()
                    self._resync_all()  # wakes every socket, which then polls until we are back
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 10.0)
            finally:
                self.connected.clear()
                status_cache.CACHE.set_live(False)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

"""Live progress over WebSocket: ``WS /api/v1/tasks/ws/task/{task_id}``.

One Redis pub/sub subscription per API process (the :class:`Hub`, in ``ws_hub.py``) receives every task event the
workers publish on ``events.channel_name()`` and hands each one to the sockets watching that task,
through a bounded queue per socket. The database stays the source of truth: a socket replays the
persisted events after the client's ``after`` id, and every live event that carries an
``event_id`` is only a hint to read the new rows from the database. That makes the stream exact
(in event-id order, no gaps, no duplicates) even when publishes are lost, arrive out of order, or
the subscription drops. Progress messages that were throttled and never persisted
(``event_id: null``) are forwarded as they come.

Protocol, close codes and resume: ``docs/WEBSOCKET.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any, cast

from fastapi import APIRouter, HTTPException, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from vocalborn.auth.dependencies import user_from_token
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.i18n import Language, explicit_language, step_label, translate
from vocalborn.security.access import record_access
from vocalborn.tasks import events, service
from vocalborn.tasks.api.ws_hub import CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_TRY_AGAIN, RESYNC, Hub, Subscriber
from vocalborn.tasks.events import SnapshotMessage, TaskEventMessage
from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import TERMINAL_STATUSES

__all__ = ["CLOSE_GOING_AWAY", "CLOSE_NORMAL", "CLOSE_TRY_AGAIN", "Hub", "get_hub", "router", "shutdown_hub"]

log = logging.getLogger(__name__)

router = APIRouter(tags=["tasks"])

# Close codes (RFC 6455 section 7.4.1); 1000, 1001 and 1013 are in ws_hub.py.
CLOSE_POLICY = 1008  # refused: no or bad token, or not your task (or no such task)
CLOSE_INTERNAL = 1011  # the database is unavailable

# How long a new socket waits for the subscription to be live before relying on polling.
READY_WAIT_SECONDS = 3.0
REPLAY_PAGE = 1000


_open_sockets = 0


def open_socket_count() -> int:
    """Sockets of this process that passed authorisation and are still open (a gauge)."""
    return _open_sockets


# --------------------------------------------------------------------------------------------
# the one subscription of this process
# --------------------------------------------------------------------------------------------
_hub: Hub | None = None


def get_hub() -> Hub:
    """The hub of the running event loop (a new loop, as in tests, gets a new hub)."""
    global _hub
    loop = asyncio.get_running_loop()
    if _hub is None or _hub.loop is not loop or loop.is_closed():
        _hub = Hub(get_settings().effective_redis_url, events.channel_name())
    return _hub


async def shutdown_hub() -> None:
    """Close every socket (1001) and the subscription; called from the app's lifespan."""
    global _hub
    hub = _hub
    if hub is not None and hub.loop is asyncio.get_running_loop():
        await hub.stop()
        _hub = None


# --------------------------------------------------------------------------------------------
# database reads (sync SQLAlchemy, always in the threadpool)
# --------------------------------------------------------------------------------------------
class Refused(Exception):
    pass


def _authorize(task_id: str, token: str | None) -> bool:
    """Refused unless the token's user may read the task; True for an admin (who sees worker names)."""

    try:
        task_uuid = uuid.UUID(task_id)
    except ValueError:
        raise Refused("task not found") from None
    with open_session() as db:
        try:
            user = user_from_token(db, token)
        except HTTPException as exc:
            raise Refused(str(exc.detail)) from None
        try:
            task = service.get_task_for(db, task_uuid, user)
        except service.NotFound:
            raise Refused("task not found") from None

        record_access(db, user, task.user_id, "task_events_live", task.task_id)
        return user.role == "admin"


def _snapshot_and_events(task_id: str, after: int) -> tuple[SnapshotMessage, list[TaskEventMessage]]:
    from sqlalchemy import func
    from sqlmodel import select

    with open_session() as db:
        task = db.get(AIAnalysisTask, uuid.UUID(task_id))
        if task is None:
            raise Refused("task not found")
        last_id = db.exec(
            select(func.max(AIAnalysisTaskEvent.event_id)).where(AIAnalysisTaskEvent.task_id == task.task_id)
        ).one()
        snapshot = events.snapshot_message(task, last_id)
    return snapshot, _events_after(task_id, after)


def _events_after(task_id: str, after: int) -> list[TaskEventMessage]:
    out: list[TaskEventMessage] = []
    with open_session() as db:
        task = db.get(AIAnalysisTask, uuid.UUID(task_id))
        if task is None:
            return out
        while True:
            page = service.list_events(db, task, after=after, limit=REPLAY_PAGE)
            out.extend(events.stored_event_message(e) for e in page)
            if len(page) < REPLAY_PAGE:
                return out
            after = page[-1].event_id or after


# --------------------------------------------------------------------------------------------
# the endpoint
# --------------------------------------------------------------------------------------------
def _token(websocket: WebSocket) -> str | None:
    token = websocket.query_params.get("token")
    if token:
        return token
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def _is_terminal(message: TaskEventMessage) -> bool:
    return message.get("event_id") is not None and message.get("status") in TERMINAL_STATUSES


class _Stream:
    """Sends one task's events to one socket, in event-id order, each persisted event once."""

    def __init__(
        self,
        websocket: WebSocket,
        task_id: str,
        last_sent: int,
        show_worker: bool = False,
        lang: Language | None = None,
    ) -> None:
        self.show_worker = show_worker  # worker host names are for admins only
        self.lang = lang  # the language asked for (?lang= / Accept-Language): steps and messages in it
        self.websocket = websocket
        self.task_id = task_id
        self.last_sent = last_sent
        self.finished = False

    async def send(self, message: TaskEventMessage) -> None:
        if not self.show_worker and message.get("worker_name") is not None:
            message = message.copy()
            message["worker_name"] = None
        if self.lang is not None:  # issue #26: the step label and a message in the caller's language
            message = message.copy()
            message["current_step"] = step_label(message.get("current_step"), self.lang)
            if isinstance(message.get("message"), str):
                message["message"] = translate(message["message"] or "", self.lang)
        await self.websocket.send_text(json.dumps(message, ensure_ascii=False))

    async def send_persisted(self, batch: list[TaskEventMessage]) -> None:
        fresh = [(m["event_id"], m) for m in batch if m["event_id"] is not None and m["event_id"] > self.last_sent]
        for i, (event_id, message) in enumerate(fresh):
            await self.send(message)
            self.last_sent = event_id
            # A terminal event ends the stream only if nothing follows it: a task an admin
            # retried has an old "failed" in its history and is running again after it.
            if _is_terminal(message) and i == len(fresh) - 1:
                self.finished = True
                return

    async def catch_up(self) -> None:
        """Read whatever the database holds after the last event sent."""
        await self.send_persisted(await run_in_threadpool(_events_after, self.task_id, self.last_sent))

    async def handle(self, item: Any) -> None:
        if item is RESYNC:
            await self.catch_up()
        elif isinstance(item, dict):
            message = cast(TaskEventMessage, item)  # as the worker published it (events.py)
            event_id = message.get("event_id")
            if event_id is None:
                # A throttled progress report, never persisted: forward it as is.
                await self.send(message)
            elif event_id > self.last_sent:
                # The database has it (publish follows commit); reading from there also fills in
                # any event whose publish was lost or overtaken.
                await self.catch_up()


async def _receive_until_disconnect(websocket: WebSocket) -> None:
    """Clients have nothing to say; read (and drop) their frames to notice a disconnect."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _close(websocket: WebSocket, code: int, reason: str = "") -> None:
    if websocket.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code, reason[:120])


@router.websocket("/api/v1/tasks/ws/task/{task_id}", name="task_events_socket")
async def task_events_socket(websocket: WebSocket, task_id: str) -> None:
    """The current state (``snapshot``), then every event of the task; closes (1000) after the
    terminal one. Token as ``?token=`` or ``Authorization: Bearer``; resume with ``?after=``."""
    global _open_sockets
    after_raw = websocket.query_params.get("after", "0")
    try:
        after = int(after_raw)
    except ValueError:
        after = -1
    try:
        if not 0 <= after <= 2**62:
            raise Refused("after must be a non-negative integer (the last event_id you received)")
        show_worker = await run_in_threadpool(_authorize, task_id, _token(websocket))
    except Refused as exc:
        # Accept first, so that browsers see the code and the reason (a refused handshake only
        # shows up as 1006 there).
        await websocket.accept()
        await _close(websocket, CLOSE_POLICY, str(exc))
        return
    except Exception as exc:
        log.warning("socket for task %s refused: %s: %s", task_id, type(exc).__name__, exc)
        await websocket.accept()
        await _close(websocket, CLOSE_INTERNAL, "the database is unavailable; try again shortly")
        return

    await websocket.accept()
    hub = get_hub()
    sub = hub.add(task_id)  # subscribe before reading the database: nothing falls in between
    _open_sockets += 1
    receiver = asyncio.create_task(_receive_until_disconnect(websocket))
    kicked = asyncio.create_task(sub.kicked.wait())
    pump: asyncio.Task[None] | None = None
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.connected.wait(), READY_WAIT_SECONDS)
        lang = explicit_language(websocket)
        pump = asyncio.create_task(_pump(websocket, hub, sub, task_id, after, show_worker, lang))
        done, _ = await asyncio.wait({pump, receiver, kicked}, return_when=asyncio.FIRST_COMPLETED)
        if kicked in done:
            code, reason = sub.kick_reason
            if code == CLOSE_TRY_AGAIN:
                log.warning(
                    "socket for task %s fell %s messages behind; disconnected", task_id, get_settings().ws_queue_size
                )
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
            await _close(websocket, code, reason)
        elif pump in done:
            pump.result()
            await _close(websocket, CLOSE_NORMAL, "task finished")
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    except Exception as exc:
        log.warning("socket for task %s ended: %s: %s", task_id, type(exc).__name__, exc)
        await _close(websocket, CLOSE_INTERNAL, "the database is unavailable; try again shortly")
    finally:
        for t in (pump, receiver, kicked):
            if t is not None and not t.done():
                t.cancel()
                with contextlib.suppress(BaseException):
                    await t
        hub.remove(sub)
        _open_sockets -= 1


async def _pump(
    websocket: WebSocket,
    hub: Hub,
    sub: Subscriber,
    task_id: str,
    after: int,
    show_worker: bool = False,
    lang: Language | None = None,
) -> None:
    """Snapshot, replay, then live events until the terminal one."""
    snapshot, replay = await run_in_threadpool(_snapshot_and_events, task_id, after)
    stream = _Stream(websocket, task_id, after, show_worker, lang)
    await stream.send(snapshot)
    await stream.send_persisted(replay)
    if not stream.finished and snapshot["status"] in TERMINAL_STATUSES:
        # Terminal before this socket came, and the client already has the terminal event.
        stream.finished = True
    while not stream.finished:
        timeout = None if hub.connected.is_set() else get_settings().ws_poll_seconds
        try:
            item = await asyncio.wait_for(sub.queue.get(), timeout)
        except TimeoutError:
            item = RESYNC  # the subscription is down: poll the database instead
        await stream.handle(item)

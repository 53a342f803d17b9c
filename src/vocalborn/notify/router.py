"""The inbox (``/api/v1/notifications``), its live socket, the preferences
(``/api/v1/me/notification-preferences``) and, for admins, the local mail outbox
(``/api/v1/admin/mail``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from vocalborn.auth.dependencies import AdminUser, CurrentUser, SessionDep, user_from_token
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.errors import NotFound, error_responses
from vocalborn.i18n import request_language
from vocalborn.notify import mailbox, preferences, service, texts
from vocalborn.notify.consumer import channel_name
from vocalborn.notify.models import Notification

log = logging.getLogger(__name__)

router = APIRouter(tags=["notifications"], responses=error_responses(401))


class NotificationPublic(BaseModel):
    id: uuid.UUID
    type: str = Field(description="the event type it is about: analysis.succeeded, review.saved")
    created_at: datetime
    read_at: datetime | None
    subject: dict[str, str] = Field(description="the ids it is about (task_id, learner_id, review_id ...)")
    event_id: uuid.UUID
    text: str | None = Field(
        default=None,
        description="the notification's line in the caller's language (?lang / Accept-Language): for an "
        "analysis, the learner's name, the sentence and whether the attempt counted",
    )
    texts: dict[str, str] = Field(default_factory=dict, description="the line in zh-TW and en")


class UnreadCount(BaseModel):
    unread: int


def _public(row: Notification, lang: str | None = None) -> NotificationPublic:
    return NotificationPublic(
        id=row.id,
        type=row.type,
        created_at=row.created_at,
        read_at=row.read_at,
        subject={k: str(v) for k, v in row.subject.items()},
        event_id=row.event_id,
        text=texts.text(row.type, row.subject, lang),
        texts=texts.both(row.type, row.subject),
    )


@router.get("/api/v1/notifications", response_model=list[NotificationPublic], operation_id="list_notifications")
def list_notifications(
    user: CurrentUser,
    db: SessionDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    unread_only: bool = False,
) -> list[NotificationPublic]:
    """One's in-app notifications, newest first (those held by quiet hours appear when they end)."""
    lang = request_language(request)
    return [_public(r, lang) for r in service.inbox(db, user.user_id, limit, offset, unread_only)]


@router.get("/api/v1/notifications/unread-count", response_model=UnreadCount, operation_id="unread_notifications")
def unread(user: CurrentUser, db: SessionDep) -> UnreadCount:
    return UnreadCount(unread=service.unread_count(db, user.user_id))


@router.post(
    "/api/v1/notifications/{notification_id}/read",
    response_model=NotificationPublic,
    operation_id="read_notification",
    responses=error_responses(404),
)
def mark_read(notification_id: uuid.UUID, user: CurrentUser, db: SessionDep, request: Request) -> NotificationPublic:
    """Mark one read (again: no change)."""
    row = service.mark_read(db, user.user_id, notification_id)
    if row is None:
        raise NotFound("notification not found")
    return _public(row, request_language(request))


@router.get(
    "/api/v1/me/notification-preferences",
    response_model=preferences.PreferencesView,
    operation_id="get_notification_preferences",
)
def get_preferences(user: CurrentUser, db: SessionDep) -> preferences.PreferencesView:
    return preferences.view(preferences.get(db, user.user_id))


@router.put(
    "/api/v1/me/notification-preferences",
    response_model=preferences.PreferencesView,
    operation_id="set_notification_preferences",
    responses=error_responses(422),
)
def put_preferences(
    body: preferences.PreferencesUpdate, user: CurrentUser, db: SessionDep
) -> preferences.PreferencesView:
    """Change some of one's preferences (the fields given). ``quiet_hours``: ``{"start": "22:00",
    "end": "07:00"}`` (local time in ``timezone``), or null for none."""
    return preferences.view(preferences.update(db, user.user_id, body))


# --------------------------------------------------------------------------------------------
# the live socket: one subscription per API process (the task sockets' hub, keyed by user)
# --------------------------------------------------------------------------------------------
class _Hub:
    """This process's one Redis subscription to the notifications channel, and per user the
    queues of their open sockets (a full queue drops the socket's oldest item: the page
    re-reads the list on a resync anyway)."""

    def __init__(self, url: str, channel: str) -> None:
        self.url, self.channel = url, channel
        self.loop = asyncio.get_running_loop()
        self.by_user: dict[str, set[asyncio.Queue[Any]]] = {}
        self.runner: asyncio.Task[None] | None = None

    def add(self, user_id: str) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=100)
        self.by_user.setdefault(user_id, set()).add(queue)
        if self.runner is None or self.runner.done():
            self.runner = self.loop.create_task(self._run(), name="vocalborn-notifications-hub")
        return queue

    def remove(self, user_id: str, queue: asyncio.Queue[Any]) -> None:
        queues = self.by_user.get(user_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self.by_user[user_id]

    def _offer(self, user_id: str | None, item: Any) -> None:
        targets = self.by_user.values() if user_id is None else [self.by_user.get(user_id, set())]
        for queues in targets:
            for queue in tuple(queues):
                if queue.full():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                queue.put_nowait(item)

    async def _run(self) -> None:
        import redis.asyncio as aioredis

        delay = 0.25
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=5, health_check_interval=15)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=5.0)
                    if message is None:
                        continue
                    if message.get("type") == "subscribe":
                        delay = 0.25
                        self._offer(None, RESYNC)  # anything published meanwhile was missed
                    elif message.get("type") == "message":
                        try:
                            data = json.loads(message["data"])
                            self._offer(str(data["user_id"]), data["notification"])
                        except (ValueError, KeyError, TypeError):
                            log.warning("ignoring a malformed message on %s", self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("notifications subscription lost (%s); reconnecting", exc)
                self._offer(None, RESYNC)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def stop(self) -> None:
        if self.runner is not None:
            self.runner.cancel()
            with contextlib.suppress(BaseException):
                await self.runner


RESYNC = "resync"
_the_hub: _Hub | None = None


def _hub() -> _Hub:
    global _the_hub
    loop = asyncio.get_running_loop()
    if _the_hub is None or _the_hub.loop is not loop:
        _the_hub = _Hub(get_settings().effective_redis_url, channel_name())
    return _the_hub


async def shutdown_notification_hub() -> None:
    global _the_hub
    hub = _the_hub
    if hub is not None and hub.loop is asyncio.get_running_loop():
        await hub.stop()
        _the_hub = None


def _socket_user(token: str | None) -> uuid.UUID | None:
    from fastapi import HTTPException

    with open_session() as db:
        try:
            return user_from_token(db, token).user_id
        except HTTPException:
            return None


@router.websocket("/api/v1/notifications/ws")
async def notifications_socket(websocket: WebSocket) -> None:
    """First ``{"type": "hello", "unread": N}``, then each new notification of the token's user as
    it is released (``{"type": "notification", "notification": {...}}``); ``{"type": "resync"}``
    when some may have been missed (re-read the list). Token as ``?token=``; refused: 1008."""
    user_id = await run_in_threadpool(_socket_user, websocket.query_params.get("token"))
    await websocket.accept()
    if user_id is None:
        with contextlib.suppress(Exception):
            await websocket.close(1008, "not authenticated")
        return
    hub = _hub()
    queue = hub.add(str(user_id))  # subscribed before the count is read: nothing falls between
    receiver = asyncio.create_task(_drain(websocket))
    try:
        await websocket.send_json({"type": "hello", "unread": await run_in_threadpool(_unread, user_id)})
        while not receiver.done():
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            item = getter.result()
            if isinstance(item, dict):
                await websocket.send_json({"type": "notification", "notification": item})
            else:
                await websocket.send_json({"type": "resync"})
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        receiver.cancel()
        hub.remove(str(user_id), queue)


def _unread(user_id: uuid.UUID) -> int:
    with open_session() as db:
        return service.unread_count(db, user_id)


async def _drain(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await websocket.receive()
            if message.get("type") == "websocket.disconnect":
                return


# --------------------------------------------------------------------------------------------
# the local mail outbox (admins)
# --------------------------------------------------------------------------------------------
class KeptMail(BaseModel):
    id: str
    received_at: datetime
    sender: str
    to: str
    subject: str
    message_id: str
    body: str | None = None


@router.get("/api/v1/admin/mail", response_model=list[KeptMail], operation_id="admin_list_mail", tags=["admin"])
def list_mail(
    _admin: AdminUser,
    to: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[KeptMail]:
    """The mails the local mail outbox kept (``vocalborn up`` without SMTP_HOST), newest first."""

    folder = mailbox.mail_dir(get_settings().data_dir)
    return [_kept(k) for k in mailbox.list_mail(folder, limit, to)]


@router.get(
    "/api/v1/admin/mail/{mail_id}",
    response_model=KeptMail,
    operation_id="admin_show_mail",
    tags=["admin"],
    responses=error_responses(404),
)
def show_mail(mail_id: str, _admin: AdminUser) -> KeptMail:
    found = mailbox.show(mailbox.mail_dir(get_settings().data_dir), mail_id)
    if found is None:
        raise NotFound("mail not found")
    kept, body = found
    return _kept(kept).model_copy(update={"body": body})


def _kept(k: Any) -> KeptMail:
    from datetime import UTC

    return KeptMail(
        id=k.id,
        received_at=datetime.fromtimestamp(k.received_at, UTC),
        sender=k.sender,
        to=k.to,
        subject=k.subject,
        message_id=k.message_id,
    )

"""The ``notifications`` consumer (docs/EVENTS.md, "Notifications").

The handler turns an event into rows of ``notifications`` (one per recipient and channel, one
transaction, never twice: the unique key), and only then is the message acknowledged. The
consumer's background loop (:func:`sender`) does what leaves the database:

* pushes each in-app notification whose time has come (at once, or at the end of the
  recipient's quiet hours) to the open pages (Redis pub/sub; the API's notification sockets);
* sends each mail whose time has come. A mail is claimed first (``status`` sending, with a lease
  of ``NOTIFY_SEND_LEASE_SECONDS``), then sent, then marked done. A process that dies after the
  SMTP server accepted the mail but before the mark leaves the claim behind; once the lease
  lapses the mail is sent again, with the same ``Message-ID`` (derived from the event and the
  recipient): the local mail outbox keeps one (it stores by Message-ID), an external server may
  deliver both (mail stores usually collapse them). That window is the only duplicate, and no
  mail is lost;
* writes each opted-in therapist's daily digest once per local day (its event id is derived
  from the therapist and the day).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from vocalborn.auth.models import User
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.events.consumer import ConsumerSpec, Event, register
from vocalborn.notify import details, mail, preferences, service, texts, tokens
from vocalborn.notify.mail import message_id
from vocalborn.notify.models import EMAIL, IN_APP, Notification, NotificationPreferences
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisTask

if TYPE_CHECKING:
    from vocalborn.config import Settings

log = logging.getLogger(__name__)

NAME = "notifications"
EVENT_TYPES = (
    "analysis.succeeded",
    "review.saved",
    "account.password_reset_requested",
    "account.verification_requested",
    "practice.reminder_due",
)
_DIGEST_NAMESPACE = uuid.UUID("0b6c0a57-57c6-4f0e-8e0c-3c1f4f8f9d21")
MAX_SEND_ATTEMPTS = 12

# Set by the running sender: the handler wakes it after a commit (no wait for its next round).
_wake: Callable[[], None] | None = None


def channel_name() -> str:
    return f"{get_settings().redis_key_prefix}notifications"


# --------------------------------------------------------------------------------------------
# the handler
# --------------------------------------------------------------------------------------------
def handle(event: Event) -> None:
    event_id = uuid.UUID(event.id)
    with open_session() as db:
        if event.type == "analysis.succeeded":
            learner = db.get(User, event.ids("learner_id"))
            if learner is None or learner.therapist_id is None:
                return
            recipient = learner.therapist_id
            subject = {**dict(event.subject), **details.analysis_details(db, event.subject, learner.name)}
        elif event.type == "review.saved":
            recipient = event.ids("learner_id")
        elif event.type in service.ACCOUNT_TYPES:
            recipient = event.ids("user_id")
        elif event.type == service.REMINDER:
            recipient = event.ids("learner_id")
            learner = db.get(User, recipient)
            if learner is None or learner.therapist_id != event.ids("therapist_id"):
                return  # erased, or unlinked (or linked to another) since it was written: no reminder
        else:
            return
        if event.type != "analysis.succeeded":
            subject = dict(event.subject)
        if db.get(User, recipient) is None:  # erased meanwhile
            return
        rows = service.plan(db, event_id, recipient, event.type, subject)
        added = service.add_all(db, rows)
    if added and _wake is not None:
        _wake()


# --------------------------------------------------------------------------------------------
# the sender (sync parts run in a thread)
# --------------------------------------------------------------------------------------------
def _due(db: Session, channel: str, limit: int) -> list[Notification]:
    stmt = (
        select(Notification)
        .where(
            Notification.channel == channel,
            col(Notification.status).in_(("waiting", "sending")),
            col(Notification.available_at) <= utcnow(),
        )
        .order_by(col(Notification.available_at))
        .limit(limit)
    )
    return list(db.exec(stmt))


def push_due(publish: Callable[[str, str], None]) -> int:
    """Push the in-app notifications whose time has come; how many."""

    done = 0
    with open_session() as db:
        for row in _due(db, IN_APP, 200):
            message = {"user_id": str(row.user_id), "notification": public(row)}
            try:
                publish(channel_name(), json.dumps(message))
            except Exception as exc:  # the page re-reads on its next open: the push is a nicety
                log.warning("could not push notification %s live: %s", row.id, exc)
            db.execute(update(Notification).where(col(Notification.id) == row.id).values(status="done"))
            done += 1
        db.commit()
    return done


def public(row: Notification) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "type": row.type,
        "created_at": _iso(row.created_at),
        "read_at": _iso(row.read_at) if row.read_at else None,
        "subject": dict(row.subject),
        "event_id": str(row.event_id),
        "texts": texts.both(row.type, row.subject),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _claim(db: Session, row: Notification, lease: float) -> bool:
    """Take the mail for this process (a compare-and-set on status and available_at)."""
    done = db.execute(
        update(Notification)
        .where(
            col(Notification.id) == row.id,
            col(Notification.status) == row.status,
            col(Notification.available_at) == row.available_at,
        )
        .values(status="sending", attempts=row.attempts + 1, available_at=utcnow() + timedelta(seconds=lease))
    )
    db.commit()
    return bool(done.rowcount)  # type: ignore[attr-defined]


def send_due(settings: Settings) -> int:
    """Send the mails whose time has come; how many were sent."""

    if not settings.smtp_host:
        return 0
    sent = 0
    with open_session() as db:
        for row in _due(db, EMAIL, 50):
            if not _claim(db, row, settings.notify_send_lease_seconds):
                continue  # another worker has it
            try:
                msg = compose(db, settings, row)
                if msg is not None:
                    mail.send(settings, msg)
            except Exception as exc:
                attempts = row.attempts + 1
                failed = attempts >= MAX_SEND_ATTEMPTS
                log.warning("mail %s for %s failed (attempt %d): %s", row.id, row.type, attempts, exc)
                db.execute(
                    update(Notification)
                    .where(col(Notification.id) == row.id)
                    .values(
                        status="failed" if failed else "waiting",
                        last_error=f"{type(exc).__name__}: {exc}"[:2000],
                        available_at=utcnow() + timedelta(seconds=min(3600.0, 2.0 * 2**attempts)),
                    )
                )
                db.commit()
                continue
            _after_send_hook()
            db.execute(
                update(Notification)
                .where(col(Notification.id) == row.id)
                .values(status="done", sent_at=utcnow(), last_error=None if msg is not None else "nothing to send")
            )
            db.commit()
            sent += msg is not None
    return sent


def _after_send_hook() -> None:
    """Fault drills only: VOCALBORN_FAULT_EXIT_AFTER_SEND=1 ends the process right after the
    SMTP server accepted a mail, before that is recorded (tests/notify: the crash window)."""
    import os

    if os.environ.get("VOCALBORN_FAULT_EXIT_AFTER_SEND") == "1":
        os._exit(137)


def compose(db: Session, settings: Settings, row: Notification) -> Any:
    """The mail of a row; None if there is nothing to send any more (the account is gone)."""

    user = db.get(User, row.user_id)
    if user is None:
        return None
    language = details.mail_language(db, user.user_id, row)
    base = settings.public_url.rstrip("/")
    values: dict[str, Any]
    if row.type == "analysis.succeeded":
        values = details.analysis_mail_values(db, row.subject, language)
        values["url"] = f"{base}/#task={row.subject['task_id']}"
    elif row.type == "review.saved":
        therapist = db.get(User, uuid.UUID(row.subject["therapist_id"]))
        values = {"therapist": therapist.name if therapist else "?", "url": f"{base}/#task={row.subject['task_id']}"}
    elif row.type == "account.password_reset_requested":
        token = tokens.derive(tokens.PASSWORD_RESET, uuid.UUID(row.subject["token_id"]))
        values = {"url": f"{base}/#reset-password={token}", "minutes": settings.password_reset_token_minutes}
    elif row.type == "account.verification_requested":
        token = tokens.derive(tokens.VERIFY_EMAIL, uuid.UUID(row.subject["token_id"]))
        values = {"url": f"{base}/#verify-email={token}"}
    elif row.type == service.REMINDER:
        values = {"name": user.name, "url": f"{base}/"}
    elif row.type == "digest":
        values = {"day": row.subject["day"], "lines": row.subject.get("text", ""), "url": f"{base}/"}
    else:
        return None
    kind = row.type
    if kind == "analysis.succeeded" and not row.subject.get("sentence_text"):
        kind = "analysis.succeeded.general"
    subject, body = mail.render(kind, language, **values)
    return mail.build(
        settings, user.email, subject, body, row.message_id or mail.message_id(row.event_id, user.user_id)
    )


# --------------------------------------------------------------------------------------------
# the therapist's daily digest
# --------------------------------------------------------------------------------------------
def digest_event_id(therapist_id: uuid.UUID, day: str) -> uuid.UUID:
    return uuid.uuid5(_DIGEST_NAMESPACE, f"{therapist_id}/{day}")


def write_digests(settings: Settings, now: datetime | None = None) -> int:
    """A digest row for every opted-in therapist whose local digest hour has come today and who
    has none for today yet; how many were written."""

    now = now or utcnow()
    written = 0
    with open_session() as db:
        opted = db.exec(
            select(NotificationPreferences, User)
            .join(User, col(User.user_id) == col(NotificationPreferences.user_id))
            .where(col(NotificationPreferences.daily_digest).is_(True), col(User.role).in_(("therapist", "admin")))
        ).all()
        for prefs, therapist in opted:
            local = now.astimezone(preferences.zone(prefs))
            if local.hour < settings.digest_hour:
                continue
            day = local.date().isoformat()
            event_id = digest_event_id(therapist.user_id, day)
            if db.exec(select(Notification.id).where(Notification.event_id == event_id)).first() is not None:
                continue
            since = now - timedelta(days=1)
            learners = db.exec(select(User).where(User.therapist_id == therapist.user_id)).all()
            lines = []
            for learner in learners:
                count = db.exec(
                    select(func.count()).where(
                        AIAnalysisTask.user_id == learner.user_id,
                        AIAnalysisTask.status == "success",
                        col(AIAnalysisTask.completed_at) >= since,
                    )
                ).one()
                lines.append(f"- {learner.name}: {int(count)}")
            text = "\n".join(lines) or "-"
            row = Notification(
                event_id=event_id,
                user_id=therapist.user_id,
                channel=EMAIL,
                type="digest",
                subject={"day": day, "text": text, "learners": str(len(learners))},
                created_at=now,
                available_at=preferences.release_time(prefs, now),
                message_id=None,
            )

            row.message_id = message_id(event_id, therapist.user_id)
            written += service.add_all(db, [row])
    return written


# --------------------------------------------------------------------------------------------
# the background loop
# --------------------------------------------------------------------------------------------
async def sender(settings: Settings, stop: asyncio.Event) -> None:
    """Until ``stop``: push, send, write digests; woken by the handler, else every
    NOTIFY_POLL_SECONDS. Failures (the database away) wait a round."""
    global _wake
    import redis

    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def _wake_up() -> None:
        loop.call_soon_threadsafe(wake.set)

    _wake = _wake_up
    client = redis.Redis.from_url(settings.effective_redis_url, socket_timeout=5, socket_connect_timeout=5)
    lock = threading.Lock()

    def publish(channel: str, data: str) -> None:
        client.publish(channel, data)

    def round_() -> None:
        with lock:
            push_due(publish)
            send_due(settings)

    next_digest = 0.0
    try:
        while not stop.is_set():
            wake.clear()
            try:
                await asyncio.to_thread(round_)
                if loop.time() >= next_digest:
                    next_digest = loop.time() + 60
                    await asyncio.to_thread(write_digests, settings)
            except Exception as exc:
                log.warning("notifications sender: %s: %s; trying again", type(exc).__name__, exc)
            with contextlib.suppress(TimeoutError):
                waiter = asyncio.ensure_future(wake.wait())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {waiter, stopper}, timeout=settings.notify_poll_seconds, return_when="FIRST_COMPLETED"
                )
                for t in (waiter, stopper):
                    t.cancel()
    finally:
        _wake = None
        with contextlib.suppress(Exception):
            client.close()


SPEC = register(
    ConsumerSpec(
        name=NAME,
        event_types=EVENT_TYPES,
        handler=handle,
        description="in-app notifications, mail, the account mails",
        background=sender,
    )
)

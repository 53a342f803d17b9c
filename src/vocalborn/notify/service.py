"""What the notifications consumer writes: one row per (event, recipient, channel), in one
transaction per event, never twice (the unique key; a redelivered event finds its rows)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from vocalborn.notify import preferences
from vocalborn.notify.mail import message_id
from vocalborn.notify.models import EMAIL, IN_APP, Notification
from vocalborn.sqltypes import utcnow

ACCOUNT_TYPES = ("account.password_reset_requested", "account.verification_requested")
# The practice reminder is asked for by setting ``reminder_hour`` (not by ``kinds``).
REMINDER = "practice.reminder_due"


def plan(
    db: Session,
    event_id: uuid.UUID,
    recipient: uuid.UUID,
    kind: str,
    subject: dict[str, Any],
    now: datetime | None = None,
) -> list[Notification]:
    """The rows to add for one recipient of one event, by their preferences (none already there)."""
    now = now or utcnow()
    prefs = preferences.get(db, recipient)
    account = kind in ACCOUNT_TYPES
    if kind == REMINDER:
        if prefs.reminder_hour is None:  # turned off since it was written
            return []
    elif not account and kind not in prefs.kinds:
        return []
    release = now if account else preferences.release_time(prefs, now)
    channels = [EMAIL] if account else ([IN_APP, EMAIL] if prefs.email else [IN_APP])
    have = set(
        db.exec(
            select(Notification.channel).where(Notification.event_id == event_id, Notification.user_id == recipient)
        )
    )
    return [
        Notification(
            event_id=event_id,
            user_id=recipient,
            channel=channel,
            type=kind,
            subject=subject,
            created_at=now,
            available_at=release,
            message_id=message_id(event_id, recipient) if channel == EMAIL else None,
        )
        for channel in channels
        if channel not in have
    ]


def add_all(db: Session, rows: list[Notification]) -> int:
    """Commit the rows; 0 if a competing worker committed them first (the unique key)."""
    if not rows:
        return 0
    db.add_all(rows)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        return 0
    return len(rows)


def inbox(db: Session, user_id: uuid.UUID, limit: int, offset: int, unread_only: bool) -> list[Notification]:
    now = utcnow()
    stmt = select(Notification).where(
        Notification.user_id == user_id, Notification.channel == IN_APP, col(Notification.available_at) <= now
    )
    if unread_only:
        stmt = stmt.where(col(Notification.read_at).is_(None))
    stmt = stmt.order_by(col(Notification.created_at).desc(), col(Notification.id).desc()).offset(offset).limit(limit)
    return list(db.exec(stmt))


def unread_count(db: Session, user_id: uuid.UUID) -> int:
    stmt = select(func.count()).where(
        Notification.user_id == user_id,
        Notification.channel == IN_APP,
        col(Notification.read_at).is_(None),
        col(Notification.available_at) <= utcnow(),
    )
    return int(db.exec(stmt).one())


def mark_read(db: Session, user_id: uuid.UUID, notification_id: uuid.UUID) -> Notification | None:
    row = db.get(Notification, notification_id)
    if row is None or row.user_id != user_id or row.channel != IN_APP or row.available_at > utcnow():
        return None
    if row.read_at is None:
        row.read_at = utcnow()
        db.add(row)
        db.commit()
        db.refresh(row)
    return row

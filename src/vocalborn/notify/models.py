"""The notification tables.

``notifications`` holds one row per (event, recipient, channel): the unique key is what makes a
notification or a mail exactly once per event and recipient, whatever the consumer's redeliveries.
A row of channel ``in_app`` is the inbox entry; one of channel ``email`` is the mail's sending
record (pending, sending, sent), whose ``message_id`` is derived from the event and the recipient.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import JSONType, UTCDateTime, utcnow

IN_APP = "in_app"
EMAIL = "email"


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id", "channel", name="uq_notifications_event_user_channel"),
        # The inbox: a user's in-app rows, newest first.
        Index("ix_notifications_user_channel_created", "user_id", "channel", "created_at"),
        # The sender's and releaser's read: what waits (email not sent, in-app not pushed).
        Index("ix_notifications_waiting", "status", "available_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    event_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False))
    channel: str = Field(sa_column=Column(String(16), nullable=False))
    type: str = Field(sa_column=Column(String(60), nullable=False))
    subject: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # Quiet hours: not shown (in-app) nor sent (email) before this.
    available_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # in_app: waiting (to be pushed live) -> done; email: waiting -> sending -> done.
    status: str = Field(default="waiting", sa_column=Column(String(16), nullable=False))
    message_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class NotificationPreferences(SQLModel, table=True):
    __tablename__ = "notification_preferences"

    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True)
    )
    kinds: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    email: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    quiet_start: str | None = Field(default=None, sa_column=Column(String(5), nullable=True))
    quiet_end: str | None = Field(default=None, sa_column=Column(String(5), nullable=True))
    timezone: str = Field(default="Asia/Taipei", sa_column=Column(String(64), nullable=False))
    reminder_hour: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    daily_digest: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    language: str = Field(default="zh-TW", sa_column=Column(String(8), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class AccountToken(SQLModel, table=True):
    """A password reset or email verification token: SHA-256 only. The token itself is derived
    from the server's secret and ``id`` (notify/tokens.py), so neither the event nor the
    database holds it; single use (``used_at``), expires."""

    __tablename__ = "account_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False, index=True)
    )
    purpose: str = Field(sa_column=Column(String(20), nullable=False))  # password_reset | verify_email
    token_sha256: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    email: str = Field(sa_column=Column(String(320), nullable=False))  # the address it was sent to
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # The language of the request that asked for the mail (zh-TW/en; null: not known). The mail
    # uses it when the user chose no mail language (notify/consumer.py compose).
    language: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))

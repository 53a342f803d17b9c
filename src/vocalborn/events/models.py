"""The outbox: one row per domain event, written in the transaction of the change it describes.

The relay (``events/relay.py``) publishes the unsent rows in ``seq`` order and sets ``sent_at``;
``seq`` is only the order of insertion, the event's identity is ``event_id`` (the message's
``id`` and its ``Nats-Msg-Id``). The rows hold ids only (``subject``), never personal data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, String, Text, UniqueConstraint, Uuid, text
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import BigIntPK, JSONType, UTCDateTime, utcnow


class EventOutbox(SQLModel, table=True):
    __tablename__ = "event_outbox"
    __table_args__ = (
        # The relay's read: the unsent rows in order, however many sent ones the table keeps.
        Index(
            "ix_event_outbox_unsent",
            "seq",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )

    seq: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    event_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False, unique=True))
    event_type: str = Field(sa_column=Column(String(40), nullable=False))
    schema_version: int = Field(sa_column=Column(Integer, nullable=False))
    # The learner the event is about (or the erased account): the relay never lets a later
    # event of one key overtake an earlier unsent one.
    ordering_key: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    subject: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class EventDeadLetter(SQLModel, table=True):
    """A message a consumer gave up on (docs/EVENTS.md, "Dead letters"): its handler failed on
    the last allowed delivery, or the message was delivered more often than allowed without an
    ack (the consumer died on it each time). Kept until an admin replays it (``replayed_at``);
    one row per consumer and event."""

    __tablename__ = "event_dead_letters"
    __table_args__ = (UniqueConstraint("consumer", "event_id", name="uq_event_dead_letters_consumer_event"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    consumer: str = Field(sa_column=Column(String(64), nullable=False))
    event_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    event_type: str = Field(sa_column=Column(String(40), nullable=False))
    subject: str = Field(sa_column=Column(String(200), nullable=False))  # the NATS subject
    body: str = Field(sa_column=Column(Text, nullable=False))  # the message as published (ids only)
    error: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    replayed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    replay_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))

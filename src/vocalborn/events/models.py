"""The outbox: one row per domain event, written in the transaction of the change it describes.

The relay (``events/relay.py``) publishes the unsent rows in ``seq`` order and sets ``sent_at``;
``seq`` is only the order of insertion, the event's identity is ``event_id`` (the message's
``id`` and its ``Nats-Msg-Id``). The rows hold ids only (``subject``), never personal data.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Index, Integer, String, Uuid, text
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import BigIntPK, JSONType, UTCDateTime


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

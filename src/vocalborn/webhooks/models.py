"""Webhook endpoints and their deliveries (one per endpoint and event: the delivery log)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Column, Index, Integer, String, Text, UniqueConstraint, Uuid, text
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import BigIntPK, JSONType, UTCDateTime, utcnow


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    url: str = Field(sa_column=Column(String(2000), nullable=False))
    event_types: list[str] = Field(sa_column=Column(JSONType, nullable=False))
    secret: str = Field(sa_column=Column(String(100), nullable=False))  # whsec_<base64>
    description: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    enabled: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Attempts failed in a row (reset by a success) and when the first of them failed.
    consecutive_failures: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    failing_since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint. ``seq`` is the order of arrival; ``stream_seq`` the event's
    sequence in the JetStream stream, the order a learner's deliveries go out in (arrival can
    differ after a consumer crash: redeliveries come after newer messages); ``status``: pending,
    delivered or dead."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        # The dispatcher's read: the pending rows, by endpoint and learner, in order.
        Index(
            "ix_webhook_deliveries_pending",
            "endpoint_id",
            "ordering_key",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_webhook_deliveries_endpoint_seq", "endpoint_id", "seq"),
    )

    seq: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    endpoint_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    event_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    event_type: str = Field(sa_column=Column(String(40), nullable=False))
    ordering_key: str = Field(sa_column=Column(String(64), nullable=False))  # the learner (or user) id
    stream_seq: int | None = Field(default=None, sa_column=Column(BigIntPK, nullable=True))
    body: str = Field(sa_column=Column(Text, nullable=False))  # the event message, sent as is
    status: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    give_up_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    last_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    last_status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

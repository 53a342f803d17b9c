"""The projection's tables: one row per attempt applied (the idempotency key: an analysis counts
once however often its events arrive) and the per-day sums read by the API."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Column, Date, Float, Integer, Uuid
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import UTCDateTime


class LearnerActivityAttempt(SQLModel, table=True):
    __tablename__ = "learner_activity_attempts"

    task_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    learner_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False, index=True))
    day: date = Field(sa_column=Column(Date, nullable=False))
    seconds: float = Field(sa_column=Column(Float, nullable=False))
    counted: bool = Field(sa_column=Column(Boolean, nullable=False))
    event_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    applied_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class LearnerActivityDay(SQLModel, table=True):
    __tablename__ = "learner_activity_days"

    learner_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    day: date = Field(sa_column=Column(Date, primary_key=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    seconds: float = Field(default=0.0, sa_column=Column(Float, nullable=False))

"""Therapist invitations and the learner-visible data access log."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Uuid
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import BigIntPK, UTCDateTime, utcnow


class TherapistInvitation(SQLModel, table=True):
    """A single-use, expiring code an admin hands to a therapist; only its SHA-256 is stored."""

    __tablename__ = "therapist_invitations"

    invitation_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    code_sha256: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    note: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    created_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="SET NULL"), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    used_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="SET NULL"), nullable=True)
    )


class DataAccessLog(SQLModel, table=True):
    """Append-only: every read of a learner's data by someone else (therapist, admin).

    No foreign keys on purpose: the entry outlives a reader's account, and a learner's erasure
    deletes their entries explicitly (it is their data too)."""

    __tablename__ = "data_access_log"
    __table_args__ = (Index("ix_data_access_log_learner_id_access_id", "learner_id", "access_id"),)

    access_id: int | None = Field(default=None, sa_column=Column(BigIntPK, primary_key=True, autoincrement=True))
    learner_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    reader_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    reader_role: str = Field(sa_column=Column(String(20), nullable=False))
    reader_name: str = Field(sa_column=Column(String(100), nullable=False))
    what: str = Field(sa_column=Column(String(50), nullable=False))
    object_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


__all__ = ["DataAccessLog", "TherapistInvitation"]

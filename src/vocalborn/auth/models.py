from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, String, Uuid
from sqlmodel import Field, SQLModel

from vocalborn.sqltypes import UTCDateTime, utcnow


class Role(StrEnum):
    LEARNER = "learner"
    THERAPIST = "therapist"
    ADMIN = "admin"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('learner', 'therapist', 'admin')", name="role"),)

    user_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    role: str = Field(sa_column=Column(String(20), nullable=False))
    password_hash: str = Field(sa_column=Column(String(255), nullable=False))
    # A learner may be linked to one therapist, who may then read the learner's analyses.
    therapist_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="SET NULL"), nullable=True, index=True),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # TOTP (RFC 6238): the base32 secret once set up; enabled once a code confirmed it.
    totp_secret: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    totp_enabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # The time step of the last code accepted: a code is good once (no replay within its window).
    totp_last_step: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Set when the owner proved the address (POST /api/v1/auth/verify-email with the mailed token).
    email_verified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class AuthSession(SQLModel, table=True):
    """One login: its refresh tokens rotate within it (``RefreshToken``), and its access tokens
    name it (the ``sid`` claim). Ending it (logout, a password change, a reused refresh token,
    a role change) refuses both at once."""

    __tablename__ = "auth_sessions"

    session_id: uuid.UUID = Field(default_factory=uuid.uuid4, sa_column=Column(Uuid, primary_key=True))
    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    last_used_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # The last refresh plus REFRESH_TOKEN_DAYS: a session nobody refreshes ends by itself.
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    ended_reason: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    user_agent: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))


class RefreshToken(SQLModel, table=True):
    """Every refresh token a session was given (SHA-256 only). The newest is unused; a used one
    coming back means it was copied: the session ends."""

    __tablename__ = "auth_refresh_tokens"

    token_sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    session_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("auth_sessions.session_id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class RecoveryCode(SQLModel, table=True):
    """Single-use codes that stand in for a TOTP code (SHA-256 only)."""

    __tablename__ = "auth_recovery_codes"

    code_sha256: str = Field(sa_column=Column(String(64), primary_key=True))
    user_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False, index=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

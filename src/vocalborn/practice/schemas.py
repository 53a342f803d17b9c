from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class SentencePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    sentence_id: uuid.UUID
    text: str
    reference_audio_format: str
    reference_duration_seconds: float
    created_by: uuid.UUID
    shared: bool = False
    created_at: datetime
    updated_at: datetime | None = None
    deleted_at: datetime | None = None  # deleted by its author: read through old attempts only


class SentenceShare(BaseModel):
    shared: bool


class SentenceUpdate(BaseModel):
    """What the author may change: the text (a correction: the reference recording stays) and
    whether every learner may practise it. At least one."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=2000)
    shared: bool | None = None


class SessionCreate(BaseModel):
    title: str | None = Field(default=None, max_length=200)


class SessionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    practice_session_id: uuid.UUID
    user_id: uuid.UUID
    title: str | None
    created_at: datetime


class RecordPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    practice_record_id: uuid.UUID
    practice_session_id: uuid.UUID
    sentence_id: uuid.UUID
    user_id: uuid.UUID
    audio_format: str
    audio_size_bytes: int
    audio_duration_seconds: float
    record_status: str
    ai_task_id: uuid.UUID | None
    audio_deleted_at: datetime | None = None
    counted: bool = Field(default=True, description="whether the latest analysis counts (issue #26)")
    not_counted_reason: str | None = Field(
        default=None, description="when it does not count: silent, too_short or wrong_sentence"
    )
    created_at: datetime
    updated_at: datetime

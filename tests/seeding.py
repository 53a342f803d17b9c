"""Rows written straight to the database for tests that need many of them (no API calls)."""

from __future__ import annotations

import uuid
from typing import Any

from vocalborn.auth.models import Role, User
from vocalborn.auth.service import create_user
from vocalborn.practice.models import PracticeRecord, PracticeSession, Sentence


def sentence(db: Any, text: str, created_by: uuid.UUID) -> Sentence:
    """A sentence with a (never read) reference recording key, flushed."""
    row = Sentence(
        text=text,
        reference_audio_key=f"references/00/{uuid.uuid4().hex}.wav",
        reference_audio_format="wav",
        reference_duration_seconds=2.0,
        created_by=created_by,
    )
    db.add(row)
    db.flush()
    return row


def learner_with_sentence(db: Any, prefix: str, text: str) -> tuple[User, Sentence, PracticeSession]:
    """A new learner, a sentence and a practice session of theirs, flushed."""
    user = create_user(
        db, email=f"{prefix}-{uuid.uuid4().hex[:8]}@example.com", password="x" * 12, name="S", role=Role.LEARNER
    )
    session = PracticeSession(user_id=user.user_id)
    db.add(session)
    return user, sentence(db, text, user.user_id), session


def record(db: Any, session: PracticeSession, sentence_id: uuid.UUID, user_id: uuid.UUID) -> PracticeRecord:
    """A 2-second recording (its audio key never read), flushed."""
    row = PracticeRecord(
        practice_session_id=session.practice_session_id,
        sentence_id=sentence_id,
        user_id=user_id,
        audio_key=f"recordings/00/{uuid.uuid4().hex}.wav",
        audio_format="wav",
        audio_size_bytes=1,
        audio_duration_seconds=2.0,
    )
    db.add(row)
    db.flush()
    return row

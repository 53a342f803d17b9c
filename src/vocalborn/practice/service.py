"""Sentences, practice sessions and recordings: validation, storage and ownership."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from vocalborn.auth.models import User
from vocalborn.auth.service import can_read
from vocalborn.config import Settings
from vocalborn.practice.models import PracticeRecord, PracticeSession, Sentence
from vocalborn.storage import Storage


class AudioRejected(Exception):
    """An upload we will not store; ``status_code`` says which 4xx."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class NotFound(Exception):
    pass


@dataclass(frozen=True)
class ValidAudio:
    data: bytes
    format: str
    duration_seconds: float


def validate_audio(data: bytes, settings: Settings, field: str) -> ValidAudio:
    """Check an upload by its content: size, container, decodability, duration."""
    from vocalborn.analysis.decode import probe_audio  # PyAV is imported only when needed
    from vocalborn.analysis.types import UndecodableAudioError

    if not data:
        raise AudioRejected(422, f"{field}: the file is empty")
    if len(data) > settings.max_audio_file_size:
        raise AudioRejected(
            413, f"{field}: the file is {len(data)} bytes; the limit is {settings.max_audio_file_size} bytes"
        )
    try:
        info = probe_audio(data)
    except UndecodableAudioError as exc:
        raise AudioRejected(422, f"{field}: {exc}") from None
    if info.format not in settings.audio_formats:
        allowed = ", ".join(sorted(settings.audio_formats))
        raise AudioRejected(415, f"{field}: {info.format} audio is not accepted; send one of: {allowed}")
    if info.duration_seconds < settings.min_audio_duration:
        raise AudioRejected(
            422,
            f"{field}: the recording is {info.duration_seconds:.2f} s long; at least {settings.min_audio_duration} s is needed",
        )
    if info.duration_seconds > settings.max_audio_duration:
        raise AudioRejected(
            422,
            f"{field}: the recording is {info.duration_seconds:.1f} s long; at most {settings.max_audio_duration:.0f} s is accepted",
        )
    from vocalborn.practice.silence import refuse_silence

    refuse_silence(data, field)
    return ValidAudio(data=data, format=info.format, duration_seconds=info.duration_seconds)


def create_sentence(db: Session, storage: Storage, *, text: str, audio: ValidAudio, author: User) -> Sentence:
    key = storage.save("references", audio.data, audio.format)
    sentence = Sentence(
        text=text,
        reference_audio_key=key,
        reference_audio_format=audio.format,
        reference_duration_seconds=audio.duration_seconds,
        created_by=author.user_id,
    )
    db.add(sentence)
    try:
        db.commit()
    except Exception:
        db.rollback()
        storage.delete(key)  # no file without its row
        raise
    return sentence


def list_sentences(db: Session, limit: int, offset: int) -> list[Sentence]:
    stmt = select(Sentence).order_by(col(Sentence.created_at).desc()).limit(limit).offset(offset)
    return list(db.exec(stmt))


def get_sentence(db: Session, sentence_id: uuid.UUID) -> Sentence:
    sentence = db.get(Sentence, sentence_id)
    if sentence is None:
        raise NotFound("sentence not found")
    return sentence


def create_session(db: Session, user: User, title: str | None) -> PracticeSession:
    session = PracticeSession(user_id=user.user_id, title=title)
    db.add(session)
    db.commit()
    return session


def _owner_therapist(db: Session, owner_id: uuid.UUID) -> uuid.UUID | None:
    owner = db.get(User, owner_id)
    return owner.therapist_id if owner else None


def may_read(db: Session, reader: User, owner_id: uuid.UUID) -> bool:
    """can_read, looking up the owner's therapist only when it matters (saves a query per request)."""
    if reader.user_id == owner_id or reader.role == "admin":
        return True
    return reader.role == "therapist" and can_read(reader, owner_id, _owner_therapist(db, owner_id))


def get_session_for(db: Session, session_id: uuid.UUID, reader: User) -> PracticeSession:
    """The session if ``reader`` may see it; otherwise NotFound (never reveal that it exists)."""
    session = db.get(PracticeSession, session_id)
    if session is None or not may_read(db, reader, session.user_id):
        raise NotFound("practice session not found")
    return session


def list_sessions(db: Session, user: User, limit: int, offset: int) -> list[PracticeSession]:
    stmt = (
        select(PracticeSession)
        .where(PracticeSession.user_id == user.user_id)
        .order_by(col(PracticeSession.created_at).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(db.exec(stmt))


def create_record(
    db: Session, storage: Storage, *, session: PracticeSession, sentence_id: uuid.UUID, audio: ValidAudio, user: User
) -> PracticeRecord:
    if session.user_id != user.user_id:
        raise NotFound("practice session not found")  # only the learner records into a session
    get_sentence(db, sentence_id)
    key = storage.save("recordings", audio.data, audio.format)
    record = PracticeRecord(
        practice_session_id=session.practice_session_id,
        sentence_id=sentence_id,
        user_id=user.user_id,
        audio_key=key,
        audio_format=audio.format,
        audio_size_bytes=len(audio.data),
        audio_duration_seconds=audio.duration_seconds,
    )
    db.add(record)
    try:
        db.commit()
    except Exception:
        db.rollback()
        storage.delete(key)
        raise
    return record


def get_record_for(db: Session, record_id: uuid.UUID, reader: User) -> PracticeRecord:
    record = db.get(PracticeRecord, record_id)
    if record is None or not may_read(db, reader, record.user_id):
        raise NotFound("practice record not found")
    return record


def list_records(db: Session, session: PracticeSession) -> list[PracticeRecord]:
    stmt = (
        select(PracticeRecord)
        .where(PracticeRecord.practice_session_id == session.practice_session_id)
        .order_by(col(PracticeRecord.created_at))
    )
    return list(db.exec(stmt))

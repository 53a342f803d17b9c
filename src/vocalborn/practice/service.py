"""Sentences, practice sessions and recordings: validation, storage and ownership."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, true
from sqlmodel import Session, col, select

from vocalborn.analysis.types import UndecodableAudioError
from vocalborn.auth.models import Role, User
from vocalborn.auth.service import can_read
from vocalborn.config import Settings
from vocalborn.errors import AudioRejected, Forbidden, NotFound
from vocalborn.practice import sniff
from vocalborn.practice.models import PracticeRecord, PracticeSession, Sentence
from vocalborn.practice.silence import refuse_silence
from vocalborn.sqltypes import utcnow
from vocalborn.storage import Storage


@dataclass(frozen=True)
class ValidAudio:
    data: bytes
    format: str
    duration_seconds: float


def check_size(size: int, settings: Settings, field: str) -> None:
    """The one per-file size rule (MAX_AUDIO_FILE_SIZE): 413 naming the field. The request
    body's own cap (main.BodySizeLimit) only stops a body before it is read."""
    if size > settings.max_audio_file_size:
        raise AudioRejected(
            413, f"{field}: the file is larger than the limit of {settings.max_audio_file_size} bytes", field
        )


def validate_audio(data: bytes, settings: Settings, field: str) -> ValidAudio:
    """Check an upload by its content: size, container, decodability, duration."""
    from vocalborn.analysis.decode import probe_audio  # reason: PyAV and numpy, not in the API until an upload

    if not data:
        raise AudioRejected(422, f"{field}: the file is empty", field)
    check_size(len(data), settings, field)

    try:
        # Decoding stops past the duration limit: a 4-hour file costs what a 2-minute one does.
        info = probe_audio(data, max_seconds=settings.max_audio_duration)
    except UndecodableAudioError as exc:
        raise AudioRejected(422, f"{field}: {exc}", field) from None
    if not sniff.starts_like(data, info.format):
        # FFmpeg found audio *inside* something else (an mp3 stored in a ZIP, say).
        what = sniff.looks_like(data) or "something else"
        raise AudioRejected(
            415,
            f"{field}: the file is not a {info.format} recording (it looks like {what}); send the recording itself",
            field,
        )
    if info.format not in settings.audio_formats:
        allowed = ", ".join(sorted(settings.audio_formats))
        raise AudioRejected(415, f"{field}: {info.format} audio is not accepted; send one of: {allowed}", field)
    if info.duration_seconds < settings.min_audio_duration:
        raise AudioRejected(
            422,
            f"{field}: the recording is {info.duration_seconds:.2f} s long; at least {settings.min_audio_duration} s is needed",
            field,
        )
    if info.duration_seconds > settings.max_audio_duration:
        raise AudioRejected(
            422,
            f"{field}: the recording is longer than {settings.max_audio_duration:.0f} s; at most {settings.max_audio_duration:.0f} s is accepted",
            field,
        )
    refuse_silence(data, field)
    return ValidAudio(data=data, format=info.format, duration_seconds=info.duration_seconds)


def create_sentence(
    db: Session, storage: Storage, *, text: str, audio: ValidAudio, author: User, shared: bool = False
) -> Sentence:
    key = storage.save("references", audio.data, audio.format)
    sentence = Sentence(
        text=text,
        shared=shared,
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


def _visible_sentences(reader: User) -> Any:
    """Admins see every sentence; a therapist their own and the shared ones; a learner their
    linked therapist's and the shared ones. Never every therapist's sentences and voices."""
    if reader.role == Role.ADMIN:
        return true()
    author = reader.user_id if reader.role == Role.THERAPIST else reader.therapist_id
    if author is None:
        return col(Sentence.shared).is_(True)
    return or_(col(Sentence.shared).is_(True), col(Sentence.created_by) == author)


def can_see_sentence(reader: User, sentence: Sentence) -> bool:
    """The one visibility rule, for one sentence (``_visible_sentences`` is the same in SQL)."""
    if reader.role == Role.ADMIN or sentence.shared:
        return True
    author = reader.user_id if reader.role == Role.THERAPIST else reader.therapist_id
    return author is not None and sentence.created_by == author


# A sentence read *through* another object (an analysis, a recording, a history or progress
# entry, an assignment) follows the same rule, with one addition: a person's own attempts stay
# theirs. A learner keeps the history of a sentence they practised when it was visible to them
# (it may not be any more: they were relinked, or it was unshared); nobody else reads it through
# their data unless the sentence is visible to them too. So a therapist never gets another
# therapist's private sentence through a learner who practised it before being relinked.


def sentence_readable_clause(reader: User, owner: Any) -> Any:
    """SQL (with ``Sentence`` joined): the rows of ``owner`` (a user id column) whose sentence
    ``reader`` may read through them."""
    if reader.role == Role.ADMIN:
        return true()
    return or_(owner == reader.user_id, _visible_sentences(reader))


def may_read_sentence_of(db: Session, reader: User, owner_id: uuid.UUID, sentence_id: uuid.UUID) -> bool:
    """``sentence_readable_clause`` for one row of ``owner_id``'s data."""
    if reader.role == Role.ADMIN or reader.user_id == owner_id:
        return True
    sentence = db.get(Sentence, sentence_id)
    return sentence is not None and can_see_sentence(reader, sentence)


def list_sentences(db: Session, limit: int, offset: int, reader: User) -> list[Sentence]:
    stmt = (
        select(Sentence)
        .where(_visible_sentences(reader), col(Sentence.deleted_at).is_(None))
        .order_by(col(Sentence.created_at).desc())
        .limit(limit)
        .offset(offset)
    )
    return list(db.exec(stmt))


def get_sentence(db: Session, sentence_id: uuid.UUID, reader: User | None = None) -> Sentence:
    """The sentence; NotFound when it does not exist or ``reader`` may not see it."""
    sentence = db.get(Sentence, sentence_id)
    if sentence is None or (reader is not None and not can_see_sentence(reader, sentence)):
        raise NotFound("sentence not found")
    return sentence


def live_sentence(db: Session, sentence_id: uuid.UUID, reader: User) -> Sentence:
    """``get_sentence`` for something new made of it (a recording, an assignment, an edit):
    a deleted sentence is not found."""
    sentence = get_sentence(db, sentence_id, reader)
    if sentence.deleted_at is not None:
        raise NotFound("sentence not found (it was deleted)")
    return sentence


def _owned_sentence(db: Session, sentence_id: uuid.UUID, user: User) -> Sentence:
    """The sentence for its author to edit or delete: NotFound when ``user`` may not see it (or
    it was deleted), Forbidden when they see it but did not write it."""
    sentence = live_sentence(db, sentence_id, user)
    if sentence.created_by != user.user_id:
        raise Forbidden("only the therapist who made the sentence can change or delete it")
    return sentence


def update_sentence(
    db: Session, sentence_id: uuid.UUID, user: User, *, text: str | None, shared: bool | None
) -> Sentence:
    """Its author edits the text (the reference recording stays: for corrections) or whether
    every learner may practise it."""
    sentence = _owned_sentence(db, sentence_id, user)
    if text is not None:
        sentence.text = text
    if shared is not None:
        sentence.shared = shared
    sentence.updated_at = utcnow()
    db.add(sentence)
    db.commit()
    db.refresh(sentence)
    return sentence


def delete_sentence(db: Session, sentence_id: uuid.UUID, user: User) -> None:
    """Soft delete by its author: the sentence leaves lists, practice sets and goals and takes
    no new recordings; attempts made of it, their results and the reference stay readable."""
    sentence = _owned_sentence(db, sentence_id, user)
    sentence.deleted_at = sentence.updated_at = utcnow()
    db.add(sentence)
    db.commit()


def set_sentence_shared(db: Session, sentence_id: uuid.UUID, shared: bool, user: User) -> Sentence:
    """Admins share any sentence; a therapist only their own."""
    sentence = live_sentence(db, sentence_id, user)
    if user.role != Role.ADMIN and sentence.created_by != user.user_id:
        raise Forbidden("only the sentence's author or an admin can change whether it is shared")
    sentence.shared = shared
    db.add(sentence)
    db.commit()
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
    if reader.user_id == owner_id or reader.role == Role.ADMIN:
        return True
    return reader.role == Role.THERAPIST and can_read(reader, owner_id, _owner_therapist(db, owner_id))


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
    live_sentence(db, sentence_id, user)
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
    if (
        record is None
        or not may_read(db, reader, record.user_id)
        or not may_read_sentence_of(db, reader, record.user_id, record.sentence_id)
    ):
        raise NotFound("practice record not found")
    return record


def list_records(db: Session, session: PracticeSession, reader: User) -> list[PracticeRecord]:
    """The session's recordings ``reader`` may see (``get_session_for`` checked the session)."""
    stmt = (
        select(PracticeRecord)
        .join(Sentence, col(Sentence.sentence_id) == col(PracticeRecord.sentence_id))
        .where(
            PracticeRecord.practice_session_id == session.practice_session_id,
            sentence_readable_clause(reader, col(PracticeRecord.user_id)),
        )
        .order_by(col(PracticeRecord.created_at))
    )
    return list(db.exec(stmt))

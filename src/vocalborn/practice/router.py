from __future__ import annotations

import logging
import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, Response, UploadFile, status
from fastapi.responses import FileResponse

from vocalborn.auth.dependencies import CurrentUser, SessionDep, TherapistUser
from vocalborn.auth.models import Role
from vocalborn.config import get_settings
from vocalborn.errors import FieldRejected, error_responses
from vocalborn.practice import erasure, service
from vocalborn.practice.schemas import (
    RecordPublic,
    SentencePublic,
    SentenceShare,
    SentenceUpdate,
    SessionCreate,
    SessionPublic,
)
from vocalborn.security.access import record_access
from vocalborn.security.dependencies import limit_uploads
from vocalborn.storage import MissingKey, get_storage

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/practice", tags=["practice"])

_MEDIA_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
    "flac": "audio/flac",
}


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_sentence_text(text: str) -> None:
    """A sentence a learner can read: not blank, no NUL or other control character (a NUL cannot
    be stored in PostgreSQL and would be cut short elsewhere; the others show as nothing)."""
    if not text.strip():
        raise FieldRejected("text", "the sentence text is empty (only whitespace)", "blank_text")
    if "\x00" in text:
        raise FieldRejected("text", "the sentence text contains a NUL character", "control_character")
    if _CONTROL.search(text):
        raise FieldRejected("text", "the sentence text contains a control character", "control_character")


async def _read_upload(upload: UploadFile, field: str) -> bytes:
    """Read at most the size limit plus one byte, so an oversized file is refused cheaply."""
    settings = get_settings()
    data = await upload.read(settings.max_audio_file_size + 1)
    service.check_size(len(data), settings, field)
    return data


def _validated(data: bytes, field: str) -> service.ValidAudio:
    # AudioRejected becomes 413/415 {"detail": str} or 422 in the validation-error shape (main.py)
    return service.validate_audio(data, get_settings(), field)


@router.post(
    "/sentences",
    status_code=status.HTTP_201_CREATED,
    response_model=SentencePublic,
    operation_id="create_sentence",
    responses=error_responses(403, 413, 415, 422, 429),
    dependencies=[Depends(limit_uploads)],
)
async def create_sentence(
    user: TherapistUser,
    db: SessionDep,
    text: Annotated[str, Form(min_length=1, max_length=2000)],
    reference_audio: Annotated[UploadFile, File()],
    shared: Annotated[bool, Form(description="visible to every learner, not only the author's")] = False,
) -> SentencePublic:
    from starlette.concurrency import run_in_threadpool

    check_sentence_text(text)  # before the upload is read
    data = await _read_upload(reference_audio, "reference_audio")
    audio = await run_in_threadpool(_validated, data, "reference_audio")
    sentence = await run_in_threadpool(
        lambda: service.create_sentence(db, get_storage(), text=text.strip(), audio=audio, author=user, shared=shared)
    )
    return SentencePublic.model_validate(sentence)


@router.get("/sentences", response_model=list[SentencePublic], operation_id="list_sentences")
def list_sentences(
    user: CurrentUser,
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[SentencePublic]:
    """A learner sees their therapist's sentences and the shared ones; a therapist their own and
    the shared ones; an admin all."""
    return [SentencePublic.model_validate(s) for s in service.list_sentences(db, limit, offset, user)]


@router.get("/sentences/{sentence_id}", response_model=SentencePublic, operation_id="get_sentence")
def get_sentence(sentence_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> SentencePublic:
    return SentencePublic.model_validate(service.get_sentence(db, sentence_id, user))


@router.put("/sentences/{sentence_id}/shared", response_model=SentencePublic, operation_id="share_sentence")
def share_sentence(sentence_id: uuid.UUID, body: SentenceShare, user: TherapistUser, db: SessionDep) -> SentencePublic:
    """Share a sentence with every learner (or stop): its author or an admin."""
    return SentencePublic.model_validate(service.set_sentence_shared(db, sentence_id, body.shared, user))


@router.patch(
    "/sentences/{sentence_id}",
    response_model=SentencePublic,
    operation_id="update_sentence",
    responses=error_responses(401, 403, 404, 422),
)
def update_sentence(
    sentence_id: uuid.UUID, body: SentenceUpdate, user: TherapistUser, db: SessionDep
) -> SentencePublic:
    """Its author edits the text (a correction: the reference recording stays) or whether every
    learner may practise it (`shared`). Another therapist who sees it: 403; one who does not: 404."""
    if body.text is None and body.shared is None:
        raise FieldRejected("text", "give text or shared (or both)", "nothing_to_change")
    if body.text is not None:
        check_sentence_text(body.text)
    text = body.text.strip() if body.text is not None else None
    return SentencePublic.model_validate(service.update_sentence(db, sentence_id, user, text=text, shared=body.shared))


@router.delete(
    "/sentences/{sentence_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="delete_sentence",
    responses=error_responses(401, 403, 404),
)
def delete_sentence(sentence_id: uuid.UUID, user: TherapistUser, db: SessionDep) -> Response:
    """Its author deletes it, keeping the history: it leaves the sentence lists, the learners'
    practice sets and goals and takes no new recordings; the attempts made of it, their results,
    reviews and its reference recording stay readable (soft delete)."""
    service.delete_sentence(db, sentence_id, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _stored_audio(key: str, fmt: str, what: str, name: str) -> Response:
    """The stored file (decrypted when storage encryption is on), or 410 JSON when its row
    outlived it (retention, a lost disk, a manual cleanup): never a 500 and a dropped
    connection halfway through the headers. A download (``Content-Disposition: attachment``
    named ``name``.``fmt``): a browser opening the URL saves it rather than rendering it."""
    storage = get_storage()
    media_type = _MEDIA_TYPES.get(fmt, "application/octet-stream")
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    gone = HTTPException(status.HTTP_410_GONE, f"the {what} is no longer in storage")
    if not storage.encrypted(key):
        path = storage.path(key)
        if not path.is_file():
            raise gone
        return FileResponse(path, media_type=media_type, headers=headers)
    try:
        data = storage.read(key)
    except FileNotFoundError:
        raise gone from None
    except MissingKey as exc:
        log.error("%s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "this recording's encryption key is not configured"
        ) from None
    return Response(data, media_type=media_type, headers=headers)


@router.get(
    "/sentences/{sentence_id}/audio",
    operation_id="get_sentence_audio",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/*": {}}, "description": "the reference recording"},
        **error_responses(401, 404, 410),
    },
)
def get_sentence_audio(sentence_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> Response:
    sentence = service.get_sentence(db, sentence_id, user)
    return _stored_audio(
        sentence.reference_audio_key,
        sentence.reference_audio_format,
        "reference recording",
        f"reference-{sentence.sentence_id}",
    )


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionPublic,
    operation_id="create_session",
    responses=error_responses(403),
)
def create_session(user: CurrentUser, db: SessionDep, body: SessionCreate | None = None) -> SessionPublic:
    if user.role != Role.LEARNER and user.role != Role.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "practice sessions belong to learners")
    return SessionPublic.model_validate(service.create_session(db, user, body.title if body else None))


@router.get("/sessions", response_model=list[SessionPublic], operation_id="list_sessions")
def list_sessions(
    user: CurrentUser,
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[SessionPublic]:
    return [SessionPublic.model_validate(s) for s in service.list_sessions(db, user, limit, offset)]


@router.get("/sessions/{session_id}", response_model=SessionPublic, operation_id="get_session")
def get_session(session_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> SessionPublic:
    session = service.get_session_for(db, session_id, user)
    record_access(db, user, session.user_id, "session", session.practice_session_id)
    return SessionPublic.model_validate(session)


@router.post(
    "/sessions/{session_id}/records",
    status_code=status.HTTP_201_CREATED,
    response_model=RecordPublic,
    operation_id="create_record",
    responses=error_responses(404, 413, 415, 422, 429),
    dependencies=[Depends(limit_uploads)],
)
async def create_record(
    session_id: uuid.UUID,
    user: CurrentUser,
    db: SessionDep,
    sentence_id: Annotated[uuid.UUID, Form()],
    audio: Annotated[UploadFile, File()],
) -> RecordPublic:
    from starlette.concurrency import run_in_threadpool

    data = await _read_upload(audio, "audio")

    def _work() -> RecordPublic:
        session = service.get_session_for(db, session_id, user)
        valid = _validated(data, "audio")
        record = service.create_record(
            db, get_storage(), session=session, sentence_id=sentence_id, audio=valid, user=user
        )
        return RecordPublic.model_validate(record)

    return await run_in_threadpool(_work)


@router.get("/sessions/{session_id}/records", response_model=list[RecordPublic], operation_id="list_records")
def list_records(session_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> list[RecordPublic]:
    session = service.get_session_for(db, session_id, user)
    record_access(db, user, session.user_id, "session_records", session.practice_session_id)
    return [RecordPublic.model_validate(r) for r in service.list_records(db, session, user)]


@router.get("/records/{record_id}", response_model=RecordPublic, operation_id="get_record")
def get_record(record_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> RecordPublic:
    record = service.get_record_for(db, record_id, user)
    record_access(db, user, record.user_id, "record", record.practice_record_id)
    return RecordPublic.model_validate(record)


@router.delete(
    "/records/{record_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    operation_id="delete_record",
    responses=error_responses(403, 409),
)
def delete_record(record_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> Response:
    """The learner who recorded the attempt erases it: the recording, its analyses and their
    results (and any review of them). 403 for a therapist or admin who can see it; 409 while
    an analysis of it is queued or running."""
    erasure.delete_record(db, get_storage(), record_id, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/records/{record_id}/audio",
    operation_id="get_record_audio",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/*": {}}, "description": "the practice recording"},
        **error_responses(401, 404, 410),
    },
)
def get_record_audio(record_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> Response:
    record = service.get_record_for(db, record_id, user)
    record_access(db, user, record.user_id, "record_audio", record.practice_record_id)
    return _stored_audio(
        record.audio_key, record.audio_format, "practice recording", f"recording-{record.practice_record_id}"
    )

"""HTTP for minimal-pair drills (issue #26): suggestions from a learner's still-deviating
characters, and assigning one with its reference recording in one request."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session, col, select

from vocalborn.auth.dependencies import CurrentUser, SessionDep
from vocalborn.auth.models import User
from vocalborn.drills.suggest import drills
from vocalborn.errors import FieldRejected
from vocalborn.i18n import Language, request_language
from vocalborn.learning import assignments as assignment_service
from vocalborn.learning import progress as progress_service
from vocalborn.learning.access import learner_for
from vocalborn.learning.http import E401, E404_LEARNER, E422, err
from vocalborn.learning.schemas import AssignmentPublic
from vocalborn.practice import service as practice_service
from vocalborn.practice.models import Sentence
from vocalborn.practice.router import _read_upload, _validated
from vocalborn.practice.service import can_see_sentence
from vocalborn.security.access import record_access
from vocalborn.security.dependencies import limit_uploads
from vocalborn.storage import get_storage

router = APIRouter(prefix="/api/v1", tags=["drills"])


class DrillCharacter(BaseModel):
    char: str
    pinyin: str
    sentence_id: uuid.UUID
    sentence_text: str


class DrillItem(BaseModel):
    kind: str  # tone_contrast | initial_contrast
    text: str
    pinyin: str
    target_char: str
    contrast_char: str
    why: str
    from_sentence_id: uuid.UUID
    from_sentence_text: str
    # A sentence of the caller with this text the learner may see: assign it with
    # POST /learners/{id}/assignments {"sentence_id"} (its reference is recorded already).
    existing_sentence_id: uuid.UUID | None = None


class Drills(BaseModel):
    user_id: uuid.UUID
    characters: list[DrillCharacter]
    items: list[DrillItem]
    needs_reference_recording: str


NEEDS_REFERENCE = {
    "en": "Assigning a new drill needs your reference recording of it: the learner's attempts are compared with "
    "your voice. Send it with the item's text to POST /api/v1/learners/{id}/drills (multipart: text, "
    "reference_audio); an item with existing_sentence_id is assigned as it is.",
    "zh-TW": "指派新的練習項目需要您錄製的參考音檔：學員的練習會與您的聲音比對。請將項目文字與參考音檔一起送到 "
    "POST /api/v1/learners/{id}/drills（multipart：text、reference_audio）；有 existing_sentence_id 的項目可直接指派。",
}


def _suggest(db: Session, reader: User, learner: User, lang: Language) -> Drills:
    sentences = progress_service.progress(db, reader, learner.user_id, None, None)
    characters, items = drills(sentences, lang)
    texts = {i["text"] for i in items}
    existing: dict[str, uuid.UUID] = {}
    if texts:
        for s in db.exec(
            select(Sentence).where(col(Sentence.text).in_(texts), Sentence.created_by == reader.user_id)
            .order_by(col(Sentence.created_at))
        ):  # fmt: skip
            if can_see_sentence(learner, s) and not getattr(s, "deleted_at", None):
                existing.setdefault(s.text, s.sentence_id)
    return Drills(
        user_id=learner.user_id,
        characters=[DrillCharacter.model_validate(c) for c in characters],
        items=[DrillItem.model_validate({**i, "existing_sentence_id": existing.get(i["text"])}) for i in items],
        needs_reference_recording=NEEDS_REFERENCE[lang],
    )


@router.get(
    "/learners/{user_id}/drills",
    response_model=Drills,
    operation_id="get_learner_drills",
    responses={**E401, **E404_LEARNER},
)
def get_drills(user_id: uuid.UUID, request: Request, user: CurrentUser, db: SessionDep) -> Drills:
    """Minimal-pair practice items from the learner's still-deviating characters (progress'
    ``still_deviating``): the same syllable in another tone, and the same final and tone with
    another (confusable first) initial; each with its text, pinyin and why, in the caller's
    language. The learner, the linked therapist and admins."""
    learner = learner_for(db, user, user_id)
    out = _suggest(db, user, learner, request_language(request))
    record_access(db, user, user_id, "drills")
    return out


@router.post(
    "/learners/{user_id}/drills",
    status_code=status.HTTP_201_CREATED,
    response_model=AssignmentPublic,
    operation_id="assign_drill",
    responses={
        **E401,
        403: err("this needs the role admin or therapist"),
        **E404_LEARNER,
        413: err("the recording is too large"),
        415: err("not an audio file"),
        **E422,
    },
    dependencies=[Depends(limit_uploads)],
)
async def assign_drill(
    user_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    text: Annotated[str, Form(min_length=1, max_length=20, description="a suggested item's text")],
    reference_audio: Annotated[UploadFile | None, File(description="your reference recording of it")] = None,
) -> JSONResponse:
    """One click: a suggested drill becomes a **private** sentence of the therapist, with the
    reference recording sent along, and is added to the learner's practice set (201). The text
    must be one of the learner's current suggestions; without a recording the answer is 422
    (``reference_audio``: the learner is compared with the therapist's voice)."""
    lang = request_language(request)

    def check() -> User:
        learner = assignment_service._may_assign(db, user, user_id)
        if text.strip() not in {i.text for i in _suggest(db, user, learner, lang).items}:
            raise FieldRejected("text", "not one of this learner's suggested drills", "not_suggested")
        return learner

    await run_in_threadpool(check)
    if reference_audio is None or not reference_audio.filename:
        raise FieldRejected(
            "reference_audio",
            "record the reference first: the learner's attempts are compared with your voice",
            "reference_required",
        )
    data = await _read_upload(reference_audio, "reference_audio")
    audio = await run_in_threadpool(_validated, data, "reference_audio")

    def create() -> dict[str, Any]:
        sentence = practice_service.create_sentence(
            db, get_storage(), text=text.strip(), audio=audio, author=user, shared=False
        )
        a, _ = assignment_service.add_assignment(db, user, user_id, sentence.sentence_id)
        return next(
            x for x in assignment_service.assignments(db, user, user_id) if x["assignment_id"] == a.assignment_id
        )

    item = await run_in_threadpool(create)
    return JSONResponse(AssignmentPublic.model_validate(item).model_dump(mode="json"), status_code=201)

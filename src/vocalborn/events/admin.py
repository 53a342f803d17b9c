"""The consumers' dead letters, for admins: ``GET /api/v1/admin/events/dead-letters`` and
``POST /api/v1/admin/events/dead-letters/{id}/replay`` (docs/EVENTS.md, "Dead letters")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select

from vocalborn.auth.dependencies import AdminUser, SessionDep
from vocalborn.errors import Conflict, NotFound, error_responses
from vocalborn.events.consumer import replay_dead_letter
from vocalborn.events.models import EventDeadLetter

router = APIRouter(prefix="/api/v1/admin/events", tags=["admin"], responses=error_responses(401, 403))


class DeadLetterPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    consumer: str
    event_id: uuid.UUID
    event_type: str
    subject: str
    body: str
    error: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None
    replay_error: str | None


class ReplayResult(BaseModel):
    id: uuid.UUID
    replayed: bool
    error: str | None = None


@router.get("/dead-letters", response_model=list[DeadLetterPublic], operation_id="admin_list_dead_letters")
def list_dead_letters(
    _admin: AdminUser,
    db: SessionDep,
    consumer: Annotated[str | None, Query(max_length=64, description="only this consumer's")] = None,
    include_replayed: Annotated[bool, Query(description="also the ones replayed already")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[EventDeadLetter]:
    """The dead letters, newest first (by default only those not replayed yet)."""
    stmt = select(EventDeadLetter)
    if consumer:
        stmt = stmt.where(EventDeadLetter.consumer == consumer)
    if not include_replayed:
        stmt = stmt.where(col(EventDeadLetter.replayed_at).is_(None))
    stmt = stmt.order_by(col(EventDeadLetter.created_at).desc(), col(EventDeadLetter.id)).offset(offset).limit(limit)
    return list(db.exec(stmt))


@router.post(
    "/dead-letters/{letter_id}/replay",
    response_model=ReplayResult,
    operation_id="admin_replay_dead_letter",
    responses=error_responses(404, 409),
)
async def replay(letter_id: uuid.UUID, _admin: AdminUser) -> ReplayResult:
    """Run the consumer's handler on the message again, now, in the API process. Handlers are
    idempotent, so a replay of something done meanwhile does nothing twice. ``replayed`` false
    and ``error``: it failed again (the letter stays, with ``replay_error``)."""

    try:
        done, error = await run_in_threadpool(replay_dead_letter, letter_id)
    except KeyError:
        raise NotFound("dead letter not found") from None
    except LookupError:
        raise Conflict("this dead letter's consumer is not known to this server; it cannot be replayed here") from None
    return ReplayResult(id=letter_id, replayed=done, error=error)

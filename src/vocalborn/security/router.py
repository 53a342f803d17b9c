"""Therapist invitations (admin), the learner's export, erasure and access log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from vocalborn.auth.dependencies import AdminUser, CurrentUser, SessionDep
from vocalborn.auth.models import User
from vocalborn.config import get_settings
from vocalborn.security import invitations, rights
from vocalborn.security.access import access_log_of
from vocalborn.security.dependencies import limit_exports

router = APIRouter(tags=["security"])


class InvitationRequest(BaseModel):
    expires_in_hours: int | None = Field(default=None, ge=1, le=24 * 30)
    note: str | None = Field(default=None, max_length=200, description="who it is for (shown to admins only)")


class InvitationCreated(BaseModel):
    invitation_id: uuid.UUID
    code: str = Field(description="give this to the therapist; it is shown once and works once")
    expires_at: datetime


class ErasureReport(BaseModel):
    erased: bool = True
    analyses: int
    recordings: int
    sessions: int


class AccessEntry(BaseModel):
    access_id: int
    reader_id: uuid.UUID
    reader_role: str
    reader_name: str
    what: str
    object_id: str | None
    created_at: datetime


@router.post(
    "/api/v1/admin/therapist-invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationCreated,
    operation_id="create_therapist_invitation",
)
def create_therapist_invitation(
    admin: AdminUser, db: SessionDep, body: InvitationRequest | None = None
) -> InvitationCreated:
    """A single-use code that makes a therapist account at registration (``invitation_code``)."""
    body = body or InvitationRequest()
    hours = body.expires_in_hours or get_settings().therapist_invitation_hours
    invitation, code = invitations.create_invitation(db, admin, hours, body.note)
    return InvitationCreated(invitation_id=invitation.invitation_id, code=code, expires_at=invitation.expires_at)


@router.get(
    "/api/v1/me/export",
    operation_id="export_my_data",
    response_class=Response,
    dependencies=[Depends(limit_exports)],
    responses={200: {"content": {"application/zip": {}}}, 429: {"description": "too many exports this hour"}},
)
async def export_my_data(user: CurrentUser, db: SessionDep) -> Response:
    """A zip of everything about you: account, sessions, recordings (audio too), analyses with
    their events, and who else read your data."""
    data = await run_in_threadpool(rights.export_zip, db, user)
    name = f"vocalborn-export-{user.user_id}.zip"
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _erase(db: SessionDep, user: User) -> ErasureReport:
    counts = rights.erase_user(db, user)  # CannotErase: 409
    return ErasureReport(**counts)


@router.delete("/api/v1/me", response_model=ErasureReport, operation_id="erase_me")
def erase_me(user: CurrentUser, db: SessionDep) -> ErasureReport:
    """Erase your account and all your recordings, analyses and events. It cannot be undone."""
    return _erase(db, user)


@router.delete("/api/v1/admin/users/{user_id}", response_model=ErasureReport, operation_id="admin_erase_user")
def admin_erase_user(user_id: uuid.UUID, admin: AdminUser, db: SessionDep) -> ErasureReport:
    """Answer an erasure request: the same as the user's own DELETE /api/v1/me."""
    user = db.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "user not found")
    if user.user_id == admin.user_id:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "an admin cannot erase their own account here; use DELETE /api/v1/me"
        )
    return _erase(db, user)


@router.get("/api/v1/me/access-log", response_model=list[AccessEntry], operation_id="my_access_log")
def my_access_log(
    user: CurrentUser,
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[AccessEntry]:
    """Who (therapist, admin) read your recordings, analyses or sessions, newest first."""
    return [AccessEntry.model_validate(e, from_attributes=True) for e in access_log_of(db, user.user_id, limit, offset)]

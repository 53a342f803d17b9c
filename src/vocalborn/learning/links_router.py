"""HTTP for linking a learner to a therapist: invitation codes, accepting one, the link,
unlinking (included by ``router``)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status

from vocalborn.auth.dependencies import CurrentUser, SessionDep
from vocalborn.auth.models import Role, User
from vocalborn.auth.totp import qr_svg
from vocalborn.learning import links as link_service
from vocalborn.learning.http import E401, E403_ROLE, E422, err, require_role
from vocalborn.learning.schemas import (
    AcceptRequest,
    InvitationCreate,
    InvitationPublic,
    LinkPublic,
    PersonPublic,
)
from vocalborn.security.dependencies import limit_link_accepts

router = APIRouter()


def _invitation(inv: Any, request: Request, code: str | None = None) -> InvitationPublic:
    url = invitation_url(request, code) if code is not None else None
    return InvitationPublic(
        invitation_id=inv.invitation_id,
        code=code,
        url=url,
        qr_svg=qr_svg(url, "VocalBorn") if url is not None else None,
        expires_at=inv.expires_at,
        used_at=inv.used_at,
        created_at=inv.created_at,
    )


@router.post(
    "/links/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationPublic,
    operation_id="create_link_invitation",
    tags=["links"],
    responses={**E401, **E403_ROLE, **E422},
)
def create_invitation(
    user: CurrentUser, db: SessionDep, request: Request, body: InvitationCreate | None = None
) -> InvitationPublic:
    """A single-use code (default: valid 72 hours) the therapist gives a learner, and ``url``:
    the page with the code filled in (sent as a link instead of typing the code on a phone), also
    as a QR code (``qr_svg``) for a phone's camera. The
    code and the link are in this answer only: the code is stored hashed, so the listing cannot
    show them again."""
    require_role(user, Role.THERAPIST)
    hours = body.expires_in_hours if body else 72
    invitation, code = link_service.create_invitation(db, user, timedelta(hours=hours))
    return _invitation(invitation, request, code)


@router.get(
    "/links/invitations",
    response_model=list[InvitationPublic],
    operation_id="list_link_invitations",
    tags=["links"],
    responses={**E401, **E403_ROLE},
)
def list_invitations(user: CurrentUser, db: SessionDep, request: Request) -> list[InvitationPublic]:
    """The therapist's unused, unexpired invitations (without their codes or links: stored hashed)."""
    require_role(user, Role.THERAPIST)
    return [_invitation(i, request) for i in link_service.list_invitations(db, user)]


def invitation_url(request: Request, code: str) -> str:
    """The page at this API's address (as the caller reached it) with ``?invite=CODE``."""
    from urllib.parse import quote

    return f"{str(request.base_url).rstrip('/')}/?invite={quote(code)}"


def _person(u: User) -> PersonPublic:
    return PersonPublic(user_id=u.user_id, name=u.name, email=u.email)


@router.post(
    "/links/accept",
    response_model=LinkPublic,
    operation_id="accept_link_invitation",
    tags=["links"],
    responses={
        **E401,
        403: err("only learners accept invitations"),
        404: err("invitation code not found"),
        409: err("you are already linked to another therapist; unlink first"),
        410: err("this invitation has expired or has already been used"),
        **E422,
    },
    dependencies=[Depends(limit_link_accepts)],
)
def accept(body: AcceptRequest, user: CurrentUser, db: SessionDep) -> LinkPublic:
    """The learner links to the therapist who made the code (one therapist per learner)."""
    therapist = link_service.accept_invitation(db, user, body.code)  # Gone: 410
    return LinkPublic(learner=_person(user), therapist=_person(therapist))


@router.get(
    "/links/therapist",
    response_model=LinkPublic,
    operation_id="get_my_therapist",
    tags=["links"],
    responses={**E401, 403: err("only learners have a therapist")},
)
def my_therapist(user: CurrentUser, db: SessionDep) -> LinkPublic:
    require_role(user, Role.LEARNER)
    therapist = db.get(User, user.therapist_id) if user.therapist_id else None
    return LinkPublic(learner=_person(user), therapist=_person(therapist) if therapist else None)


@router.delete(
    "/links/{learner_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="unlink",
    tags=["links"],
    responses={**E401, 404: err("learner not found, or not linked")},
)
def unlink(learner_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> Response:
    """Either side ends the link: the learner (their own id), their therapist, or an admin."""
    link_service.unlink(db, user, learner_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

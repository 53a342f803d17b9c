from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from vocalborn.auth import service
from vocalborn.auth.dependencies import CurrentUser, SessionDep
from vocalborn.auth.models import Role
from vocalborn.auth.schemas import RegisterAccepted, RegisterRequest, Token, UserPublic
from vocalborn.auth.security import create_access_token
from vocalborn.config import get_settings
from vocalborn.errors import error_responses
from vocalborn.security import invitations
from vocalborn.security.ratelimit import LoginLimit, limit_registration

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RegisterAccepted,
    operation_id="register",
    dependencies=[Depends(limit_registration)],
    responses=error_responses(403, 429),
)
def register(body: RegisterRequest, db: SessionDep) -> RegisterAccepted:
    """Always the same answer for a new and an already registered email (no account enumeration):
    then log in. In production, therapists register with an admin's invitation code."""
    role = Role(body.role)
    invitation_id = None
    if body.invitation_code or (role == Role.THERAPIST and not get_settings().therapists_may_self_register):
        if not body.invitation_code:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                "therapist accounts need an invitation code from an administrator; register as a learner otherwise",
            )
        invitation_id = invitations.claim(db, body.invitation_code)  # InvalidInvitation: 403
        role = Role.THERAPIST
    try:
        user = service.create_user(db, email=body.email, password=body.password, name=body.name, role=role)
    except service.EmailTaken:
        if invitation_id is not None:
            invitations.release(db, invitation_id)  # no account made: the code is not used up
        return RegisterAccepted()  # same status, same body, same Argon2 work as a new account
    if invitation_id is not None:
        invitations.mark_used_by(db, invitation_id, user.user_id)
    return RegisterAccepted()


@router.post(
    "/login",
    response_model=Token,
    operation_id="login",
    responses=error_responses(401, 429),
)
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], guard: LoginLimit, db: SessionDep) -> Token:
    user = service.authenticate(db, form.username, form.password)
    if user is None:
        guard.failed()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong email or password", headers={"WWW-Authenticate": "Bearer"}
        )
    guard.succeeded()
    token, expires_in = create_access_token(user.user_id, user.role)
    return Token(access_token=token, expires_in=expires_in)


@router.get("/me", response_model=UserPublic, operation_id="me")
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)

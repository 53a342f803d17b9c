"""Password reset and email verification (``/api/v1/auth/password-reset``,
``.../password-reset/confirm``, ``/api/v1/auth/verify-email``). The mails go through the outbox
and the notifications consumer: the request writes the hashed token and an
``account.*_requested`` event (ids only) in one transaction."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, EmailStr, Field

from vocalborn.auth import passwords, service, sessions
from vocalborn.auth.dependencies import SessionDep
from vocalborn.auth.models import User
from vocalborn.auth.schemas import PASSWORD_RULE
from vocalborn.config import get_settings
from vocalborn.errors import error_responses, raises, validation_error
from vocalborn.events import outbox
from vocalborn.i18n import explicit_language
from vocalborn.notify import tokens
from vocalborn.notify.models import AccountToken
from vocalborn.security.ratelimit import client_address, enforce, subject_of_email
from vocalborn.sqltypes import utcnow

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

RESET_MESSAGE = "if an account has this email, a link to choose a new password was sent to it"
BAD_TOKEN = "this link is not valid: it was used already, it expired, or a newer one was sent"


class ResetRequest(BaseModel):
    email: EmailStr


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    message: str = RESET_MESSAGE


class ResetConfirm(BaseModel):
    token: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=128, description=PASSWORD_RULE)


class ResetDone(BaseModel):
    status: Literal["password_changed"] = "password_changed"
    sessions_ended: int


class VerifyRequest(BaseModel):
    token: str = Field(min_length=1, max_length=200)


class Verified(BaseModel):
    status: Literal["verified"] = "verified"


def request_verification(db: SessionDep, user: User, language: str | None = None) -> None:
    """A verification token and its event (the mail), committed together. ``language``: the
    asking request's (``i18n.explicit_language``), the mail's unless the user chose one."""
    row = tokens.issue(db, user.user_id, user.email, tokens.VERIFY_EMAIL, language)
    outbox.add(db, "account.verification_requested", user_id=user.user_id, token_id=row.id)
    db.commit()


@raises(429)
def limit_reset(request: Request, body: ResetRequest) -> None:
    s = get_settings()
    if s.rate_limit_password_reset_per_address:
        enforce(
            "reset-ip",
            client_address(request),
            s.rate_limit_password_reset_per_address,
            3600,
            "too many password reset requests from this address",
        )
    if s.rate_limit_password_reset_per_email:
        enforce(
            "reset-email",
            subject_of_email(str(body.email)),
            s.rate_limit_password_reset_per_email,
            3600,
            "too many password reset requests for this email",
        )


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    operation_id="request_password_reset",
    dependencies=[Depends(limit_reset)],
    responses=error_responses(429),
)
def request_password_reset(body: ResetRequest, db: SessionDep, request: Request) -> Accepted:
    """The same answer whether or not an account has the email (no account enumeration); if one
    has, a mail with a single-use link (valid PASSWORD_RESET_TOKEN_MINUTES) goes to it, in the
    user's mail language, or if they chose none, this request's (``?lang`` / Accept-Language)."""
    user = service.get_user_by_email(db, str(body.email))
    if user is not None:
        language = explicit_language(request)
        row = tokens.issue(db, user.user_id, user.email, tokens.PASSWORD_RESET, language)
        outbox.add(db, "account.password_reset_requested", user_id=user.user_id, token_id=row.id)
        db.commit()
    return Accepted()


@router.post(
    "/password-reset/confirm",
    response_model=ResetDone,
    operation_id="confirm_password_reset",
    responses=error_responses(400, 422),
)
def confirm_password_reset(body: ResetConfirm, db: SessionDep) -> ResetDone | JSONResponse:
    """Choose a new password with the mailed token: once; every session of the account ends."""
    from sqlmodel import select

    pending = db.exec(select(AccountToken).where(AccountToken.token_sha256 == tokens.sha256(body.token))).first()
    user = db.get(User, pending.user_id) if pending is not None else None
    if pending is None or user is None or pending.purpose != tokens.PASSWORD_RESET:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, BAD_TOKEN)
    weak = passwords.problem(body.new_password, [user.email, user.name])
    if weak is not None:  # checked before the token is spent: a weak choice can be corrected
        return JSONResponse(validation_error("new_password", weak, "weak_password"), status_code=422)
    if tokens.redeem(db, body.token, tokens.PASSWORD_RESET) is None:
        db.rollback()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, BAD_TOKEN)
    if user.email_verified_at is None and pending.email == user.email:
        user.email_verified_at = utcnow()  # the mailbox's owner, proven
    service.set_password(db, user, body.new_password)  # commits the token's use with it
    ended = sessions.end_all(db, user.user_id, "password reset")
    return ResetDone(sessions_ended=ended)


@router.post(
    "/verify-email",
    response_model=Verified,
    operation_id="verify_email",
    responses=error_responses(400),
)
def verify_email(body: VerifyRequest, db: SessionDep) -> Verified:
    """Confirm the account's address with the token mailed at registration (once)."""
    row = tokens.redeem(db, body.token, tokens.VERIFY_EMAIL)
    user = db.get(User, row.user_id) if row is not None else None
    if row is None or user is None or row.email != user.email:
        db.rollback()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, BAD_TOKEN)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        db.add(user)
    db.commit()
    return Verified()

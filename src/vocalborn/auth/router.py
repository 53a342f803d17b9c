from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Form, HTTPException, Request, Response, status
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm

from vocalborn.auth import passwords, service, sessions, totp
from vocalborn.auth.dependencies import CurrentSession, CurrentUser, SessionDep, oauth2_scheme, token_claims
from vocalborn.auth.models import Role, User
from vocalborn.auth.schemas import (
    PasswordChange,
    PasswordChanged,
    RefreshRequest,
    RegisterAccepted,
    RegisterRequest,
    SessionPublic,
    Token,
    TotpConfirm,
    TotpConfirmed,
    TotpSetup,
    UserPublic,
)
from vocalborn.config import get_settings
from vocalborn.errors import error_responses, validation_error
from vocalborn.i18n import explicit_language
from vocalborn.notify.accounts import request_verification
from vocalborn.security import invitations
from vocalborn.security.ratelimit import LoginGuard, LoginLimit, RateLimited, client_address, limit_registration
from vocalborn.sqltypes import utcnow

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RegisterAccepted,
    operation_id="register",
    dependencies=[Depends(limit_registration)],
    responses=error_responses(403, 429),
)
def register(body: RegisterRequest, db: SessionDep, request: Request) -> RegisterAccepted:
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

    # the verification mail (outbox -> notifications consumer), in the page's language
    request_verification(db, user, explicit_language(request))
    return RegisterAccepted()


REFRESH_COOKIE = "vb_refresh"
COOKIE_PATH = "/api/v1/auth"  # the cookie goes to the auth routes only


def _keep(response: Response, request: Request, issued: sessions.Issued) -> Token:
    """The pair as JSON, and the refresh token as an httpOnly, SameSite=Strict cookie (the page
    keeps its session across tabs and restarts with it; scripts never see it)."""
    response.set_cookie(
        REFRESH_COOKIE,
        issued.refresh_token,
        max_age=get_settings().refresh_token_days * 86400,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or get_settings().environment == "production",
    )
    response.headers["Cache-Control"] = "no-store"
    return Token(access_token=issued.access_token, refresh_token=issued.refresh_token, expires_in=issued.expires_in)


def _refused(detail: str, second_factor: bool = False) -> HTTPException:
    """401; ``X-Second-Factor: required`` when the password was right and the code is missing or
    wrong (the page then asks for the code)."""
    headers = {"WWW-Authenticate": "Bearer"}
    if second_factor:
        headers["X-Second-Factor"] = "required"
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers=headers)


@router.post(
    "/login",
    response_model=Token,
    operation_id="login",
    responses=error_responses(401, 429),
)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    guard: LoginLimit,
    db: SessionDep,
    request: Request,
    response: Response,
    totp_code: Annotated[
        str | None, Form(max_length=64, description="the authenticator code (or a recovery code), once TOTP is on")
    ] = None,
) -> Token:
    """Answers a short access token and a refresh token (also set as an httpOnly cookie). With
    the second factor on, ``totp_code`` is needed too (401 without a good one)."""
    user = service.authenticate(db, form.username, form.password)
    if user is None:
        guard.failed()
        raise _refused("wrong email or password")
    guard.succeeded()
    if user.totp_enabled_at is not None:
        _second_factor(db, user, totp_code)
    return _keep(response, request, sessions.start(db, user, request.headers.get("user-agent")))


def _second_factor(db: SessionDep, user: User, code: str | None) -> None:
    """The TOTP (or a recovery) code of an account that turned it on; 401 without a good one,
    429 while locked after five wrong ones."""
    locked = totp.locked_for(user.user_id)
    if locked:
        raise RateLimited("too many wrong authenticator codes: the second factor is locked for a while", locked)
    if not code:
        raise _refused("this account needs its authenticator code: send totp_code (or a recovery code)", True)
    if not totp.use_code(db, user, code):
        totp.failed(user.user_id)
        raise _refused("wrong or already used authenticator code", True)
    totp.succeeded(user.user_id)


@router.post(
    "/totp/setup",
    response_model=TotpSetup,
    operation_id="totp_setup",
    responses=error_responses(401, 403, 409),
)
def totp_setup(user: CurrentUser, db: SessionDep) -> TotpSetup:
    """Therapists and admins: a new TOTP secret for an authenticator app (scan ``qr_svg`` or
    type ``secret``). It is used once ``POST /totp/confirm`` proves the app has it."""
    if user.role not in (Role.THERAPIST, Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the second factor is for therapists and admins")
    if user.totp_enabled_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "the second factor is on already")
    user.totp_secret = totp.new_secret()
    db.add(user)
    db.commit()
    url = totp.otpauth_url(user.totp_secret, user.email)
    return TotpSetup(secret=user.totp_secret, otpauth_url=url, qr_svg=totp.qr_svg(url))


@router.post(
    "/totp/confirm",
    response_model=TotpConfirmed,
    operation_id="totp_confirm",
    responses=error_responses(401, 403, 409, 422, 429),
)
def totp_confirm(body: TotpConfirm, current: CurrentSession, db: SessionDep) -> TotpConfirmed | Response:
    """A code from the app turns the second factor on: from now on a login needs ``totp_code``.
    Answers ten single-use recovery codes (shown once). The account's other sessions end."""
    user, session_id = current
    if user.role not in (Role.THERAPIST, Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the second factor is for therapists and admins")
    if user.totp_enabled_at is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, "the second factor is on already")
    if not user.totp_secret:
        raise HTTPException(status.HTTP_409_CONFLICT, "no secret to confirm: POST /api/v1/auth/totp/setup first")
    locked = totp.locked_for(user.user_id)
    if locked:
        raise RateLimited("too many wrong authenticator codes: the second factor is locked for a while", locked)
    step = totp.matching_step(user.totp_secret, body.code)
    if step is None:
        totp.failed(user.user_id)
        return JSONResponse(
            validation_error("code", "wrong code: type the 6 digits the app shows now", "wrong_code"), status_code=422
        )
    totp.succeeded(user.user_id)
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    codes = totp.new_recovery_codes(db, user)
    db.add(user)
    db.commit()
    sessions.end_all(db, user.user_id, "second factor turned on", keep=session_id)
    return TotpConfirmed(recovery_codes=codes)


@router.post(
    "/refresh",
    response_model=Token,
    operation_id="refresh",
    responses=error_responses(401, 422),
)
def refresh(
    db: SessionDep,
    request: Request,
    response: Response,
    body: RefreshRequest | None = None,
    cookie: Annotated[str | None, Cookie(alias=REFRESH_COOKIE, include_in_schema=False)] = None,
) -> Token | Response:
    """A new pair for a refresh token (the body's, or the cookie's); the old one is used up.
    A refresh token used twice ends its whole session (it was copied): log in again."""
    token = (body.refresh_token if body else None) or cookie
    if not token:
        raise _refused("no refresh token: send {'refresh_token': ...} or log in")
    try:
        issued = sessions.rotate(db, token)
    except sessions.SessionRefused as exc:
        refused = JSONResponse({"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        refused.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH)  # of no use any more
        return refused
    return _keep(response, request, issued)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="logout",
    responses=error_responses(401, 422),
)
def logout(
    db: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    body: RefreshRequest | None = None,
    cookie: Annotated[str | None, Cookie(alias=REFRESH_COOKIE, include_in_schema=False)] = None,
) -> Response:
    """Ends the session of the bearer token (or of the refresh token, the body's or the
    cookie's): its access and refresh tokens are refused from now on."""
    refresh_token = (body.refresh_token if body else None) or cookie
    claims = None
    if token:
        try:
            claims = token_claims(token)
        except HTTPException:
            if not refresh_token:  # an expired access token: the refresh token still names the session
                raise
    if claims is not None:
        sessions.end(db, uuid.UUID(claims["sid"]), "logout")
    elif refresh_token:
        found = sessions.session_of(db, refresh_token)
        if found is None:
            raise _refused("unknown refresh token")
        sessions.end(db, found, "logout")
    else:
        raise _refused("not authenticated: send 'Authorization: Bearer <token>' or the refresh token")
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(REFRESH_COOKIE, path=COOKIE_PATH)
    return response


@router.post(
    "/password",
    response_model=PasswordChanged,
    operation_id="change_password",
    responses=error_responses(401, 403, 422, 429),
)
def change_password(
    body: PasswordChange, current: CurrentSession, db: SessionDep, request: Request
) -> PasswordChanged | Response:
    """Change one's password: every other session ends (this one stays)."""
    user, session_id = current
    guard = LoginGuard(user.email, client_address(request))
    guard.check()  # the login's limits: the current password cannot be guessed here instead
    if not service.authenticate_user(user, body.current_password):
        guard.failed()
        raise HTTPException(status.HTTP_403_FORBIDDEN, "current_password: the current password is wrong")
    guard.succeeded()
    weak = passwords.problem(body.new_password, [user.email, user.name])
    if weak is not None:
        return JSONResponse(validation_error("new_password", weak, "weak_password"), status_code=422)
    service.set_password(db, user, body.new_password)
    ended = sessions.end_all(db, user.user_id, "password changed", keep=session_id)
    return PasswordChanged(sessions_ended=ended)


@router.get("/sessions", response_model=list[SessionPublic], operation_id="list_my_sessions")
def list_my_sessions(current: CurrentSession, db: SessionDep) -> list[SessionPublic]:
    """One's live sessions (logins), the latest used first."""
    user, session_id = current
    return [
        SessionPublic.model_validate(s).model_copy(update={"current": s.session_id == session_id})
        for s in sessions.live_sessions(db, user.user_id)
    ]


@router.delete(
    "/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="end_my_session",
    responses=error_responses(401, 404),
)
def end_my_session(session_id: uuid.UUID, current: CurrentSession, db: SessionDep) -> Response:
    """End one of one's sessions (another device, say); 404 for anyone else's or an ended one."""
    user, _ = current
    if not sessions.end_own(db, user.user_id, session_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "session not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=UserPublic, operation_id="me")
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user).model_copy(
        update={"totp_enabled": user.totp_enabled_at is not None, "email_verified": user.email_verified_at is not None}
    )

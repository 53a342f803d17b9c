from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm

from vocalborn.auth import service
from vocalborn.auth.dependencies import CurrentUser, SessionDep
from vocalborn.auth.models import Role
from vocalborn.auth.schemas import RegisterRequest, Token, UserPublic
from vocalborn.auth.security import create_access_token
from vocalborn.errors import error_responses

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    operation_id="register",
    responses=error_responses(409),
)
def register(body: RegisterRequest, db: SessionDep) -> UserPublic:
    try:
        user = service.create_user(db, email=body.email, password=body.password, name=body.name, role=Role(body.role))
    except service.EmailTaken:
        raise HTTPException(status.HTTP_409_CONFLICT, "an account with this email already exists") from None
    return UserPublic.model_validate(user)


@router.post("/login", response_model=Token, operation_id="login", responses=error_responses(401))
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()], db: SessionDep) -> Token:
    user = service.authenticate(db, form.username, form.password)
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "wrong email or password", headers={"WWW-Authenticate": "Bearer"}
        )
    token, expires_in = create_access_token(user.user_id, user.role)
    return Token(access_token=token, expires_in=expires_in)


@router.get("/me", response_model=UserPublic, operation_id="me")
def me(user: CurrentUser) -> UserPublic:
    return UserPublic.model_validate(user)

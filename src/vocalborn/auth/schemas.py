from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationInfo, field_validator

from vocalborn.auth import passwords

PASSWORD_RULE = (
    f"at least {passwords.MIN_LENGTH} characters, not only spaces, and not easy to guess "
    "(common passwords, names, words of the email or the product and keyboard patterns are refused)"
)


class RegisterRequest(BaseModel):
    email: EmailStr
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=128, description=PASSWORD_RULE)
    # Admins are created from the CLI only. In production a therapist needs an invitation code.
    role: Literal["learner", "therapist"] = "learner"
    invitation_code: str | None = Field(default=None, min_length=8, max_length=128)

    @field_validator("password")
    @classmethod
    def _strong_password(cls, value: str, info: ValidationInfo) -> str:
        return passwords.check(value, [info.data.get("email"), info.data.get("name")])


REGISTER_MESSAGE = "if this email was not registered yet, the account now exists; log in with it"


class RegisterAccepted(BaseModel):
    """The same answer for a new and a taken email: registration never says who has an account."""

    status: Literal["accepted"] = "accepted"
    message: str = REGISTER_MESSAGE


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    email: str
    name: str
    role: str
    therapist_id: uuid.UUID | None = None
    created_at: datetime
    totp_enabled: bool = Field(default=False, description="a login needs the authenticator code too")
    email_verified: bool = Field(default=False, description="the address was confirmed with the mailed link")


class Token(BaseModel):
    access_token: str = Field(description="send as 'Authorization: Bearer <token>'; short-lived")
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str = Field(description="single use: POST /api/v1/auth/refresh answers a new pair")


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(
        default=None, min_length=1, max_length=200, description="or the httpOnly cookie the login set"
    )


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=128)
    new_password: str = Field(min_length=1, max_length=128, description=PASSWORD_RULE)

    @field_validator("new_password")
    @classmethod
    def _strong_password(cls, value: str) -> str:
        return passwords.check(value)  # the account's own words are checked by the route


class PasswordChanged(BaseModel):
    status: Literal["changed"] = "changed"
    sessions_ended: int = Field(description="the other sessions, now ended (this one stays)")


class SessionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    session_id: uuid.UUID
    created_at: datetime
    last_used_at: datetime = Field(description="the last login or refresh")
    expires_at: datetime = Field(description="ends by itself then unless refreshed")
    user_agent: str | None
    current: bool = Field(default=False, description="the session of the token that asked")


class TotpSetup(BaseModel):
    secret: str = Field(description="base32, for typing into the app")
    otpauth_url: str = Field(description="otpauth://totp/... (SHA1, 6 digits, 30 s)")
    qr_svg: str = Field(description="the otpauth URL as a QR code (an SVG document)")


class TotpConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=6, max_length=10, description="the 6 digits the app shows now")


class TotpConfirmed(BaseModel):
    recovery_codes: list[str] = Field(description="single use, each instead of a code; shown only now")

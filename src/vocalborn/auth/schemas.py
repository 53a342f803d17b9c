from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class RegisterRequest(BaseModel):
    email: EmailStr
    password: str = Field(min_length=8, max_length=128)
    name: str = Field(min_length=1, max_length=100)
    # Admins are created from the CLI only. In production a therapist needs an invitation code.
    role: Literal["learner", "therapist"] = "learner"
    invitation_code: str | None = Field(default=None, min_length=8, max_length=128)


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


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int

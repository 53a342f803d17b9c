"""What the learning routes share: documented error responses and the role check."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status

from vocalborn.auth.models import Role, User


def err(description: str) -> dict[str, Any]:
    """An error response for the OpenAPI ``responses`` of a route, with its example body."""
    return {"description": description, "content": {"application/json": {"example": {"detail": description}}}}


E401: dict[int | str, Any] = {401: err("not authenticated: send 'Authorization: Bearer <token>'")}
E403_ROLE: dict[int | str, Any] = {403: err("this needs another role")}
E404_LEARNER: dict[int | str, Any] = {404: err("learner not found (or not yours to see)")}
E404_TASK: dict[int | str, Any] = {404: err("task not found (or not yours to see)")}
E422: dict[int | str, Any] = {422: err("invalid parameters")}


def require_role(user: User, *roles: Role) -> None:
    """403 unless ``user`` has one of ``roles``."""
    if user.role not in {r.value for r in roles}:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this needs the role {' or '.join(sorted(r.value for r in roles))}"
        )

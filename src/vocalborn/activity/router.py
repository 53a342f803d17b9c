"""``GET /api/v1/me/activity``: the caller's practice per day from the learner-activity
projection (read-only; built from the event stream, so it may lag a moment behind the goals,
which count from the tables themselves)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from vocalborn.activity.projection import learner_activity
from vocalborn.auth.dependencies import CurrentUser, SessionDep
from vocalborn.errors import error_responses

router = APIRouter(prefix="/api/v1/me", tags=["practice"], responses=error_responses(401))


class ActivityDay(BaseModel):
    day: date
    attempts: int = Field(description="analysed attempts that count, asked for on this UTC day")
    minutes: float = Field(description="their recordings' minutes")
    streak_days: int = Field(description="consecutive practised days ending on this day (0: not practised)")


class Activity(BaseModel):
    learner_id: uuid.UUID
    streak_days: int = Field(description="consecutive days, up to today (or yesterday)")
    days: list[ActivityDay]


@router.get("/activity", response_model=Activity, operation_id="my_activity")
def my_activity(user: CurrentUser, db: SessionDep, days: Annotated[int, Query(ge=1, le=366)] = 28) -> dict[str, Any]:
    """The last ``days`` UTC days, oldest first (days without practice too)."""
    return learner_activity(db, user.user_id, days)

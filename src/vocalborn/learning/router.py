"""HTTP for the practice product: history, progress, dashboard, links, reviews, practice sets.

This module serves the reads of a learner's data (history, progress, the therapist's dashboard)
and includes the routers of links (``links_router``), reviews (``reviews_router``) and practice
sets (``assignments_router``), in that order, under ``/api/v1``. Every route documents its error
statuses; 404 also stands for "not yours to see", so ids of other people's learners and analyses
cannot be probed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session

from vocalborn.auth.dependencies import (
    CurrentUser,
    SessionDep,
    fast_subject,
    oauth2_scheme,
    token_subject_dep,
    user_from_token,
)
from vocalborn.auth.models import Role, User
from vocalborn.db import open_session
from vocalborn.i18n import Language, request_language
from vocalborn.learning import assignments_router, history_fast, links_router, reviews_router
from vocalborn.learning import dashboard as dashboard_service
from vocalborn.learning import history as history_service
from vocalborn.learning import progress as progress_service
from vocalborn.learning.http import E401, E403_ROLE, E404_LEARNER, E422, require_role
from vocalborn.learning.models import SCORE_FIELDS, TherapistReview
from vocalborn.learning.schemas import (
    DashboardLearner,
    HistoryItem,
    HistoryPage,
    ProgressResponse,
    ReviewSummary,
)
from vocalborn.practice import counting
from vocalborn.security.access import record_access
from vocalborn.tasks.states import TaskStatus

router = APIRouter(prefix="/api/v1")

StatusFilter = Literal["pending", "processing", "success", "failure", "retry", "cancelled"]
assert set(StatusFilter.__args__) == {s.value for s in TaskStatus}  # type: ignore[attr-defined]


def _since(since: datetime | None) -> datetime | None:
    """A time with a zone, in UTC; 422 otherwise (also for times that do not fit in UTC)."""
    if since is None:
        return None
    if since.tzinfo is None:
        raise HTTPException(422, "since: give a time zone, e.g. 2026-12-01T00:00:00Z")
    try:
        return since.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(422, "since: the time is out of range") from None


# ------------------------------------------------------------------------------------------------
# history
# ------------------------------------------------------------------------------------------------
def _summary(review: TherapistReview | None) -> ReviewSummary | None:
    if review is None:
        return None
    return ReviewSummary(
        therapist_id=review.therapist_id,
        comment=review.comment,
        updated_at=review.updated_at,
        **{f: getattr(review, f) for f in SCORE_FIELDS},
    )


@router.get(
    "/tasks/analysis",
    response_model=HistoryPage,
    operation_id="list_my_analyses",
    tags=["history"],
    responses={**E401, **E404_LEARNER, **E422},
)
async def list_analyses(
    request: Request,
    reader_id: Annotated[uuid.UUID, Depends(token_subject_dep)],
    token: Annotated[str | None, Depends(oauth2_scheme)],
    user_id: Annotated[uuid.UUID | None, Query(description="one learner (therapists: a linked learner)")] = None,
    sentence_id: uuid.UUID | None = None,
    status_: Annotated[StatusFilter | None, Query(alias="status")] = None,
    since: Annotated[datetime | None, Query(description="only analyses asked for at or after this time")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """The caller's analyses, newest first: a learner's own, a therapist's linked learners',
    an admin's all. Each finished item carries the four scores and the latest therapist review."""
    query = HistoryQuery(user_id, sentence_id, status_, since, cursor, limit, request_language(request))
    fast = user_id in (None, reader_id) and fast_subject(token) is not None  # session checked lately
    page = await _own_history(reader_id, query) if fast else None
    if page is not None:  # a learner reading their own analyses: nothing to log
        # pydantic's own JSON: the same bytes as the ordinary path's (tested), in a third of the time
        return Response(page.model_dump_json(), media_type="application/json")
    return await run_in_threadpool(history_in_session, token, query)


async def _own_history(reader_id: uuid.UUID, query: HistoryQuery) -> HistoryPage | None:
    try:
        since = _since(query.since)
    except HTTPException:
        return None  # the ordinary path refuses it, after checking the token's user
    return await history_fast.own_history(
        reader_id,
        sentence_id=query.sentence_id,
        status=query.status,
        since=since,
        cursor=query.cursor,
        limit=query.limit,
        lang=query.lang,
    )


@dataclass(frozen=True)
class HistoryQuery:
    user_id: uuid.UUID | None
    sentence_id: uuid.UUID | None
    status: str | None
    since: datetime | None
    cursor: str | None
    limit: int
    lang: Language = "en"


def history_in_session(token: str | None, query: HistoryQuery) -> JSONResponse:
    """The ordinary path, for every reader and every case the fast path leaves: the access
    rules, their errors and the access log live here."""
    with open_session() as db:
        user = user_from_token(db, token)
        page = history_page(db, user, query)
        return JSONResponse(page.model_dump(mode="json"))


def history_page(db: Session, user: User, query: HistoryQuery) -> HistoryPage:
    since = _since(query.since)
    try:
        rows, next_cursor = history_service.history(
            db,
            user,
            user_id=query.user_id,
            sentence_id=query.sentence_id,
            status=query.status,
            since=since,
            cursor=query.cursor,
            limit=query.limit,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    items = [
        HistoryItem(
            task_id=r.task.task_id,
            practice_record_id=r.record.practice_record_id,
            practice_session_id=r.record.practice_session_id,
            sentence_id=r.sentence.sentence_id,
            sentence_text=r.sentence.text,
            user_id=r.task.user_id,
            status=r.task.status,
            created_at=r.task.created_at,
            completed_at=r.task.completed_at,
            completeness_score=r.result.completeness_score if r.result else None,
            review=_summary(r.review),
            counted=r.result.counted if r.result else None,
            not_counted_reason=r.result.not_counted_reason if r.result else None,
            not_counted_text=counting.reason_text(r.result.not_counted_reason, query.lang) if r.result else None,
            **{f: getattr(r.result, f) if r.result else None for f in SCORE_FIELDS},
        )
        for r in rows
    ]
    for learner_id in {item.user_id for item in items}:
        record_access(db, user, learner_id, "history")
    return HistoryPage(items=items, next_cursor=next_cursor)


# ------------------------------------------------------------------------------------------------
# progress
# ------------------------------------------------------------------------------------------------
@router.get(
    "/learners/{user_id}/progress",
    response_model=ProgressResponse,
    operation_id="get_learner_progress",
    tags=["progress"],
    responses={**E401, **E404_LEARNER, **E422},
)
def get_progress(
    user_id: uuid.UUID,
    user: CurrentUser,
    db: SessionDep,
    sentence_id: uuid.UUID | None = None,
    since: datetime | None = None,
) -> ProgressResponse:
    """Per sentence: the four scores of every successful attempt in time order, the characters
    the engine marked (when the result has per-character data), which improved, and a trend
    (first attempt against the mean of the last three, and the least-squares slope)."""
    since = _since(since)
    sentences = progress_service.progress(db, user, user_id, sentence_id, since)
    record_access(db, user, user_id, "progress")
    return ProgressResponse.model_validate({"user_id": user_id, "sentences": sentences})


# ------------------------------------------------------------------------------------------------
# the therapist's dashboard
# ------------------------------------------------------------------------------------------------
@router.get(
    "/therapists/me/learners",
    response_model=list[DashboardLearner],
    operation_id="list_my_learners",
    tags=["therapists"],
    responses={**E401, **E403_ROLE},
)
def my_learners(user: CurrentUser, db: SessionDep) -> list[DashboardLearner]:
    """The therapist's linked learners. ``flagged`` when a learner never practised, has not
    practised for 7 days, or their scores fall (newest 3 overall scores 10+ points below the
    older ones among the last 10, once there are at least 5). Flagged learners come first."""
    require_role(user, Role.THERAPIST)
    learners = [DashboardLearner.model_validate(d) for d in dashboard_service.dashboard(db, user)]
    for learner in learners:
        record_access(db, user, learner.user_id, "dashboard")
    return learners


router.include_router(links_router.router)
router.include_router(reviews_router.router)
router.include_router(assignments_router.router)

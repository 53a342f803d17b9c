"""HTTP for the practice product: history, progress, dashboard, links, reviews, practice sets.

Every route documents its error statuses; 404 also stands for "not yours to see", so ids of
other people's learners and analyses cannot be probed.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from vocalborn.auth.dependencies import AdminUser, CurrentUser, SessionDep
from vocalborn.auth.models import Role, User
from vocalborn.learning import service
from vocalborn.learning.models import SCORE_FIELDS, TherapistReview
from vocalborn.learning.schemas import (
    AcceptRequest,
    AssignmentCreate,
    AssignmentPublic,
    DashboardLearner,
    HistoryItem,
    HistoryPage,
    InvitationCreate,
    InvitationPublic,
    LinkPublic,
    PersonPublic,
    ProgressResponse,
    ReviewPublic,
    ReviewRequest,
    ReviewRevision,
    ReviewSummary,
    Scores,
    TaskReviews,
)
from vocalborn.security.access import record_access
from vocalborn.tasks.states import TaskStatus

router = APIRouter(prefix="/api/v1")


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": {"detail": description}}}}


E401: dict[int | str, Any] = {401: _err("not authenticated: send 'Authorization: Bearer <token>'")}
E403_ROLE: dict[int | str, Any] = {403: _err("this needs another role")}
E404_LEARNER: dict[int | str, Any] = {404: _err("learner not found (or not yours to see)")}
E404_TASK: dict[int | str, Any] = {404: _err("task not found (or not yours to see)")}
E422: dict[int | str, Any] = {422: _err("invalid parameters")}

StatusFilter = Literal["pending", "processing", "success", "failure", "retry", "cancelled"]
assert set(StatusFilter.__args__) == {s.value for s in TaskStatus}  # type: ignore[attr-defined]


def _require(user: User, *roles: Role) -> None:
    if user.role not in {r.value for r in roles}:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this needs the role {' or '.join(sorted(r.value for r in roles))}"
        )


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
def list_analyses(
    user: CurrentUser,
    db: SessionDep,
    user_id: Annotated[uuid.UUID | None, Query(description="one learner (therapists: a linked learner)")] = None,
    sentence_id: uuid.UUID | None = None,
    status_: Annotated[StatusFilter | None, Query(alias="status")] = None,
    since: Annotated[datetime | None, Query(description="only analyses asked for at or after this time")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> HistoryPage:
    """The caller's analyses, newest first: a learner's own, a therapist's linked learners',
    an admin's all. Each finished item carries the four scores and the latest therapist review."""
    since = _since(since)
    try:
        rows, next_cursor = service.history(
            db,
            user,
            user_id=user_id,
            sentence_id=sentence_id,
            status=status_,
            since=since,
            cursor=cursor,
            limit=limit,
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
            review=_summary(r.review),
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
    sentences = service.progress(db, user, user_id, sentence_id, since)
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
    _require(user, Role.THERAPIST)
    learners = [DashboardLearner.model_validate(d) for d in service.dashboard(db, user)]
    for learner in learners:
        record_access(db, user, learner.user_id, "dashboard")
    return learners


# ------------------------------------------------------------------------------------------------
# linking
# ------------------------------------------------------------------------------------------------
def _invitation(inv: Any) -> InvitationPublic:
    return InvitationPublic(
        invitation_id=inv.invitation_id,
        code=inv.code,
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
def create_invitation(user: CurrentUser, db: SessionDep, body: InvitationCreate | None = None) -> InvitationPublic:
    """A single-use code (default: valid 72 hours) the therapist gives a learner."""
    _require(user, Role.THERAPIST)
    hours = body.expires_in_hours if body else 72
    return _invitation(service.create_invitation(db, user, timedelta(hours=hours)))


@router.get(
    "/links/invitations",
    response_model=list[InvitationPublic],
    operation_id="list_link_invitations",
    tags=["links"],
    responses={**E401, **E403_ROLE},
)
def list_invitations(user: CurrentUser, db: SessionDep) -> list[InvitationPublic]:
    """The therapist's unused, unexpired codes."""
    _require(user, Role.THERAPIST)
    return [_invitation(i) for i in service.list_invitations(db, user)]


def _person(u: User) -> PersonPublic:
    return PersonPublic(user_id=u.user_id, name=u.name, email=u.email)


@router.post(
    "/links/accept",
    response_model=LinkPublic,
    operation_id="accept_link_invitation",
    tags=["links"],
    responses={
        **E401,
        403: _err("only learners accept invitations"),
        404: _err("invitation code not found"),
        409: _err("you are already linked to another therapist; unlink first"),
        410: _err("this invitation has expired or has already been used"),
        **E422,
    },
)
def accept(body: AcceptRequest, user: CurrentUser, db: SessionDep) -> LinkPublic:
    """The learner links to the therapist who made the code (one therapist per learner)."""
    try:
        therapist = service.accept_invitation(db, user, body.code)
    except service.Gone as exc:
        raise HTTPException(status.HTTP_410_GONE, str(exc)) from None
    return LinkPublic(learner=_person(user), therapist=_person(therapist))


@router.get(
    "/links/therapist",
    response_model=LinkPublic,
    operation_id="get_my_therapist",
    tags=["links"],
    responses={**E401, 403: _err("only learners have a therapist")},
)
def my_therapist(user: CurrentUser, db: SessionDep) -> LinkPublic:
    _require(user, Role.LEARNER)
    therapist = db.get(User, user.therapist_id) if user.therapist_id else None
    return LinkPublic(learner=_person(user), therapist=_person(therapist) if therapist else None)


@router.delete(
    "/links/{learner_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="unlink",
    tags=["links"],
    responses={**E401, 404: _err("learner not found, or not linked")},
)
def unlink(learner_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> Response:
    """Either side ends the link: the learner (their own id), their therapist, or an admin."""
    service.unlink(db, user, learner_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ------------------------------------------------------------------------------------------------
# reviews
# ------------------------------------------------------------------------------------------------
def _review(review: TherapistReview, names: dict[uuid.UUID, str], history: list[Any] | None) -> ReviewPublic:
    return ReviewPublic(
        review_id=review.review_id,
        task_id=review.task_id,
        therapist_id=review.therapist_id,
        therapist_name=names.get(review.therapist_id),
        characters=review.characters,
        comment=review.comment,
        version=review.version,
        created_at=review.created_at,
        updated_at=review.updated_at,
        history=None
        if history is None
        else [
            ReviewRevision(
                version=h.version,
                characters=h.characters,
                comment=h.comment,
                created_at=h.created_at,
                **{f: getattr(h, f) for f in SCORE_FIELDS},
            )
            for h in history
        ],
        **{f: getattr(review, f) for f in SCORE_FIELDS},
    )


@router.put(
    "/tasks/analysis/{task_id}/review",
    response_model=ReviewPublic,
    operation_id="save_review",
    tags=["reviews"],
    responses={
        201: {"model": ReviewPublic, "description": "the first review of this task by this therapist"},
        **E401,
        403: _err("only the learner's linked therapist may review this analysis"),
        **E404_TASK,
        **E422,
    },
)
def put_review(task_id: uuid.UUID, body: ReviewRequest, user: CurrentUser, db: SessionDep) -> JSONResponse:
    """The linked therapist's own scores (0..100, any of the four), per-character marks and a
    comment. Saving again edits the review; every version is kept (``GET ...?history=true``)."""
    fields = body.model_dump()
    if fields.get("characters") is not None:
        fields["characters"] = [dict(c) for c in fields["characters"]]
    review, created = service.save_review(db, user, task_id, fields)
    out = _review(review, {user.user_id: user.name}, None)
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


@router.get(
    "/tasks/analysis/{task_id}/review",
    response_model=TaskReviews,
    operation_id="get_reviews",
    tags=["reviews"],
    responses={**E401, **E404_TASK},
)
def get_review(
    task_id: uuid.UUID,
    user: CurrentUser,
    db: SessionDep,
    history: Annotated[bool, Query(description="include every saved version")] = False,
) -> TaskReviews:
    """The engine's scores and the therapists' reviews of one analysis, newest review first."""
    from sqlmodel import select

    from vocalborn.tasks.models import AIAnalysisResult

    task, reviews = service.reviews_of(db, user, task_id)
    record_access(db, user, task.user_id, "reviews", task.task_id)
    result = db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == task.task_id)).first()
    names = {u.user_id: u.name for u in (db.get(User, r.therapist_id) for r in reviews) if u is not None}
    revs = service.revisions(db, [r.review_id for r in reviews]) if history else {}
    return TaskReviews(
        task_id=task.task_id,
        engine=Scores(**{f: getattr(result, f) for f in SCORE_FIELDS}) if result else None,
        reviews=[_review(r, names, revs.get(r.review_id, []) if history else None) for r in reviews],
    )


EXPORT_COLUMNS = [
    "task_id",
    "practice_record_id",
    "sentence_id",
    "learner_id",
    "therapist_id",
    "review_version",
    "reviewed_at",
    "analysis_model_version",
    *[f"{who}_{f}" for f in SCORE_FIELDS for who in ("engine", "therapist")],
    "therapist_deviating_characters",
    "comment",
]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    # A spreadsheet must not run a comment as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


@router.get(
    "/reviews/export",
    operation_id="export_reviews",
    tags=["reviews"],
    responses={
        200: {"content": {"text/csv": {}}, "description": "one row per review, engine scores beside therapist scores"},
        **E401,
        **E403_ROLE,
        **E422,
    },
)
def export_reviews(
    _: AdminUser, db: SessionDep, format: Annotated[Literal["csv"], Query()] = "csv"
) -> StreamingResponse:
    """Calibration data for the engine: every therapist review next to the engine's scores of
    the same recording (admins only)."""

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(EXPORT_COLUMNS)
        for row in service.export_rows(db):
            writer.writerow([_cell(row.get(c)) for c in EXPORT_COLUMNS])
            if buf.tell() > 65536:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="reviews.csv"'},
    )


# ------------------------------------------------------------------------------------------------
# practice sets
# ------------------------------------------------------------------------------------------------
@router.get(
    "/learners/{user_id}/assignments",
    response_model=list[AssignmentPublic],
    operation_id="list_assignments",
    tags=["assignments"],
    responses={**E401, **E404_LEARNER},
)
def list_assignments(user_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> list[AssignmentPublic]:
    """The sentences assigned to a learner, each with the learner's attempts, best and last score."""
    assignments = [AssignmentPublic.model_validate(a) for a in service.assignments(db, user, user_id)]
    record_access(db, user, user_id, "assignments")
    return assignments


@router.post(
    "/learners/{user_id}/assignments",
    status_code=status.HTTP_201_CREATED,
    response_model=AssignmentPublic,
    operation_id="add_assignment",
    tags=["assignments"],
    responses={
        200: {"model": AssignmentPublic, "description": "already assigned"},
        **E401,
        403: _err("this needs the role admin or therapist"),
        404: _err("learner or sentence not found"),
        **E422,
    },
)
def add_assignment(
    user_id: uuid.UUID, body: AssignmentCreate, user: CurrentUser, db: SessionDep, request: Request
) -> JSONResponse:
    """The linked therapist (or an admin) adds a sentence to the learner's practice set."""
    a, created = service.add_assignment(db, user, user_id, body.sentence_id)
    item = next(x for x in service.assignments(db, user, user_id) if x["assignment_id"] == a.assignment_id)
    return JSONResponse(
        AssignmentPublic.model_validate(item).model_dump(mode="json"), status_code=201 if created else 200
    )


@router.delete(
    "/learners/{user_id}/assignments/{sentence_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="remove_assignment",
    tags=["assignments"],
    responses={**E401, 403: _err("this needs the role admin or therapist"), 404: _err("not assigned")},
)
def remove_assignment(user_id: uuid.UUID, sentence_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> Response:
    service.remove_assignment(db, user, user_id, sentence_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

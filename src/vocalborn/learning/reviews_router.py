"""HTTP for therapists' reviews of analyses and their export (included by ``router``)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, StreamingResponse

from vocalborn.auth.dependencies import AdminUser, CurrentUser, SessionDep
from vocalborn.auth.models import User
from vocalborn.learning import reviews as review_service
from vocalborn.learning.http import E401, E403_ROLE, E404_TASK, E422, err
from vocalborn.learning.models import SCORE_FIELDS, TherapistReview
from vocalborn.learning.schemas import (
    ReviewPublic,
    ReviewRequest,
    ReviewRevision,
    Scores,
    TaskReviews,
)
from vocalborn.security.access import record_access
from vocalborn.tasks.models import AIAnalysisResult

router = APIRouter()


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
        403: err("only the learner's linked therapist may review this analysis"),
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
    review, created = review_service.save_review(db, user, task_id, fields)
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

    task, reviews = review_service.reviews_of(db, user, task_id)
    record_access(db, user, task.user_id, "reviews", task.task_id)
    result = db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == task.task_id)).first()
    names = {u.user_id: u.name for u in (db.get(User, r.therapist_id) for r in reviews) if u is not None}
    revs = review_service.revisions(db, [r.review_id for r in reviews]) if history else {}
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
    "engine_fallback",  # the local engine scored it while the remote service was down (issue #27)
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
    admin: AdminUser, db: SessionDep, format: Annotated[Literal["csv"], Query()] = "csv"
) -> StreamingResponse:
    """Calibration data for the engine: every therapist review next to the engine's scores of
    the same recording (admins only). Each learner in it finds the read in their access log."""
    found = list(review_service.export_rows(db))
    for learner_id in sorted({row["learner_id"] for row in found if row.get("learner_id")}, key=str):
        record_access(db, admin, learner_id, "reviews_export")

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(EXPORT_COLUMNS)
        for row in found:
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

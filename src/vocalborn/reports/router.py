"""HTTP for the clinical report (issue #26): ``GET /api/v1/learners/{user_id}/report``."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response

from vocalborn.auth.dependencies import CurrentUser, SessionDep
from vocalborn.auth.models import Role
from vocalborn.i18n import request_language
from vocalborn.learning.access import learner_for
from vocalborn.learning.http import E401, E404_LEARNER, E422, err
from vocalborn.reports import data
from vocalborn.reports.csvfile import render_csv
from vocalborn.security.access import record_access
from vocalborn.sqltypes import utcnow

router = APIRouter(prefix="/api/v1")

DEFAULT_WEEKS = 12


@router.get(
    "/learners/{user_id}/report",
    operation_id="get_learner_report",
    tags=["progress"],
    responses={
        200: {
            "content": {"application/pdf": {}, "text/csv": {}},
            "description": "the report for the range, as a download",
        },
        **E401,
        403: err("the report is for the learner and their linked therapist"),
        **E404_LEARNER,
        **E422,
    },
)
def get_report(
    user_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    format: Annotated[Literal["pdf", "csv"], Query(description="pdf (for people) or csv (for spreadsheets)")] = "pdf",
    first_day: Annotated[
        date | None, Query(alias="from", description="first day (UTC), YYYY-MM-DD; default 12 weeks before `to`")
    ] = None,
    last_day: Annotated[date | None, Query(alias="to", description="last day (UTC), included; default today")] = None,
) -> Response:
    """A clinical report of one learner over a date range: attempts, minutes and dose met per
    week, score trends on a date axis, per-character and tone errors over time (a confusion
    matrix of expected and heard tones), and the therapists' reviews. Only attempts that count are
    counted. For the learner and their linked therapist (anyone else: 404; an admin: 403). The
    therapist's download is written to the learner's access log."""
    learner = learner_for(db, user, user_id)  # 404 for anyone who may not see the learner
    if user.role == Role.ADMIN and user.user_id != learner.user_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the report is for the learner and their linked therapist")
    last = last_day or utcnow().date()
    first = first_day or last - timedelta(weeks=DEFAULT_WEEKS) + timedelta(days=1)
    if first > last:
        raise HTTPException(422, "from: the first day is after the last day (to)")
    if (last - first).days >= data.MAX_RANGE_DAYS:
        raise HTTPException(422, f"to: a report covers at most {data.MAX_RANGE_DAYS} days")
    report = data.gather(db, user, learner, first, last)
    lang = request_language(request)
    name = f"vocalborn-report-{first.isoformat()}-{last.isoformat()}"
    if format == "csv":
        body, media_type = render_csv(report).encode("utf-8-sig"), "text/csv; charset=utf-8"
    else:
        from vocalborn.reports.pdf import render_pdf  # reason: reportlab, only for a PDF (see its module)

        body, media_type = render_pdf(report, lang), "application/pdf"
    record_access(db, user, learner.user_id, "report", f"{format}:{first.isoformat()}..{last.isoformat()}")
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}.{format}"', "Cache-Control": "no-store"},
    )

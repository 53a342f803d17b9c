from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.types import Receive, Scope

from vocalborn.auth.dependencies import (
    CurrentUser,
    SessionDep,
    fast_subject,
    oauth2_scheme,
    token_subject,
    user_from_token,
)
from vocalborn.auth.models import Role
from vocalborn.db import open_session
from vocalborn.errors import error_responses
from vocalborn.i18n import (
    explicit_language,
    localized_report,
    request_language,
    step_label,
)
from vocalborn.practice.counting import reason_text
from vocalborn.security.access import record_access
from vocalborn.security.ratelimit import limit_submits_async
from vocalborn.tasks import service
from vocalborn.tasks.api import task_status
from vocalborn.tasks.schemas import (
    SessionTasksResponse,
    SubmitRequest,
    SubmitResponse,
    TaskEventResponse,
    TaskResultResponse,
    TaskStatusResponse,
)
from vocalborn.tasks.states import TaskStatus
from vocalborn.tasks.submission import fastpath, hotroute, ordinary
from vocalborn.tasks.worker import estimates

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/tasks/analysis", tags=["tasks"])


async def _hot_submit(scope: Scope, receive: Receive) -> hotroute.Outcome:
    """The common submit without FastAPI's request handling (``hotroute``): a valid JSON body,
    a bearer token, no Idempotency-Key, and a submit the fast path writes. Anything else (and a
    submit the fast path leaves) goes to ``submit_analysis`` with the same body."""
    token = hotroute.bearer_token(scope)
    if token is None or hotroute.header(scope, b"idempotency-key") is not None:
        return None, receive
    raw, receive = await hotroute.read_json_body(scope, receive)
    if raw is None:
        return None, receive
    try:
        body = SubmitRequest.model_validate(raw)  # as FastAPI validates the parsed body
    except ValidationError:  # the ordinary handler says what is wrong
        return None, receive
    user_id = fast_subject(token)
    if user_id is None:  # an invalid token, or a session not checked lately: the ordinary handler
        return None, receive
    await limit_submits_async(user_id)  # a refusal is not counted, and raises the 429 here
    state = scope.setdefault("state", {})
    done = await _fast_submit(user_id, body, state.get("request_id"))
    if done is None:
        state[_COUNTED_AND_DECLINED] = True  # not counted twice, not written twice
        return None, receive
    return done, receive


_COUNTED_AND_DECLINED = "vb_submit_counted_and_declined"


async def _fast_submit(user_id: uuid.UUID, body: SubmitRequest, request_id: str | None) -> Response | None:
    done = await fastpath.submit(
        user_id, body.practice_record_id, body.parameters.model_dump(), reanalyse=body.reanalyse, request_id=request_id
    )
    if done is None:
        return None
    position = await fastpath.WAITING.position()
    cap = await task_status.current_capacity()
    eta = estimates.estimate_from(cap, TaskStatus.PENDING, position, None, None, done.audio_seconds)
    return _submitted(done.task_id, str(done.task_id), TaskStatus.PENDING, eta, position, done.record_id, True)


async def submit_analysis(
    body: SubmitRequest,
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=r"^[\x21-\x7e]{1,255}$",
            description="the same key with the same body within 24 h returns the same task (200); "
            "with a different body it is refused (422)",
        ),
    ] = None,
) -> Response:
    user_id = token_subject(token)
    request_id = getattr(request.state, "request_id", None)
    params = body.parameters.model_dump()
    if not getattr(request.state, _COUNTED_AND_DECLINED, False):
        await limit_submits_async(user_id)
        if idempotency_key is None and fast_subject(token) is not None:
            done = await _fast_submit(user_id, body, request_id)
            if done is not None:  # written and published
                return done
    fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()
    return await run_in_threadpool(_submit_in_session, token, body, params, request_id, idempotency_key, fingerprint)


router.add_api_route(
    "/submit",
    submit_analysis,
    methods=["POST"],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SubmitResponse,
    operation_id="submit_analysis",
    responses={
        200: {
            "model": SubmitResponse,
            "description": "an existing task: the one of this Idempotency-Key, the record's active task, "
            "or its latest successful analysis (without reanalyse)",
        },
        **error_responses(401, 403, 404, 409, 413, 422, 429, 503),
    },
    route_class_override=hotroute.hot_route(_hot_submit),
)


def _submitted(
    task_id: uuid.UUID,
    celery_task_id: str,
    task_status: str,
    eta: datetime | None,
    position: int | None,
    record_id: uuid.UUID,
    created: bool,
) -> Response:
    response = SubmitResponse(
        task_id=task_id,
        celery_task_id=celery_task_id,
        status=task_status,
        estimated_completion_time=eta,
        queue_position=position,
        practice_record_id=record_id,
        created=created,
    )
    return Response(  # the bytes JSONResponse would write, from pydantic's encoder in one step
        response.model_dump_json(),
        status_code=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        headers={"Location": f"/api/v1/tasks/analysis/{task_id}/status"},
        media_type="application/json",
    )


def _submit_in_session(
    token: str | None,
    body: SubmitRequest,
    params: dict[str, Any],
    request_id: str | None,
    idempotency_key: str | None,
    fingerprint: str,
) -> Response:
    """Every case the fast path leaves: an Idempotency-Key, an existing task, someone else's
    record, a limit, a missing recording, SQLite. The rules and their errors live here."""
    with open_session() as db:
        user = user_from_token(db, token)
        outcome = ordinary.submit_analysis(
            db,
            user,
            body.practice_record_id,
            params,
            request_id=request_id,
            reanalyse=body.reanalyse,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        task = outcome.task
        position = estimates.queue_position(db, task)
        eta = estimates.estimate_completion(db, task, position)
        return _submitted(
            task.task_id, task.celery_task_id, task.status, eta, position, task.practice_record_id, outcome.created
        )


router.add_api_route(
    "/{task_id}/status",
    task_status.get_status,
    methods=["GET"],
    response_model=TaskStatusResponse,
    operation_id="get_task_status",
    route_class_override=hotroute.hot_route(task_status.hot_status),
)


@router.get(
    "/{task_id}/result",
    response_model=TaskResultResponse,
    operation_id="get_task_result",
    responses=error_responses(404, 409),
)
def get_result(
    task_id: uuid.UUID,
    user: CurrentUser,
    db: SessionDep,
    request: Request,
    lang: Annotated[
        Literal["en", "zh-TW"] | None,
        Query(description="language of the suggestions and error messages (default: Accept-Language)"),
    ] = None,
) -> TaskResultResponse:
    """The scores; suggestions in the caller's language (``lang`` or Accept-Language) when the
    engine wrote that language, otherwise as stored."""
    task, result = service.get_result_for(db, task_id, user)  # NotReady: 409 with the reason
    record_access(db, user, task.user_id, "task_result", task.task_id)
    suggestions, areas = localized_report(
        result.detailed_analysis, explicit_language(request), result.suggestions, result.improvement_areas
    )
    return TaskResultResponse(
        task_id=task.task_id,
        result_id=result.result_id,
        overall_score=result.overall_score,
        pronunciation_accuracy=result.pronunciation_accuracy,
        fluency_score=result.fluency_score,
        rhythm_score=result.rhythm_score,
        completeness_score=result.completeness_score,
        counted=result.counted,
        not_counted_reason=result.not_counted_reason,
        not_counted_text=reason_text(result.not_counted_reason, request_language(request)),
        detailed_analysis=result.detailed_analysis,
        sentence_analyses=result.sentence_analyses,
        suggestions=suggestions,
        improvement_areas=areas,
        analysis_model_version=result.analysis_model_version,
        engine_fallback=result.engine_fallback,
        processing_time_seconds=result.processing_time_seconds,
        completed_at=task.completed_at,
    )


@router.get("/{task_id}/events", response_model=list[TaskEventResponse], operation_id="get_task_events")
def get_events(
    task_id: uuid.UUID,
    user: CurrentUser,
    db: SessionDep,
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62, description="only events with a larger event_id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> list[TaskEventResponse]:
    task = service.get_task_for(db, task_id, user)
    record_access(db, user, task.user_id, "task_events", task.task_id)
    admin = user.role == Role.ADMIN
    lang = explicit_language(request)
    return [
        TaskEventResponse(
            event_id=e.event_id or 0,
            task_id=e.task_id,
            event_type=e.event_type,
            status=e.status,
            progress=e.progress,
            current_step=step_label(e.current_step, lang),
            attempt=e.attempt,
            worker_name=e.worker_name if admin else None,
            message=e.message,
            timestamp=e.created_at,
        )
        for e in service.list_events(db, task, after, limit)
    ]


@router.get("/session/{session_id}/status", response_model=SessionTasksResponse, operation_id="get_session_tasks")
def get_session_status(
    session_id: uuid.UUID, user: CurrentUser, db: SessionDep, request: Request
) -> SessionTasksResponse:
    tasks = service.list_session_tasks(db, session_id, user)
    if tasks:
        record_access(db, user, tasks[0].user_id, "session_tasks", session_id)
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.status] = counts.get(t.status, 0) + 1
    return SessionTasksResponse(
        practice_session_id=session_id,
        counts=counts,
        tasks=[task_status.status_view(db, t, user, explicit_language(request)) for t in tasks],
    )


@router.delete(
    "/{task_id}",
    response_model=TaskStatusResponse,
    operation_id="cancel_task",
    responses=error_responses(403, 404, 409),
)
def cancel_task(task_id: uuid.UUID, user: CurrentUser, db: SessionDep, request: Request) -> TaskStatusResponse:
    """Learners cancel their own queued or running analysis (admins any)."""
    task = service.cancel_task(db, service.get_task_for(db, task_id, user), user)
    return task_status.status_view(db, task, user, explicit_language(request))

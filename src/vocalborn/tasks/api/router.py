from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.types import Receive, Scope

from vocalborn.analysis.types import TOTAL_STEPS
from vocalborn.auth.dependencies import (
    CurrentUser,
    SessionDep,
    fast_subject,
    oauth2_scheme,
    token_subject,
    user_from_token,
)
from vocalborn.auth.models import Role, User
from vocalborn.db import open_session
from vocalborn.errors import error_responses
from vocalborn.i18n import (
    Language,
    explicit_language,
    localized_report,
    request_language,
    scope_language,
    step_label,
    translate,
)
from vocalborn.practice.counting import reason_text
from vocalborn.security.access import record_access
from vocalborn.security.ratelimit import limit_submits_async
from vocalborn.tasks import service
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.schemas import (
    SessionTasksResponse,
    SubmitRequest,
    SubmitResponse,
    TaskEventResponse,
    TaskResultResponse,
    TaskStatusResponse,
)
from vocalborn.tasks.states import ACTIVE_STATUSES, TaskStatus
from vocalborn.tasks.submission import fastpath, hotroute, ordinary
from vocalborn.tasks.worker import estimates

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/tasks/analysis", tags=["tasks"])


def status_view(
    db: Session, task: AIAnalysisTask, reader: User | None = None, lang: Language | None = None
) -> TaskStatusResponse:
    """The task's status. ``worker_name`` (a host name and pid) only for admins (reader None:
    the admin API). With a language asked for (``lang``), the step and the error in it."""
    position = estimates.queue_position(db, task)
    eta = estimates.estimate_completion(db, task, position) if task.status in ACTIVE_STATUSES else None
    return TaskStatusResponse(
        task_id=task.task_id,
        practice_record_id=task.practice_record_id,
        status=task.status,
        progress=task.progress,
        current_step=step_label(task.current_step, lang),
        total_steps=TOTAL_STEPS,
        started_at=task.started_at,
        completed_at=task.completed_at,
        created_at=task.created_at,
        estimated_remaining_time=estimates.remaining_time(task.status, eta),
        queue_position=position,
        worker_name=task.worker_name if reader is None or reader.role == Role.ADMIN else None,
        attempt=task.attempt,
        retry_count=task.retry_count,
        max_retries=task.max_retries,
        error_message=_error_in(task.error_message, lang),
    )


def _error_in(message: str | None, lang: Language | None) -> str | None:
    return message if message is None or lang is None else translate(message, lang)


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
    cap = await _current_capacity()
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


def _capacity() -> estimates.Capacity:
    with open_session() as db:
        return estimates.capacity(db)


# A capacity older than CAPACITY_TTL is read again, in the background while it is younger than
# this: the submits and polls meanwhile use it. Older (the first, or after a quiet spell), they wait.
CAPACITY_USABLE = 60.0
_capacity_read: asyncio.Task[estimates.Capacity] | None = None  # the last read (in flight, or done)


async def _current_capacity() -> estimates.Capacity:
    """The workers' capacity, read from the database at most every ``estimates.CAPACITY_TTL``
    seconds, one read at a time. The read runs in a thread; while it does, the
    requests use the last capacity (an estimate, like the ETA it feeds), so none of them waits
    for it but the process's first (each request that found the cache stale waited for a read
    of its own: the slowest submits of a run under load, docs/BENCHMARKS.md)."""
    cached = estimates.cached_capacity()
    if cached is not None:
        return cached
    global _capacity_read
    loop = asyncio.get_running_loop()
    reading = _capacity_read
    if reading is None or reading.done() or reading.get_loop() is not loop:  # (a finished test client's loop)
        reading = _capacity_read = loop.create_task(run_in_threadpool(_capacity))
        reading.add_done_callback(_capacity_read_done)
    last = estimates.cached_capacity(CAPACITY_USABLE)
    if last is not None:
        return last
    return await asyncio.shield(reading)


def _capacity_read_done(task: asyncio.Task[estimates.Capacity]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:  # retrieved: the waiters have it
        log.debug("could not read the workers' capacity: %s", exc)


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


async def _hot_status(scope: Scope, receive: Receive) -> hotroute.Outcome:
    """A learner polling their own analysis, without FastAPI's request handling (``hotroute``):
    a canonical task id and a bearer token. Anything else goes to ``get_status``."""
    raw = scope.get("path_params", {}).get("task_id", "")
    token = hotroute.bearer_token(scope)
    if token is None:
        return None, receive
    try:
        task_id = uuid.UUID(raw)
    except ValueError:
        return None, receive
    user_id = fast_subject(token)
    if user_id is None:  # an invalid token, or a session not checked lately: the ordinary handler
        return None, receive
    if str(task_id) != raw:  # upper case, say: validated the ordinary way
        return None, receive
    found = await _fast_status(user_id, task_id, scope_language(scope))
    if found is None:
        scope.setdefault("state", {})[_STATUS_DECLINED] = True  # not read twice
    return found, receive


_STATUS_DECLINED = "vb_status_declined"


async def _fast_status(user_id: uuid.UUID, task_id: uuid.UUID, lang: Language | None) -> JSONResponse | None:
    """The owner's view from ``fastpath.status`` (one indexed read, or memory), or None; the step
    and the error in ``lang`` when the caller asked for one (a dictionary lookup)."""
    row = await fastpath.status(user_id, task_id)
    if row is None:
        return None
    position = int(row["ahead"]) + 1 if row["ahead"] is not None else None
    eta = None
    if row["status"] in ACTIVE_STATUSES:
        eta = estimates.estimate_from(
            await _current_capacity(),
            row["status"],
            position,
            row["started_at"],
            row["completed_at"],
            row["audio_duration_seconds"],
        )
    fields = {k: v for k, v in row.items() if k not in ("ahead", "audio_duration_seconds", "user_id")}
    if lang is not None:
        fields["current_step"] = step_label(fields["current_step"], lang)
        fields["error_message"] = _error_in(fields["error_message"], lang)
    view = TaskStatusResponse(
        **fields,
        total_steps=TOTAL_STEPS,
        estimated_remaining_time=estimates.remaining_time(row["status"], eta),
        queue_position=position,
        worker_name=None,  # the owner's view: host names are for admins
    )
    return JSONResponse(view.model_dump(mode="json"))


async def get_status(
    task_id: uuid.UUID, request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> JSONResponse:
    """A learner polling their own analysis is answered by one indexed read; everyone else
    (therapists, admins: access log, worker names) by the ordinary path."""
    # (The learner's polls mostly never reach this handler: ``_hot_status`` answers them.)
    user_id = token_subject(token)
    lang = explicit_language(request)
    if not getattr(request.state, _STATUS_DECLINED, False) and fast_subject(token) is not None:
        found = await _fast_status(user_id, task_id, lang)
        if found is not None:
            return found
    return await run_in_threadpool(_status_in_session, token, task_id, lang)


router.add_api_route(
    "/{task_id}/status",
    get_status,
    methods=["GET"],
    response_model=TaskStatusResponse,
    operation_id="get_task_status",
    route_class_override=hotroute.hot_route(_hot_status),
)


def _status_in_session(token: str | None, task_id: uuid.UUID, lang: Language | None) -> JSONResponse:
    with open_session() as db:
        user = user_from_token(db, token)
        task = service.get_task_for(db, task_id, user)
        record_access(db, user, task.user_id, "task_status", task.task_id)
        return JSONResponse(status_view(db, task, user, lang).model_dump(mode="json"))


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
        tasks=[status_view(db, t, user, explicit_language(request)) for t in tasks],
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
    return status_view(db, task, user, explicit_language(request))

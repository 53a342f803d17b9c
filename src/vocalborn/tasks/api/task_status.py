"""The status answer, built once (``status_answer``) for the two ways a status is read: the
learner's own poll by one indexed read or from memory (``fastpath.status``, on the hot route
without FastAPI's request handling: ``hot_status``), and everyone else's through the ORM with the
access log (``_status_in_session``). The workers' capacity for the ETA is read in the background
(``current_capacity``)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.types import Receive, Scope

from vocalborn.analysis.types import TOTAL_STEPS
from vocalborn.auth.dependencies import fast_subject, oauth2_scheme, token_subject, user_from_token
from vocalborn.auth.models import Role, User
from vocalborn.db import open_session
from vocalborn.i18n import Language, explicit_language, scope_language, step_label, translate
from vocalborn.kit.refreshing import Refreshing
from vocalborn.security.access import record_access
from vocalborn.tasks import service
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.schemas import TaskStatusResponse
from vocalborn.tasks.states import ACTIVE_STATUSES
from vocalborn.tasks.submission import fastpath, hotroute
from vocalborn.tasks.worker import estimates

log = logging.getLogger(__name__)


def status_answer(
    fields: dict[str, Any], position: int | None, eta: datetime | None, worker_name: str | None, lang: Language | None
) -> TaskStatusResponse:
    """The status answer, from the task's own fields (an ORM task's or the fast read's row), its
    queue position and ETA: the step and the error in ``lang`` when the caller asked for one."""
    return TaskStatusResponse(
        **{k: fields[k] for k in _TASK_FIELDS},
        current_step=step_label(fields["current_step"], lang),
        error_message=_error_in(fields["error_message"], lang),
        total_steps=TOTAL_STEPS,
        estimated_remaining_time=estimates.remaining_time(fields["status"], eta),
        queue_position=position,
        worker_name=worker_name,
    )


_TASK_FIELDS = (
    "task_id",
    "practice_record_id",
    "status",
    "progress",
    "started_at",
    "completed_at",
    "created_at",
    "attempt",
    "retry_count",
    "max_retries",
)


def status_view(
    db: Session, task: AIAnalysisTask, reader: User | None = None, lang: Language | None = None
) -> TaskStatusResponse:
    """The task's status. ``worker_name`` (a host name and pid) only for admins (reader None:
    the admin API). With a language asked for (``lang``), the step and the error in it."""
    position = estimates.queue_position(db, task)
    eta = estimates.estimate_completion(db, task, position) if task.status in ACTIVE_STATUSES else None
    worker_name = task.worker_name if reader is None or reader.role == Role.ADMIN else None
    return status_answer(task.model_dump(), position, eta, worker_name, lang)


def _error_in(message: str | None, lang: Language | None) -> str | None:
    return message if message is None or lang is None else translate(message, lang)


def _capacity() -> estimates.Capacity:
    with open_session() as db:
        return estimates.capacity(db)


class _Capacity(Refreshing[estimates.Capacity]):
    """The workers' capacity, read from the database at most every ``estimates.CAPACITY_TTL``
    seconds, one read at a time, in a thread; while it runs the requests use the last capacity
    (an estimate, like the ETA it feeds), so none of them waits for it but the process's first
    (each request that found the cache stale waited for a read of its own: the slowest submits
    of a run under load, docs/BENCHMARKS.md). Older than ``CAPACITY_USABLE`` (after a quiet
    spell) it is read again before use."""

    what = "the workers' capacity"

    def peek(self, max_age: float) -> estimates.Capacity | None:
        return estimates.cached_capacity(max_age)

    async def read(self) -> estimates.Capacity:
        return await run_in_threadpool(_capacity)


CAPACITY_USABLE = 60.0
CAPACITY = _Capacity(estimates.CAPACITY_TTL, CAPACITY_USABLE)


async def current_capacity() -> estimates.Capacity:
    return await CAPACITY.get()


async def hot_status(scope: Scope, receive: Receive) -> hotroute.Outcome:
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
            await current_capacity(),
            row["status"],
            position,
            row["started_at"],
            row["completed_at"],
            row["audio_duration_seconds"],
        )
    view = status_answer(row, position, eta, None, lang)  # the owner's view: host names are for admins
    return JSONResponse(view.model_dump(mode="json"))


async def get_status(
    task_id: uuid.UUID, request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> JSONResponse:
    """A learner polling their own analysis is answered by one indexed read; everyone else
    (therapists, admins: access log, worker names) by the ordinary path."""
    # (The learner's polls mostly never reach this handler: ``hot_status`` answers them.)
    user_id = token_subject(token)
    lang = explicit_language(request)
    if not getattr(request.state, _STATUS_DECLINED, False) and fast_subject(token) is not None:
        found = await _fast_status(user_id, task_id, lang)
        if found is not None:
            return found
    return await run_in_threadpool(_status_in_session, token, task_id, lang)


def _status_in_session(token: str | None, task_id: uuid.UUID, lang: Language | None) -> JSONResponse:
    with open_session() as db:
        user = user_from_token(db, token)
        task = service.get_task_for(db, task_id, user)
        record_access(db, user, task.user_id, "task_status", task.task_id)
        return JSONResponse(status_view(db, task, user, lang).model_dump(mode="json"))

"""The operator's API: statistics, cancel, retry, cleanup. Admin role only (others get 403)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from vocalborn.auth.dependencies import AdminUser, SessionDep
from vocalborn.errors import NotFound, error_responses
from vocalborn.security.access import record_access
from vocalborn.tasks import service
from vocalborn.tasks.api.task_status import status_view
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.schemas import TaskStatusResponse
from vocalborn.tasks.states import TaskStatus
from vocalborn.tasks.worker import retention
from vocalborn.tasks.worker.stats import task_stats

router = APIRouter(prefix="/api/v1/admin/tasks", tags=["admin"], responses=error_responses(401, 403))


def _task(db: SessionDep, task_id: uuid.UUID) -> AIAnalysisTask:
    task = db.get(AIAnalysisTask, task_id)
    if task is None:
        raise NotFound("task not found")
    return task


@router.get("/stats", operation_id="admin_task_stats")
def stats(_: AdminUser, db: SessionDep) -> dict[str, Any]:
    """Counts by status, queue length, workers online, and for the last 5 min / 1 h / 24 h:
    throughput, failure rate, p50/p95 processing and queue-wait times."""
    return task_stats(db)


@router.get("", response_model=list[TaskStatusResponse], operation_id="admin_list_tasks")
def list_tasks(
    admin: AdminUser,
    db: SessionDep,
    status_filter: Annotated[TaskStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[TaskStatusResponse]:
    tasks = service.list_tasks(db, status_filter.value if status_filter else None, limit, offset)
    for learner_id in dict.fromkeys(t.user_id for t in tasks):  # each learner sees it in their access log
        record_access(db, admin, learner_id, "admin_task_list")
    return [status_view(db, t) for t in tasks]


@router.delete(
    "/{task_id}", response_model=TaskStatusResponse, operation_id="admin_cancel_task", responses=error_responses(409)
)
def cancel(task_id: uuid.UUID, admin: AdminUser, db: SessionDep) -> TaskStatusResponse:
    """Cancel: a queued task never runs; a running one stops at its next step and ends cancelled."""
    task = service.cancel_task(db, _task(db, task_id), admin)
    return status_view(db, task)


@router.post(
    "/{task_id}/retry",
    response_model=TaskStatusResponse,
    operation_id="admin_retry_task",
    responses=error_responses(409),
)
def retry(task_id: uuid.UUID, admin: AdminUser, db: SessionDep) -> TaskStatusResponse:
    """Run a failed or cancelled task again; its history is kept."""
    task = service.retry_task(db, _task(db, task_id), admin)  # the rule is states.py's: 409 otherwise
    return status_view(db, task)


@router.post("/cleanup", operation_id="admin_cleanup")
def cleanup(_: AdminUser) -> dict[str, int]:
    """Run the retention cleanup now and say what it removed."""
    return asdict(retention.cleanup_expired_tasks())

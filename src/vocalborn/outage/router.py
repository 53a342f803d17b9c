"""``POST /api/v1/admin/tasks/retry``: re-queue the failed tasks of a time window (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from vocalborn.auth.dependencies import AdminUser, SessionDep
from vocalborn.errors import error_responses
from vocalborn.outage.bulk_retry import retry_failed

router = APIRouter(prefix="/api/v1/admin/tasks", tags=["admin"], responses=error_responses(401, 403))


class BulkRetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    failed_from: datetime = Field(description="start of the window on the failure time (inclusive), with a time zone")
    failed_to: datetime | None = Field(default=None, description="end of the window (exclusive); default: now")
    reason: str | None = Field(
        default=None,
        max_length=200,
        description="an error class (network, timeout, service, internal, time_limit, input) or words the "
        "failure message contains; default: every failure of the window",
    )
    dry_run: bool = Field(default=True, description="true (the default): only list what would be re-queued")


class BulkRetryResponse(BaseModel):
    dry_run: bool
    failed_from: datetime
    failed_to: datetime
    reason: str | None
    matched: int = Field(description="failed tasks of the window that match the reason")
    task_ids: list[str] = Field(description="their ids, oldest failure first")
    requeued: int = Field(description="how many this call re-queued (0 in a dry run)")
    requeued_ids: list[str]
    skipped: list[dict[str, str]] = Field(description="tasks not re-queued (changed meanwhile), and why")
    truncated: bool = Field(description="the window holds more than one call takes (10 000): call again")


@router.post(
    "/retry",
    response_model=BulkRetryResponse,
    operation_id="admin_bulk_retry_tasks",
    responses=error_responses(422),
)
def bulk_retry(body: BulkRetryRequest, admin: AdminUser, db: SessionDep) -> dict[str, Any]:
    """Re-queue the failed tasks of a time window, by reason; ``dry_run`` (the default) lists them
    first. Idempotent: a re-queued task is no longer failed, so a second call does not queue it again."""
    outcome = retry_failed(db, admin, body.failed_from, body.failed_to, body.reason, body.dry_run)
    return outcome.as_dict()

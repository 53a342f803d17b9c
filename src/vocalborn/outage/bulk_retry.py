"""Re-queue the failed tasks of a time window (``POST /api/v1/admin/tasks/retry``,
``vocalborn tasks retry-failed``): after an outage of the analysis service, the analyses that
gave up during it, in one call instead of one at a time.

- The window is on the failure time (``completed_at`` of a task in ``failure``): ``failed_from``
  inclusive, ``failed_to`` exclusive (default: now).
- ``reason`` narrows it: an error class of ``outage.policy`` (``network``, ``timeout``,
  ``service``, ``internal``, ``time_limit``, ``input``), or else words the failure message
  contains (case-insensitive). None: every failure of the window.
- ``dry_run`` (the API's default) lists what would be re-queued: the count and the task ids.
- Each task is re-queued as the single admin retry does it (``tasks.service.retry_task``: its
  history kept, the transition checked in the database). A task re-queued is no longer failed,
  so a second call (or a concurrent one) does not queue it twice; a task whose record has another
  active analysis meanwhile is skipped and said so.
- Every learner whose tasks the admin listed or re-queued sees it in their access log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from vocalborn.auth.models import User
from vocalborn.errors import Conflict, FieldRejected
from vocalborn.outage.policy import ERROR_CLASSES, classify_message
from vocalborn.security.access import record_access
from vocalborn.sqltypes import utcnow
from vocalborn.tasks import service
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.states import TaskStatus

log = logging.getLogger(__name__)

MAX_TASKS = 10_000  # per call: a larger window is re-queued in several calls (each says if it was cut)


@dataclass
class BulkRetryOutcome:
    dry_run: bool
    failed_from: datetime
    failed_to: datetime
    reason: str | None
    matched: int
    task_ids: list[str]
    requeued: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    truncated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "failed_from": self.failed_from.isoformat(),
            "failed_to": self.failed_to.isoformat(),
            "reason": self.reason,
            "matched": self.matched,
            "task_ids": self.task_ids,
            "requeued": len(self.requeued),
            "requeued_ids": self.requeued,
            "skipped": self.skipped,
            "truncated": self.truncated,
        }


def _matches(reason: str | None, message: str | None) -> bool:
    if reason is None:
        return True
    if reason in ERROR_CLASSES:
        return classify_message(message) == reason
    return reason.lower() in (message or "").lower()


def failed_tasks(
    db: Session, failed_from: datetime, failed_to: datetime, reason: str | None, limit: int = MAX_TASKS
) -> tuple[list[AIAnalysisTask], bool]:
    """The failed tasks of the window (oldest failure first), and whether there were more."""
    stmt = (
        select(AIAnalysisTask)
        .where(AIAnalysisTask.status == TaskStatus.FAILURE.value)
        .where(col(AIAnalysisTask.completed_at) >= failed_from)
        .where(col(AIAnalysisTask.completed_at) < failed_to)
        .order_by(col(AIAnalysisTask.completed_at), col(AIAnalysisTask.task_id))
    )
    found: list[AIAnalysisTask] = []
    for task in db.exec(stmt.execution_options(yield_per=500)):
        if _matches(reason, task.error_message):
            if len(found) == limit:
                return found, True
            found.append(task)
    return found, False


def check_window(failed_from: datetime, failed_to: datetime | None, reason: str | None) -> datetime:
    """The window's end (now when not given); refuses a window that is empty by construction."""
    end = failed_to or utcnow()
    if failed_from.tzinfo is None or end.tzinfo is None:
        raise FieldRejected("failed_from", "failed_from and failed_to need a time zone (e.g. 2026-12-07T10:00:00Z)")
    if failed_from >= end:
        raise FieldRejected("failed_to", "failed_to must be later than failed_from")
    if reason is not None and not reason.strip():
        raise FieldRejected("reason", "reason is blank: leave it out to take every failure of the window")
    return end


def retry_failed(
    db: Session,
    admin: User,
    failed_from: datetime,
    failed_to: datetime | None = None,
    reason: str | None = None,
    dry_run: bool = True,
) -> BulkRetryOutcome:

    reason = reason.strip() if reason is not None else None
    end = check_window(failed_from, failed_to, reason)
    tasks, truncated = failed_tasks(db, failed_from, end, reason)
    ids = [str(t.task_id) for t in tasks]
    learners = list(dict.fromkeys(t.user_id for t in tasks))
    outcome = BulkRetryOutcome(dry_run, failed_from, end, reason, len(tasks), ids, truncated=truncated)
    for learner_id in learners:  # the admin saw (and maybe re-queued) these learners' tasks
        record_access(db, admin, learner_id, "admin_task_bulk_retry")
    if dry_run:
        return outcome
    for task_id in [t.task_id for t in tasks]:
        task = db.get(AIAnalysisTask, task_id)
        if task is None:
            outcome.skipped.append({"task_id": str(task_id), "why": "deleted meanwhile"})
            continue
        db.refresh(task)
        try:
            service.retry_task(db, task, admin)
        except Conflict as exc:
            db.rollback()
            outcome.skipped.append({"task_id": str(task_id), "why": exc.message})
            continue
        outcome.requeued.append(str(task_id))
    log.info(
        "bulk retry by %s: %s failed tasks of %s..%s (reason %s) re-queued, %s skipped",
        admin.email,
        len(outcome.requeued),
        failed_from.isoformat(),
        end.isoformat(),
        reason or "any",
        len(outcome.skipped),
    )
    return outcome

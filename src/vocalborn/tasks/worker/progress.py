"""What keeps a claimed run honest while the engine works: its lease (the heartbeat), its stop
flags (cancel requested, lease lost) and its progress reports.

Cheap at each step boundary: no database read there. The step's progress is published through
one Redis round trip that also reads the attempt's cancel flag (``events.publish_unless_cancelled``);
the heartbeat thread renews the lease and, in the same statement, reads the cancel flag from the
database and notices a lost lease; a stored progress row (at most one per
``PROGRESS_WRITE_INTERVAL``) is written through one session kept for the run. Every write stays
fenced by the attempt, and the final transaction checks the cancel flag again, so a cancelled
run never succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlmodel import Session, col

from vocalborn.analysis.types import STEPS, TOTAL_STEPS
from vocalborn.config import get_settings
from vocalborn.db import get_engine, open_session
from vocalborn.sqltypes import utcnow
from vocalborn.tasks import events, unit_of_work
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.states import EventType, TaskStatus

if TYPE_CHECKING:
    from vocalborn.tasks.worker.claim import Claim

log = logging.getLogger(__name__)

# Progress shown when each of the plan's five steps starts; 100 comes with success.
PROGRESS_AT_STEP = (5, 20, 45, 70, 90)


class Cancelled(Exception):
    """A cancel was requested for this run's attempt."""


class LostLease(Exception):
    """Another attempt owns the task now (the reaper requeued it, an admin resubmitted it, it
    was cancelled by force or erased): this run must write nothing more."""


class RunWatch:
    """The run's lease keeper: every ``interval`` seconds it renews the heartbeat, fenced by the
    attempt, and reads back the cancel flag in the same statement."""

    def __init__(self, claim: Claim, interval: float) -> None:
        self.claim = claim
        self.interval = interval
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{claim.task_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def raise_if_stopped(self) -> None:
        if self.lost.is_set():
            raise LostLease()
        if self.cancelled.is_set():
            raise Cancelled()

    def beat(self) -> None:
        with open_session() as db:
            row = db.execute(
                update(AIAnalysisTask)
                .where(col(AIAnalysisTask.task_id) == self.claim.task_id)
                .where(col(AIAnalysisTask.attempt) == self.claim.attempt)
                .where(col(AIAnalysisTask.status) == TaskStatus.PROCESSING.value)
                .values(heartbeat_at=utcnow())
                .returning(col(AIAnalysisTask.cancel_requested_at))
            ).first()
            db.commit()
        if row is None:
            self.lost.set()
        elif row[0] is not None:
            self.cancelled.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:  # the next beat may get through; the lease is generous
                log.warning("heartbeat for task %s failed: %s", self.claim.task_id, exc)


class ProgressReporter:
    """Called by the engine as each step starts: stops the run if it was cancelled or lost its
    lease, then reports the step (stored at most every PROGRESS_WRITE_INTERVAL, published always)."""

    def __init__(self, claim: Claim, watch: RunWatch) -> None:
        self.claim = claim
        self.watch = watch
        self.settings = get_settings()
        self.last_write = claim.started  # the claim itself stored progress 0 and a heartbeat
        self._db: Session | None = None
        self._task: AIAnalysisTask | None = None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __call__(self, step_number: int, step_key: str) -> None:
        self.watch.raise_if_stopped()
        label = STEPS[step_number - 1][1] if 1 <= step_number <= TOTAL_STEPS else step_key
        progress = PROGRESS_AT_STEP[min(max(step_number, 1), TOTAL_STEPS) - 1]
        claim = self.claim
        if time.monotonic() - self.last_write >= self.settings.progress_write_interval:
            if events.cancel_flagged(str(claim.task_id), claim.attempt):
                raise Cancelled()
            self._store(progress, label)
        else:
            message = events.progress_message(
                task_id=str(claim.task_id),
                progress=progress,
                current_step=label,
                attempt=claim.attempt,
                worker_name=claim.worker_name,
            )
            if events.publish_unless_cancelled(message):
                raise Cancelled()
        if self.settings.analysis_step_delay_seconds > 0:
            time.sleep(self.settings.analysis_step_delay_seconds)

    def _store(self, progress: int, label: str) -> None:
        """Write the step into the task and its event log (one session for the whole run)."""
        if self._db is None:
            self._db = Session(get_engine(), expire_on_commit=False)
        db = self._db
        if self._task is None:
            self._task = db.get(AIAnalysisTask, self.claim.task_id)
        task = self._task
        if task is None or task.attempt != self.claim.attempt:
            db.rollback()
            raise LostLease()
        event = unit_of_work.transition(
            db,
            task,
            EventType.PROGRESS,
            expect_attempt=self.claim.attempt,
            values={"progress": progress, "current_step": label, "heartbeat_at": utcnow()},
            durable=False,  # a progress row lost in a database crash is harmless
        )
        if event is None:
            raise LostLease()
        self.last_write = time.monotonic()

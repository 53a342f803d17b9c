"""The claim: may this delivery run the task? A pure decision, then the write that carries it out.

Delivery is at-least-once: the claim only takes a task that is pending/retry (or processing with
an expired lease, or whose run died in this very worker node), and the write is fenced by the
attempt it read, so two deliveries never both start the task.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import Session, col, select

from vocalborn.config import Settings, get_settings
from vocalborn.db import open_session
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.sqltypes import utcnow
from vocalborn.storage import get_storage
from vocalborn.tasks import unit_of_work
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.states import TERMINAL_STATUSES, EventType, TaskStatus

log = logging.getLogger(__name__)


class Outcome(Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY_SCHEDULED = "retry_scheduled"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


@dataclass
class Claim:
    task_id: uuid.UUID
    attempt: int
    worker_name: str
    params: dict[str, Any]
    reference_path: Path
    attempt_path: Path
    practice_record_id: uuid.UUID
    started: float = field(default_factory=time.monotonic)
    # The learner's earlier pitch profiles, newest first, when the claim read them (the fast
    # claim does, in its statement); None: ``tasks/worker/baseline.py`` reads them itself.
    pitch_profiles: list[Any] | None = None


class TaskRow(Protocol):
    """The fields of the task's row the decision reads."""

    status: str
    attempt: int
    deliveries: int
    heartbeat_at: datetime | None
    cancel_requested_at: datetime | None
    next_attempt_at: datetime | None
    worker_name: str | None


class Action(Enum):
    SKIP = "skip"  # acknowledge and drop this delivery; nothing is written
    CANCEL = "cancel"  # cancelled before it started
    FAIL = "fail"  # too many deliveries: every run of it died
    START = "start"  # claim it (a takeover when it was processing)


@dataclass(frozen=True)
class Decision:
    action: Action
    note: str  # what the log says (and, for FAIL, the task's error message)
    takeover: bool = False


@dataclass(frozen=True)
class ClaimRule:
    """One rule of the claim: its Python check (a decision other than START, or None: the rule
    lets the delivery start the task) beside its SQL predicate over the task's row (holds for a
    row the one-statement claim, ``fastrun.claim``, may start). The SQL may be stricter than the
    check (the fast claim never takes over a processing task): it only declines, and the
    ordinary claim decides."""

    name: str
    check: Callable[[TaskRow, datetime, str, Settings, bool], Decision | None]
    sql: str


def _finished(task: TaskRow, now: datetime, worker_name: str, settings: Settings, died: bool) -> Decision | None:
    status = TaskStatus(task.status)
    if status in TERMINAL_STATUSES:
        return Decision(Action.SKIP, f"is already {status}; duplicate delivery acknowledged")
    return None


def _cancel_requested(
    task: TaskRow, now: datetime, worker_name: str, settings: Settings, died: bool
) -> Decision | None:
    return Decision(Action.CANCEL, "cancelled before it started") if task.cancel_requested_at is not None else None


def _live_lease(task: TaskRow, now: datetime, worker_name: str, settings: Settings, died: bool) -> Decision | None:
    if task.status == TaskStatus.PROCESSING and task.heartbeat_at is not None:
        silent_for = (now - task.heartbeat_at).total_seconds()
        if silent_for < settings.task_lease_seconds and not died:
            # Another run holds a live lease: this is a duplicate (a republish, or a redelivery
            # while it still runs). Drop it at once rather than hold a pool slot; if that run has
            # in fact died, its heartbeat stops and the reaper requeues the task.
            return Decision(Action.SKIP, f"is running elsewhere ({task.worker_name}); duplicate delivery dropped")
    return None


def _not_due(task: TaskRow, now: datetime, worker_name: str, settings: Settings, died: bool) -> Decision | None:
    if task.status == TaskStatus.RETRY and task.next_attempt_at and task.next_attempt_at > now + timedelta(seconds=1):
        return Decision(Action.SKIP, f"is not due until {task.next_attempt_at}; early delivery dropped")
    return None


def _too_many_deliveries(
    task: TaskRow, now: datetime, worker_name: str, settings: Settings, died: bool
) -> Decision | None:
    if task.deliveries + 1 > settings.task_max_deliveries:
        return Decision(
            Action.FAIL,
            f"gave up after {task.deliveries} deliveries: the worker stopped (crash, out of memory or "
            "time limit) every time it ran this analysis",
        )
    return None


# In the order they are checked; ``fastrun`` builds its WHERE from the SQL halves
# (``tests/tasks/test_claim_rules.py`` shows each rule on both paths).
CLAIM_RULES: tuple[ClaimRule, ...] = (
    ClaimRule("finished", _finished, "status <> ALL(%(terminal)s)"),
    ClaimRule("cancel_requested", _cancel_requested, "cancel_requested_at IS NULL"),
    # the fast claim takes no processing task at all: a takeover is the ordinary claim's
    ClaimRule("live_lease", _live_lease, "status <> %(processing)s"),
    ClaimRule("not_due", _not_due, "(status <> %(retry)s OR next_attempt_at IS NULL OR next_attempt_at <= %(due)s)"),
    ClaimRule("too_many_deliveries", _too_many_deliveries, "deliveries + 1 <= %(max_deliveries)s"),
)


def claim_sql_predicate(rules: tuple[ClaimRule, ...] = CLAIM_RULES) -> str:
    """The fast claim's WHERE beyond the task id: every rule's SQL half."""
    return " AND ".join(rule.sql for rule in rules)


def decide_claim(
    task: TaskRow | None, now: datetime, worker_name: str, settings: Settings, previous_run_died: bool = False
) -> Decision:
    """What to do with a delivery of ``task``, from its row alone: the first rule of
    ``CLAIM_RULES`` that decides, else START. ``previous_run_died``: the run holding the lease was
    a process of this worker node that no longer exists."""
    if task is None:
        return Decision(Action.SKIP, "is unknown: its message is acknowledged and dropped")
    for rule in CLAIM_RULES:
        decided = rule.check(task, now, worker_name, settings, previous_run_died)
        if decided is not None:
            return decided
    return Decision(Action.START, f"claimed by {worker_name}", takeover=task.status == TaskStatus.PROCESSING)


def run_died_here(previous: str | None, me: str) -> bool:
    """True when the run holding the lease was a process of this very worker node that no longer
    exists: a pool child killed mid-task (OOM, SIGKILL, hard time limit), whose message Celery
    hands straight back. Its heartbeat still looks fresh, but waiting TASK_LEASE_SECONDS for the
    reaper would gain nothing. Anything less certain (another node, a live or foreign pid) keeps
    the lease."""
    if not previous:
        return False
    node, _, pid = previous.rpartition("/")
    if node != me.rpartition("/")[0] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def claim_ordinary(task_id: uuid.UUID, worker_name: str) -> Claim | Outcome:
    """Decide (``decide_claim``), then carry the decision out in one transaction: every case the
    one-statement claim (``fastrun.claim``, tried first by ``runner.claim_task``) leaves."""
    settings = get_settings()
    with open_session() as db:
        # The task with its record and sentence, in one round trip (the start needs all three).
        row = db.exec(
            select(AIAnalysisTask, PracticeRecord, Sentence)
            .outerjoin(PracticeRecord, col(PracticeRecord.practice_record_id) == AIAnalysisTask.practice_record_id)
            .outerjoin(Sentence, col(Sentence.sentence_id) == PracticeRecord.sentence_id)
            .where(AIAnalysisTask.task_id == task_id)
        ).first()
        task, record, sentence = row if row is not None else (None, None, None)
        died = (
            task is not None and task.status == TaskStatus.PROCESSING and run_died_here(task.worker_name, worker_name)
        )
        now = utcnow()
        decision = decide_claim(task, now, worker_name, settings, previous_run_died=died)
        if task is None or decision.action is Action.SKIP:
            log.info("task %s %s", task_id, decision.note)
            return Outcome.SKIPPED
        if decision.action is Action.CANCEL:
            done = unit_of_work.transition(
                db, task, EventType.CANCELLED, values={"completed_at": now}, message=decision.note
            )
            return Outcome.CANCELLED if done else Outcome.SKIPPED
        if decision.action is Action.FAIL:
            done = unit_of_work.transition(
                db,
                task,
                EventType.FAILED,
                expect_attempt=task.attempt,
                values={"completed_at": now, "error_message": decision.note},
                message="too many deliveries",
            )
            return Outcome.FAILED if done else Outcome.SKIPPED
        return _start(db, (task, record, sentence), decision, now, worker_name)


def _start(
    db: Session,
    rows: tuple[AIAnalysisTask, PracticeRecord | None, Sentence | None],
    decision: Decision,
    now: datetime,
    worker_name: str,
) -> Claim | Outcome:
    task, record, sentence = rows
    attempt = task.attempt + 1
    previous = task.worker_name
    event = unit_of_work.transition(
        db,
        task,
        EventType.STARTED,
        expect_attempt=task.attempt,
        worker_name=worker_name,
        values={
            "attempt": attempt,
            "deliveries": task.deliveries + 1,
            "worker_name": worker_name,
            "started_at": now,
            "heartbeat_at": now,
            "progress": 0,
            "current_step": None,
            "next_attempt_at": None,
        },
        message=f"took over from {previous}, whose lease expired or whose process died" if decision.takeover else None,
        durable=False,  # lost in a database crash, it is pending again: the run's later writes are fenced
    )
    if event is None:
        log.info("task %s was claimed by someone else first", task.task_id)
        return Outcome.SKIPPED
    storage = get_storage()
    log.info("task %s claimed by %s (attempt %s)", task.task_id, worker_name, attempt)
    return Claim(
        task_id=task.task_id,
        attempt=attempt,
        worker_name=worker_name,
        # The sentence text lets the engine judge every character (issue #9).
        params={**(task.task_params or {}), **({"text": sentence.text} if sentence else {})},
        reference_path=storage.path(sentence.reference_audio_key) if sentence else Path("/nonexistent"),
        attempt_path=storage.path(record.audio_key) if record else Path("/nonexistent"),
        practice_record_id=task.practice_record_id,
    )

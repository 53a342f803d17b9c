"""What a worker does with one analysis message: claim, analyse, record the outcome.

Delivery is at-least-once, so everything here expects to run twice: the claim only takes a task
that is pending/retry (or processing with an expired lease), every later write is fenced by the
attempt number it claimed, and the result row is unique per task.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from vocalborn.analysis.types import (
    STEPS,
    TOTAL_STEPS,
    AnalysisEngine,
    AnalysisInputError,
    AnalysisReport,
)
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.logs import log_context
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.sqltypes import utcnow
from vocalborn.storage import get_storage
from vocalborn.tasks import service
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.states import TERMINAL_STATUSES, EventType, TaskStatus

log = logging.getLogger(__name__)

# Progress shown when each of the plan's five steps starts; 100 comes with success.
PROGRESS_AT_STEP = (5, 20, 45, 70, 90)


class Outcome(Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY_SCHEDULED = "retry_scheduled"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


class PermanentError(Exception):
    """Retrying cannot help (missing reference, unusable audio)."""


class _Cancelled(Exception):
    pass


class _LostLease(Exception):
    pass


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


@lru_cache(maxsize=1)
def analysis_engine() -> AnalysisEngine:
    from vocalborn.analysis.engine import get_engine

    settings = get_settings()
    if settings.ai_engine == "remote":
        if not settings.ai_service_url:
            raise RuntimeError("AI_ENGINE=remote needs AI_SERVICE_URL")
        return get_engine(
            "remote",
            url=settings.ai_service_url,
            api_key=settings.ai_service_api_key,
            timeout=settings.ai_service_timeout,
        )
    return get_engine("local")


# How long a worker keeps retrying a claim or an outcome write while the database is unavailable
# (each try fails within DATABASE_STATEMENT_TIMEOUT). After that the run gives up: the task's row
# is still pending (Beat republishes it) or processing with a silent heartbeat (the reaper
# requeues it), so nothing is lost; the message is acknowledged.
DB_RETRY_WINDOW_SECONDS = 30.0


def _database_unavailable(exc: BaseException) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout)


def with_db_retries(fn: Any, what: str, window: float | None = None) -> Any:
    """Run ``fn`` (one database transaction), retrying while the database is unavailable, with a
    capped exponential backoff, for at most ``window`` seconds; then re-raise."""
    window = DB_RETRY_WINDOW_SECONDS if window is None else window
    deadline = time.monotonic() + window
    delay = 0.25
    while True:
        try:
            return fn()
        except Exception as exc:
            if not _database_unavailable(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("%s: the database is unavailable (%s); retrying in %.2f s", what, type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def run_analysis(task_id: str, worker_name: str) -> Outcome:
    try:
        return _run_analysis(task_id, worker_name)
    except Exception as exc:
        if not _database_unavailable(exc):
            raise
        log.error(
            "task %s: the database stayed unavailable for %.0f s; this delivery gives up and the task "
            "is left to the republisher / reaper",
            task_id,
            DB_RETRY_WINDOW_SECONDS,
        )
        return Outcome.SKIPPED


def _run_analysis(task_id: str, worker_name: str) -> Outcome:
    settings = get_settings()
    claim = with_db_retries(lambda: claim_task(uuid.UUID(task_id), worker_name), f"claim of task {task_id}")
    if isinstance(claim, Outcome):
        return claim
    with log_context(task_id=task_id, practice_record_id=str(claim.practice_record_id), attempt=claim.attempt):
        heartbeat = _Heartbeat(claim, settings.task_heartbeat_seconds)
        heartbeat.start()
        try:
            report = _analyse(claim)
            check_report(report)
            return with_db_retries(lambda: _complete(claim, report), f"result of task {task_id}")
        except _Cancelled:
            return with_db_retries(lambda: _finish_cancelled(claim), f"cancel of task {task_id}")
        except _LostLease:
            log.warning("task %s was taken over by another attempt; this run stops", task_id)
            return Outcome.SKIPPED
        except (AnalysisInputError, PermanentError) as exc:
            reason = str(exc)
            return with_db_retries(lambda: _fail(claim, reason), f"failure of task {task_id}")
        except SoftTimeLimitExceeded as exc:
            # Too slow once is too slow every time (the same input, the same engine): a
            # classified, permanent failure, not three more runs of TASK_SOFT_TIME_LIMIT each.
            reason = _describe(exc)
            return with_db_retries(lambda: _fail(claim, reason), f"failure of task {task_id}")
        except Exception as exc:  # transient by default: DB, storage, remote engine
            log.warning(
                "attempt %s of task %s hit %s: %s",
                claim.attempt,
                task_id,
                type(exc).__name__,
                exc,
                exc_info=True,
            )
            reason = _describe(exc)
            return with_db_retries(lambda: _retry_or_fail(claim, reason), f"retry of task {task_id}")
        finally:
            heartbeat.stop()


def _describe(exc: Exception) -> str:
    """What learners and therapists read (status, events, WebSocket): the kind of problem, never
    the raw text of a driver error, which can carry SQL, parameters and host names. The full
    exception is in the worker's log."""
    import redis
    from celery.exceptions import SoftTimeLimitExceeded
    from sqlalchemy.exc import SQLAlchemyError

    from vocalborn.analysis.types import TransientAnalysisError

    if isinstance(exc, SoftTimeLimitExceeded):
        return f"the analysis took longer than {get_settings().task_soft_time_limit} s"
    if isinstance(exc, TransientAnalysisError):
        return str(exc)  # our own wording (remote engine status, timeout, open circuit)
    if isinstance(exc, SQLAlchemyError):
        return "the database was unavailable for a moment"
    if isinstance(exc, redis.RedisError):
        return "the message bus was unavailable for a moment"
    if isinstance(exc, OSError):
        return "the recording storage was unavailable for a moment"
    return f"an unexpected error on our side ({type(exc).__name__})"


# --------------------------------------------------------------------------------------------
def _run_died_here(previous: str | None, me: str) -> bool:
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


def claim_task(task_id: uuid.UUID, worker_name: str) -> Claim | Outcome:
    settings = get_settings()
    while True:
        with open_session() as db:
            task = db.get(AIAnalysisTask, task_id)
            if task is None:
                log.warning("message for unknown task %s acknowledged and dropped", task_id)
                return Outcome.SKIPPED
            status = TaskStatus(task.status)
            now = utcnow()
            if status in TERMINAL_STATUSES:
                log.info("task %s is already %s; duplicate delivery acknowledged", task_id, status)
                return Outcome.SKIPPED
            if task.cancel_requested_at is not None:
                event = service.apply_transition(
                    db, task, EventType.CANCELLED, values={"completed_at": now}, message="cancelled before it started"
                )
                db.commit()
                service.publish_event(event)
                return Outcome.CANCELLED
            if status == TaskStatus.PROCESSING and task.heartbeat_at is not None:
                silent_for = (now - task.heartbeat_at).total_seconds()
                if silent_for < settings.task_lease_seconds and not _run_died_here(task.worker_name, worker_name):
                    # Another run holds a live lease: this is a duplicate (a republish, or a redelivery
                    # while it still runs). Drop it at once rather than hold a pool slot; if that run
                    # has in fact died, its heartbeat stops and the reaper requeues the task.
                    log.info("task %s is running elsewhere (%s); duplicate delivery dropped", task_id, task.worker_name)
                    return Outcome.SKIPPED
            if (
                status == TaskStatus.RETRY
                and task.next_attempt_at
                and task.next_attempt_at > now + timedelta(seconds=1)
            ):
                log.info("task %s is not due until %s; early delivery dropped", task_id, task.next_attempt_at)
                return Outcome.SKIPPED
            attempt = task.attempt + 1
            if task.deliveries + 1 > settings.task_max_deliveries:
                event = service.apply_transition(
                    db,
                    task,
                    EventType.FAILED,
                    expect_attempt=task.attempt,
                    values={
                        "completed_at": now,
                        "error_message": (
                            f"gave up after {task.deliveries} deliveries: the worker stopped (crash, out of memory or "
                            "time limit) every time it ran this analysis"
                        ),
                    },
                    message="too many deliveries",
                )
                db.commit()
                service.publish_event(event)
                return Outcome.FAILED
            record = db.get(PracticeRecord, task.practice_record_id)
            sentence = db.get(Sentence, record.sentence_id) if record else None
            takeover = status == TaskStatus.PROCESSING
            try:
                event = service.apply_transition(
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
                    message=f"took over from {task.worker_name}, whose lease expired or whose process died"
                    if takeover
                    else None,
                )
            except service.StaleTask:
                db.rollback()
                log.info("task %s was claimed by someone else first", task_id)
                return Outcome.SKIPPED
            db.commit()
            service.publish_event(event)
            storage = get_storage()
            claim = Claim(
                task_id=task_id,
                attempt=attempt,
                worker_name=worker_name,
                # The sentence text lets the engine judge every character (issue #9).
                params={**(task.task_params or {}), **({"text": sentence.text} if sentence else {})},
                reference_path=storage.path(sentence.reference_audio_key) if sentence else Path("/nonexistent"),
                attempt_path=storage.path(record.audio_key) if record else Path("/nonexistent"),
                practice_record_id=task.practice_record_id,
            )
            log.info("task %s claimed by %s (attempt %s)", task_id, worker_name, attempt)
            return claim


def _analyse(claim: Claim) -> AnalysisReport:
    if not claim.reference_path.exists():
        raise PermanentError("the reference recording of this sentence is missing from storage")
    if not claim.attempt_path.exists():
        raise PermanentError("the practice recording is missing from storage")
    reporter = _ProgressReporter(claim)
    storage = get_storage()  # encrypted recordings are decrypted to private temporary files
    with (
        storage.plaintext_path(claim.reference_path) as reference,
        storage.plaintext_path(claim.attempt_path) as attempt,
    ):
        return analysis_engine().analyze(reference, attempt, claim.params, progress=reporter)


class _ProgressReporter:
    """Called by the engine at each step: checks the cancel flag, writes progress (throttled),
    publishes the event on pub/sub."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.settings = get_settings()
        self.last_write = 0.0

    def __call__(self, step_number: int, step_key: str) -> None:
        claim = self.claim
        label = STEPS[step_number - 1][1] if 1 <= step_number <= TOTAL_STEPS else step_key
        progress = PROGRESS_AT_STEP[min(max(step_number, 1), TOTAL_STEPS) - 1]
        write = time.monotonic() - self.last_write >= self.settings.progress_write_interval
        with open_session() as db:
            task = db.get(AIAnalysisTask, claim.task_id)
            if task is None or task.attempt != claim.attempt or task.status != TaskStatus.PROCESSING:
                raise _LostLease()
            if task.cancel_requested_at is not None:
                raise _Cancelled()
            if write:
                try:
                    event = service.apply_transition(
                        db,
                        task,
                        EventType.PROGRESS,
                        expect_attempt=claim.attempt,
                        values={"progress": progress, "current_step": label, "heartbeat_at": utcnow()},
                    )
                except service.StaleTask:
                    raise _LostLease() from None
                db.commit()
                self.last_write = time.monotonic()
                service.publish_event(event)
            else:
                from vocalborn.tasks import events

                events.publish(
                    {
                        "event_id": None,
                        "task_id": str(claim.task_id),
                        "event_type": EventType.PROGRESS.value,
                        "status": TaskStatus.PROCESSING.value,
                        "progress": progress,
                        "current_step": label,
                        "total_steps": TOTAL_STEPS,
                        "attempt": claim.attempt,
                        "worker_name": claim.worker_name,
                        "message": None,
                        "timestamp": utcnow().isoformat().replace("+00:00", "Z"),
                    }
                )
        if self.settings.analysis_step_delay_seconds > 0:
            time.sleep(self.settings.analysis_step_delay_seconds)


SCORE_FIELDS = ("overall_score", "pronunciation_accuracy", "fluency_score", "rhythm_score")


def check_report(report: AnalysisReport) -> None:
    """Refuse a report the database would refuse (a remote engine may send anything)."""
    for name in SCORE_FIELDS:
        value = getattr(report, name)
        if not isinstance(value, int | float) or math.isnan(value) or not 0 <= value <= 100:
            raise PermanentError(f"the analysis engine returned an invalid {name}: {value!r} (expected 0..100)")
    if not isinstance(report.detailed_analysis, dict) or not report.detailed_analysis:
        raise PermanentError("the analysis engine returned no detailed_analysis")


def _own_task(db: Any, claim: Claim) -> AIAnalysisTask | None:
    """The task, if this run still owns it: still processing, under this run's attempt.

    After the reaper requeued it or an admin resubmitted it, the old run must write nothing."""
    task = db.get(AIAnalysisTask, claim.task_id)
    if task is None or task.status != TaskStatus.PROCESSING or task.attempt != claim.attempt:
        if task is not None:
            log.warning(
                "task %s is now %s (attempt %s); run %s writes nothing",
                claim.task_id,
                task.status,
                task.attempt,
                claim.attempt,
            )
        return None
    return task


def _complete(claim: Claim, report: AnalysisReport) -> Outcome:
    elapsed = time.monotonic() - claim.started
    with open_session() as db:
        task = _own_task(db, claim)
        if task is None:
            return Outcome.SKIPPED
        if task.cancel_requested_at is not None:
            db.rollback()
            raise _Cancelled()
        try:
            event = service.apply_transition(
                db,
                task,
                EventType.SUCCEEDED,
                expect_attempt=claim.attempt,
                values={
                    "progress": 100,
                    "current_step": STEPS[-1][1],
                    "completed_at": utcnow(),
                    "error_message": None,
                    "heartbeat_at": None,
                },
            )
            db.add(
                AIAnalysisResult(
                    task_id=claim.task_id,
                    overall_score=report.overall_score,
                    pronunciation_accuracy=report.pronunciation_accuracy,
                    fluency_score=report.fluency_score,
                    rhythm_score=report.rhythm_score,
                    detailed_analysis=report.detailed_analysis,
                    sentence_analyses=report.sentence_analyses,
                    suggestions=report.suggestions,
                    improvement_areas=report.improvement_areas,
                    analysis_model_version=report.analysis_model_version,
                    processing_time_seconds=round(elapsed, 3),
                )
            )
            db.commit()  # result, success and record status together
        except service.StaleTask:
            db.rollback()
            log.warning("task %s: another attempt finished first; this result is discarded", claim.task_id)
            return Outcome.SKIPPED
        except IntegrityError as exc:
            db.rollback()
            exists = db.exec(
                select(AIAnalysisResult.result_id).where(AIAnalysisResult.task_id == claim.task_id)
            ).first()
            if exists is not None:
                log.warning("task %s already has a result; this one is discarded", claim.task_id)
                return Outcome.SKIPPED
            raise PermanentError("the analysis result could not be stored (it breaks a database rule)") from exc
    service.publish_event(event)
    log.info("task %s succeeded in %.2f s (overall %.1f)", claim.task_id, elapsed, report.overall_score)
    return Outcome.SUCCEEDED


def _end_run(claim: Claim, event_type: EventType, values: dict[str, Any], message: str) -> bool:
    """Record how this run ended, if it still owns the task; False when it no longer does."""
    with open_session() as db:
        task = _own_task(db, claim)
        if task is None:
            return False
        try:
            event = service.apply_transition(
                db,
                task,
                event_type,
                expect_attempt=claim.attempt,
                values={"completed_at": utcnow(), "heartbeat_at": None, **values},
                message=message,
            )
        except service.StaleTask:
            return False
        db.commit()
    service.publish_event(event)
    return True


def _fail(claim: Claim, reason: str) -> Outcome:
    if not _end_run(claim, EventType.FAILED, {"error_message": reason}, reason):
        return Outcome.SKIPPED
    log.warning("task %s failed permanently: %s", claim.task_id, reason)
    return Outcome.FAILED


def backoff_seconds(retry_number: int) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped."""
    settings = get_settings()
    ceiling = min(settings.retry_backoff_max, settings.retry_backoff_base * 2 ** (retry_number - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _retry_or_fail(claim: Claim, reason: str) -> Outcome:
    with open_session() as db:
        task = _own_task(db, claim)
        if task is None:
            return Outcome.SKIPPED
        if task.retry_count >= task.max_retries:
            db.rollback()
            return _fail(claim, f"gave up after {task.retry_count} retries: {reason}")
        retry_number = task.retry_count + 1
        delay = backoff_seconds(retry_number)
        try:
            event = service.apply_transition(
                db,
                task,
                EventType.RETRY,
                expect_attempt=claim.attempt,
                values={
                    "retry_count": retry_number,
                    # the run ended with a recorded outcome: it was not a crash
                    "deliveries": 0,
                    "error_message": reason,
                    "heartbeat_at": None,
                    "next_attempt_at": utcnow() + timedelta(seconds=delay),
                    "publish_count": task.publish_count + 1,
                },
                message=f"retry {retry_number} of {task.max_retries} in {delay:.1f} s: {reason}",
            )
        except service.StaleTask:
            return Outcome.SKIPPED
        db.commit()
    service.publish_event(event)
    service.publish_task(task, countdown=delay)  # if this fails, Beat republishes the overdue retry
    log.info("task %s will retry (%s/%s) in %.1f s", claim.task_id, retry_number, task.max_retries, delay)
    return Outcome.RETRY_SCHEDULED


def _finish_cancelled(claim: Claim) -> Outcome:
    if not _end_run(claim, EventType.CANCELLED, {}, "cancelled while running"):
        return Outcome.SKIPPED
    log.info("task %s cancelled at a step boundary", claim.task_id)
    return Outcome.CANCELLED


class _Heartbeat:
    """Keeps the claim's lease alive while a long step runs; a dead process stops beating."""

    def __init__(self, claim: Claim, interval: float) -> None:
        self.claim = claim
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{claim.task_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with open_session() as db:
                    db.execute(
                        update(AIAnalysisTask)
                        .where(col(AIAnalysisTask.task_id) == self.claim.task_id)
                        .where(col(AIAnalysisTask.attempt) == self.claim.attempt)
                        .where(col(AIAnalysisTask.status) == TaskStatus.PROCESSING.value)
                        .values(heartbeat_at=utcnow())
                    )
                    db.commit()
            except Exception as exc:  # the next beat may get through; the lease is generous
                log.warning("heartbeat for task %s failed: %s", self.claim.task_id, exc)

"""What a worker does with one analysis message: claim, analyse, record the outcome.

Delivery is at-least-once, so everything here expects to run twice: the claim only takes a task
that is pending/retry (or processing with an expired lease), every later write is fenced by the
attempt number it claimed, and the result row is unique per task.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import timedelta
from functools import lru_cache
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vocalborn.analysis.types import STEPS, AnalysisEngine, AnalysisInputError, AnalysisReport, TransientAnalysisError
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.logs import log_context
from vocalborn.outage import policy
from vocalborn.practice import counting
from vocalborn.practice.models import PracticeRecord
from vocalborn.sqltypes import utcnow
from vocalborn.storage import get_storage
from vocalborn.tasks import service, unit_of_work
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.states import EventType, TaskStatus
from vocalborn.tasks.worker import baseline, fastrun, registry
from vocalborn.tasks.worker.claim import Claim, Outcome, claim_ordinary
from vocalborn.tasks.worker.fastrun import stored_detail
from vocalborn.tasks.worker.progress import PROGRESS_AT_STEP, Cancelled, LostLease, ProgressReporter, RunWatch

__all__ = ["PROGRESS_AT_STEP", "Claim", "Outcome", "PermanentError", "claim_task", "run_analysis"]

log = logging.getLogger(__name__)


class PermanentError(Exception):
    """Retrying cannot help (missing reference, unusable audio)."""


@lru_cache(maxsize=1)
def analysis_engine() -> AnalysisEngine:
    """This process's engine, of the kind AI_ENGINE names (``tasks/registry.ENGINE_KINDS``)."""

    return registry.build_engine(get_settings())


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
        watch = RunWatch(claim, settings.task_heartbeat_seconds)
        watch.start()
        try:
            report = _analyse(claim, watch)
            check_report(report)
            return with_db_retries(lambda: _complete(claim, report), f"result of task {task_id}")
        except Cancelled:
            return with_db_retries(lambda: _finish_cancelled(claim), f"cancel of task {task_id}")
        except LostLease:
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
            budget = policy.budget_for(policy.classify(exc))
            return with_db_retries(lambda: _retry_or_fail(claim, reason, budget), f"retry of task {task_id}")
        finally:
            watch.stop()


def _describe(exc: Exception) -> str:
    """What learners and therapists read (status, events, WebSocket): the kind of problem, never
    the raw text of a driver error, which can carry SQL, parameters and host names. The full
    exception is in the worker's log."""
    import redis
    from celery.exceptions import SoftTimeLimitExceeded
    from sqlalchemy.exc import SQLAlchemyError

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


def _analyse(claim: Claim, watch: RunWatch) -> AnalysisReport:
    if not claim.reference_path.exists():
        raise PermanentError("the reference recording of this sentence is missing from storage")
    if not claim.attempt_path.exists():
        raise PermanentError("the practice recording is missing from storage")
    # The learner's pitch baseline from earlier attempts (issue #22): one query, never fatal.
    params = baseline.with_pitch_baseline(claim.task_id, claim.params, claim.pitch_profiles)
    reporter = ProgressReporter(claim, watch)
    storage = get_storage()  # encrypted recordings are decrypted to private temporary files
    try:
        with (
            storage.plaintext_path(claim.reference_path) as reference,
            storage.plaintext_path(claim.attempt_path) as attempt,
        ):
            return analysis_engine().analyze(reference, attempt, params, progress=reporter)
    finally:
        reporter.close()


SCORE_FIELDS = ("overall_score", "pronunciation_accuracy", "fluency_score", "rhythm_score")


def check_report(report: AnalysisReport) -> None:
    """Refuse a report the database would refuse (a remote engine may send anything)."""
    for name in SCORE_FIELDS:
        value = getattr(report, name)
        if not isinstance(value, int | float) or math.isnan(value) or not 0 <= value <= 100:
            raise PermanentError(f"the analysis engine returned an invalid {name}: {value!r} (expected 0..100)")
    if not isinstance(report.detailed_analysis, dict) or not report.detailed_analysis:
        raise PermanentError("the analysis engine returned no detailed_analysis")
    completeness = report.completeness_score
    if completeness is not None and (
        isinstance(completeness, bool)
        or not isinstance(completeness, int | float)
        or math.isnan(completeness)
        or not 0 <= completeness <= 100
    ):
        raise PermanentError(
            f"the analysis engine returned an invalid completeness_score: {completeness!r} (expected 0..100 or null)"
        )


def claim_task(task_id: uuid.UUID, worker_name: str) -> Claim | Outcome:
    """Claim the task: in one statement for the common case (``fastrun.claim``), otherwise by
    the ordinary claim, which decides every case (``claim.claim_ordinary``)."""
    fast = fastrun.claim(task_id, worker_name)
    if fast is not None:
        log.info("task %s claimed by %s (attempt %s)", task_id, worker_name, fast.attempt)
        return fast
    return claim_ordinary(task_id, worker_name)


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


def _result_row(claim: Claim, report: AnalysisReport, elapsed: float) -> AIAnalysisResult:
    detail = stored_detail(report)
    counted, reason = counting.decide(detail)
    detail, suggestions, areas = counting.learner_report(detail, reason, report.suggestions, report.improvement_areas)
    return AIAnalysisResult(
        task_id=claim.task_id,
        counted=counted,
        not_counted_reason=reason,
        overall_score=report.overall_score,
        pronunciation_accuracy=report.pronunciation_accuracy,
        fluency_score=report.fluency_score,
        rhythm_score=report.rhythm_score,
        completeness_score=report.completeness_score,
        detailed_analysis=detail,
        sentence_analyses=report.sentence_analyses,
        suggestions=suggestions,
        improvement_areas=areas,
        analysis_model_version=report.analysis_model_version,
        engine_fallback=bool(report.engine_fallback),
        processing_time_seconds=round(elapsed, 3),
    )


def _complete(claim: Claim, report: AnalysisReport) -> Outcome:
    """Result, success, record status and event in one transaction; then the event's publish."""
    elapsed = time.monotonic() - claim.started
    if fastrun.succeed(claim, report, elapsed):  # the common case, in one statement
        log.info("task %s succeeded in %.2f s (overall %.1f)", claim.task_id, elapsed, report.overall_score)
        return Outcome.SUCCEEDED
    result = _result_row(claim, report, elapsed)
    with open_session() as db:
        task = _own_task(db, claim)
        if task is None:
            return Outcome.SKIPPED
        if task.cancel_requested_at is not None:
            db.rollback()
            raise Cancelled()
        try:
            event = unit_of_work.transition(
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
                before_commit=lambda session: _store_result(session, result),
            )
        except IntegrityError as exc:
            return _result_refused(db, claim, exc)
        if event is None:
            log.warning("task %s: another attempt finished first; this result is discarded", claim.task_id)
            return Outcome.SKIPPED
    log.info("task %s succeeded in %.2f s (overall %.1f)", claim.task_id, elapsed, report.overall_score)
    return Outcome.SUCCEEDED


def _store_result(db: Session, result: AIAnalysisResult) -> None:
    """The result, and whether it counts on the record it now speaks for (``_sync_record_status``
    has pointed the record at this task unless a newer success speaks for it)."""
    db.add(result)
    db.execute(
        update(PracticeRecord)
        .where(col(PracticeRecord.ai_task_id) == result.task_id)
        .values(counted=result.counted, not_counted_reason=result.not_counted_reason)
    )


def _result_refused(db: Session, claim: Claim, exc: IntegrityError) -> Outcome:
    """The result insert broke a rule: a duplicate delivery stored one first, or the row is bad."""
    db.rollback()
    exists = db.exec(select(AIAnalysisResult.result_id).where(AIAnalysisResult.task_id == claim.task_id)).first()
    if exists is not None:
        log.warning("task %s already has a result; this one is discarded", claim.task_id)
        return Outcome.SKIPPED
    raise PermanentError("the analysis result could not be stored (it breaks a database rule)") from exc


def _end_run(claim: Claim, event_type: EventType, values: dict[str, Any], message: str) -> bool:
    """Record how this run ended, if it still owns the task; False when it no longer does."""
    with open_session() as db:
        task = _own_task(db, claim)
        if task is None:
            return False
        event = unit_of_work.transition(
            db,
            task,
            event_type,
            expect_attempt=claim.attempt,
            values={"completed_at": utcnow(), "heartbeat_at": None, **values},
            message=message,
        )
        return event is not None


def _fail(claim: Claim, reason: str) -> Outcome:
    if not _end_run(claim, EventType.FAILED, {"error_message": reason}, reason):
        return Outcome.SKIPPED
    log.warning("task %s failed permanently: %s", claim.task_id, reason)
    return Outcome.FAILED


def backoff_seconds(retry_number: int) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped."""
    return policy.exponential_backoff(retry_number)


def _retry_or_fail(claim: Claim, reason: str, budget: policy.Budget | None = None) -> Outcome:
    """Another run later, within the retry budget of the failure's class (outage/policy.py)."""
    with open_session() as db:
        task = _own_task(db, claim)
        if task is None:
            return Outcome.SKIPPED
        limit = task.max_retries if budget is None or budget.retries is None else budget.retries
        if task.retry_count >= limit:
            db.rollback()
            return _fail(claim, f"gave up after {task.retry_count} retries: {reason}")
        retry_number = task.retry_count + 1
        delay = backoff_seconds(retry_number) if budget is None else budget.wait_seconds(retry_number)
        event = unit_of_work.transition(
            db,
            task,
            EventType.RETRY,
            expect_attempt=claim.attempt,
            values={
                "retry_count": retry_number,
                "max_retries": limit,
                # the run ended with a recorded outcome: it was not a crash
                "deliveries": 0,
                "error_message": reason,
                "heartbeat_at": None,
                "next_attempt_at": utcnow() + timedelta(seconds=delay),
                "publish_count": task.publish_count + 1,
            },
            message=f"retry {retry_number} of {limit} in {delay:.1f} s: {reason}",
        )
        if event is None:
            return Outcome.SKIPPED
    service.send_task_message(task, countdown=delay)  # if this fails, Beat republishes the overdue retry
    log.info("task %s will retry (%s/%s) in %.1f s", claim.task_id, retry_number, limit, delay)
    return Outcome.RETRY_SCHEDULED


def _finish_cancelled(claim: Claim) -> Outcome:
    if not _end_run(claim, EventType.CANCELLED, {}, "cancelled while running"):
        return Outcome.SKIPPED
    log.info("task %s cancelled at a step boundary", claim.task_id)
    return Outcome.CANCELLED

"""The worker's claim and success in one SQL statement each, for the common case, on PostgreSQL.

Every analysis a worker runs makes these two writes, and through the ORM each cost seven round
trips and most of the worker's CPU per task (docs/BENCHMARKS.md, "Worker pipeline"). Here each
is one statement on one connection this process keeps, in autocommit mode (the statement is its
own transaction). Like ``tasks/submission/fastpath.py`` for the API, each answers only the case it can
decide alone and returns None otherwise; the caller then takes the ordinary path in
``tasks/worker/claim.py`` or ``tasks/worker/runner.py``, which has every rule, log line and error. So the rules
live there, and this is an optimisation that can never decide differently:

* claim, fast: every rule of ``claim.CLAIM_RULES`` (each a Python check beside its SQL predicate;
  the statement's WHERE is built from the latter) lets the delivery start the task, without a
  takeover. Then the start (attempt + 1, fenced by the status it read), the record's
  status and the ``started`` event are written together, committed without waiting for the WAL
  flush (as the ordinary claim: lost in a database crash, the task is simply pending again). The
  same statement reads the learner's earlier pitch profiles (``tasks/worker/baseline.py``), so the
  baseline costs no round trip of its own.
* success, fast: the task is still processing under this run's attempt and no cancel was
  requested. Then status, result, record and ``succeeded`` event are written together, durably;
  whether the attempt counts (``practice/counting.py``) goes on the result and the record.
  Any other state (cancelled, taken over, a result already stored) is left to the ordinary path.

A database error that means "unavailable" is raised as SQLAlchemy's OperationalError, so the
callers' retries (``runner.with_db_retries``) treat both paths alike.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vocalborn.analysis.types import STEPS
from vocalborn.config import get_settings
from vocalborn.db import deadline_connection_class
from vocalborn.events import outbox
from vocalborn.practice import counting
from vocalborn.practice.models import RecordStatus
from vocalborn.sqltypes import utcnow
from vocalborn.storage import get_storage
from vocalborn.tasks import transitions
from vocalborn.tasks.models import AIAnalysisTaskEvent
from vocalborn.tasks.states import TERMINAL_STATUSES, EventType, TaskStatus
from vocalborn.tasks.worker.baseline import BASELINE_ATTEMPTS
from vocalborn.tasks.worker.claim import CLAIM_RULES, Claim, ClaimRule, claim_sql_predicate

if TYPE_CHECKING:
    from datetime import datetime

    from vocalborn.analysis.types import AnalysisReport


def claim_sql(rules: tuple[ClaimRule, ...] = CLAIM_RULES) -> str:
    """The one-statement claim, starting a task only when every rule of ``rules`` lets it."""
    return _CLAIM_TEMPLATE.replace("{rules}", claim_sql_predicate(rules))


_CLAIM_TEMPLATE = """
WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true) AS v),
t AS (
  UPDATE ai_analysis_tasks SET status = %(processing)s, attempt = attempt + 1, deliveries = deliveries + 1,
    worker_name = %(worker)s, started_at = %(now)s, heartbeat_at = %(now)s, progress = 0, current_step = NULL,
    next_attempt_at = NULL, updated_at = %(now)s
  FROM cfg
  WHERE task_id = %(tid)s AND {rules}
  RETURNING task_id, practice_record_id, attempt, task_params, user_id, created_at
),
rec AS (
  UPDATE practice_records p SET record_status = %(record_processing)s, updated_at = %(now)s
  FROM t WHERE p.practice_record_id = t.practice_record_id AND p.ai_task_id = t.task_id RETURNING 1
),
ev AS (
  INSERT INTO ai_analysis_task_events (task_id, event_type, status, progress, current_step, attempt, worker_name,
    message, created_at)
  SELECT task_id, %(started)s, %(processing)s, 0, NULL, attempt, %(worker)s, NULL, %(now)s FROM t
  RETURNING event_id
),
obx AS (  -- the analysis.started integration event, in the same transaction (events/outbox.py)
  INSERT INTO event_outbox {outbox}
  FROM t
  RETURNING 1
)
SELECT t.attempt, t.task_params, t.practice_record_id, r.audio_key, s.reference_audio_key, s.text, ev.event_id,
  (SELECT count(*) FROM rec),
  (SELECT coalesce(jsonb_agg(q.profile ORDER BY q.created_at DESC, q.task_id DESC), '[]'::jsonb) FROM (
    SELECT res.detailed_analysis -> 'pitch_profile' AS profile, e.created_at, e.task_id
    FROM ai_analysis_tasks e JOIN ai_analysis_results res ON res.task_id = e.task_id
    WHERE e.user_id = t.user_id AND e.created_at < t.created_at AND e.status = %(success)s
    ORDER BY e.created_at DESC, e.task_id DESC LIMIT %(profiles)s) q)
FROM t CROSS JOIN ev
LEFT JOIN practice_records r ON r.practice_record_id = t.practice_record_id
LEFT JOIN sentences s ON s.sentence_id = r.sentence_id
""".replace("{outbox}", outbox.ANALYSIS_ROW_SQL.format(cte="t", moment="%(now)s"))
CLAIM_SQL = claim_sql()

_SUCCEED = """
WITH t AS (
  UPDATE ai_analysis_tasks SET status = %(success)s, updated_at = %(now)s, progress = 100, current_step = %(step)s,
    completed_at = %(now)s, error_message = NULL, heartbeat_at = NULL
  WHERE task_id = %(tid)s AND status = %(processing)s AND attempt = %(attempt)s AND cancel_requested_at IS NULL
  RETURNING task_id, practice_record_id, created_at, attempt, worker_name, user_id
),
rec AS (
  UPDATE practice_records p SET ai_task_id = t.task_id, record_status = %(record_analyzed)s, updated_at = %(now)s,
    counted = %(counted)s, not_counted_reason = %(reason)s
  FROM t WHERE p.practice_record_id = t.practice_record_id AND (
    p.ai_task_id = t.task_id OR p.ai_task_id IS NULL OR p.ai_task_id NOT IN (
      SELECT a.task_id FROM ai_analysis_tasks a WHERE a.practice_record_id = t.practice_record_id
      AND a.status = %(success)s AND a.created_at > t.created_at))
  RETURNING 1
),
res AS (
  INSERT INTO ai_analysis_results (result_id, task_id, overall_score, pronunciation_accuracy, fluency_score,
    rhythm_score, completeness_score, counted, not_counted_reason, detailed_analysis, sentence_analyses, suggestions,
    improvement_areas, analysis_model_version, engine_fallback, processing_time_seconds, created_at)
  SELECT %(result_id)s, task_id, %(overall)s, %(accuracy)s, %(fluency)s, %(rhythm)s, %(completeness)s, %(counted)s,
    %(reason)s, %(detailed)s, %(sentences)s, %(suggestions)s, %(areas)s, %(model)s, %(fallback)s, %(elapsed)s,
    %(now)s FROM t
  RETURNING 1
),
ev AS (
  INSERT INTO ai_analysis_task_events (task_id, event_type, status, progress, current_step, attempt, worker_name,
    message, created_at)
  SELECT task_id, %(succeeded)s, %(success)s, 100, %(step)s, attempt, worker_name, NULL, %(now)s FROM t
  RETURNING event_id
),
obx AS (  -- the analysis.succeeded integration event, in the same transaction (events/outbox.py)
  INSERT INTO event_outbox {outbox}
  FROM t
  RETURNING 1
)
SELECT ev.event_id, t.attempt, t.worker_name, (SELECT count(*) FROM res), (SELECT count(*) FROM rec)
FROM t CROSS JOIN ev
""".replace("{outbox}", outbox.ANALYSIS_ROW_SQL.format(cte="t", moment="%(now)s"))


class _Connection:
    """This process's connection for the two statements: made on first use, kept, dropped after
    an error that may have left it unusable. A pool child never uses its parent's (the pid is
    checked), and one thread at a time uses it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.conn: Any = None
        self.key: tuple[int, str] | None = None

    def _connect(self, url: str) -> Any:
        settings = get_settings()
        statement_ms = int(settings.database_statement_timeout * 1000)
        conn = deadline_connection_class().connect(
            url.replace("postgresql+psycopg://", "postgresql://", 1),
            autocommit=True,
            connect_timeout=settings.database_connect_timeout,
            options=f"-c statement_timeout={statement_ms} -c lock_timeout={statement_ms}",
        )
        conn.io_timeout = settings.database_statement_timeout + 0.5
        return conn

    @contextmanager
    def use(self, url: str) -> Iterator[Any]:
        import psycopg
        from sqlalchemy.exc import OperationalError

        with self.lock:
            key = (os.getpid(), url)
            if self.key != key:
                if self.conn is not None and self.key is not None and self.key[0] == key[0]:
                    self.conn.close()
                self.conn, self.key = None, key  # a parent's connection is only forgotten
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = self._connect(url)
                yield self.conn
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._drop()
                raise OperationalError("(worker fast path)", None, exc) from exc

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                self.conn.close()
        self.conn = None


_connection = _Connection()


def _database_url() -> str | None:
    url = get_settings().effective_database_url
    return url if url.startswith("postgresql") else None


def _publish(
    event_id: int, task_id: uuid.UUID, event_type: EventType, status: TaskStatus, values: dict[str, Any]
) -> None:
    """Publish the committed event as ``unit_of_work.transition`` does (best effort)."""

    transitions.publish_live_event(
        AIAnalysisTaskEvent(
            event_id=event_id, task_id=task_id, event_type=event_type.value, status=status.value, **values
        )
    )


def claim(task_id: uuid.UUID, worker_name: str, sql: str = CLAIM_SQL) -> Claim | None:
    """Start the task in one statement, or None: the ordinary claim must decide."""
    url = _database_url()
    if url is None:
        return None
    now = utcnow()
    args = {
        "tid": task_id,
        "worker": worker_name,
        "now": now,
        "due": now + timedelta(seconds=1),
        "terminal": [s.value for s in TERMINAL_STATUSES],
        "retry": TaskStatus.RETRY.value,
        "processing": TaskStatus.PROCESSING.value,
        "max_deliveries": get_settings().task_max_deliveries,
        "record_processing": RecordStatus.AI_PROCESSING.value,
        "started": EventType.STARTED.value,
        **outbox.analysis_args("analysis.started"),
        "success": TaskStatus.SUCCESS.value,
        "profiles": BASELINE_ATTEMPTS,
    }
    with _connection.use(url) as conn:
        row = conn.execute(sql, args, prepare=True).fetchone()
    if row is None:
        return None
    attempt, params, record_id, audio_key, reference_key, text, event_id, _records, profiles = row
    _publish(
        event_id,
        task_id,
        EventType.STARTED,
        TaskStatus.PROCESSING,
        {"progress": 0, "current_step": None, "attempt": attempt, "worker_name": worker_name, "created_at": now},
    )
    storage = get_storage()
    return Claim(
        task_id=task_id,
        attempt=attempt,
        worker_name=worker_name,
        # The sentence text lets the engine judge every character (issue #9).
        params={**(params or {}), **({"text": text} if text is not None else {})},
        reference_path=storage.path(reference_key) if reference_key is not None else Path("/nonexistent"),
        attempt_path=storage.path(audio_key) if audio_key is not None else Path("/nonexistent"),
        practice_record_id=record_id,
        pitch_profiles=list(profiles),
    )


def _json(value: Any) -> Any:
    """As the ORM stores a JSON column: a value as JSONB, None as JSON null (not SQL NULL)."""
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def succeed(claim: Claim, report: AnalysisReport, elapsed: float, now: datetime | None = None) -> bool | None:
    """Record the run's success in one statement: True, or None when the ordinary path must decide
    (the task moved on or was cancelled, a result exists, or this is not PostgreSQL)."""
    import psycopg

    url = _database_url()
    if url is None:
        return None
    now = now or utcnow()
    step = STEPS[-1][1]
    detail = stored_detail(report)
    counted, reason = counting.decide(detail)  # as runner._result_row
    detail, suggestions, areas = counting.learner_report(detail, reason, report.suggestions, report.improvement_areas)
    args = {
        "tid": claim.task_id,
        "attempt": claim.attempt,
        "now": now,
        "step": step,
        "success": TaskStatus.SUCCESS.value,
        "processing": TaskStatus.PROCESSING.value,
        "succeeded": EventType.SUCCEEDED.value,
        **outbox.analysis_args("analysis.succeeded"),
        "record_analyzed": RecordStatus.AI_ANALYZED.value,
        "result_id": uuid.uuid4(),
        "overall": report.overall_score,
        "accuracy": report.pronunciation_accuracy,
        "fluency": report.fluency_score,
        "rhythm": report.rhythm_score,
        "completeness": report.completeness_score,
        "counted": counted,
        "reason": reason,
        "detailed": _json(detail),
        "sentences": _json(report.sentence_analyses),
        "suggestions": suggestions,
        "areas": _json(areas),
        "model": report.analysis_model_version,
        "fallback": bool(report.engine_fallback),
        "elapsed": round(elapsed, 3),
    }
    try:
        with _connection.use(url) as conn:
            row = conn.execute(_SUCCEED, args, prepare=True).fetchone()
    except psycopg.IntegrityError:  # a result already stored, or a row the database refuses
        return None
    if row is None:
        return None
    event_id, attempt, worker_name, _results, _records = row
    _publish(
        event_id,
        claim.task_id,
        EventType.SUCCEEDED,
        TaskStatus.SUCCESS,
        {"progress": 100, "current_step": step, "attempt": attempt, "worker_name": worker_name, "created_at": now},
    )
    return True


def stored_detail(report: AnalysisReport) -> dict[str, Any]:
    """The engine's JSON as stored: ``detailed_analysis`` with the completeness beside the
    characters it counts (issue #22), when the engine measured one and did not put it there."""
    detail = report.detailed_analysis
    if report.completeness_score is None or "completeness_score" in detail:
        return detail
    return {**detail, "completeness_score": report.completeness_score}

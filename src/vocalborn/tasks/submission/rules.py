"""The rules of submission, each written once: its Python check beside its SQL predicate.

The ordinary path (``ordinary.submit_analysis``) runs the Python checks in the table's order and
answers with the first one's error (or the task it returns). The fast statement
(``fastpath.SUBMIT_SQL``) is built from the SQL predicates: a submit row is written only when
every predicate holds; otherwise the fast path declines and the ordinary path decides. So a rule
added here is enforced by both paths, and ``tests/tasks/test_submission_rules.py`` shows for
each rule that the ordinary path refuses with its answer and the fast path declines, and that
the fast path would accept the same submit without the rule's SQL half.

The SQL runs over one row ``i`` of the batch (columns ``uid``, ``rid``, ``reanalyse``, ``nth``:
earlier rows of the same learner in the batch) with the parameters ``active``, ``success`` and
``limit`` (``fastpath._batch_params``). Every lookup is a subquery on a key of its own, so the
generic plan suits every batch size (see ``fastpath``).

Not a rule of this table: the Idempotency-Key (the fast path takes only submits without one)
and the token (the hot route asks for a checked session, ``auth.fast_subject``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from vocalborn.auth.models import Role, User
from vocalborn.config import get_settings
from vocalborn.errors import Conflict, Forbidden, TooManyActive
from vocalborn.practice.models import PracticeRecord
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.service import find_active_task
from vocalborn.tasks.states import ACTIVE_STATUSES
from vocalborn.tasks.transitions import latest_success

# A check refuses by raising the rule's error, or answers with an existing task (the submit
# returns it instead of starting another), or lets the submit through (None).
Check = Callable[[Session, User, PracticeRecord, bool], AIAnalysisTask | None]


@dataclass(frozen=True)
class Rule:
    name: str
    says: str  # the rule in one line (CONTRIBUTING, test ids)
    check: Check
    sql: str  # holds for a row the fast path may write


def _own_record(db: Session, user: User, record: PracticeRecord, reanalyse: bool) -> AIAnalysisTask | None:
    if record.user_id != user.user_id and user.role != Role.ADMIN:
        raise Forbidden("only the learner who made the recording can ask for its analysis")
    return None


def _existing_task(db: Session, user: User, record: PracticeRecord, reanalyse: bool) -> AIAnalysisTask | None:
    existing = find_active_task(db, record.practice_record_id)
    if existing is None and not reanalyse:
        existing = latest_success(db, record.practice_record_id)
    return existing


def _audio_kept(db: Session, user: User, record: PracticeRecord, reanalyse: bool) -> AIAnalysisTask | None:
    if record.audio_deleted_at is not None:
        raise Conflict("the audio of this recording was deleted (retention period); record the sentence again")
    return None


def _under_limit(db: Session, user: User, record: PracticeRecord, reanalyse: bool) -> AIAnalysisTask | None:
    limit = get_settings().max_active_tasks_per_learner
    if limit > 0:
        waiting = db.exec(
            select(func.count())
            .select_from(AIAnalysisTask)
            .where(AIAnalysisTask.user_id == record.user_id)
            .where(col(AIAnalysisTask.status).in_([s.value for s in ACTIVE_STATUSES]))
        ).one()
        if waiting >= limit:
            raise TooManyActive(waiting)
    return None


# Checked before the Idempotency-Key is looked up (a key never reveals another's task).
ACCESS_RULES: tuple[Rule, ...] = (
    Rule(
        "own_record",
        "only the learner who made the recording submits it (an admin on the ordinary path too)",
        _own_record,
        """(SELECT r.user_id FROM practice_records r WHERE r.practice_record_id = i.rid LIMIT 1) = i.uid
  AND (SELECT 1 FROM users u WHERE u.user_id = i.uid LIMIT 1) IS NOT NULL""",
    ),
)

# Checked after it, in this order: a submit that finds an existing task returns it.
START_RULES: tuple[Rule, ...] = (
    Rule(
        "no_existing_task",
        "a record's active task, or (unless reanalyse) its latest success, is returned instead",
        _existing_task,
        """(SELECT 1 FROM ai_analysis_tasks t WHERE t.practice_record_id = i.rid
       AND (t.status = ANY(%(active)s) OR (t.status = %(success)s AND NOT i.reanalyse)) LIMIT 1) IS NULL""",
    ),
    Rule(
        "audio_kept",
        "the recording's audio is still there (not deleted by retention)",
        _audio_kept,
        """(SELECT 1 FROM practice_records r
       WHERE r.practice_record_id = i.rid AND r.audio_deleted_at IS NOT NULL LIMIT 1) IS NULL""",
    ),
    Rule(
        "under_active_limit",
        "the learner has fewer than MAX_ACTIVE_TASKS_PER_LEARNER active tasks",
        _under_limit,
        # counted up to the limit only (none without one): flat at any size; the batch's earlier
        # rows of the learner count as written (a row refused that way only takes the ordinary path)
        """(%(limit)s <= 0 OR i.nth + (
    SELECT count(*) FROM (
      SELECT 1 FROM ai_analysis_tasks t WHERE t.user_id = i.uid AND t.status = ANY(%(active)s)
      LIMIT GREATEST(%(limit)s, 0)
    ) b
  ) < %(limit)s)""",
    ),
)

RULES: tuple[Rule, ...] = ACCESS_RULES + START_RULES


def run(
    rules: tuple[Rule, ...], db: Session, user: User, record: PracticeRecord, reanalyse: bool
) -> AIAnalysisTask | None:
    """The first existing task a rule answers with, or None: the submit may start one. A rule
    that refuses raises its error."""
    for rule in rules:
        found = rule.check(db, user, record, reanalyse)
        if found is not None:
            return found
    return None


def sql_predicate(rules: tuple[Rule, ...] = RULES) -> str:
    """The WHERE of the fast statement's ``ok`` rows: every rule's SQL half."""
    return "\n  AND ".join(f"({rule.sql})" for rule in rules)

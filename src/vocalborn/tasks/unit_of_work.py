"""The unit of work every change of a task's state goes through: apply the transition, commit,
then publish the event; a transition refused because the task moved on is rolled back.

Below ``service`` (which uses it): it imports ``transitions`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from vocalborn.tasks import transitions

if TYPE_CHECKING:
    from sqlmodel import Session

    from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent
    from vocalborn.tasks.states import EventType


def transition(
    db: Session,
    task: AIAnalysisTask,
    event_type: EventType,
    *,
    expect_attempt: int | None = None,
    values: dict[str, Any] | None = None,
    message: str | None = None,
    worker_name: str | None = None,
    before_commit: Callable[[Session], None] | None = None,
    durable: bool = True,
) -> AIAnalysisTaskEvent | None:
    """Move ``task`` along ``event_type`` in ``db``'s transaction, commit, publish the event.

    Returns the event, or None when the task had moved on (``StaleTask``: nothing was written,
    the transaction is rolled back). ``before_commit`` adds what must commit with the transition
    (the analysis result). Any other error propagates with the transaction still open; the
    session's close rolls it back. The publish is best effort: the event is in the database.

    ``durable=False`` (PostgreSQL): the commit does not wait for the WAL flush
    (``synchronous_commit = off`` for this transaction only). Only for writes whose loss in a
    database crash is harmless because every later write is fenced on them: a worker's claim (lost,
    the task is pending again, the run's fenced writes are refused and the republisher runs it
    again) and its stored progress rows. Never for an outcome."""
    if not durable and db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL synchronous_commit = off"))
    try:
        event = transitions.apply_transition(
            db,
            task,
            event_type,
            expect_attempt=expect_attempt,
            values=values,
            message=message,
            worker_name=worker_name,
        )
        if before_commit is not None:
            before_commit(db)
    except transitions.StaleTask:
        db.rollback()
        return None
    db.commit()
    transitions.publish_live_event(event)
    return event

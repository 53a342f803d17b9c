"""Writing an event to the outbox, in the caller's transaction (the caller commits).

The ORM paths call :func:`add`; the single-statement fast paths on PostgreSQL
(``tasks/submission/fastpath.py``, ``tasks/worker/fastrun.py``) insert the same row from a CTE with
:data:`ANALYSIS_ROW_SQL`.

On PostgreSQL a transaction that added rows also sends ``NOTIFY vocalborn_outbox`` (delivered at
its COMMIT, folded into one however many rows it added): the relay LISTENs and publishes at once
instead of at its next poll. The notification is only a wake-up call: the relay still polls
(``RELAY_POLL_INTERVAL``), so a row whose notification was lost, or was never sent (SQLite), goes
out all the same."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from vocalborn.events.catalogue import CATALOGUE
from vocalborn.events.models import EventOutbox
from vocalborn.sqltypes import utcnow


def add(
    db: Session,
    event_type: str,
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
    **subject: uuid.UUID,
) -> EventOutbox:
    """Add the event to ``db``'s transaction. Every id of the type's subject must be given.
    ``event_id``: a derived id (the unique key then makes the event once, e.g. the reminders)."""
    kind = CATALOGUE[event_type]
    if set(subject) != set(kind.subject):
        raise ValueError(f"{event_type} needs the ids {sorted(kind.subject)}, got {sorted(subject)}")
    row = EventOutbox(
        event_id=event_id or uuid.uuid4(),
        event_type=event_type,
        schema_version=kind.version,
        ordering_key=subject[kind.ordering_key],
        subject={name: str(subject[name]) for name in kind.subject},
        occurred_at=occurred_at or utcnow(),
    )
    db.add(row)
    db.info[_WAKE] = True
    return row


# The channel the relay LISTENs on (events/outbox_store.py).
NOTIFY_CHANNEL = "vocalborn_outbox"
_WAKE = "vocalborn.events.outbox.wake"  # Session.info: this transaction added outbox rows


@event.listens_for(OrmSession, "before_commit")
def _wake_the_relay(session: OrmSession) -> None:
    """The NOTIFY joins the transaction that added rows (PostgreSQL delivers it at COMMIT, and
    drops it with a rollback)."""
    if session.info.pop(_WAKE, False) and session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")


@event.listens_for(OrmSession, "after_rollback")
def _forget_the_wake(session: OrmSession) -> None:
    session.info.pop(_WAKE, None)


def analysis_args(event_type: str) -> dict[str, Any]:
    """The parameters :data:`ANALYSIS_ROW_SQL` needs besides the CTE's columns."""
    return {"ev_type": event_type, "ev_version": CATALOGUE[event_type].version}


# One outbox row per row of a CTE with task_id, user_id (the learner), practice_record_id and the
# moment: ``INSERT INTO event_outbox`` + this + ``FROM <cte>``. PostgreSQL only.
ANALYSIS_ROW_SQL = """(event_id, event_type, schema_version, ordering_key, subject, occurred_at)
  SELECT gen_random_uuid(), %(ev_type)s, %(ev_version)s, {cte}.user_id,
    jsonb_build_object('task_id', {cte}.task_id::text, 'learner_id', {cte}.user_id::text,
      'practice_record_id', {cte}.practice_record_id::text), {moment}"""

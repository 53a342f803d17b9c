"""Practice reminders (issue #26; docs/PRACTICE.md, "Reminders").

A Beat job (every 5 minutes, ``celery_app.REMINDERS_EVERY_SECONDS``) writes one ``practice.reminder_due`` event
to the outbox for each learner who

* chose a reminder hour (``reminder_hour`` of their notification preferences; none set: no
  reminders) and whose local time (their ``timezone``) is at or past it today,
* is linked to a therapist (an unlinked or erased learner is never reminded),
* is behind this week's target: the dose of their goals (``learning.goals.learner_dose``, the
  same computation as the home and the therapist's dashboard) is below 100 %; no target, no
  reminder,
* and has no reminder for that local day yet.

The event's id is derived from the learner and the local day, and ``event_outbox.event_id`` is
unique: two jobs racing, a job run again after a worker restart, or a retried job write it once
(the loser's insert fails on the key and is rolled back). The ``notifications`` consumer turns it
into an in-app notification and a mail for the learner (quiet hours hold both; email off: in-app
only), whose unique key (event, recipient, channel) makes each once as well. The consumer checks
again that the learner is still linked to the same therapist when it handles the event.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from vocalborn.auth.models import Role, User
from vocalborn.celery_app import REMINDERS_TASK, celery_app
from vocalborn.db import open_session
from vocalborn.events import outbox
from vocalborn.events.models import EventOutbox
from vocalborn.learning import goals
from vocalborn.notify import preferences
from vocalborn.notify.models import Notification, NotificationPreferences
from vocalborn.sqltypes import utcnow

log = logging.getLogger(__name__)

EVENT_TYPE = "practice.reminder_due"
_NAMESPACE = uuid.UUID("3d0f8a4e-2b61-4c55-9c3e-58a1e7b0c6f4")


def reminder_event_id(learner_id: uuid.UUID, local_day: str) -> uuid.UUID:
    """The reminder's id for a learner and a local day (YYYY-MM-DD): the same on every run."""
    return uuid.uuid5(_NAMESPACE, f"{learner_id}/{local_day}")


def write_reminders(now: datetime | None = None) -> int:
    """Write the reminders due at ``now`` (UTC; injectable for tests); how many were written."""
    now = now or utcnow()
    written = 0
    with open_session() as db:
        candidates = db.exec(
            select(NotificationPreferences, User)
            .join(User, col(User.user_id) == col(NotificationPreferences.user_id))
            .where(
                col(NotificationPreferences.reminder_hour).is_not(None),
                User.role == Role.LEARNER.value,
                col(User.therapist_id).is_not(None),
            )
        ).all()
        due = []
        for prefs, learner in candidates:
            local = now.astimezone(preferences.zone(prefs))
            if prefs.reminder_hour is None or local.hour < prefs.reminder_hour:
                continue
            due.append(
                (learner.user_id, learner.therapist_id, reminder_event_id(learner.user_id, local.date().isoformat()))
            )
        db.rollback()  # end the read: each learner below in a short transaction of its own
        for learner_id, therapist_id, event_id in due:
            if therapist_id is None:
                continue
            in_outbox = db.exec(select(EventOutbox.seq).where(EventOutbox.event_id == event_id)).first()
            # the outbox row may have been pruned since: its notification remains
            notified = db.exec(select(Notification.id).where(Notification.event_id == event_id)).first()
            if in_outbox is not None or notified is not None:
                db.rollback()
                continue
            dose = goals.learner_dose(db, learner_id, now)
            if dose is None or dose >= 100.0:
                db.rollback()
                continue
            outbox.add(db, EVENT_TYPE, now, event_id, learner_id=learner_id, therapist_id=therapist_id)
            try:
                db.commit()
            except IntegrityError:  # another run wrote it first
                db.rollback()
                continue
            written += 1
    if written:
        log.info("practice reminders: %d written", written)
    return written


@celery_app.task(name=REMINDERS_TASK, send_events=False)
def write_practice_reminders() -> int:
    return write_reminders()
